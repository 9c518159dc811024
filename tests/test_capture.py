"""Live capture from FFmpeg input devices (lavfi graphs stand in for a microphone here)."""
import asyncio

import numpy as np
import pytest

from courtscribe.clients.capture import CaptureError, chunks_from_device


async def _collect(device, stop=None):
    return [c async for c in chunks_from_device(device, chunk_ms=200, stop=stop)]


def test_a_finite_source_arrives_whole_as_16k_chunks(data_dir):
    chunks = asyncio.run(_collect(f"lavfi:amovie={data_dir / 'zh-smoke' / 'vad_30s_48k.wav'}"))
    assert all(c.dtype == np.float32 and c.size == 3200 for c in chunks[:-1])
    assert abs(sum(c.size for c in chunks) / 16000 - 30.8267) < 0.002  # resampled from 48 kHz, nothing lost


def test_stop_ends_an_endless_source():
    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        return await asyncio.wait_for(_collect("lavfi:sine=f=440", stop), 10)

    chunks = asyncio.run(main())
    assert chunks and np.abs(chunks[0]).max() > 0.05


@pytest.mark.parametrize("device, message", [("nonsense", "expected FORMAT:NAME"),
                                             ("nosuchfmt:default", "has no 'nosuchfmt' input"),
                                             ("alsa:no-such-card", "cannot open audio device")])
def test_bad_devices_get_clear_errors(device, message):
    with pytest.raises(CaptureError, match=message):
        asyncio.run(_collect(device))
