"""Whole-recording diarization by clustering window embeddings: the file pipeline's diarizer for a
single mixed channel, and the offline refinement of a hearing.

Speech (the utterances, or VAD spans) is cut into 1.5 s windows every 0.75 s; each window gets a
speaker embedding; agglomerative clustering (cosine, average linkage) groups them into the known
number of speakers or by a distance threshold; each utterance takes the speaker who holds most of
its time.
"""
from __future__ import annotations

import numpy as np

from ..audio import Audio
from ..records.model import Utterance
from .base import Diarizer, speaker_label
from .embedding import SpeakerEncoder, owned, window_audio, windows

Segment = tuple[int, int, int]  # start_ms, end_ms, cluster (numbered from 1 by first appearance)
THRESHOLD = 0.6  # cosine distance between cluster averages above which voices are different people


def cluster(X: np.ndarray, num_speakers: int | None = None, threshold: float = THRESHOLD) -> np.ndarray:
    """Cluster labels 1..k, numbered by first appearance."""
    if len(X) == 0:
        return np.zeros(0, int)
    if len(X) == 1 or num_speakers == 1:
        raw = np.zeros(len(X), int)
    else:
        from sklearn.cluster import AgglomerativeClustering

        k = min(num_speakers, len(X)) if num_speakers else None
        raw = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average",
                                      distance_threshold=None if k else threshold).fit_predict(X)
    order = {c: i + 1 for i, c in enumerate(dict.fromkeys(raw.tolist()))}
    return np.array([order[c] for c in raw.tolist()])


def to_segments(wins: list[tuple[int, int]], labels) -> list[Segment]:
    """Windows' owned stretches, adjacent ones of the same speaker merged (labels: cluster
    numbers, or the online diarizer's speaker keys)."""
    out: list[Segment] = []
    for (a, b), lab in zip(owned(wins), labels):
        lab = lab.item() if isinstance(lab, np.generic) else lab
        if out and out[-1][2] == lab and a - out[-1][1] <= 10:
            out[-1] = (out[-1][0], b, lab)
        else:
            out.append((a, b, lab))
    return out


def majority(start_ms: int, end_ms: int, segments: list[Segment]):
    """The speaker holding most of [start, end), or None when no segment touches it."""
    held: dict[int, int] = {}
    for a, b, lab in segments:
        overlap = min(b, end_ms) - max(a, start_ms)
        if overlap > 0:
            held[lab] = held.get(lab, 0) + overlap
    return max(held, key=held.__getitem__) if held else None


def speaker_segments(encoder: SpeakerEncoder, audio: np.ndarray, spans: list[tuple[int, int]], *,
                     num_speakers: int | None = None, threshold: float = THRESHOLD) -> list[Segment]:
    wins = windows(spans)
    if not wins:
        return []
    X = encoder.embed_many(window_audio(audio, wins))
    return to_segments(wins, cluster(X, num_speakers, threshold))


class WindowDiarizer(Diarizer):
    """One mixed channel: who holds each utterance, from clustered window embeddings."""

    def __init__(self, encoder: SpeakerEncoder, *, num_speakers: int | None = None, threshold: float = THRESHOLD):
        if num_speakers is not None and num_speakers < 1:
            raise ValueError("num_speakers must be at least 1")
        self.encoder, self.num_speakers, self.threshold = encoder, num_speakers, threshold
        self.name = f"windows-{encoder.name}"

    def assign(self, utterances: list[Utterance], audio: Audio) -> list[Utterance]:
        if not utterances:
            return []
        spans = sorted((u.start_ms, u.end_ms) for u in utterances)
        segs = speaker_segments(self.encoder, audio.channel(0), _merge(spans), num_speakers=self.num_speakers,
                                threshold=self.threshold)
        out, previous = [], 1
        for u in utterances:
            lab = majority(u.start_ms, u.end_ms, segs) or previous  # too short to embed: same turn as before
            previous = lab
            out.append(u.model_copy(update={"speaker": speaker_label(lab)}))
        return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
