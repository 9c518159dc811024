"""Live speaker labels for one mixed channel: each final utterance gets a speaker as it is produced.

Each utterance's 1.5 s windows are embedded; a window joins the speaker whose centroid it is
closest to when the cosine similarity reaches ``threshold``, otherwise it starts a new speaker
(说话人N). The utterance takes the speaker holding most of its windows. As centroids sharpen, the
recent utterances are checked again, and any whose speaker changed is reported as an update (the
clerk's screen relabels that line in place; lines a person labelled are never touched).

Enrolled participants start as fixed centroids carrying their names, so their voices get their
names from the first sentence on; a voice nobody enrolled stays 说话人N until a clerk names it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..audio import SAMPLE_RATE
from ..records.model import speaker_number
from .base import speaker_label
from .clustering import majority, to_segments
from .embedding import SpeakerEncoder, owned, window_audio, windows

THRESHOLD = 0.4  # cosine similarity to a speaker's centroid to count as that speaker
HISTORY = 12  # recent utterances re-checked when the centroids move
RESUMED = 10  # a voice learnt again from its archived lines weighs as much as this many windows
# a voice nearer one speaker than the next by less than this is either's: its line is flagged.
# Two people's CAM++ voices lie 0.3 or more apart (zh-smoke); synthetic voices alike 0.00–0.03
MARGIN = 0.1


class VoiceNumbers:
    """The 说话人N numbers of one hearing, shared by all its mixed channels on this gateway: two
    people heard on two room microphones never print under one label, and a number once given is
    never given again (across gateways of a cluster, see README "Scale out")."""

    def __init__(self, taken: int = 0):
        self._n = taken
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def taken(self, n: int) -> None:
        with self._lock:
            self._n = max(self._n, n)


@dataclass
class Speaker:
    key: str  # 说话人N, or an enrolled participant's key
    total: np.ndarray
    count: int = 0
    enrolled: bool = False

    @property
    def centroid(self) -> np.ndarray:
        return self.total / max(np.linalg.norm(self.total), 1e-9)


@dataclass
class _Utt:
    id: str
    start_ms: int
    wins: list[tuple[int, int]]
    X: np.ndarray
    labels: list[str] = field(default_factory=list)
    speaker: str | None = None
    fixed: bool = False  # a person set this line's speaker


@dataclass
class Assignment:
    speaker: str | None  # None: too short to tell, or a stray voice like nobody heard
    updates: list[tuple[str, str]]  # (utterance id, new speaker) for earlier lines
    sure: bool = True  # False: another speaker is about as near (``MARGIN``): a clerk checks


class OnlineDiarizer:
    def __init__(self, encoder: SpeakerEncoder, *, threshold: float = THRESHOLD, history: int = HISTORY,
                 numbers: VoiceNumbers | None = None):
        """``numbers``: the hearing's (its other mixed channels number from them too)."""
        self.encoder, self.threshold, self.history = encoder, threshold, history
        self.numbers = numbers or VoiceNumbers()
        self.speakers: list[Speaker] = []
        self._utts: list[_Utt] = []
        self._lock = threading.Lock()

    def enroll(self, key: str, embedding: np.ndarray) -> None:
        with self._lock:
            self._put(Speaker(key, np.asarray(embedding, np.float32) * 50, 50, enrolled=True))

    def resume(self, key: str, embedding: np.ndarray | None) -> None:
        """A voice this channel's source heard before it reconnected (``key`` 说话人N): it keeps its
        number, and new voices are numbered after it. Without an ``embedding`` (its audio could not
        be read) its number is still never given to another voice."""
        with self._lock:
            if (n := speaker_number(key)) is not None:
                self.numbers.taken(n)
            if embedding is not None:
                self._put(Speaker(key, np.asarray(embedding, np.float32) * RESUMED, RESUMED))

    def fix(self, utterance_id: str, speaker: str) -> None:
        """A person labelled this line: keep it, and never relabel it again."""
        with self._lock:
            for u in self._utts:
                if u.id == utterance_id:
                    u.fixed, u.speaker = True, speaker

    def add(self, utterance_id: str, audio: np.ndarray, start_ms: int) -> Assignment:
        """``audio`` is the utterance (16 kHz), ``start_ms`` its hearing time."""
        dur = audio.size * 1000 // SAMPLE_RATE
        wins = windows([(0, dur)])
        X = self.encoder.embed_many(window_audio(audio, wins)) if wins else np.zeros((0, self.encoder.dim))
        with self._lock:
            u = _Utt(utterance_id, start_ms, wins, X)
            heard = self._likeness(X.mean(axis=0)) if len(X) else {}  # before it is learnt from
            u.labels = [self._place(x) for x in X]
            u.speaker = _majority(wins, u.labels)
            self._utts = (self._utts + [u])[-self.history:]
            return Assignment(u.speaker, self._recheck(exclude=u), _sure(heard, u.speaker))

    def add_voice(self, x: np.ndarray, exclude: set[str] = frozenset(), learn: bool = True) -> Assignment:
        """One speaker turn of an utterance that held several, by its voice's embedding ``x`` (from
        the turn segmentation, so a turn too short for this diarizer's windows is still told). Never
        one of ``exclude``: the utterance's other voices, which the segmentation heard as other people.
        ``learn`` False: too little of the voice to move a speaker's centroid by it, or to be a
        speaker of its own (speaker None when it is like nobody heard)."""
        with self._lock:
            heard = self._likeness(x)  # the excluded too: a voice as near them is in doubt
            speaker = self._place(x, exclude) if learn else self._match(x, exclude)  # its caller labels the line
            return Assignment(speaker, self._recheck(exclude=None), _sure(heard, speaker))

    def likeness(self, x: np.ndarray) -> dict[str, float]:
        """How like each voice heard so far ``x`` sounds (cosine similarity); nothing is learnt."""
        with self._lock:
            return self._likeness(x)

    def segments(self) -> list[tuple[int, int, str]]:
        """Who spoke when, for the recent utterances (window resolution, hearing time)."""
        with self._lock:
            out = []
            for u in self._utts:
                for (a, b), lab in zip(owned(u.wins), u.labels):
                    out.append((u.start_ms + a, u.start_ms + b, lab))
            return out

    # -- internals (lock held) --------------------------------------------------------------
    def _put(self, speaker: Speaker) -> None:
        """``speaker`` in place of any speaker under its key."""
        self.speakers = [s for s in self.speakers if s.key != speaker.key] + [speaker]

    def _place(self, x: np.ndarray, exclude: set[str] = frozenset()) -> str:
        """The speaker ``x`` sounds like (who learns it), else a new one."""
        if (s := self._nearest_above(x, exclude)) is not None:
            if not s.enrolled:
                s.total, s.count = s.total + x, s.count + 1
            return s.key
        self.speakers.append(Speaker(speaker_label(self.numbers.next()), x.copy(), 1))
        return self.speakers[-1].key

    def _match(self, x: np.ndarray, exclude: set[str] = frozenset()) -> str | None:
        s = self._nearest_above(x, exclude)
        return s.key if s is not None else None

    def _nearest_above(self, x: np.ndarray, exclude: set[str]) -> Speaker | None:
        candidates = [s for s in self.speakers if s.key not in exclude]
        if not candidates:
            return None
        sims = [float(x @ s.centroid) for s in candidates]
        best = int(np.argmax(sims))
        return candidates[best] if sims[best] >= self.threshold else None

    def _likeness(self, x: np.ndarray) -> dict[str, float]:
        x = x / max(float(np.linalg.norm(x)), 1e-9)
        return {s.key: float(x @ s.centroid) for s in self.speakers}

    def _nearest(self, x: np.ndarray) -> str:
        return self.speakers[int(np.argmax([float(x @ s.centroid) for s in self.speakers]))].key

    def _recheck(self, exclude: _Utt | None) -> list[tuple[str, str]]:
        updates = []
        for u in self._utts:
            if u is exclude or u.fixed or not len(u.X):
                continue
            labels = [self._nearest(x) for x in u.X]
            speaker = _majority(u.wins, labels)
            u.labels = labels
            like = self._likeness(u.X.mean(axis=0))
            # moved only when clearly nearer the other voice: a line sent out sure stays so
            nearer = like.get(speaker or "", 0) - like.get(u.speaker or "", 0)
            if speaker != u.speaker and nearer >= MARGIN:
                u.speaker = speaker
                updates.append((u.id, speaker))
        return updates


def _sure(heard: dict[str, float], key: str | None) -> bool:
    """Was ``key`` (a line's speaker) nearer the voice than every other speaker by ``MARGIN``, as
    the speakers stood when it was ``heard``? A speaker new with it was nobody else's."""
    if key is None or key not in heard:
        return True
    return all(heard[key] - v >= MARGIN for k, v in heard.items() if k != key)


def _majority(wins: list[tuple[int, int]], labels: list[str]) -> str | None:
    return majority(0, wins[-1][1], to_segments(wins, labels)) if wins else None
