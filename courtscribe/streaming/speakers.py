"""Live speaker labels for a mixed channel: the online diarizer between a session and the record.

A session whose source is one mixed microphone (no seat role) hands each final utterance's audio to
:class:`LiveSpeakers`; the line gets the speaker's label — an enrolled participant's name and role,
or 说话人N — before it is stored and announced, and earlier lines whose speaker changed as the
diarizer learned more come back as updates (``speaker_update`` events; stored as machine relabels,
which never override a label a person set).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..asr.base import DecodeOptions, Hypothesis
from ..asr.coverage import ENGINE_ERROR, usable
from ..asr.finals import finish
from ..diarization import attribute
from ..diarization.base import speaker_label
from ..diarization.change import latest_change
from ..diarization.embedding import EncoderError, SpeakerEncoder, enrollment_embedding
from ..diarization.online import OnlineDiarizer, VoiceNumbers
from ..diarization.segmentation import SR, Segmenter
from ..diarization.turns import Locals, Turn, Voices, local_speakers, overlay, reconstruct, speakers
from ..records.model import SPEAKER_UNSURE, Participant, Role, Utterance, speaker_number
from ..records.reading import HeardVoice
from ..logs import get_logger
from .events import SpeakerUpdate

log = get_logger(__name__)
MIN_TURNS_S = 1  # an utterance shorter than this is one voice: not segmented
SURE_MS = 500  # one utterance is short: units with this much voice alone may found a speaker in it
# voices the segmentation already tells apart inside one utterance are one person only when they sound
# clearly alike (cosine ≥ 0.5; a whole recording's clustering needs less: it averages many windows)
THRESHOLD = 0.5
WATCH_FROM_S = 1.5  # a running utterance is watched for a speaker change once it is this long
WATCH_S = 10  # … in its newest seconds (one segmentation window)
UNKNOWN = "未知发言人"  # a line no voice could be told for, before any line was: never a numbered voice
ASIDE_MS = 1_000  # a unit with less voice alone may be a short answer inside another's utterance
ASIDE_MARGIN = 0.1  # … another's when this much nearer their voice than the utterance's (cosine similarity)
DOUBT_MARGIN = 0.03  # … in doubt (flagged in the utterance's voice) when this much nearer
RECALL_MS = 30_000  # a voice heard before a reconnect is learnt again from this much of its newest lines


class Found(NamedTuple):
    """An utterance's speaker turns, relabels of earlier lines, and the voices of its turns about
    as near another speaker of the hearing as their own (``online.MARGIN``): their lines are flagged
    发言人待核, though the voice itself is real (its turns keep their gap lines, as a sure voice's)."""
    turns: list[Turn]
    relabels: list[tuple[str, Label]]
    doubted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Label:
    speaker: str
    role: Role | None = None
    participant: str | None = None
    voice: str | None = None  # the voice (说话人N) this label stands for: the store names its lines as a clerk did

    def event(self, utterance_id: str, hearing_id: str | None) -> SpeakerUpdate:
        return SpeakerUpdate(hearing_id=hearing_id, utterance_id=utterance_id, speaker=self.speaker, role=self.role,
                             participant=self.participant)


class LiveSpeakers:
    def __init__(self, encoder: SpeakerEncoder, voices: Sequence[tuple[Participant, bytes]] = (),
                 segmenter: Segmenter | None = None, numbers: VoiceNumbers | None = None):
        self.diarizer = OnlineDiarizer(encoder, numbers=numbers)
        self.encoder, self.segmenter = encoder, segmenter
        self.labels: dict[str, Label] = {}
        for person, voice in voices:
            self.enroll(person, np.frombuffer(voice, np.float32))
        self.last: Label | None = None

    def enroll(self, person: Participant, voice: np.ndarray) -> None:
        key = person.name or person.role.label
        self.labels[key] = Label(key, person.role, person.name)
        self.diarizer.enroll(key, voice)

    def name(self, voice: str, label: Label | None) -> None:
        """A clerk named a voice: its next lines carry ``label`` (None: its own name again)."""
        if label is None:
            self.labels.pop(voice, None)
        else:
            self.labels[voice] = replace(label, voice=voice)

    def recall(self, heard: Sequence[HeardVoice], read: Callable[[int, int], np.ndarray]) -> None:
        """A source that reconnects mid-hearing learns again the voices its channel's lines were given
        (from ``read(start_ms, end_ms)`` of its own archive, each voice's newest ``RECALL_MS``): a
        voice keeps its number and the name a clerk gave it, and a new voice never takes a number
        an earlier one had. Blocking."""
        for v in heard:
            stretches, left = [], RECALL_MS
            for a, b in v.spans:
                if left <= 0:
                    break
                stretches.append(read(a, min(b, a + left)))
                left -= stretches[-1].size * 1000 // SR
            try:
                voice = enrollment_embedding(self.encoder, np.concatenate(stretches)) if stretches else None
            except EncoderError:  # too little of it on disk: its number stays taken all the same
                voice = None
            self.diarizer.resume(v.voice, voice)
            if v.named is not None:
                self.name(v.voice, Label(*v.named))

    def label(self, key: str) -> Label:
        """A diarizer key's label: a clerk's name for the voice, an enrolled person, or the voice's
        own number; a voice's label says which voice it is, so the store can name it as it goes in."""
        return self.labels.get(key) or Label(key, voice=key if speaker_number(key) is not None else None)

    def change(self, audio: np.ndarray) -> int | None:
        """Where in a running utterance's audio (ms) the newest confirmed speaker change is; only
        its last ``WATCH_S`` are looked at, so that is all a caller need pass. Blocking."""
        if self.segmenter is None or audio.size < WATCH_FROM_S * SR:
            return None
        return latest_change(audio, self.segmenter, self.encoder)

    def turns(self, audio: np.ndarray, start_ms: int, uid: str = "") -> Found:
        """The speaker turns of one utterance (``start_ms`` its session time), each labelled with its
        speaker's key, and relabels of earlier lines (``uid``: the utterance's); no turns when the
        utterance is one voice with nothing in it like another (``assign`` labels it whole).
        Blocking: run in a thread."""
        if self.segmenter is None or audio.size < MIN_TURNS_S * SR:
            return Found([], [])
        loc = local_speakers(audio, self.segmenter, self.encoder)
        # cut at the audio's pauses too, for short answers only: one voice's units cut so are too
        # short to cluster apart from each other, but not to be compared with the hearing's voices
        cut = local_speakers(audio, self.segmenter, self.encoder, seg=loc.seg, silences=True, known=loc)
        if len(cut.units) < 2:
            return Found([], [])
        voices = speakers(loc, threshold=THRESHOLD, sure_ms=SURE_MS)
        n = len(voices.centroids)
        local = reconstruct(loc, voices, audio.size * 1000 // SR, speaker_of=str)
        asides = self._asides(cut, voices, local)
        # one voice for sure: no turns, unless a short unit in it sounds like someone else (a prompt
        # 收到了 after a question, by a voice too alike for the segmentation to call another person)
        if len({t.speaker for t in local}) < 2 and all(t.sure for t in local) and not asides:
            return Found([], [])
        held = {c: sum(t.end_ms - t.start_ms for t in local if t.speaker == str(c)) for c in range(n)}
        keys: dict[str, str] = {}
        updates: dict[str, str] = {}
        doubted: set[str] = set()  # speakers a voice was given though about as near another
        speaking = [c for c in held if held[c]]
        for c in sorted(speaking, key=held.__getitem__, reverse=True):  # longest voice first
            # one voice and its asides: labelled as a one-voice line is, kept among the lines a
            # sharper voice may relabel; a stray voice (a short answer) is placed among the hearing's
            # voices, never learnt from
            got = self.diarizer.add(uid, audio, start_ms) if len(speaking) == 1 and uid else None
            if got is None or got.speaker is None:
                got = self.diarizer.add_voice(voices.centroids[c], exclude=set(keys.values()),
                                              learn=c not in voices.unsure)
            keys[str(c)] = got.speaker or (UNKNOWN if c in voices.unsure else speaker_label(c + 1))
            updates.update(got.updates)
            if not got.sure:
                doubted.add(keys[str(c)])
        turns = [Turn(start_ms + t.start_ms, start_ms + t.end_ms, keys[t.speaker], t.sure) for t in local]
        for a, b, key, holder in asides:  # in another voice's mouth, or the turn's own: flagged either way
            turns = overlay(turns, Turn(start_ms + a, start_ms + b, key or keys[holder], sure=False))
        relabels = [(u, self.label(key)) for u, key in updates.items()]
        return Found(turns, relabels, frozenset(doubted))

    def _asides(self, loc: Locals, voices: Voices, local: list[Turn]) -> list[tuple[int, int, str | None, str]]:
        """Short units (``ASIDE_MS``) that sound nearer another voice of the hearing than the voice of
        the turn holding them: (start, end, that voice's key, the turn's speaker) when clearly nearer
        (``ASIDE_MARGIN``), else None for the key when a little (``DOUBT_MARGIN``). One utterance's
        units are too few to tell voices alike apart; the hearing's voices, learnt from many lines,
        are not."""
        out: list[tuple[int, int, str | None, str]] = []
        ms = loc.seg.frame_start_ms
        spans = [(int(ms(w, frames[0])), int(ms(w, frames[-1]) + loc.seg.frame_ms)) for w, _, frames in loc.units]
        for i, (a, b) in enumerate(spans):
            holder = attribute.speaker_at(a, b, local)
            # from the middle of the pause before it: the engine times an answer's first word early
            a = (a + max(before)) // 2 if (before := [y for _, y in spans if y <= a]) else a
            if loc.clean_ms[i] >= ASIDE_MS or holder is None or any(min(b, y) > max(a, x) for x, y, *_ in out):
                continue
            own = self._voice_of(voices.centroids[int(holder)])
            like = self.diarizer.likeness(loc.X[i])
            others = {k: v for k, v in like.items() if k != own}
            if own is None or not others:
                continue
            other = max(others, key=others.__getitem__)
            if others[other] >= like[own] + ASIDE_MARGIN:
                out.append((a, b, other, holder))
            elif others[other] >= like[own] + DOUBT_MARGIN:
                out.append((a, b, None, holder))
        return out

    def _voice_of(self, centroid: np.ndarray) -> str | None:
        """The hearing's voice a turn's centroid is, if it is one of them (nothing learnt)."""
        like = self.diarizer.likeness(centroid)
        best = max(like, key=like.__getitem__, default=None)
        return best if best is not None and like[best] >= self.diarizer.threshold else None

    async def find_turns(self, uid: str, audio: np.ndarray, start_ms: int) -> Found:
        """``turns`` off the event loop; a failure leaves the utterance whole, under one speaker."""
        if not audio.size:
            return Found([], [])
        try:
            return await asyncio.to_thread(self.turns, audio, start_ms, uid)
        except Exception as err:  # noqa: BLE001 - the utterance is still recorded
            log.error("speaker turns not found", utterance=uid, error=repr(err))
            return Found([], [])

    def spoke(self, label: Label) -> None:
        """A line went out under ``label``: the next line too short to tell is taken for the same
        turn. Called in the order lines are delivered, never the order their turns were found."""
        self.last = label

    def guess(self, u: Utterance) -> Utterance:
        """A line whose voice could not be told: the speaker of the line before (or ``UNKNOWN``),
        flagged as a guess. Not a voice's line: naming a voice never moves it."""
        guess = self.last or Label(UNKNOWN)
        u = u.model_copy(update={"speaker": guess.speaker, "role": guess.role, "participant": guess.participant})
        return u.flagged(SPEAKER_UNSURE)

    async def assign(self, u: Utterance, audio: np.ndarray) -> tuple[Utterance, Label | None, list[tuple[str, Label]]]:
        """The utterance with its speaker, the label it got, and (utterance id, label) updates for
        earlier lines. A line too short to tell whose voice it is takes the speaker of the line
        before, flagged as a guess (``speaker_unsure``), or before any line ``UNKNOWN``."""
        result = await asyncio.to_thread(self.diarizer.add, u.id, audio, u.start_ms)
        updates = [(uid, self.label(key)) for uid, key in result.updates]
        if result.speaker is None:
            return self.guess(u), None, updates
        label = self.label(result.speaker)  # the line before for the next: once delivered (``spoke``)
        u = u.model_copy(update={"speaker": label.speaker, "role": label.role, "participant": label.participant})
        return (u if result.sure else u.flagged(SPEAKER_UNSURE)), label, updates


async def unheard_turns(turns: list[Turn], hyps: list[Hypothesis], audio: np.ndarray, start_ms: int, end_ms: int,
                        decode: Callable[[np.ndarray, int], Awaitable[list[Hypothesis]]],
                        options: DecodeOptions) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """Each turn of an utterance (``audio`` from ``start_ms``) to which the engine gave no word, or
    too few (attribute.unheard), decoded again on its own: ``hyps`` as they stay (attribute.reheard)
    and the turns' finished pieces, text or a flagged gap (nothing said vanishes)."""
    out: list[Hypothesis] = []
    for t in attribute.unheard(turns, [h for h in hyps if usable(h)], start_ms, end_ms):
        a, b = (t.start_ms - start_ms) * SR // 1000, (t.end_ms - start_ms) * SR // 1000
        try:
            more, failed = await decode(audio[a:b], t.start_ms), None
        except Exception as err:  # noqa: BLE001 - a flagged gap then
            log.error("turn decode failed", start_ms=t.start_ms, error=repr(err))
            more, failed = [], ENGINE_ERROR
        pieces = await asyncio.to_thread(finish, more, t.start_ms, t.end_ms, options.hotwords, reason=failed,
                                         language=options.language, itn=options.itn)
        hyps, again = attribute.reheard(hyps, t, attribute.turn_pieces(t, pieces, turns))
        out += again
    return hyps, out
