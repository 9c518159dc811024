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


def test_a_mixers_channels_arrive_apart_and_more_than_it_has_is_a_clear_error():
    """A two-channel device (a mixer, a seat's microphone on each) read with ``channels=2``: each
    chunk holds both channels apart at 16 kHz, each its own signal."""
    device = "lavfi:aevalsrc=0.1*sin(2*PI*440*t)|0.4*sin(2*PI*660*t):s=48000:d=1"

    async def collect(channels):
        return [c async for c in chunks_from_device(device, chunk_ms=200, channels=channels)]

    chunks = asyncio.run(collect(2))
    assert all(c.dtype == np.float32 and c.shape == (2, 3200) for c in chunks[:-1])
    both = np.concatenate(chunks, axis=1)
    assert abs(both.shape[1] - 16000) <= 32  # resampled from 48 kHz, nothing lost
    level = np.sqrt(np.mean(both ** 2, axis=1))
    assert level[1] > 3 * level[0]  # channel 1 is the louder seat, not a mix of both
    with pytest.raises(CaptureError, match="has 2 channel"):
        asyncio.run(collect(3))


def test_one_multichannel_source_is_read_once_as_a_mono_source_per_channel():
    """``fan_out``: each channel's stream gets its row of every chunk, in order; a source that fails
    fails every channel's stream."""
    from courtscribe.clients.stream_client import fan_out

    async def mixer(fail=False):
        for i in range(3):
            yield np.stack([np.full(4, i, np.float32), np.full(4, 10 + i, np.float32)])
        if fail:
            raise CaptureError("the mixer was unplugged")

    async def read(source):
        return [float(x[0]) async for x in source]

    async def main(fail=False):
        return await asyncio.gather(*(read(s) for s in fan_out(mixer(fail), 2)), return_exceptions=True)

    assert asyncio.run(main()) == [[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]
    assert all(isinstance(r, CaptureError) for r in asyncio.run(main(fail=True)))
