"""Speaker clustering for a single mixed channel: one embedding per utterance, then clustering.

The embedded encoder is Resemblyzer's GE2E model (weights inside its wheel). This is the simple,
offline baseline; live labelling, enrolment and refinement build on the same embeddings.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..audio import Audio
from ..records.model import Utterance
from .base import Diarizer, speaker_label

MIN_EMBED_MS = 700  # shorter stretches give unreliable embeddings: they borrow the nearest speaker


class ResemblyzerEncoder:
    def __init__(self, weights: Path, device: str = "cpu"):
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device=device, weights_fpath=Path(weights), verbose=False)
        self._lock = threading.Lock()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """L2-normalised d-vector of 16 kHz float32 audio."""
        with self._lock:
            return self.encoder.embed_utterance(audio.astype(np.float32), rate=1.3)


class EmbeddingDiarizer(Diarizer):
    """Agglomerative clustering of utterance embeddings: into ``num_speakers`` when given, else by a
    cosine-distance threshold."""

    name = "embedding"

    def __init__(self, encoder: ResemblyzerEncoder, *, num_speakers: int | None = None, threshold: float = 0.3):
        if num_speakers is not None and num_speakers < 1:
            raise ValueError("num_speakers must be at least 1")
        self.encoder, self.num_speakers, self.threshold = encoder, num_speakers, threshold

    def assign(self, utterances: list[Utterance], audio: Audio) -> list[Utterance]:
        if not utterances:
            return []
        sr = audio.sample_rate
        embeds: dict[int, np.ndarray] = {}
        for i, u in enumerate(utterances):
            if u.end_ms - u.start_ms >= MIN_EMBED_MS:
                x = audio.channel(u.channel)[u.start_ms * sr // 1000: u.end_ms * sr // 1000]
                embeds[i] = self.encoder.embed(x)
        labels = self._cluster(embeds, len(utterances))
        return [u.model_copy(update={"speaker": speaker_label(labels[i])}) for i, u in enumerate(utterances)]

    def _cluster(self, embeds: dict[int, np.ndarray], n: int) -> list[int]:
        from sklearn.cluster import AgglomerativeClustering

        idx = sorted(embeds)
        if not idx:  # nothing long enough to tell voices apart
            return [1] * n
        X = np.stack([embeds[i] for i in idx])
        k = min(self.num_speakers, len(idx)) if self.num_speakers else None
        if len(idx) == 1 or k == 1:
            raw = np.zeros(len(idx), int)
        else:
            model = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average",
                                            distance_threshold=None if k else self.threshold)
            raw = model.fit_predict(X)
        # Number speakers by first appearance; a too-short utterance keeps the previous speaker
        # (in a hearing, a short reply is most often part of the same turn).
        order = {c: j + 1 for j, c in enumerate(dict.fromkeys(raw.tolist()))}
        known = dict(zip(idx, raw.tolist()))
        labels: list[int] = []
        for i in range(n):
            labels.append(order[known[i]] if i in known else (labels[-1] if labels else order[raw[0]]))
        return labels
