"""Room front ends: what a courtroom's audio may pass through before the VAD and the engine.

Courtrooms are reverberant halls with desk microphones at a distance, air conditioning and a public
gallery. Enhancement that helps a listener can hurt recognition, so none of these is on by default:
bench/acoustics.py measures each against none on simulated courtrooms, and court IT chooses one per
courtroom (``Settings.frontend``, ``Settings.frontend_rooms``), for the engine and for the VAD apart.

Every front end works two ways with the same result in kind: :meth:`FrontEnd.process` over a whole
recording (files), and :meth:`FrontEnd.open_stream` chunk by chunk for live audio, where output
sample k is input sample k enhanced (it comes out a few ms later, never shifted), so times in the
record stay those of the recording.

- ``wpe``: weighted prediction error dereverberation (nara-wpe), batch over the file, its recursive
  online form live;
- ``rnnoise``: RNNoise's recurrent noise suppressor (pyrnnoise's library), 10 ms frames either way.

Spectral gating (noisereduce) was measured too and raised CER in every room (bench/acoustics.py
keeps it as a candidate); DeepFilterNet's wheels fetch their weights at run time, so it is not here.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import soxr

from .audio import SAMPLE_RATE
from .logs import get_logger

NAMES = ("none", "wpe", "rnnoise")
Progress = Callable[[int], None]
log = get_logger(__name__)


class FrontEndStream(ABC):
    """Chunks in; out, the enhanced samples ready so far, aligned with the input (sample k out is
    sample k in, enhanced): the output runs behind by the front end's latency, never shifted."""

    @abstractmethod
    def feed(self, chunk: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray:
        """The end of the input: the rest of the output, so that as many samples came out as went in."""
        return np.zeros(0, np.float32)


class FrontEnd(ABC):
    name: str

    @abstractmethod
    def process(self, audio: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """The whole recording (16 kHz float32 mono) enhanced, same length; ``progress`` hears how
        many samples are done as it goes."""

    def open_stream(self) -> FrontEndStream:
        """A live source's own stream, guarded: a front end that fails never costs the source its audio."""
        return _Guarded(self._stream(), self.name)

    @abstractmethod
    def _stream(self) -> FrontEndStream: ...


class _Guarded(FrontEndStream):
    """A front end that raises or writes non-finite samples is dropped for the rest of the stream,
    with an error in the log; what it had taken and not yet given back goes on as it came."""

    def __init__(self, inner: FrontEndStream, name: str) -> None:
        self._inner: FrontEndStream | None = inner
        self._name = name
        self._owed = np.zeros(0, np.float32)  # input not yet matched by output

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        return self._pass(chunk, lambda inner: inner.feed(chunk))

    def flush(self) -> np.ndarray:
        return self._pass(np.zeros(0, np.float32), lambda inner: inner.flush())

    def _pass(self, chunk: np.ndarray, step: Callable[[FrontEndStream], np.ndarray]) -> np.ndarray:
        self._owed = np.concatenate([self._owed, chunk.astype(np.float32, copy=False)])
        if self._inner is not None:
            try:
                out = step(self._inner)
                if not np.isfinite(out).all():
                    raise FloatingPointError("non-finite samples")
                self._owed = self._owed[out.size:]
                return out
            except Exception as err:  # noqa: BLE001 - the audio goes on, unenhanced
                log.error("room front end failed; the stream goes on without it", front_end=self._name,
                          error=repr(err))
                self._inner = None
        out = self._owed
        self._owed = np.zeros(0, np.float32)
        return out


class _Passthrough(FrontEndStream):
    def feed(self, chunk: np.ndarray) -> np.ndarray:
        return chunk


class NoFrontEnd(FrontEnd):
    name = "none"

    def process(self, audio: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        return audio

    def open_stream(self) -> FrontEndStream:
        return _Passthrough()  # nothing to guard: no copy of every live chunk

    def _stream(self) -> FrontEndStream:
        return _Passthrough()


class _Paced(FrontEndStream):
    """A block-wise processor: its first ``built_in`` output samples are its own start-up (silence
    before the first block), dropped so the output lines up with the input."""

    built_in = 0
    flush_with = 0  # samples of silence that push its last real samples out

    def __init__(self) -> None:
        self._in = 0
        self._out = 0
        self._drop = self.built_in

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        self._in += chunk.size
        return self._aligned(self._blocks(chunk.astype(np.float32, copy=False)))

    def flush(self) -> np.ndarray:
        out = self._aligned(self._blocks(np.zeros(self.flush_with, np.float32)))
        owed = self._in - self._out  # what even the flush did not push out: silence
        self._out = self._in
        return np.concatenate([out, np.zeros(owed, np.float32)])

    def _aligned(self, out: np.ndarray) -> np.ndarray:
        drop = min(self._drop, out.size)
        self._drop -= drop
        out = out[drop:][:max(0, self._in - self._out)]
        self._out += out.size
        return out

    @abstractmethod
    def _blocks(self, chunk: np.ndarray) -> np.ndarray:
        """Whatever whole blocks the chunk completes, processed."""


# -- WPE --------------------------------------------------------------------------------------
STFT_SIZE = 512
STFT_SHIFT = 128
WPE_TAPS = 10
WPE_DELAY = 3
WPE_ALPHA = 0.9999
BLOCK_S = 30.0  # files: WPE over blocks this long, each with OVERLAP_S of context either side
OVERLAP_S = 2.0
DITHER = 1e-5  # RLS WPE diverges on digital silence (nothing to estimate from): a floor of noise at -100 dBFS


class Wpe(FrontEnd):
    name = "wpe"

    def process(self, audio: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Batch WPE over ``BLOCK_S`` blocks (its statistics take ~13 MB per second of audio), each
        with ``OVERLAP_S`` of context either side, kept from its middle."""
        out = np.zeros(audio.size, np.float32)
        block = int(BLOCK_S * SAMPLE_RATE)
        context = int(OVERLAP_S * SAMPLE_RATE)
        for start in range(0, audio.size, block):
            lo = max(0, start - context)
            done = _wpe_block(audio[lo:start + block + context])
            out[start:start + block] = done[start - lo:start - lo + block]
            if progress:
                progress(min(block, audio.size - start))
        return out

    def _stream(self) -> FrontEndStream:
        return _WpeStream()


def _wpe_block(x: np.ndarray) -> np.ndarray:
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe

    if x.size < STFT_SIZE:
        return x
    spec = stft(x.astype(np.float64), size=STFT_SIZE, shift=STFT_SHIFT)  # (T, F)
    out = wpe(spec.T[:, None, :], taps=WPE_TAPS, delay=WPE_DELAY, iterations=3)[:, 0, :].T
    return _fit(istft(out, size=STFT_SIZE, shift=STFT_SHIFT), x.size)


class _WpeStream(_Paced):
    """Recursive least squares WPE, one STFT frame at a time (overlap-add back to samples)."""

    built_in = STFT_SIZE - STFT_SHIFT
    flush_with = STFT_SIZE

    def __init__(self) -> None:
        from nara_wpe.wpe import OnlineWPE

        super().__init__()
        bins = STFT_SIZE // 2 + 1
        self._wpe = OnlineWPE(WPE_TAPS, WPE_DELAY, WPE_ALPHA, channel=1, frequency_bins=bins)
        self._wpe.power = np.ones(bins)
        self._window = np.sqrt(np.hanning(STFT_SIZE + 1)[:-1])  # sqrt-Hann, analysis and synthesis
        self._frames = np.zeros((WPE_TAPS + WPE_DELAY + 1, bins, 1), np.complex128)
        self._pending = np.zeros(STFT_SIZE - STFT_SHIFT, np.float32)
        self._tail = np.zeros(STFT_SIZE - STFT_SHIFT)
        self._dither = np.random.default_rng(0)

    def _blocks(self, chunk: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._pending, chunk + self._dither.standard_normal(chunk.size) * DITHER])
        out = []
        pos = 0
        while pos + STFT_SIZE <= x.size:
            frame = np.fft.rfft(x[pos:pos + STFT_SIZE] * self._window)
            self._frames = np.roll(self._frames, -1, axis=0)
            self._frames[-1, :, 0] = frame
            clean = self._wpe.step_frame(self._frames)[:, 0]
            y = np.fft.irfft(clean, STFT_SIZE) * self._window / 2.0  # sqrt-Hann², hop 1/4: sums to 2
            y[:self._tail.size] += self._tail
            out.append(y[:STFT_SHIFT])
            self._tail = y[STFT_SHIFT:]
            pos += STFT_SHIFT
        self._pending = x[pos:]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


# -- RNNoise ------------------------------------------------------------------------------------
RNNOISE_RATE = 48_000


class RnNoise(FrontEnd):
    name = "rnnoise"

    def process(self, audio: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        stream = _RnNoiseStream()
        step = int(BLOCK_S * SAMPLE_RATE)  # a chunk at a time: the 48 kHz copy of a whole hearing is large
        out = []
        for k in range(0, audio.size, step):
            out.append(stream.feed(audio[k:k + step]))
            if progress:
                progress(min(step, audio.size - k))
        return np.concatenate(out + [stream.flush()])

    def _stream(self) -> FrontEndStream:
        return _RnNoiseStream()


class _RnNoiseStream(_Paced):
    """16 kHz up to RNNoise's 48 kHz, 480-sample frames (its int16 scale), and back."""

    built_in = 320  # RNNoise's own 20 ms
    flush_with = 1920  # and the two resamplers hold back up to ~1100 samples

    def __init__(self) -> None:
        from pyrnnoise import rnnoise

        super().__init__()
        self._lib = rnnoise
        self._state = rnnoise.create()
        self._up = soxr.ResampleStream(SAMPLE_RATE, RNNOISE_RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(RNNOISE_RATE, SAMPLE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, np.float32)

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            self._lib.destroy(self._state)

    def _blocks(self, chunk: np.ndarray) -> np.ndarray:
        import ctypes

        x = np.concatenate([self._pending, self._up.resample_chunk(chunk) * 32767.0]).astype(np.float32)
        size = self._lib.FRAME_SIZE
        whole = x.size // size * size
        frames = x[:whole].reshape(-1, size).copy()
        for frame in frames:
            ptr = frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            self._lib.lib.rnnoise_process_frame(self._state, ptr, ptr)
        self._pending = x[whole:]
        return self._down.resample_chunk(frames.reshape(-1) / 32767.0).astype(np.float32)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x[:n] if x.size >= n else np.concatenate([x, np.zeros(n - x.size, np.float32)])


@lru_cache(maxsize=None)
def front_end(name: str) -> FrontEnd:
    """The front end of that name (one of ``NAMES``)."""
    kinds: dict[str, type[FrontEnd]] = {"none": NoFrontEnd, "wpe": Wpe, "rnnoise": RnNoise}
    if name not in kinds:
        raise ValueError(f"unknown front end {name!r}: choose one of {', '.join(NAMES)}")
    return kinds[name]()
