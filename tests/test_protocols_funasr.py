"""FunASR's protocol as its stock clients and careless ones speak it, against a real server: the
C++ offline client (``funasr-wss-client.cpp``: no ``mode``; it sends its next file, or closes, at
the first message after its last frame), audio outside a file, frames over the live limit."""
import asyncio
import json

import httpx
import websockets

from courtscribe.audio import decode, float_to_pcm16

from conftest import ZH
from test_funasr_times import page_reads

CPP_CONFIG = {"chunk_size": [5, 10, 5], "chunk_interval": 10, "audio_fs": 16000, "itn": True, "svs_itn": True,
              "is_speaking": True}  # what funasr-wss-client.cpp sends: never a mode


def _pcm(name: str) -> bytes:
    return float_to_pcm16(decode(ZH / name).channel(0))


async def _cpp_client(url: str, files: list[tuple[str, str, bytes]], block: int) -> list[dict]:
    """funasr-wss-client.cpp over a list of (wav_name, wav_format, bytes): a config, the file in
    ``block``-byte frames, ``{"is_speaking": false}``; before each next file it waits for any
    message, and after the last it reads one more and closes. Returns every message it read."""
    got: list[dict] = []
    async with websockets.connect(url, max_size=None) as ws:
        for i, (name, fmt, data) in enumerate(files):
            if i:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            await ws.send(json.dumps({**CPP_CONFIG, "wav_name": name, "wav_format": fmt}))
            for at in range(0, len(data), block):
                await ws.send(data[at:at + block])
            await ws.send(json.dumps({"is_speaking": False}))
        got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
    return got


def test_cpp_offline_client_with_a_pcm_file_gets_all_its_text_in_one_reply(server):
    """A ``.pcm`` file goes with ``wav_format: "pcm"`` and no mode: it is recorded into the hearing
    live, as a recorder's audio is, and answered once at its end, in FunASR's offline shape. One
    reply per sentence lost every sentence but the first (the client closes at the first)."""
    url = server.replace("http", "ws") + "/?hearing=cpp-pcm"
    [reply] = asyncio.run(_cpp_client(url, [("justice", "pcm", _pcm("justice.wav"))], block=204800))
    assert reply["mode"] == "2pass-offline" and reply["is_final"] is True and "error" not in reply, reply
    lines = [u["text"] for u in httpx.get(f"{server}/v1/hearings/cpp-pcm").json()["utterances"]]
    assert lines and all(line in reply["text"] for line in lines), (lines, reply["text"])
    page_reads(reply["text"], reply["timestamp"])
    assert reply["stamp_sents"]
    for sent in reply["stamp_sents"]:  # one span per unit of text_seg, as FunASR's protocol says
        assert len(sent["text_seg"].split()) == len(sent["ts_list"]), sent


def test_cpp_offline_client_sends_its_files_one_after_another_over_one_socket(server):
    """Each file is answered by one message, which is what lets the client send the next: none is
    lost, and the socket is not idled out while the server decodes (the test server's idle limit is
    5 s; the client sends nothing while it waits)."""
    files = [(name, "others", (ZH / name).read_bytes()) for name in ("justice.wav", "welcome.wav", "custody.wav")]
    replies = asyncio.run(_cpp_client(server.replace("http", "ws") + "/", files, block=204800))
    assert [r["wav_name"] for r in replies] == [name for name, _, _ in files], replies
    assert all(r["mode"] == "offline" and r["is_final"] and r["text"] and "error" not in r for r in replies)


async def _exchange(url: str, frames: list, acks: int) -> list[dict]:
    """Sends ``frames`` (dicts as JSON), then reads until ``acks`` acknowledgements came."""
    got: list[dict] = []
    async with websockets.connect(url, max_size=None) as ws:
        for frame in frames:
            await ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)
        while sum(1 for m in got if m.get("is_end")) < acks:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
    return got


END = {"is_speaking": False, "is_end": True}
CONFIG = {"mode": "2pass", "chunk_size": [5, 10, 5], "wav_name": "w1", "is_speaking": True, "audio_fs": 16000}


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i:i + 1920] for i in range(0, len(pcm), 1920)]


def test_audio_before_any_config_is_refused_and_the_acknowledgement_says_so(server):
    """FunASR's server acknowledges such a file with ``is_final: false`` and an error: a client
    must never read success for audio that was dropped."""
    url = server.replace("http", "ws") + "/"
    got = asyncio.run(_exchange(url, [*_frames(_pcm("welcome.wav")), CONFIG, END], acks=1))
    refusals = [m for m in got if m.get("code") == "not_started"]
    assert len(refusals) == 1 and refusals[0]["is_final"] is False and refusals[0]["error"]
    assert got[-1]["is_end"] is True and got[-1]["is_final"] is False and got[-1]["error"], got[-1]


