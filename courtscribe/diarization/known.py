"""Speakers the caller knows by voice (OpenAI's ``known_speaker_names[]`` with
``known_speaker_references[]``): each voice the diarizer found in a recording is named after the
reference it is nearest to (the nearest pairs first: one name per voice, one voice per name), and
only where it is near enough to be that person and clearly nearer them than anyone else; a voice
nobody matches, or several about as well (one voice the diarizer heard for people alike), keeps its
number (never a guessed name)."""
from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..records.model import CONTINUES, UNRECOGNIZED, Utterance, speaker_number
from .embedding import SpeakerEncoder, enrollment_embedding
from .online import MARGIN, THRESHOLD

MATCH = THRESHOLD  # cosine similarity to a reference that names a voice: as an enrolled voice live
VOICE_S = 30  # of a voice's own lines, longest first, this much makes its print
SAMPLE_S = 30  # of a court's sample of a known voice, this much is used


def name_voices(utterances: list[Utterance], channels: list[np.ndarray], encoder: SpeakerEncoder,
                references: dict[str, np.ndarray]) -> list[Utterance]:
    """``utterances`` with each voice the machine numbered (说话人N: a seat's role stays) that matches
    a reference under its name. ``channels``: the
    recording's audio (16 kHz) per channel, where the lines' times point; ``references``: name →
    voice print (:func:`reference_print`)."""
    voices = sorted({u.speaker for u in utterances if u.text and speaker_number(u.speaker) is not None})
    prints = {v: p for v in voices if (p := _voice_print(v, utterances, channels, encoder)) is not None}
    if not prints or not references:
        return utterances
    heard = list(prints)
    names = list(references)
    similarity = np.stack([prints[v] for v in heard]) @ np.stack([references[n] for n in names]).T
    named: dict[str, str] = {}
    for r, c in sorted(np.argwhere(similarity >= MATCH), key=lambda rc: -similarity[rc[0], rc[1]]):
        if heard[r] not in named and names[c] not in named.values():  # nearest pairs first, each once
            if similarity[r, c] - np.delete(similarity[r], c).max(initial=-1.0) >= MARGIN:
                named[heard[r]] = names[c]
    return [u.model_copy(update={"speaker": named[u.speaker]}) if u.speaker in named else u
            for u in utterances]


def reference_print(audio: np.ndarray, encoder: SpeakerEncoder) -> np.ndarray:
    """A reference sample's voice print (raises EncoderError if it holds too little voice)."""
    return enrollment_embedding(encoder, audio)


def _voice_print(voice: str, utterances: list[Utterance], channels: list[np.ndarray],
                 encoder: SpeakerEncoder) -> np.ndarray | None:
    """A voice's print from its own lines: those nobody doubts first (an overlap, an unsure
    speaker, a seat's unchecked crosstalk hold other voices too), longest first, up to ``VOICE_S``;
    the doubted ones only where the others are too little. A text-less gap is never its voice."""
    own = [u for u in utterances if u.speaker == voice and UNRECOGNIZED not in u.flags]
    clean = [u for u in own if not u.flags or u.flags == [CONTINUES]]
    for lines in (clean, own):
        audio = _stretch(sorted(lines, key=lambda u: u.start_ms - u.end_ms), channels)
        try:
            return enrollment_embedding(encoder, audio)
        except ValueError:  # EncoderError: too little voice to tell who it is
            continue
    return None


def _stretch(lines: list[Utterance], channels: list[np.ndarray]) -> np.ndarray:
    """The lines' audio end to end, at most ``VOICE_S`` of it."""
    pieces: list[np.ndarray] = []
    left = VOICE_S * SR
    for u in lines:
        audio = channels[min(u.channel, len(channels) - 1)]
        piece = audio[u.start_ms * SR // 1000:u.end_ms * SR // 1000][:left]
        pieces.append(piece)
        left -= piece.size
        if left <= 0:
            break
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
