"""The receive loop every audio socket shares (server/sockets.py): frames are read ahead of a busy
decoder, in order and within a bound, so the connection's keepalive stays answered."""
import asyncio

import numpy as np
import pytest

from courtscribe.audio import decode
from courtscribe.clients import stream
from courtscribe.server.sockets import _Backlog, _Closed
from courtscribe.streaming.protocol import StreamError

from conftest import start_server


def test_the_backlog_keeps_order_and_stops_reading_at_its_limit():
    async def main():
        backlog = _Backlog(limit=10)
        await backlog.put({"bytes": b"a" * 6}, 6)
        await backlog.put({"bytes": b"b" * 6}, 6)  # over the limit now: the next frame waits
        third = asyncio.ensure_future(backlog.put({"bytes": b"c"}, 1))
        await asyncio.sleep(0)
        assert not third.done()
        await backlog.put(_Closed(gone=True))  # how reading ended never waits
        assert (await backlog.get())["bytes"][:1] == b"a"
        await asyncio.wait_for(third, 5)  # room again: the reader goes on
        got = [await backlog.get() for _ in range(3)]
        assert [g["bytes"][:1] if isinstance(g, dict) else g for g in got] == [b"b", _Closed(gone=True), b"c"]
    asyncio.run(main())


def test_an_idle_error_comes_after_what_was_read_before_it():
    async def main():
        backlog = _Backlog(limit=100)
        await backlog.put({"text": '{"type": "keepalive"}'}, 21)
        await backlog.put(StreamError("idle_timeout", "no message", fatal=True))
        assert "text" in await backlog.get()
        assert isinstance(await backlog.get(), StreamError)
    asyncio.run(main())


@pytest.mark.slow
def test_a_source_replayed_faster_than_it_decodes_keeps_its_connection(tmp_path, data_dir):
    """Keepalive pings every 0.5 s, 2 s to answer; a 50 s recording sent as fast as the socket
    takes it, so the decoder is behind it: the server still reads the client's pongs, so the
    connection is not closed (1011), and every line comes, then the end."""
    proc, url = start_server(tmp_path, COURTSCRIBE_WS_PING_INTERVAL_S="0.5", COURTSCRIBE_WS_PING_TIMEOUT_S="2")
    clip = decode(data_dir / "zh-smoke" / "market_25s.wav").channel(0)
    audio = np.concatenate([clip] * 2)

    async def chunks():
        for i in range(0, audio.size, 3200):
            yield audio[i:i + 3200]
    try:
        result = asyncio.run(stream(url.replace("http://", "ws://") + "/v1/stream", chunks(), speed=0))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert result.events[-1]["type"] == "end"
    assert not [e for e in result.events if e["type"] == "error"]
    assert result.finals[-1]["utterance"]["end_ms"] > 45_000  # the last of the recording is there too
    assert result.events[-1]["utterances"] == len(result.finals)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