def test_a_malformed_text_frame_is_said_and_the_file_goes_on(server):
    """FunASR's own server drops the connection on a frame it cannot parse; ours ignored it without
    a word. Now it says so in FunASR's reply shape, transcribes the file, and its acknowledgement
    says the file had a problem."""
    url = server.replace("http", "ws") + "/"
    pcm = _pcm("welcome.wav")
    got = asyncio.run(_exchange(url, [CONFIG, *_frames(pcm[:len(pcm) // 2]), "{oops", "[1, 2]",
                                      *_frames(pcm[len(pcm) // 2:]), END], acks=1))
    said = [m for m in got if m.get("code") == "bad_json"]
    assert len(said) == 2 and all(m["is_final"] is False for m in said) and "{oops" in said[0]["error"]
    assert "".join(m["text"] for m in got if m.get("mode") == "2pass-offline")
    assert got[-1]["is_end"] is True and got[-1]["is_final"] is False and "JSON" in got[-1]["error"]


def test_audio_after_a_files_end_is_the_next_file_with_the_last_config(server):
    """As FunASR's server keeps a connection's config, audio sent after ``is_speaking: false``
    without a new config is transcribed (before, it was dropped and acknowledged as success)."""
    url = server.replace("http", "ws") + "/"
    pcm = _pcm("welcome.wav")
    got = asyncio.run(_exchange(url, [CONFIG, pcm[:1920], END, *_frames(pcm), END], acks=2))
    second = got[next(i for i, m in enumerate(got) if m.get("is_end")) + 1:]
    assert second[-1] == {"mode": "2pass", "wav_name": "w1", "is_final": True, "is_end": True}, second[-1]
    assert "".join(m["text"] for m in second if m.get("mode") == "2pass-offline")
    assert not any("error" in m for m in second), second


def test_the_last_lines_text_rides_on_the_is_final_reply(server):
    """FunASR's servers send the last text on the ``is_final`` message and its ``funasr_client_api``
    returns only that message; ours sent the line, then an empty ``is_final`` reply, so that client
    read "" for the file. Audio cut mid-sentence: its line can only end after ``is_speaking: false``."""
    url = server.replace("http", "ws") + "/"
    pcm = _pcm("welcome.wav")[:2 * 16000 * 5 // 2]  # 2.5 s: "欢迎大家来…", cut mid-sentence
    got = asyncio.run(_exchange(url, [CONFIG, *_frames(pcm), END], acks=1))
    *said, ack = got
    finals = [m for m in said if m["is_final"]]
    assert ack["is_end"] and ack["is_final"] is True and finals == [said[-1]], got
    assert said[-1]["mode"] == "2pass-offline" and said[-1]["text"], got
    lines = [m["text"] for m in said if m["mode"] == "2pass-offline" and m["text"]]
    assert len(lines) == len(set(lines)), lines  # said once, not again on the closing reply


def test_a_frame_over_the_live_limit_is_refused_in_words_with_the_real_limit(server):
    """A frame larger than a live frame may be (1 MiB: 32 s of 16 kHz PCM16) but within what the
    socket takes for an OpenAI Realtime append gets FunASR's reply shape with the limit as it is,
    and the file goes on; before, anything over 4 MiB closed the socket (1009) unexplained."""
    url = server.replace("http", "ws") + "/"
    got = asyncio.run(_exchange(url, [CONFIG, bytes(6 << 20), *_frames(_pcm("welcome.wav")), END], acks=1))
    [refused] = [m for m in got if m.get("code") == "frame_too_large"]
    assert refused["is_final"] is False and "32 s" in refused["error"], refused
    assert "".join(m["text"] for m in got if m.get("mode") == "2pass-offline")
    assert got[-1]["is_end"] and got[-1]["is_final"] is False  # the dropped frame is said again


def test_cpp_offline_client_with_a_hearing_gets_its_answer_first_and_the_warning_in_it(server):
    """A whole file is not put in the hearing, and the server says so; the C++ client takes the first
    message after its file as the answer: a warning frame before it was read as the answer, and the
    text was lost. The warning rides in the answer."""
    url = server.replace("http", "ws") + "/?hearing=cpp-wav"
    [reply] = asyncio.run(_cpp_client(url, [("welcome", "others", (ZH / "welcome.wav").read_bytes())], block=204800))
    assert reply["is_final"] is True and reply["text"] and "not put in hearing cpp-wav" in reply["warning"], reply


def test_a_file_refused_at_its_config_is_acknowledged_and_the_socket_goes_on(server):
    """A PCM rate not served, or a mode FunASR has not, refused the file and closed the socket with
    no acknowledgement (FunASR's current client crashed on the close instead of saying why); now
    the refusal and the acknowledgement carry the file's own name and say why, and the next file on
    the socket is transcribed. A file in a container says its own rate: 192 kHz WAV is transcribed
    whatever ``audio_fs`` FunASR's page sends with it."""
    import io

    import soundfile as sf
    import soxr

    url = server.replace("http", "ws") + "/"
    pcm = _pcm("welcome.wav")
    odd = {**CONFIG, "audio_fs": 12345}
    bogus = {**CONFIG, "mode": "3pass", "wav_name": "w3"}
    got = asyncio.run(_exchange(url, [odd, *_frames(pcm[:19200]), END, bogus, pcm[:1920], END,
                                      CONFIG, *_frames(pcm), END], acks=3))
    acks = [m for m in got if m.get("is_end")]
    assert [(a["wav_name"], a["is_final"]) for a in acks] == [("w1", False), ("w3", False), ("w1", True)], acks
    assert "12345" in acks[0]["error"] and "3pass" in acks[1]["error"]
    refusals = [m for m in got if m.get("code") in ("bad_sample_rate", "bad_message")]
    assert [r["wav_name"] for r in refusals] == ["w1", "w3"], refusals
    assert "".join(m["text"] for m in got[got.index(acks[1]):] if m.get("mode") == "2pass-offline")
    x = decode(ZH / "welcome.wav").channel(0)
    wav = io.BytesIO()
    sf.write(wav, soxr.resample(x, 16000, 192000), 192000, format="WAV", subtype="PCM_16")
    whole = {"mode": "offline", "wav_name": "w192", "wav_format": "wav", "audio_fs": 192000, "is_speaking": True}
    got = asyncio.run(_exchange(url, [whole, wav.getvalue(), END], acks=1))
    answer = next(m for m in got if m.get("mode") == "offline" and not m.get("is_end"))
    assert answer["text"] and "error" not in answer and got[-1]["is_final"] is True, got
