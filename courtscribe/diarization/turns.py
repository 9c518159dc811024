"""Speaker turns of one mixed channel, overlap included: segmentation, embeddings, clustering,
reconstruction — the recipe of pyannote's own speaker-diarization pipeline, on the embedded models.

1. ``Segmenter`` gives each 10 s window's local speakers, frame by frame (segmentation.py);
2. each local speaker's stretch between pauses (a unit) gets a CAM++ embedding of the frames where
   it speaks alone (overlapped frames would mix two voices);
3. the units with a second of voice alone are clustered across the recording into speakers (live:
   across one utterance, then placed among the hearing's voices, streaming/speakers.py);
4. each window's units take their nearest speaker that no unit overlapping them holds (two voices
   heard at once are never one person; a unit that finds every speaker held is a voice nobody can
   be sure of, heard beside them: ``crowded``), and the windows are averaged back into one frame
   grid, where each frame keeps as many speakers as the windows counted there.

A turn is a stretch of one speaker; turns of two speakers may overlap (both spoke).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..audio import Audio
from ..records.model import Utterance
from .base import Diarizer, speaker_label
from .clustering import cluster
from .embedding import SpeakerEncoder
from .segmentation import SR, Segmentation, Segmenter

MAX_EMBED_MS = 3_000  # of a longer unit, its middle is embedded
MIN_EMBED_MS = 250  # a local speaker with less voice in a window gets no embedding of its own there
THRESHOLD = 0.6  # cosine distance between averages of two speakers' embeddings above which they differ
MIN_TURN_MS = 100  # shorter islands and holes in a speaker's activity are frame noise
PAUSE_MS = 150  # a local speaker's silence this long may be where one person stops and another answers
SILENCE_DB = 25  # a frame this far under the audio's loud part is a pause (local_speakers ``silences``)
SURE_MS = 1_000  # units with this much voice alone decide who the speakers are; shorter ones are matched to them
MIN_SPEAKER_MS = 1_000  # a "speaker" with less voice in the whole recording joins its nearest one
# a unit this unlike every speaker is someone else: another person's short unit scores about 0 with
# CAM++, the same person's at least 0.16 (pyannote's sample, zh-smoke; bench/diarization.py)
STRAY_SIMILARITY = 0.1
# ... and one under this may be: voices alike score up to 0.22 (a prompt 没有。 after a question in
# a review's synthetic hearing), while a noisy clip's one voice has short units down to 0.1: such a
# unit is matched to its nearest speaker, but not for sure (its words are flagged)
DOUBT_SIMILARITY = 0.25


@dataclass(frozen=True)
class Turn:
    start_ms: int
    end_ms: int
    speaker: str  # 说话人N, N by first appearance (files), or the live diarizer's speaker key
    sure: bool = True  # False: a voice unlike every speaker, too little of it to be sure who it is


class Voices(NamedTuple):
    """The speakers among a recording's units (unit centroids, row ``i`` speaker ``i + 1``), which
    of them are strays nobody can be sure of, and which of those were only heard over another
    speaker (``over``: added to that speaker's frames, never in their place), and which speakers
    are not sure though found as the others are (``split``: cut off a voice by a given count)."""
    centroids: np.ndarray
    unsure: frozenset[int] = frozenset()
    over: frozenset[int] = frozenset()
    split: frozenset[int] = frozenset()


@dataclass
class Locals:
    """Each window's voice units: a run of one local speaker between pauses, with its embedding."""

    seg: Segmentation
    units: list[tuple[int, int, np.ndarray]]  # (window, local speaker, frame indices)
    X: np.ndarray  # one row per unit
    voiced_ms: np.ndarray  # voice of each unit
    clean_ms: np.ndarray  # of it, voice with nobody else speaking


def local_speakers(audio: np.ndarray, segmenter: Segmenter, encoder: SpeakerEncoder,
                   starts: list[int] | None = None, *, silences: bool = False,
                   seg: Segmentation | None = None, known: Locals | None = None) -> Locals:
    """The segmentation's local speakers, each cut at its pauses into units embedded on their own.

    The model often gives two people one local label when one answers the other after a short pause;
    the pause shows, and embedding each side of it apart lets clustering tell them apart. A unit
    too short to embed takes its local speaker's nearest embedded unit's vector in that window.
    ``silences``: the audio's own pauses cut units too (one live utterance is seen by one window,
    which often hears a voice alike answering after 300 ms as the questioner going on); ``seg``:
    the audio's segmentation, when it was already run; ``known``: units of it already embedded."""
    seg = seg if seg is not None else segmenter(audio, starts)
    units, pieces, voiced, clean_ms = [], [], [], []
    pause = max(1, int(round(PAUSE_MS / seg.frame_ms)))
    for w in range(seg.activity.shape[0]):
        act = seg.activity[w] * ~_silent(audio, seg, w)[:, None] if silences else seg.activity[w]
        alone = act.sum(axis=1) == 1
        for k in range(act.shape[1]):
            for a, b in _runs(act[:, k].astype(bool), 1, hole=pause):
                frames = np.arange(a, b)
                frames = frames[act[frames, k] > 0]
                clean = frames[alone[frames]]
                use = clean if clean.size * seg.frame_ms >= MIN_EMBED_MS else frames
                units.append((w, k, frames))
                pieces.append(frames_audio(audio, seg, w, use) if use.size * seg.frame_ms >= MIN_EMBED_MS else None)
                voiced.append(frames.size * seg.frame_ms)
                clean_ms.append(clean.size * seg.frame_ms)
    X = np.zeros((len(units), encoder.dim), np.float32)
    have = [i for i, p in enumerate(pieces) if p is not None]
    done = {} if known is None else {(w, k, f.tobytes()): x for (w, k, f), x in zip(known.units, known.X)}
    for i in have:
        X[i] = done.get((units[i][0], units[i][1], units[i][2].tobytes()), 0)
    if todo := [i for i in have if not X[i].any()]:
        X[todo] = encoder.embed_many([pieces[i] for i in todo])
    for i, p in enumerate(pieces):  # too short: its local speaker's nearest unit in the window, if any
        if p is None:
            w, k, frames = units[i]
            near = [j for j in have if units[j][:2] == (w, k)]
            if near:
                X[i] = X[min(near, key=lambda j: abs(int(units[j][2][0]) - int(frames[0])))]
    keep = np.linalg.norm(X, axis=1) > 0
    return Locals(seg, [u for u, k in zip(units, keep) if k], X[keep], np.array(voiced)[keep],
                  np.array(clean_ms)[keep])


def _silent(audio: np.ndarray, seg: Segmentation, w: int) -> np.ndarray:
    """Which frames of window ``w`` are quiet: ``SILENCE_DB`` under the loud part of the audio."""
    n = seg.activity.shape[1]
    step = seg.frame_ms * SR / 1000
    base = int(seg.starts_ms[w]) * SR // 1000
    edges = np.minimum(audio.size, base + (np.arange(n + 1) * step).astype(int))
    power = np.array([float(np.mean(audio[a:b] ** 2)) if b > a else 0.0 for a, b in zip(edges, edges[1:])])
    loud = float(np.percentile(power[power > 0], 95)) if (power > 0).any() else 0.0
    return power < loud * 10 ** (-SILENCE_DB / 10)


def frames_audio(audio: np.ndarray, seg: Segmentation, w: int, frames: np.ndarray) -> np.ndarray:
    """The samples of the given frames of window ``w`` (their middle ``MAX_EMBED_MS``: a voice is
    known by then, and same-length pieces embed in one batch)."""
    step = seg.frame_ms * SR / 1000
    most = int(MAX_EMBED_MS / seg.frame_ms)
    if frames.size > most:
        frames = frames[(frames.size - most) // 2:][:most]
    base = int(seg.starts_ms[w]) * SR // 1000
    runs = np.split(frames, np.nonzero(np.diff(frames) > 1)[0] + 1)
    return np.concatenate([audio[base + int(r[0] * step): base + int((r[-1] + 1) * step)] for r in runs])


def diarize(audio: np.ndarray, segmenter: Segmenter, encoder: SpeakerEncoder, *,
            num_speakers: int | None = None, threshold: float = THRESHOLD,
            speech: list[tuple[int, int]] | None = None) -> list[Turn]:
    """Turns of the whole recording, speakers found by clustering (``num_speakers`` when known);
    ``speech`` (ms spans, the VAD's): only windows that hold some are looked at."""
    starts = None if speech is None else segmenter.starts_over(speech, audio.size)
    if starts == []:
        return []
    loc = local_speakers(audio, segmenter, encoder, starts)
    if not loc.units:
        return []
    return _by_appearance(reconstruct(loc, speakers(loc, num_speakers, threshold), audio.size * 1000 // SR))


def speakers(loc: Locals, num_speakers: int | None = None, threshold: float = THRESHOLD,
             sure_ms: int = SURE_MS) -> Voices:
    """The voices among the units: units with ``sure_ms`` of voice alone found them; shorter ones
    are only matched. Units unlike every one of them (a witness who only answers "是", "对") are
    voices of their own (``strays``) unless the court gave the number of speakers; then a person
    that number split off a voice clustering would have kept whole is one nobody is sure of."""
    sure = loc.clean_ms >= sure_ms
    X, voiced = (loc.X[sure], loc.voiced_ms[sure]) if sure.any() else (loc.X, loc.voiced_ms)
    labels = cluster(X, num_speakers, threshold)
    people = _people(labels, voiced)
    found = np.stack([_unit(X[labels == c].mean(axis=0)) for c in people])
    if num_speakers:
        split = _split_off(X, labels, people, voiced, threshold)
        return crowded(loc, Voices(found, split=split), threshold)
    return crowded(loc, strays(loc, found, threshold), threshold)


def _split_off(X: np.ndarray, labels: np.ndarray, people: list[int], voiced_ms: np.ndarray,
               threshold: float) -> frozenset[int]:
    """With the number of speakers given (``--speakers 4`` where three spoke), the people whose
    units lie closer than ``threshold`` on average to another's (clustering would have joined
    them: one voice the count cut in two): the one holding less voice, whose turns are then not
    sure: its label stays, its lines flagged for the clerk, not an unflagged fourth person's."""
    out = set()
    for i, a in enumerate(people):
        for j, b in enumerate(people[:i]):
            if 1 - float((X[labels == a] @ X[labels == b].T).mean()) < threshold:
                out.add(i if voiced_ms[labels == a].sum() < voiced_ms[labels == b].sum() else j)
    return frozenset(out)


def strays(loc: Locals, found: np.ndarray, threshold: float) -> Voices:
    """``found`` and, as ``unsure`` voices, the units unlike every one of them (cosine similarity
    under ``STRAY_SIMILARITY`` to each), clustered among themselves: a short answer by someone the
    recording has too little of to know is kept apart and its words flagged for the clerk, rather
    than put in the mouth of the nearest speaker. Never a speaker of its own: short units are
    too noisy to tell one stray person from several."""
    far = (loc.X @ found.T).max(axis=1) < STRAY_SIMILARITY
    return _added(Voices(found), loc.X[far], threshold)


def crowded(loc: Locals, voices: Voices, threshold: float) -> Voices:
    """``voices`` and, as ``over`` voices nobody can be sure of, the units that met every speaker
    found in their window while it spoke (an interjection over the only voice a recording has
    enough of): two voices at once are two people, and with no speaker left to take it the unit's
    words would leave the record unflagged. Their embedding is of both voices at once, so which
    person it was is never guessed: the clerk is sent to the audio."""
    sims = loc.X @ voices.centroids.T
    left = [i for mine in _by_window(loc) for i, c in _assigned(loc, sims, mine) if c is None]
    return _added(voices, loc.X[left], threshold, over=True)


def _added(voices: Voices, X: np.ndarray, threshold: float, *, over: bool = False) -> Voices:
    """``voices`` and, as voices nobody can be sure of (``over`` ones if so), the units ``X``
    clustered among themselves: one voice per cluster."""
    labels = cluster(X, None, threshold)
    more = [_unit(X[labels == c].mean(axis=0)) for c in sorted(set(labels.tolist()))]
    n = len(voices.centroids)
    added = frozenset(range(n, n + len(more)))
    centroids = np.concatenate([voices.centroids, np.array(more, np.float32).reshape(-1, X.shape[1])])
    return voices._replace(centroids=centroids, unsure=voices.unsure | added,
                           over=voices.over | added if over else voices.over)


def _by_appearance(turns: list[Turn]) -> list[Turn]:
    """Speakers renumbered 说话人1.. in the order they first speak."""
    order: dict[str, str] = {}
    for t in turns:
        order.setdefault(t.speaker, speaker_label(len(order) + 1))
    return [replace(t, speaker=order[t.speaker]) for t in turns]


def _people(labels: np.ndarray, voiced_ms: np.ndarray) -> list[int]:
    """The clusters that are people, in order of appearance: a cluster holding under
    ``MIN_SPEAKER_MS`` of voice (a cough, a chair, one garbled window, a lone "是") is not one
    unless nothing is; its units are matched to the people, or are strays, but shape no voice."""
    held = {c: voiced_ms[labels == c].sum() for c in dict.fromkeys(labels.tolist())}
    return [c for c, ms in held.items() if ms >= MIN_SPEAKER_MS] or list(held)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def reconstruct(loc: Locals, voices: Voices, duration_ms: int,
                speaker_of: Callable[[int], str] = lambda c: speaker_label(c + 1)) -> list[Turn]:
    """Turns from each window's units matched onto the voices' centroids (row ``i`` is speaker
    ``speaker_of(i)``): each unit takes its nearest speaker that no unit overlapping it in the
    window holds (two voices at once are two people); windows are averaged back frame by frame."""
    centroids = voices.centroids
    seg = loc.seg
    _, n_frames, _ = seg.activity.shape
    n_spk = len(centroids)
    total = int(np.ceil(duration_ms / seg.frame_ms)) + 1
    score = np.zeros((total, n_spk))
    weight = np.zeros(total)
    count = np.zeros(total)
    hamming = np.hamming(n_frames)
    sims = loc.X @ centroids.T
    strays = np.zeros((total, n_spk))  # frames a window gave to a voice nobody can be sure of
    over = np.zeros((total, n_spk))  # ... that was heard over another speaker
    doubt = np.zeros((total, n_spk))  # ... or to a speaker, for a short unit little like them
    for w, mine in enumerate(_by_window(loc)):
        mapped = np.zeros((n_frames, n_spk))
        doubted = np.zeros((n_frames, n_spk))
        for i, c in _assigned(loc, sims, mine):
            frames = loc.units[i][2]
            if c is not None:
                mapped[frames, c] = 1
                if sims[i, c] < DOUBT_SIMILARITY and loc.clean_ms[i] < SURE_MS:
                    doubted[frames, c] = 1
        act = seg.activity[w]
        idx = np.rint(seg.frame_start_ms(w, np.arange(n_frames)) / seg.frame_ms).astype(int)
        keep = idx < total
        idx = idx[keep]
        score[idx] += mapped[keep] * hamming[keep, None]
        for c in voices.unsure:
            (over if c in voices.over else strays)[idx, c] += mapped[keep, c]
        doubt[idx] += doubted[keep]
        weight[idx] += hamming[keep]
        count[idx] += act[keep].sum(axis=1) * hamming[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(weight[:, None] > 0, score / weight[:, None], 0)
        speakers_here = np.rint(np.where(weight > 0, count / weight, 0)).astype(int)
    on = np.zeros_like(score, dtype=bool)
    ranked = np.argsort(-score, axis=1)
    for n in range(1, min(n_spk, 2) + 1):  # the model hears at most two voices at once
        rows = np.nonzero(speakers_here >= n)[0]
        picks = ranked[rows, n - 1]
        good = score[rows, picks] > 0
        on[rows[good], picks[good]] = True
    _strays_heard(on, strays)
    on |= over > 0  # beside the speaker it was heard over, whatever the other windows counted
    turns = []
    for c in range(n_spk):
        for a, b in _runs(on[:, c], int(round(MIN_TURN_MS / seg.frame_ms))):
            for x, y, doubted_here in _by_doubt(doubt[a:b, c] > 0, a):
                turns.append(Turn(int(x * seg.frame_ms), min(duration_ms, int(y * seg.frame_ms)), speaker_of(c),
                                  sure=c not in voices.unsure | voices.split and not doubted_here))
    return sorted(turns, key=lambda t: (t.start_ms, t.speaker))


def _by_window(loc: Locals) -> list[list[int]]:
    """Each window's units (their indices)."""
    out: list[list[int]] = [[] for _ in range(loc.seg.activity.shape[0])]
    for i, (w, _, _) in enumerate(loc.units):
        out[w].append(i)
    return out


def _assigned(loc: Locals, sims: np.ndarray, mine: list[int]) -> list[tuple[int, int | None]]:
    """One window's units (``mine``), likest first, each with its nearest speaker (a column of
    ``sims``) that no unit overlapping it holds: None where every speaker is held."""
    taken: list[tuple[int, int, int]] = []
    out: list[tuple[int, int | None]] = []
    for i in sorted(mine, key=lambda i: -sims[i].max()):
        frames = loc.units[i][2]
        a, b = int(frames[0]), int(frames[-1]) + 1
        held = {c for a2, b2, c in taken if a < b2 and a2 < b}
        free = [int(c) for c in np.argsort(-sims[i]) if c not in held]
        if free:
            taken.append((a, b, free[0]))
        out.append((i, free[0] if free else None))
    return out


def _by_doubt(doubted: np.ndarray, first: int) -> list[tuple[int, int, bool]]:
    """A turn's frames (from frame ``first``) as runs of sure and doubted frames."""
    edges = [0, *(np.nonzero(np.diff(doubted.astype(np.int8)))[0] + 1).tolist(), doubted.size]
    return [(first + a, first + b, bool(doubted[a])) for a, b in zip(edges, edges[1:]) if b > a]


def _strays_heard(on: np.ndarray, strays: np.ndarray) -> None:
    """Where one window heard a voice nobody can be sure of as a unit of its own, it holds those
    frames, though other windows heard them as part of a known speaker's longer unit (the model
    often joins a prompt 没有。 to the question before it): outvoted, the answer was printed in the
    questioner's mouth as theirs for sure; held, it is a line of its own, flagged."""
    heard = strays.max(axis=1) > 0
    if heard.any():
        on[heard] = False
        on[np.nonzero(heard)[0], strays[heard].argmax(axis=1)] = True


def _runs(flags: np.ndarray, min_frames: int, hole: int | None = None) -> list[tuple[int, int]]:
    """Stretches of True (frame index start, end): holes under ``hole`` frames (default
    ``min_frames``) filled, then islands under ``min_frames`` removed."""
    hole = min_frames if hole is None else hole
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    runs = list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < hole:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return [(int(a), int(b)) for a, b in merged if b - a >= min_frames]


def overlay(turns: list[Turn], new: Turn) -> list[Turn]:
    """``turns`` with ``new`` in place of whatever they held over its time."""
    out = [new]
    for t in turns:
        if t.end_ms <= new.start_ms or t.start_ms >= new.end_ms:
            out.append(t)
            continue
        if t.start_ms < new.start_ms:
            out.append(replace(t, end_ms=new.start_ms))
        if t.end_ms > new.end_ms:
            out.append(replace(t, start_ms=new.end_ms))
    return sorted(out, key=lambda t: (t.start_ms, t.speaker))


def overlaps(turns: list[Turn]) -> list[tuple[int, int]]:
    """Where two speakers' turns overlap (both spoke)."""
    out = []
    for i, t in enumerate(turns):
        for u in turns[i + 1:]:
            if u.start_ms >= t.end_ms:
                break
            if u.speaker != t.speaker and min(t.end_ms, u.end_ms) > u.start_ms:
                out.append((u.start_ms, min(t.end_ms, u.end_ms)))
    return sorted(out)


class TurnDiarizer(Diarizer):
    """One mixed channel: speaker turns found before transcription (``turns``), so that the file
    pipeline cuts the engine's sentences at each change (attribute.py); ``assign`` only fills a line
    the turns did not reach with the speaker before it."""

    def __init__(self, segmenter: Segmenter, encoder: SpeakerEncoder, *, num_speakers: int | None = None,
                 threshold: float = THRESHOLD):
        if num_speakers is not None and num_speakers < 1:
            raise ValueError("num_speakers must be at least 1")
        self.segmenter, self.encoder = segmenter, encoder
        self.num_speakers, self.threshold = num_speakers, threshold
        self.name = f"turns-{encoder.name}"

    def turns(self, audio: np.ndarray, speech: list[tuple[int, int]] | None = None) -> list[Turn]:
        return diarize(audio, self.segmenter, self.encoder, num_speakers=self.num_speakers, threshold=self.threshold,
                       speech=speech)

    def assign(self, utterances: list[Utterance], audio: Audio) -> list[Utterance]:
        out, previous = [], speaker_label(1)
        for u in sorted(utterances, key=lambda u: u.start_ms):
            previous = u.speaker or previous
            out.append(u if u.speaker else u.model_copy(update={"speaker": previous}))
        return out
