"""Speakers the caller knows by voice (OpenAI's ``known_speaker_names[]`` with
``known_speaker_references[]``): each voice the diarizer found in a recording is named after the
reference it is nearest to, one name per voice and one voice per name, and only where it is near
enough to be that person; a voice nobody matches keeps its number (never a guessed name)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..audio import SAMPLE_RATE as SR
from ..records.model import UNRECOGNIZED, Utterance
from .embedding import SpeakerEncoder, enrollment_embedding
from .online import THRESHOLD

MATCH = THRESHOLD  # cosine similarity to a reference that names a voice: as an enrolled voice live
VOICE_S = 30  # of a voice's own lines, longest first, this much makes its print


def name_voices(utterances: list[Utterance], channels: list[np.ndarray], encoder: SpeakerEncoder,
                references: dict[str, np.ndarray]) -> list[Utterance]:
    """``utterances`` with each voice that matches a reference under its name. ``channels``: the
    recording's audio (16 kHz) per channel, where the lines' times point; ``references``: name →
    voice print (:func:`reference_print`)."""
    voices = sorted({u.speaker for u in utterances if u.speaker and u.text})
    prints = {v: p for v in voices if (p := _voice_print(v, utterances, channels, encoder)) is not None}
    if not prints or not references:
        return utterances
    heard = list(prints)
    names = list(references)
    similarity = np.stack([prints[v] for v in heard]) @ np.stack([references[n] for n in names]).T
    rows, cols = linear_sum_assignment(-similarity)
    named = {heard[r]: names[c] for r, c in zip(rows, cols) if similarity[r, c] >= MATCH}
    return [u.model_copy(update={"speaker": named[u.speaker]}) if u.speaker in named else u
            for u in utterances]


def reference_print(audio: np.ndarray, encoder: SpeakerEncoder) -> np.ndarray:
    """A reference sample's voice print (raises EncoderError if it holds too little voice)."""
    return enrollment_embedding(encoder, audio)


def _voice_print(voice: str, utterances: list[Utterance], channels: list[np.ndarray],
                 encoder: SpeakerEncoder) -> np.ndarray | None:
    """A voice's print from its own recognized lines, longest first, up to ``VOICE_S``."""
    lines = sorted((u for u in utterances if u.speaker == voice and UNRECOGNIZED not in u.flags),
                   key=lambda u: u.start_ms - u.end_ms)
    pieces: list[np.ndarray] = []
    have = 0
    for u in lines:
        audio = channels[min(u.channel, len(channels) - 1)]
        piece = audio[u.start_ms * SR // 1000:u.end_ms * SR // 1000]
        pieces.append(piece)
        have += piece.size
        if have >= VOICE_S * SR:
            break
    try:
        return enrollment_embedding(encoder, np.concatenate(pieces)) if pieces else None
    except ValueError:  # EncoderError: too little voice to tell who it is
        return None
