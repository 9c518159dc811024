"""FunASR's socket (server/funasr_socket.py, funasr_config.py) apart from a server: what a file's first message means,
and the memory whole files may take."""
import asyncio

import pytest

from courtscribe.server import funasr_config as fc
from courtscribe.server import funasr_socket as fs
from courtscribe.streaming.protocol import StreamError


def test_a_files_first_message_says_whether_it_is_a_whole_file_and_how_it_is_answered():
    assert (fc.Config({}).mode, fc.Config({}).whole) == ("2pass", False)  # PCM: a recorder's live audio
    cpp = fc.Config({"wav_format": "others"})  # FunASR's C++ offline client: a file's own bytes, no mode
    assert (cpp.mode, cpp.whole) == ("offline", True)
    live = fc.Config({"mode": "2pass", "wav_format": "PCM"})  # FunASR's page sends it upper-case
    assert not live.whole and live.result_mode == "2pass-offline"
    mp3 = fc.Config({"mode": "2pass", "wav_format": "others"})  # its Python client, an mp3
    assert mp3.whole and fc.reply(mp3, is_final=True)["mode"] == "2pass-offline"
    assert fc.reply(live, warning="…")["mode"] == "2pass-online"  # not a sentence's final text
    assert fc.Config({"mode": "online"}).result_mode == "online"
    with pytest.raises(StreamError):
        fc.Config({"mode": "realtime"})
    # a .pcm file with no mode (the C++ client; funasr-client too): one reply in 2pass's final shape
    assert fc.Config({}).once and fc.reply(fc.Config({}), is_final=True)["mode"] == "2pass-offline"


def test_hotwords_stand_for_the_connection_until_a_file_names_others():
    """FunASR's C++ offline client sends the hotwords with its first file only: its servers keep
    them for the connection, and the next files were decoded without them."""
    first = fc.Config({"wav_format": "others", "hotwords": '{"达摩院": 20}'})
    second = fc.Config({"wav_format": "others"}, first)
    assert first.hotwords == second.hotwords and "达摩院" in second.hotwords
    assert fc.Config({"wav_format": "others", "hotwords": ""}, first).hotwords == ()


def test_whole_files_in_memory_are_counted_for_every_socket_together_and_given_back(monkeypatch):
    """All sockets together hold at most the limit, one token's at most half of it."""
    monkeypatch.setattr(fs, "_held", fs.Held(20))
    first, second = fs._File(fc.Config({"mode": "offline"}), "t1"), fs._File(fc.Config({"mode": "offline"}), "t2")
    third = fs._File(fc.Config({"mode": "offline"}), "t3")
    for piece in (b"ab", b"cd", b"ef"):  # frames of any size, one buffer
        asyncio.run(fs._audio(None, first, piece))
    asyncio.run(fs._audio(None, second, b"0123456789"))
    with pytest.raises(StreamError) as refused:
        asyncio.run(fs._audio(None, third, b"0123456"))
    assert refused.value.code == "busy" and refused.value.fatal and third.refused  # never answered from a part
    with pytest.raises(StreamError):
        asyncio.run(fs._audio(None, fs._File(fc.Config({"mode": "offline"}), "t2"), b"x"))  # t2 holds its half
    assert first.whole_file() == b"abcdef" and fs._held.bytes == 10  # answered: its bytes given back
    asyncio.run(fs._audio(None, third, b"0123456"))
    second.drop()  # the clients went away
    third.drop()
    assert fs._held.bytes == 0 and not fs._held.by


class _Socket:
    """What the FunASR adapter sends, kept (a socket that stays open)."""
    from starlette.websockets import WebSocketState
    application_state = client_state = WebSocketState.CONNECTED

    def __init__(self):
        self.sent = []

    async def send_json(self, message):
        self.sent.append(message)


class _Live:
    async def leave(self, session):
        pass


class _Clock:
    def __init__(self):
        self.now = 100.0

    def monotonic(self):
        return self.now


async def _offline_mic(adapter, clock, frames: int, burst: int = 0) -> None:
    """An offline-mode config, then 60 ms frames: the first ``burst`` read at once, then one per 60 ms."""
    await adapter.text('{"mode": "offline", "wav_format": "pcm", "wav_name": "mic", "is_speaking": true}')
    for k in range(frames):
        clock.now += 0.06 if k >= burst else 0.0
        await adapter.audio(b"\0" * 1920)


def test_offline_pcm_goes_live_when_it_comes_as_spoken_and_a_file_sent_at_once_stays_whole(monkeypatch):
    """A microphone (frames at the pace of speech; its first 1.5 s read in one burst when the
    server was busy) is taken live once half its time has passed; a file sent at once never is."""
    from courtscribe.streaming.live import Admitted

    clock = _Clock()
    monkeypatch.setattr(fs, "time", clock)
    joined = []

    async def join(ws, live, file, gate, hearing_id):
        joined.append(len(file.offline) / 32_000)  # seconds held when taken up
        raise StreamError("busy", "the server is at its stream limit", fatal=True)  # refused: see below

    async def gate(hearing_id, *, into_room=True):
        return Admitted(None, None, "room1")
    monkeypatch.setattr(fs, "_join", join)
    file_sent = fs._Funasr(_Socket(), None, None, gate, None, "t-file")
    asyncio.run(_offline_mic(file_sent, clock, 200, burst=200))  # 12 s at once
    assert not joined and file_sent.file.whole and len(file_sent.file.offline) == 200 * 1920
    file_sent.file.drop()

    mic = fs._Funasr(_Socket(), None, None, gate, "h-mic", "t-mic")
    with pytest.raises(StreamError) as refused:
        asyncio.run(_offline_mic(mic, clock, 200, burst=25))
    # 1.5 s in a burst, then real time: taken up when 3 s had come over 1.5 s, never at the 2 s mark
    [held_s] = joined
    assert 2.0 < held_s <= 3.0 and refused.value.code == "busy"
    # the join refused (stream limit, a closed hearing): the file is refused, its held bytes given back
    assert mic.file.refused and mic.file.whole and not mic.file.offline and not fs._held.by.get("t-mic")
    asyncio.run(fs._finish(mic.ws, _Live(), None, mic.file, ack=False))  # its end: no answer from a part
    assert not any(m.get("text") or m.get("is_final") for m in mic.ws.sent)
