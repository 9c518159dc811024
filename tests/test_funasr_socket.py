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
    monkeypatch.setattr(fs, "_held", fs._Held(20))
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
