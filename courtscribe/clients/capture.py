"""Live audio capture for the streaming client: a microphone or mixer input as 16 kHz chunks, mono
or each of a mixer's channels (a seat microphone each).

Capture goes through FFmpeg's input devices (PyAV, already a dependency for decoding), so no
PortAudio is needed: ``alsa:default`` or ``alsa:hw:1,0`` on a courtroom PC, ``pulse:default``
where PulseAudio runs (if the FFmpeg build has it), and ``lavfi:...`` filter graphs for tests.
"""
from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import AsyncIterator

import av
import numpy as np

from ..audio import SAMPLE_RATE as SR

DEFAULT_DEVICE = "alsa:default"


class CaptureError(RuntimeError):
    pass


def open_device(device: str, channels: int = 0):
    """``FORMAT:NAME`` → an opened FFmpeg input (``alsa:default``, ``lavfi:sine=f=440:d=2``);
    ``channels``: that many asked of a sound card (ALSA opens two unless told)."""
    fmt, sep, name = device.partition(":")
    if not sep or not name:
        raise CaptureError(f"audio device {device!r}: expected FORMAT:NAME, e.g. {DEFAULT_DEVICE}")
    if fmt not in av.formats_available:
        raise CaptureError(f"audio device {device!r}: this FFmpeg build has no {fmt!r} input "
                           f"(it has: {', '.join(sorted(f for f in ('alsa', 'pulse', 'oss', 'lavfi') if f in av.formats_available))})")
    try:
        asked = {"channels": str(channels)} if channels and fmt in ("alsa", "pulse", "oss") else {}
        return av.open(name, format=fmt, options=asked)
    except (av.error.FFmpegError, OSError) as err:
        raise CaptureError(f"cannot open audio device {device!r}: {err}") from err


async def chunks_from_device(device: str = DEFAULT_DEVICE, *, chunk_ms: int = 200,
                             stop: asyncio.Event | None = None, channels: int = 0) -> AsyncIterator[np.ndarray]:
    """Yield float32 chunks of ``chunk_ms`` as the device delivers them, until it ends or ``stop`` is set.
    ``channels``: its first that many channels apart, each chunk (channels, samples); 0: mixed to mono.

    FFmpeg reads block, so a thread reads and resamples into a bounded queue (if the network
    stalls, the thread waits and the device buffers; memory does not grow)."""
    container = open_device(device, channels)
    chunks: queue.Queue = queue.Queue(maxsize=50)
    halt = threading.Event()

    def put(item) -> None:
        while not halt.is_set():
            try:
                chunks.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def read() -> None:
        has = container.streams.audio[0].channels if container.streams.audio else 0
        if channels > has:
            put(CaptureError(f"audio device {device!r} has {has} channel(s), not {channels}"))
            container.close()
            return
        resampler = av.AudioResampler(format="fltp" if channels else "flt", layout=None if channels else "mono",
                                      rate=SR)
        step, pending = SR * chunk_ms // 1000, np.zeros((max(channels, 1), 0), np.float32)
        try:
            for frame in itertools.chain(container.decode(audio=0), [None]):  # None flushes the resampler
                for out in resampler.resample(frame):
                    got = out.to_ndarray()
                    pending = np.concatenate([pending, got[:channels] if channels else got.reshape(1, -1)], axis=1)
                while pending.shape[1] >= step:
                    put(pending[:, :step] if channels else pending[0, :step])
                    pending = pending[:, step:]
                if halt.is_set():
                    return
            if pending.shape[1]:
                put(pending if channels else pending[0])
            put(None)
        except Exception as err:  # noqa: BLE001 - handed to the consumer, which raises it
            put(CaptureError(f"audio device {device!r} failed: {err}"))
        finally:
            container.close()

    reader = threading.Thread(target=read, name="courtscribe-capture", daemon=True)
    reader.start()
    try:
        while not (stop and stop.is_set()):
            try:
                item = await asyncio.to_thread(chunks.get, True, 0.25)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        halt.set()
