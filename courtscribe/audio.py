"""Reading audio files and PCM bytes into 16 kHz float32 arrays, with clear errors for bad input.

Every engine and VAD in courtscribe consumes 16 kHz mono float32 in [-1, 1]; this module is the
one place where other rates, channel layouts and containers are turned into that.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """The input is not usable audio. The message says why, in words a clerk or IT person can act on."""


class AudioTooLong(AudioError):
    """The recording decodes to more than the caller allows."""


@dataclass(frozen=True)
class Audio:
    """Decoded audio: ``samples`` is (channels, frames) float32 at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_ms(self) -> int:
        return int(round(1000 * self.frames / self.sample_rate))

    def channel(self, index: int) -> np.ndarray:
        return self.samples[index]


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling (soxr) of a 1-D or (channels, frames) array."""
    if rate_in <= 0:
        raise AudioError(f"invalid sample rate {rate_in} Hz")
    if rate_in == rate_out or x.shape[-1] == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        return soxr.resample(x.astype(np.float32), rate_in, rate_out).astype(np.float32)
    # soxr wants (frames, channels)
    return np.ascontiguousarray(soxr.resample(x.T.astype(np.float32), rate_in, rate_out).T, dtype=np.float32)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit PCM bytes to float32 in [-1, 1]."""
    if len(data) % 2:
        raise AudioError(f"PCM16 data has an odd number of bytes ({len(data)}): frames must hold whole samples")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


# Decoded samples (all channels, at the file's own rate) one allowed second may take: two channels at
# 16 kHz. A small file of 8 channels at 384 kHz would otherwise unpack into gigabytes before any
# duration check; a longer high-rate multichannel recording is to be split or streamed.
SAMPLES_PER_SECOND = 2 * SAMPLE_RATE


def _budget(max_seconds: float | None) -> float:
    return float("inf") if max_seconds is None else max_seconds * SAMPLES_PER_SECOND


def _too_long(max_seconds: float) -> AudioTooLong:
    return AudioTooLong(f"the recording is longer than {_hms(max_seconds)} (or holds as many samples as two "
                        "16 kHz channels of that), the most one upload may decode to (COURTSCRIBE_MAX_AUDIO_S): "
                        "split it, or stream it live")


def _read_soundfile(src, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    with sf.SoundFile(src) as f:
        if max_seconds is not None and f.frames > 0 and f.frames * f.channels > _budget(max_seconds):
            raise _too_long(max_seconds)  # refused from the header, before anything is allocated
        limit = -1 if max_seconds is None else int(min(max_seconds * f.samplerate, _budget(max_seconds) / f.channels)) + 1
        data = f.read(frames=limit, dtype="float32", always_2d=True)
        if max_seconds is not None and len(data) >= limit:
            raise _too_long(max_seconds)
        return data.T, int(f.samplerate)


def _hms(seconds: float) -> str:
    return f"{int(seconds)} s ({int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min)"


def _read_pyav(src, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Compressed containers libsndfile cannot read (m4a/aac, wma, video files): decode with PyAV's FFmpeg."""
    import av

    with av.open(src, metadata_errors="ignore") as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError("the file has no audio stream")
        stream = streams[0]
        rate = int(stream.codec_context.sample_rate or stream.rate or 0)
        chunks, frames, samples = [], 0, 0
        for frame in container.decode(stream):
            frames += frame.samples
            samples += frame.samples * len(frame.layout.channels)
            if max_seconds is not None and (frames > max_seconds * (rate or frame.sample_rate)
                                            or samples > _budget(max_seconds)):
                raise _too_long(max_seconds)
            arr = frame.to_ndarray()
            if arr.dtype.kind in "iu":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
            if frame.format.is_planar:
                chunks.append(arr.astype(np.float32))
            else:  # interleaved: (1, frames*channels)
                chans = len(frame.layout.channels)
                chunks.append(arr.reshape(-1, chans).T.astype(np.float32))
    if not chunks:
        return np.zeros((1, 0), np.float32), rate or SAMPLE_RATE
    return np.concatenate(chunks, axis=1), rate


def decode(src: str | Path | bytes, *, mono: bool = True, sample_rate: int = SAMPLE_RATE,
           max_seconds: float | None = None) -> Audio:
    """Decode a file path or in-memory file into :class:`Audio` at ``sample_rate``.

    ``mono=True`` averages channels (one mixed channel); ``mono=False`` keeps each channel, as a
    courtroom mixer delivers one microphone group per channel. ``max_seconds``: decoding stops with
    AudioTooLong past it (a small compressed upload must not unpack into gigabytes).
    """
    name = "uploaded data" if isinstance(src, bytes) else str(src)
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.exists():
            raise AudioError(f"{path}: no such file")
        if path.is_dir():
            raise AudioError(f"{path}: is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: the file is empty (0 bytes)")
        opener = lambda: str(path)  # noqa: E731
    else:
        if not src:
            raise AudioError("the uploaded data is empty (0 bytes)")
        opener = lambda: io.BytesIO(src)  # noqa: E731
    try:
        data, rate = _read_soundfile(opener(), max_seconds)
    except (sf.LibsndfileError, RuntimeError, TypeError) as first:
        try:
            data, rate = _read_pyav(opener(), max_seconds)
        except AudioTooLong:
            raise
        except AudioError as err:
            raise AudioError(f"{name}: {err}") from None
        except Exception:  # noqa: BLE001 - any decoder failure means "not audio we can read"
            why = getattr(first, "error_string", None) or first  # not libsndfile's "<_io.BytesIO at 0x…>"
            raise AudioError(f"{name}: not a readable audio file ({why}); "
                             "supported: WAV, FLAC, OGG/Opus, MP3, M4A/AAC and other FFmpeg formats") from None
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: the audio contains NaN or infinite samples")
    source_channels = int(data.shape[0])
    if mono and source_channels > 1:
        data = data.mean(axis=0, keepdims=True)
    data = resample(data, rate, sample_rate)
    return Audio(samples=data, sample_rate=sample_rate, source_rate=rate, source_channels=source_channels)
