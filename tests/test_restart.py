"""A server restart mid-hearing (SIGTERM: an upgrade, a redeploy): each audio source gets the last
finals of what it sent, then 1012 (come back); a recorder that comes back resends what it kept, from
where the channel's archive ends, and the hearing's record has the whole recording once."""
import asyncio
import json
import signal
import threading
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import websockets

from courtscribe.audio import SAMPLE_RATE as SR
from courtscribe.audio import decode, float_to_pcm16
from courtscribe.clients import stream_file
from courtscribe.clients.stream_client import stream
from courtscribe.clients.tape import Tape
from courtscribe.records import archive
from courtscribe.server.sockets import receive
from courtscribe.streaming.live import RESUME_MS, LiveHearings
from courtscribe.streaming.protocol import StreamError
from courtscribe.streaming.source import ANY_CHANNEL, SessionConfig

from conftest import ZH, free_port, start_server

pytestmark = pytest.mark.slow


async def _funasr_2pass(url: str, pcm: bytes, replies: list[dict]) -> int | None:
    """FunASR's 2pass client, sending in real time until the server closes; the close code."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"mode": "2pass", "wav_name": "court", "is_speaking": True,
                                  "chunk_size": [5, 10, 5]}))

        async def read() -> None:
            async for raw in ws:
                replies.append(json.loads(raw))
        reading = asyncio.create_task(read())
        try:
            for at in range(0, len(pcm), 3200):  # 100 ms frames
                await ws.send(pcm[at:at + 3200])
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"is_speaking": False}))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(asyncio.gather(reading, return_exceptions=True), 60)
        return ws.close_code


def test_sigterm_mid_hearing_each_source_gets_its_finals_and_a_recorder_comes_back(tmp_path):
    port = free_port()
    procs = [start_server(tmp_path, port)[0]]
    base = f"http://127.0.0.1:{port}"
    events: list[dict] = []
    restarted = threading.Event()

    def restart() -> None:
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(timeout=60)
        before.append(archive.recorded_ms(tmp_path / "data" / "archive", "h-restart", 0))
        procs.append(start_server(tmp_path, port)[0])
        restarted.set()

    before: list[int] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if event["type"] == "final" and len([e for e in events if e["type"] == "final"]) == 1:
            threading.Thread(target=restart).start()

    clip = ZH / "justice.wav"
    replies: list[dict] = []

    async def hearing():
        return await asyncio.gather(
            stream_file(f"ws://127.0.0.1:{port}/v1/stream", clip, hearing_id="h-restart", role="审判长",
                        speed=1.5, on_event=on_event, reconnect_s=180),
            _funasr_2pass(f"ws://127.0.0.1:{port}/?hearing=h-funasr",
                          float_to_pcm16(decode(ZH / "welcome.wav").channel(0)), replies))
    try:
        result, funasr_code = asyncio.run(asyncio.wait_for(hearing(), 300))
        assert restarted.wait(60)
        # the stopping server sent what it had finished, said why, and closed with "service restart"
        said_then = [e for e in result.events if e["type"] == "end"]
        assert said_then[0].get("reason") == "server_restart" and "reason" not in said_then[-1], said_then
        assert funasr_code == 1012
        # the recorder came back where the archive of its channel ended, and sent the rest
        assert [r["offset_ms"] for r in result.resumed] == before, (result.resumed, before)
        record = httpx.get(f"{base}/v1/hearings/h-restart").json()["utterances"]
        spans = sorted((u["start_ms"], u["end_ms"]) for u in record)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # nothing twice
        assert [u["text"] for u in record] == [f["utterance"]["text"] for f in result.finals]
        duration_ms = decode(clip).channel(0).size * 1000 // SR
        assert archive.recorded_ms(tmp_path / "data" / "archive", "h-restart", 0) == duration_ms
        assert httpx.get(f"{base}/v1/hearings/h-restart/verify").json()["ok"] is True
        # the FunASR client saw every line the record holds of its audio, before the close
        stored = [u["text"] for u in httpx.get(f"{base}/v1/hearings/h-funasr").json()["utterances"]]
        finals = "".join(r.get("text", "") for r in replies if r.get("mode") == "2pass-offline")
        assert stored and all(text in finals for text in stored), (stored, replies)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)


def _tape(seconds: list[float]) -> Tape:
    tape = Tape(keep_s=2.0)
    for s in seconds:
        tape.waiting.append(np.full(int(s * SR), s, np.float32))
    return tape


def test_a_tape_resends_what_it_kept_from_where_the_server_has_it():
    tape = _tape([1.0, 1.0, 1.0, 0.5])
    tape.base_ms = 10_000  # the hearing time of its first sample, from the first ready
    taken = [asyncio.run(tape.take()) for _ in range(3)]
    assert [t.size for t in taken] == [SR] * 3 and tape.sent_ms() == 3000
    assert tape.rewind() == 11_000  # it kept the last two seconds: they start at 11 s of hearing time
    tape.resumed_at(11_000, 12_250)  # the server's archive has the channel up to 12.25 s
    first = asyncio.run(tape.take())
    assert first.size == SR * 3 // 4 and tape.sent_ms() == 3000  # the rest of the third second
    assert tape.base_ms == 10_000  # hearing time runs on as before


def test_a_tape_resumed_before_what_it_asked_shifts_its_hearing_time():
    tape = _tape([1.0, 1.0])
    asyncio.run(tape.take())
    asked = tape.rewind()
    tape.resumed_at(asked, asked - 400)  # the server could only take it up earlier (now < asked)
    assert asyncio.run(tape.take()).size == SR  # nothing skipped
    assert tape.base_ms == -400


def test_a_microphone_the_server_never_takes_back_hands_over_what_the_server_may_lack():
    """The server crashes and stays down (or the clerk presses Ctrl-C while it is away): the audio
    from the last final's end on (kept, and recorded while away) is handed to ``on_unsent`` with
    its hearing time, not dropped with the client (the CLI saves it as a WAV file)."""
    import socket

    from websockets.sync.server import serve

    def handler(ws):
        ws.recv()
        if getattr(handler, "done", False):  # down for good: every try fails
            ws.socket.shutdown(socket.SHUT_RDWR)
            return
        handler.done = True
        ws.send(json.dumps({"type": "ready", "session_id": "s", "hearing_id": "h", "channel": 0, "offset_ms": 60_000}))
        ws.send(json.dumps({"type": "final", "utterance": {"start_ms": 60_100, "end_ms": 61_000, "text": "开庭"}}))
        ws.socket.shutdown(socket.SHUT_RDWR)  # a crash: no close frame

    source = np.arange(3 * SR, dtype=np.float32) / SR  # each sample says when it was recorded

    async def mic():
        for at in range(0, source.size, SR // 5):
            yield source[at:at + SR // 5]

    handed = []
    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v1/stream"
        with pytest.raises((websockets.ConnectionClosed, OSError)):
            asyncio.run(stream(url, mic(), speed=0, reconnect_s=1, on_unsent=lambda *got: handed.append(got)))
        server.shutdown()
    [(hearing_id, at_ms, audio)] = handed
    # from the final's end (from the stream's start if the crash beat the final to the client):
    # nothing missing either way
    assert hearing_id == "h" and at_ms in (60_000, 61_000)
    assert np.array_equal(audio, source[(at_ms - 60_000) * SR // 1000:])


def test_a_seat_whose_stream_ends_records_on_while_the_other_seats_stream():
    """A mixer's seat: the server crashes for that channel and does not come back in time, while
    the microphone records on (the other seats still stream). What it records after the failure is
    kept with what the server may not have, one continuous piece, not dropped."""
    import socket

    from websockets.sync.server import serve

    def handler(ws):
        ws.recv()
        if getattr(handler, "done", False):
            ws.socket.shutdown(socket.SHUT_RDWR)
            return
        handler.done = True
        ws.send(json.dumps({"type": "ready", "session_id": "s", "hearing_id": "h", "channel": 2,
                            "offset_ms": 60_000}))
        ws.socket.shutdown(socket.SHUT_RDWR)

    source = np.arange(4 * SR, dtype=np.float32) / SR  # each sample says when it was recorded
    handed_over = threading.Event()

    async def mic():
        for at in range(0, source.size, SR // 5):
            if at == 2 * SR:  # the rest is recorded after the stream gave up on the server
                while not handed_over.is_set():
                    await asyncio.sleep(0.01)
            yield source[at:at + SR // 5]

    class Kept:
        def __init__(self, audio):
            self.parts = [audio]
            self.closed = False

        def write(self, audio):
            assert not self.closed
            self.parts.append(audio)

        def close(self):
            self.closed = True

    kept = []

    def on_unsent(hearing_id, at_ms, audio):
        kept.append((hearing_id, at_ms, Kept(audio)))
        handed_over.set()
        return kept[-1][2]

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v1/stream"
        with pytest.raises((websockets.ConnectionClosed, OSError)):
            asyncio.run(stream(url, mic(), speed=0, reconnect_s=1, drain=True, on_unsent=on_unsent))
        server.shutdown()
    [(hearing_id, at_ms, file)] = kept
    assert hearing_id == "h" and at_ms == 60_000 and file.closed
    assert len(file.parts) > 1  # recorded on after the hand-over
    assert np.array_equal(np.concatenate(file.parts), source)  # all of it, once, in order


def test_a_server_lost_while_the_microphone_is_stalled_is_found_at_once():
    """The server crashes after taking all the audio there was, and the microphone delivers no more
    (a stalled device, a gated mixer seat): the loss is found from the connection, not at the next
    chunk that may never come; the stream ends with the error and hands over what it had."""
    import socket

    from websockets.sync.server import serve

    def handler(ws):
        ws.recv()
        ws.send(json.dumps({"type": "ready", "session_id": "s", "hearing_id": "h", "channel": 0, "offset_ms": 0}))
        got = 0
        while got < SR * 2:  # the second of audio there is (PCM16)
            got += len(ws.recv())
        ws.socket.shutdown(socket.SHUT_RDWR)

    async def stalled_mic():
        yield np.full(SR, 0.1, np.float32)
        await asyncio.Event().wait()  # never more audio, never an end

    handed = []
    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v1/stream"
        with pytest.raises((websockets.ConnectionClosed, OSError)):
            asyncio.run(asyncio.wait_for(stream(url, stalled_mic(), speed=0, on_unsent=lambda *got: handed.append(got)),
                                         30))
        server.shutdown()
    [(hearing_id, at_ms, audio)] = handed
    assert hearing_id == "h" and at_ms == 0 and audio.size == SR


def test_a_microphone_stopped_while_coming_back_still_sends_what_it_kept_and_recorded():
    """The server restarts (1012); the clerk presses Ctrl-C while the recorder is reconnecting,
    and the server answers: the audio kept and recorded meanwhile is sent before the stop, not
    dropped because the stop came first (``drain``: a microphone's stop ends the recording only)."""
    stop = asyncio.Event()
    received: list[int] = []

    async def handler(ws):
        start = json.loads(await ws.recv())
        if not received:  # the first connection: a restart after 1 s of audio
            received.append(0)
            await ws.send(json.dumps({"type": "ready", "hearing_id": "h", "offset_ms": 0, "channel": 0}))
            for _ in range(5):
                await ws.recv()
            await ws.close(1012)
            return
        stop.set()  # Ctrl-C while the recorder was connecting again
        await ws.send(json.dumps({"type": "ready", "hearing_id": "h", "offset_ms": start["resume_ms"], "channel": 0}))
        async for message in ws:
            if isinstance(message, bytes):
                received.append(len(message) // 2)
            elif json.loads(message)["type"] == "stop":
                break
        await ws.send(json.dumps({"type": "end", "utterances": 0}))

    async def mic():
        for _ in range(50):  # 200 ms chunks until Ctrl-C
            if stop.is_set():
                return
            yield np.full(SR // 5, 0.1, np.float32)
            await asyncio.sleep(0.02)

    async def main() -> tuple[int, list]:
        handed: list = []
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            await stream(f"ws://127.0.0.1:{port}", mic(), hearing_id="h", speed=0, stop=stop, reconnect_s=30,
                         drain=True, on_unsent=lambda *got: handed.append(got))
        return sum(received), handed
    resent, handed = asyncio.run(asyncio.wait_for(main(), 60))
    assert resent >= SR and not handed  # the kept second at least, and nothing left over unsent


def test_a_source_coming_back_lands_between_its_archive_and_now(tmp_path):
    root = tmp_path / "archive"
    rec = archive.ChannelRecorder(root, "h", 0, 0)
    rec.write(np.zeros(5 * SR, np.float32))  # the channel holds 5 s
    rec.close()
    live = SimpleNamespace(archive=root)
    records = SimpleNamespace(now_ms=lambda hearing_id: 8000)

    def offset(resume_ms):
        cfg = SessionConfig(hearing_id="h", channel=0, resume_ms=resume_ms)
        return LiveHearings._rejoin_ms(live, records, "h", cfg)  # type: ignore[arg-type]
    assert offset(None) == 8000  # a new source starts now
    assert offset(6500) == 6500  # a recorder with audio kept from 6.5 s on
    assert offset(1000) == 5000  # never inside what the archive holds
    assert offset(60_000) == 8000  # nor after now
    assert LiveHearings._rejoin_ms(SimpleNamespace(archive=root), SimpleNamespace(now_ms=lambda h: 0), "h",
                                   SessionConfig(hearing_id="h")) == 5000  # a replay ahead of the wall clock
    # nor further back than a source keeps audio to resend: no back-dating into a running hearing
    late = SimpleNamespace(now_ms=lambda hearing_id: 3_600_000)
    cfg = SessionConfig(hearing_id="h", channel=0, resume_ms=0)
    assert LiveHearings._rejoin_ms(live, late, "h", cfg) == 3_600_000 - RESUME_MS  # type: ignore[arg-type]


def test_a_channel_is_given_back_only_by_the_source_that_holds_it():
    live = SimpleNamespace(seats={}, peers=None)
    first = SessionConfig(hearing_id="h", channel=0)
    LiveHearings._seat(live, first)  # type: ignore[arg-type]
    with pytest.raises(StreamError) as refused:
        LiveHearings._seat(live, SessionConfig(hearing_id="h", channel=0))  # type: ignore[arg-type]
    assert refused.value.code == "channel_busy"
    anyone = SessionConfig(hearing_id="h", channel=ANY_CHANNEL)
    LiveHearings._seat(live, anyone)  # type: ignore[arg-type]
    assert anyone.channel == 1
    LiveHearings._unseat(live, SessionConfig(hearing_id="h", channel=0))  # type: ignore[arg-type]
    assert live.seats["h"][0] is first  # another source's leave never frees it
    LiveHearings._unseat(live, first)  # type: ignore[arg-type]
    LiveHearings._unseat(live, anyone)  # type: ignore[arg-type]
    assert live.seats == {}


def test_a_stopping_server_takes_a_message_that_came_and_reads_no_further():
    class Socket:
        def __init__(self, waiting):
            self.waiting = waiting

        async def receive(self):
            if self.waiting:
                return self.waiting.pop(0)
            await asyncio.sleep(3600)

    async def read(waiting):
        stop = asyncio.Event()
        stop.set()
        return await receive(Socket(waiting), 60, None, stop)  # type: ignore[arg-type]
    frame = {"type": "websocket.receive", "bytes": b"\x00\x01"}
    assert asyncio.run(read([frame])) == frame  # already there: taken, not lost
    assert asyncio.run(read([])) is None


def test_a_server_that_never_answers_the_start_is_said_not_waited_on(monkeypatch):
    """A server that takes the connection and never answers the start (hung, or overloaded past
    help): the stream ends with a clear error instead of waiting for ever (and a mixer's other
    channels, waiting for its first to be placed, with it)."""
    from courtscribe.clients import stream_client

    monkeypatch.setattr(stream_client, "READY_S", 0.5)

    async def silent(ws):
        await ws.recv()
        await ws.wait_closed()

    async def second():
        yield np.zeros(SR, np.float32)

    async def main():
        async with websockets.serve(silent, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            return await asyncio.gather(stream_client.stream(f"ws://127.0.0.1:{port}", second(), hearing_id="h"),
                                        return_exceptions=True)
    [err] = asyncio.run(asyncio.wait_for(main(), 60))
    assert isinstance(err, RuntimeError) and "did not answer" in str(err)
