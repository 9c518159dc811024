"""Voice activity detection: which stretches of a channel hold speech.

VAD gates the engine: Whisper hallucinates text on silence and noise, so nothing reaches it that
the VAD did not call speech. The FunASR FSMN-VAD runs in streaming mode for both live audio and
files (one code path); files are first cut into "active islands" by a cheap energy gate so that
hours of recess silence cost nothing.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import SAMPLE_RATE as SR

Span = tuple[int, int]  # (start_ms, end_ms)


@dataclass
class VadEvent:
    """A live VAD event in absolute ms: ``end_ms`` is None while the segment is still open."""

    start_ms: int | None
    end_ms: int | None


class VadStream(ABC):
    @abstractmethod
    def feed(self, audio: np.ndarray, *, final: bool = False) -> list[VadEvent]: ...


class Vad(ABC):
    name: str

    @abstractmethod
    def open_stream(self, chunk_ms: int = 200) -> VadStream: ...

    def segments(self, audio: np.ndarray, *, progress: Callable[[int], None] | None = None,
                 chunk_s: float = 10.0) -> list[Span]:
        """Speech spans of a whole channel; ``progress(n_samples)`` is called as audio is consumed."""
        spans: list[Span] = []
        islands = active_islands(audio)
        for start, end in islands:
            stream, open_start = self.open_stream(chunk_ms=1000), None
            offset_ms = start * 1000 // SR
            step = int(chunk_s * SR)
            for pos in range(start, end, step):
                chunk = audio[pos:min(end, pos + step)]
                for ev in stream.feed(chunk, final=pos + step >= end):
                    if ev.start_ms is not None:
                        open_start = ev.start_ms
                    if ev.end_ms is not None and open_start is not None:
                        spans.append((offset_ms + open_start, offset_ms + ev.end_ms))
                        open_start = None
                if progress:
                    progress(chunk.size)
            if open_start is not None:
                spans.append((offset_ms + open_start, end * 1000 // SR))
        if progress:
            progress(audio.size - sum(e - s for s, e in islands))  # the silence skipped
        return spans


def active_islands(audio: np.ndarray, *, frame_ms: int = 100, floor_dbfs: float = -70.0,
                   bridge_ms: int = 2000, pad_ms: int = 500) -> list[tuple[int, int]]:
    """Sample ranges that are not near-digital silence (RMS under ``floor_dbfs``), merged across short gaps."""
    frame = SR * frame_ms // 1000
    n = audio.size // frame
    if audio.size == 0:
        return []
    frames = audio[: n * frame].reshape(n, frame) if n else np.zeros((0, frame), np.float32)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) if n else np.zeros(0)
    loud = list(rms > 10 ** (floor_dbfs / 20))
    if audio.size > n * frame:  # trailing partial frame
        tail = audio[n * frame:]
        loud.append(bool(np.sqrt(np.mean(tail.astype(np.float64) ** 2)) > 10 ** (floor_dbfs / 20)))
    islands: list[list[int]] = []
    bridge, pad = bridge_ms // frame_ms, pad_ms // frame_ms
    for i, on in enumerate(loud):
        if not on:
            continue
        if islands and i - islands[-1][1] <= bridge:
            islands[-1][1] = i + 1
        else:
            islands.append([i, i + 1])
    return [(max(0, a - pad) * frame, min(audio.size, (b + pad) * frame)) for a, b in islands]


class FsmnVad(Vad):
    """FunASR FSMN-VAD loaded through ``funasr.AutoModel`` from a model directory (the embedded wheel's
    asset dir, or a production ModelScope download)."""

    name = "fsmn-vad"

    def __init__(self, model_dir: Path, *, max_end_silence_ms: int = 800, max_segment_ms: int = 60_000,
                 threshold: float | None = None, device: str = "cpu", threads: int = 1):
        from .funasr_loader import auto_model

        # ``ncpu``: FunASR otherwise sets torch to 4 threads, which on 2 cores fight CTranslate2's
        # decode threads; a live partial then finishes after its utterance closed and is lost.
        self.model = auto_model(model_dir, device=device, max_single_segment_time=max_segment_ms, ncpu=threads)
        self.max_end_silence_ms = max_end_silence_ms
        # speech where P(speech) ≥ P(noise) + threshold; None keeps the model's own (0.6)
        self.options = {} if threshold is None else {"speech_noise_thres": threshold}
        self._lock = threading.Lock()  # torch modules are shared; per-stream state lives in each cache

    def open_stream(self, chunk_ms: int = 200) -> VadStream:
        """``chunk_ms`` is the VAD's internal step: 200 ms for live audio; files use 1000 ms, which
        finds the same segments (checked on zh-smoke) at under half the cost."""
        return _FsmnStream(self, chunk_ms)


class _FsmnStream(VadStream):
    def __init__(self, vad: FsmnVad, chunk_ms: int):
        self.vad, self.cache, self.chunk_ms = vad, {}, chunk_ms

    def feed(self, audio: np.ndarray, *, final: bool = False) -> list[VadEvent]:
        if audio.size == 0 and not final:
            return []
        with self.vad._lock:
            res = self.vad.model.generate(input=audio.astype(np.float32, copy=False), cache=self.cache,
                                          is_final=final, chunk_size=self.chunk_ms,
                                          max_end_silence_time=self.vad.max_end_silence_ms,
                                          **self.vad.options)
        events = []
        for beg, end in res[0]["value"] if res else []:
            events.append(VadEvent(None if beg < 0 else int(beg), None if end < 0 else int(end)))
        return events


class SileroVad(Vad):
    """Silero VAD (ONNX, bundled with faster-whisper): a torch-free alternative for files."""

    name = "silero"
    WINDOW = 512  # samples per speech probability
    RISE = 0.1  # a probability this high, rising to the threshold without a break, is the onset
    LONG_SILENCE_MS = 4000  # a span after this much without speech has its onset read again (_onsets)
    ONSET_LOOKBACK_MS = 1000  # from a fresh state, over this much before its trigger

    def __init__(self, *, min_silence_ms: int = 800, max_segment_ms: int = 60_000, threshold: float = 0.5):
        from faster_whisper.vad import VadOptions

        self.options = VadOptions(min_silence_duration_ms=min_silence_ms, max_speech_duration_s=max_segment_ms / 1000,
                                  threshold=threshold)
        self._model = None  # silero's ONNX session, for onsets (get_speech_timestamps opens its own)

    def open_stream(self, chunk_ms: int = 200) -> VadStream:
        raise NotImplementedError("silero is offered for files only; live streams use fsmn-vad")

    def segments(self, audio: np.ndarray, *, progress: Callable[[int], None] | None = None,
                 chunk_s: float = 10.0) -> list[Span]:
        from faster_whisper.vad import get_speech_timestamps

        spans = []
        for start, end in active_islands(audio):
            found = get_speech_timestamps(audio[start:end], self.options)
            for (s, e) in self._onsets(audio[start:end], [(ts["start"], ts["end"]) for ts in found]):
                spans.append(((start + s) * 1000 // SR, (start + e) * 1000 // SR))
        if progress:
            progress(audio.size)
        return spans

    def _onsets(self, audio: np.ndarray, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``spans`` (samples) with each start moved back to where speech began. After seconds without
        speech silero's state is deep in silence and its probability rises late and slowly at an
        onset (nothing for 0.5 s of aishell's first words after 20 s of room tone; 0.1 → 0.5 over
        0.3 s for justice.wav's; from about 8 s on): the trigger, even padded, comes after the first
        syllable. So after ``LONG_SILENCE_MS`` the second before a trigger is read again from a fresh
        state, and the start goes back over the unbroken rise above ``RISE`` that leads to the
        threshold there, padded. Not after shorter pauses: there the start is where it was, and a
        start moved back into the previous speaker's tail cost CER (bench/acoustics.py)."""
        out: list[tuple[int, int]] = []
        pad = SR * self.options.speech_pad_ms // 1000
        for s, e in spans:
            floor = out[-1][1] if out else 0
            if s - floor < SR * self.LONG_SILENCE_MS // 1000:
                out.append((s, e))
                continue
            trigger = min(s + pad, e)  # get_speech_timestamps padded its start by ``pad``
            first = max(floor, trigger - SR * self.ONSET_LOOKBACK_MS // 1000)
            probs = self._probs(audio[first:trigger + self.WINDOW])
            above = np.flatnonzero(probs >= self.options.threshold)
            onset = int(above[0]) if above.size else probs.size
            while onset > 0 and probs[onset - 1] >= self.RISE:
                onset -= 1
            out.append((max(floor, min(s, first + onset * self.WINDOW - pad)), e))
        return out

    def _probs(self, audio: np.ndarray) -> np.ndarray:
        """Silero's speech probability per ``WINDOW`` samples of ``audio``, from a fresh state."""
        from faster_whisper.vad import get_vad_model

        if self._model is None:
            self._model = get_vad_model()
        return np.asarray(self._model(np.pad(audio, (0, -audio.size % self.WINDOW)))).reshape(-1)


def decode_windows(spans: list[Span], *, max_ms: int, max_gap_ms: int = 2000, pad_ms: int = 200,
                   total_ms: int | None = None) -> list[Span]:
    """Group speech spans into windows for the accurate pass.

    Whisper decodes a 30 s window at a time and does best with context: spans closer than
    ``max_gap_ms`` are merged up to ``max_ms`` (sentence boundaries then come from the engine),
    each window gets ``pad_ms`` of context on both sides, and a span longer than ``max_ms`` is cut
    into near-equal pieces.
    """
    max_ms -= 2 * pad_ms  # a padded window must still fit: Whisper drops what lies past 30 s
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s - merged[-1][1] <= max_gap_ms and e - merged[-1][0] <= max_ms:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    out: list[Span] = []
    for s, e in merged:
        pieces = max(1, -(-(e - s) // max_ms))
        step = (e - s) / pieces
        out += [(int(s + i * step), int(s + (i + 1) * step)) for i in range(pieces)]
    padded = []
    for i, (s, e) in enumerate(out):
        lo = out[i - 1][1] if i else 0
        hi = out[i + 1][0] if i + 1 < len(out) else (total_ms if total_ms is not None else e + pad_ms)
        padded.append((max(lo, s - pad_ms), min(hi, e + pad_ms)))
    return padded
