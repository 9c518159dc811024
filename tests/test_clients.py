"""Clients courts already have, unchanged, against a real server: FunASR's protocol as its current
Python client speaks it (several files over one connection, the end-of-input acknowledgement),
FunASR's PyPI client, FunASR's HTML5 page protocol in Chromium, and the OpenAI SDK."""
import asyncio
import base64
import json
import time

import httpx
import numpy as np
import pytest
import websockets

from courtscribe.audio import decode, float_to_pcm16

from browser import CHROMIUM_ARGS, chromium_path
from conftest import ZH
from test_funasr_times import page_reads

CLIPS = ["aishell_S0916W0427.wav", "welcome.wav", "custody.wav"]


def _pcm(name: str) -> bytes:
    return float_to_pcm16(decode(ZH / name).channel(0))


async def _head_client(url: str, files: list[tuple[str, bytes, dict]]) -> list[list[dict]]:
    """The message sequence of FunASR's current Python client (runtime/python/websocket,
    funasr_wss_client.py since its PR #3440) for a wav.scp: per file a config, PCM chunks of
    ``60 * chunk_size[1] / chunk_interval`` ms as it cuts them (bytes, not samples: odd at 44.1 kHz
    with chunk_size 8,8,4), ``{"is_speaking": false, "is_end": true}``, then wait for the
    acknowledgement before the next file, all over one connection. Returns each file's replies,
    the acknowledgement last."""
    out = []
    async with websockets.connect(url, subprotocols=["binary"], max_size=None) as ws:
        for name, pcm, config in files:
            config = {"mode": "2pass", "chunk_size": [5, 10, 5], "chunk_interval": 10, "encoder_chunk_look_back": 4,
                      "decoder_chunk_look_back": 0, "audio_fs": 16000, "wav_name": name, "wav_format": "pcm",
                      "is_speaking": True, "hotwords": "", "itn": True, **config}
            await ws.send(json.dumps(config))
            stride = int(60 * config["chunk_size"][1] / config["chunk_interval"] / 1000 * config["audio_fs"] * 2)
            for i in range(0, len(pcm), stride):
                await ws.send(pcm[i:i + stride])
            await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
            replies = []
            while not replies or not replies[-1].get("is_end"):
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            out.append(replies)
    return out


@pytest.mark.parametrize("mode", ["2pass", "offline"])
def test_funasr_head_client_sends_several_files_over_one_connection(server, mode):
    files = [(name.split(".")[0], _pcm(name), {"mode": mode}) for name in CLIPS]
    results = asyncio.run(_head_client(server.replace("http", "ws") + "/", files))
    assert len(results) == len(files)
    for (name, _, _), replies in zip(files, results):
        ack = replies[-1]
        assert ack == {"mode": mode, "wav_name": name, "is_final": True, "is_end": True}
        assert {r["wav_name"] for r in replies} == {name}  # state reset between files: nothing of the last
        final = "2pass-offline" if mode == "2pass" else "offline"
        text = "".join(r.get("text", "") for r in replies if r.get("mode") == final)
        assert text, (name, replies)
    assert results[0] != results[1]


def test_funasr_client_cutting_44k_audio_into_odd_sized_frames_is_heard(server):
    """FunASR's client cuts bytes, not samples: 44.1 kHz audio with chunk_size 8,8,4 goes in frames
    of 4233 bytes. Each frame's last byte begins the next one's first sample; dropping it read every
    later frame a byte off, as noise, and the file was acknowledged with no text."""
    import soxr

    pcm = float_to_pcm16(soxr.resample(decode(ZH / "welcome.wav").channel(0), 16000, 44100))
    [replies] = asyncio.run(_head_client(server.replace("http", "ws") + "/", [
        ("welcome", pcm, {"audio_fs": 44100, "chunk_size": [8, 8, 4]})]))
    assert replies[-1]["is_final"] and not any("warning" in r or "error" in r for r in replies)
    assert "".join(r.get("text", "") for r in replies if r.get("mode") == "2pass-offline")


def test_funasr_acknowledges_a_failed_file_with_its_error_and_goes_on(server):
    files = [("garbage", b"\x00\x01not audio" * 100, {"mode": "offline", "wav_format": "wav"}),
             ("welcome", _pcm("welcome.wav"), {"mode": "offline"})]
    bad, good = asyncio.run(_head_client(server.replace("http", "ws") + "/", files))
    assert bad[-1]["is_end"] is True and bad[-1]["is_final"] is False and bad[-1]["error"]
    assert good[-1] == {"mode": "offline", "wav_name": "welcome", "is_final": True, "is_end": True}
    assert "".join(r.get("text", "") for r in good[:-1])


def test_funasr_older_clients_still_get_their_final_and_close_when_they_like(server):
    async def old_client() -> list[dict]:
        async with websockets.connect(server.replace("http", "ws") + "/") as ws:
            await ws.send(json.dumps({"mode": "2pass", "wav_name": "old", "is_speaking": True, "chunk_size": [5, 10, 5]}))
            pcm = _pcm("welcome.wav")
            for i in range(0, len(pcm), 1920):
                await ws.send(pcm[i:i + 1920])
            await ws.send(json.dumps({"is_speaking": False}))  # no is_end: the protocol before PR #3440
            replies = []
            while not replies or not replies[-1]["is_final"]:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return replies
    replies = asyncio.run(old_client())
    assert "is_end" not in replies[-1] and replies[-1]["mode"] == "2pass-offline"
    assert "".join(r["text"] for r in replies if r["mode"] == "2pass-offline")


def test_funasr_whole_files_without_a_mode_or_in_another_format_are_answered_once_with_page_safe_times(server):
    """FunASR's C++ offline client sends no ``mode`` and a file's own bytes (``wav_format`` others),
    one file after another, each answered by one reply; its Python client sends an mp3 so in 2pass.
    Both are decoded whole; the reply's ``timestamp`` holds a time for every character FunASR's
    page counts (it throws on a shorter list and never finishes)."""
    wav = (ZH / "welcome.wav").read_bytes()

    async def client(config: dict) -> list[dict]:
        async with websockets.connect(server.replace("http", "ws") + "/", max_size=None) as ws:
            await ws.send(json.dumps({"wav_name": "welcome", "wav_format": "others", "is_speaking": True, **config}))
            for i in range(0, len(wav), 4096):
                await ws.send(wav[i:i + 4096])
            await ws.send(json.dumps({"is_speaking": False}))
            replies = [json.loads(await asyncio.wait_for(ws.recv(), 120))]
            while not replies[-1]["is_final"]:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return replies
    [offline] = asyncio.run(client({}))
    assert offline["mode"] == "offline" and offline["is_final"] and offline["text"]
    page_reads(offline["text"], offline["timestamp"])
    replies = asyncio.run(client({"mode": "2pass"}))
    assert replies[-1]["mode"] == "2pass-offline" and replies[-1]["text"] == offline["text"]
    assert not any("error" in r for r in replies)


@pytest.mark.parametrize("mode", ["2pass", "offline"])
def test_funasr_pypi_client_transcribes_a_file(server, mode):
    """funasr-client 0.1.6 (PyPI), its asyncio API (its blocking one deadlocks in its own close():
    ``close`` holds its lock and calls ``signal_close``, which takes it again — whatever the server)."""
    from funasr_client import async_file_asr_stream

    async def run() -> list[dict]:
        stream = async_file_asr_stream(ZH / "custody.wav", uri=server.replace("http", "ws") + "/", mode=mode)
        return [m async for m in stream]
    replies = asyncio.run(asyncio.wait_for(run(), 120))
    assert replies[-1]["is_final"] and {m["wav_name"] for m in replies} == {"custody.wav"}
    final = "2pass-offline" if mode == "2pass" else "offline"
    assert "".join(m["text"] for m in replies if m["mode"] == final)


def test_funasr_page_connected_minutes_before_its_start_click_still_records(server):
    """FunASR's page sends its config when it connects and its audio when the user clicks Start:
    the wait (here past the server's 5 s idle limit) neither closes the socket nor holds a stream,
    and what is said after the click is transcribed."""
    async def page() -> list[dict]:
        async with websockets.connect(server.replace("http", "ws") + "/") as ws:
            await ws.send(json.dumps({"chunk_size": [5, 10, 5], "wav_name": "h5", "is_speaking": True,
                                      "chunk_interval": 10, "itn": False, "mode": "2pass"}))
            await asyncio.sleep(7)  # 连接成功!请点击开始
            pcm = _pcm("welcome.wav")
            for i in range(0, len(pcm), 1920):
                await ws.send(pcm[i:i + 1920])
            await ws.send(json.dumps({"is_speaking": False}))
            replies = []
            while not replies or not replies[-1]["is_final"]:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return replies
    replies = asyncio.run(page())
    assert not any("error" in r for r in replies), replies
    assert "".join(r["text"] for r in replies if r["mode"] == "2pass-offline")


@pytest.fixture
def browser_page():
    """A Chromium page (function scope: Playwright's sync API owns the thread's event loop while open)."""
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


def test_funasr_page_microphone_in_offline_mode_is_answered_at_each_pause_and_recorded(server):
    """FunASR's page, microphone in offline mode: its audio comes as it is spoken and the page
    closes 3 s after Stop. Decoded whole after Stop, a long take showed nothing and was in no
    record; now each utterance is answered (``offline``) as FunASR's server answers it, and with
    ``?hearing=`` the take is in the hearing's record."""
    gap = np.zeros(16000 * 3 // 2, np.int16).tobytes()
    pcm = _pcm("welcome.wav") + gap + _pcm("custody.wav") + gap

    async def page() -> list[dict]:
        async with websockets.connect(server.replace("http", "ws") + "/?hearing=h5-offline") as ws:
            await ws.send(json.dumps({"chunk_size": [5, 10, 5], "wav_name": "h5", "is_speaking": True,
                                      "chunk_interval": 10, "itn": True, "mode": "offline"}))
            for i in range(0, len(pcm), 1920):  # 60 ms as the microphone gives it
                await ws.send(pcm[i:i + 1920])
                await asyncio.sleep(0.06)
            await ws.send(json.dumps({"chunk_size": [5, 10, 5], "wav_name": "h5", "is_speaking": False,
                                      "chunk_interval": 10, "mode": "offline"}))
            replies = []
            while not replies or not replies[-1]["is_final"]:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return replies
    replies = asyncio.run(page())
    said = [r for r in replies if r["text"]]
    assert len(said) >= 2 and all(r["mode"] == "offline" for r in said), replies
    assert [r["is_final"] for r in replies].count(True) == 1 and replies[-1]["is_final"]  # the last line's
    assert replies[-1]["mode"] == "offline" and not any("error" in r or "warning" in r for r in replies)
    for r in said:  # the page lays each sentence out by its times
        page_reads(r["text"], r["timestamp"])
    record = httpx.get(f"{server}/v1/hearings/h5-offline").json()
    assert [r["text"] for r in said] == [u["text"] for u in record["utterances"] if u["text"]]


def test_funasr_html5_page_protocol_in_chromium(server, browser_page):
    """FunASR's HTML5 client (runtime/html5/static: wsconnecter.js, main.js) opens the socket with no
    subprotocol, sends its 2pass config, 16 kHz PCM in 960-sample chunks, then is_speaking false."""
    page = browser_page
    page.goto(f"{server}/ui/")
    pcm = list(np.frombuffer(_pcm("welcome.wav"), np.int16).tolist())
    replies = page.evaluate("""async ([url, samples]) => {
        const ws = new WebSocket(url);
        const got = [];
        await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
        ws.onmessage = (e) => got.push(JSON.parse(e.data));
        ws.send(JSON.stringify({chunk_size: [5, 10, 5], wav_name: "h5", is_speaking: true, chunk_interval: 10,
                                itn: false, mode: "2pass", hotwords: "{\\"达摩院\\":20}"}));
        const pcm = Int16Array.from(samples);
        for (let i = 0; i < pcm.length; i += 960) ws.send(pcm.slice(i, i + 960).buffer);
        ws.send(JSON.stringify({is_speaking: false}));
        const deadline = Date.now() + 120000;
        while (!got.some((m) => m.is_final) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        ws.close();
        return got;
    }""", [server.replace("http", "ws") + "/", pcm])
    modes = {r["mode"] for r in replies}
    assert "2pass-offline" in modes and replies[-1]["is_final"] is True
    assert "".join(r["text"] for r in replies if r["mode"] == "2pass-offline")
    for r in replies:
        if r["mode"] == "2pass-offline":  # the page lays each sentence out by its times
            page_reads(r["text"], r["timestamp"])


def test_openai_sdk_streams_a_transcription_as_server_sent_events(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="not-needed-with-tokens-off", max_retries=0)
    with open(ZH / "news_kfc.wav", "rb") as f:
        events = list(client.audio.transcriptions.create(model="whisper-base", file=f, stream=True, language="zh"))
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"}, types
    with open(ZH / "news_kfc.wav", "rb") as f:
        plain = client.audio.transcriptions.create(model="whisper-base", file=f, language="zh")
    assert events[-1].text == plain.text  # the stream ends with exactly what the JSON answer says
    assert "".join(e.delta for e in events[:-1])  # text arrived before the end


def test_openai_sdk_errors_say_why(server):
    """OpenAI's SDKs read an error's ``error.message`` and nothing else: a refused upload says why."""
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed-with-tokens-off", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(model="whisper-base", file=("notes.wav", b"RIFF not really audio"))
    assert bad.value.code == "bad_audio" and "not a readable audio file" in str(bad.value), bad.value
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        client.audio.transcriptions.create(model="whisper-base", file=("a.wav", b"x"), response_format="diary")
    assert "response_format" in str(invalid.value), invalid.value
    with pytest.raises(openai.NotFoundError) as missing:
        client.get("/no/such/route", cast_to=dict)
    assert "Not Found" in str(missing.value)


def _data_url(audio, sr: int = 16000) -> str:
    import io

    import soundfile as sf

    out = io.BytesIO()
    sf.write(out, audio, sr, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(out.getvalue()).decode()


def test_openai_sdk_diarized_json_names_the_voices_it_was_given(server, tmp_path):
    """gpt-4o-transcribe-diarize's request as the SDK sends it: ``diarized_json`` segments, each
    voice named after the reference sample of it (here: a stretch of the very voice), the rest
    of the answer as OpenAI's; bad references are refused with what is wrong, not ignored."""
    import numpy as np
    import openai
    import soundfile as sf

    judge = decode(ZH / "justice.wav").channel(0)
    witness = decode(ZH / "custody.wav").channel(0)
    # as a phone records it: 9.5 s at 44.1 kHz, 1.1 MB of base64 in one form field
    judge_44k = _data_url(decode(ZH / "justice.wav", sample_rate=44100).channel(0)[:int(9.5 * 44100)], 44100)
    recording = np.concatenate([judge, np.zeros(16000, np.float32), witness])
    sf.write(tmp_path / "hearing.wav", recording, 16000)
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed-with-tokens-off", max_retries=0)
    with open(tmp_path / "hearing.wav", "rb") as f:
        got = client.audio.transcriptions.create(
            file=f, model="gpt-4o-transcribe-diarize", response_format="diarized_json", chunking_strategy="auto",
            known_speaker_names=["审判长", "证人"],
            known_speaker_references=[judge_44k, _data_url(witness)])
    assert isinstance(got, openai.types.audio.TranscriptionDiarized), type(got)
    assert got.segments and "".join(s.text for s in got.segments) == got.text.replace(" ", "")
    first, last = got.segments[0], got.segments[-1]
    assert first.type == "transcript.text.segment" and first.start < 1 and last.end > 19
    assert first.speaker == "审判长" and last.speaker == "证人", [(s.speaker, s.text) for s in got.segments]
    with open(tmp_path / "hearing.wav", "rb") as f:  # streamed: the same segments before the whole text
        events = list(client.audio.transcriptions.create(
            file=f, model="gpt-4o-transcribe-diarize", response_format="diarized_json", stream=True,
            known_speaker_names=["审判长", "证人"],
            known_speaker_references=[_data_url(judge[:5 * 16000]), _data_url(witness)]))
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert events[-1].type == "transcript.text.done" and events[-1].text == got.text
    assert [(e.speaker, e.text) for e in segments] == [(s.speaker, s.text) for s in got.segments]
    with open(tmp_path / "hearing.wav", "rb") as f:  # a long recording's job names them the same way
        job = httpx.post(f"{server}/v1/jobs", files={"file": f}, timeout=60, data={
            "known_speaker_names[]": ["审判长", "证人"], "known_speaker_references[]": [judge_44k, _data_url(witness)]})
    assert job.status_code == 202, job.text
    job = job.json()
    while job["status"] in ("queued", "running"):
        time.sleep(0.2)
        job = httpx.get(f"{server}/v1/jobs/{job['id']}").json()
    assert job["status"] == "done", job["error"]
    result = httpx.get(f"{server}{job['result_url']}", params={"format": "diarized_json"}).json()
    assert [(s["speaker"], s["text"]) for s in result["segments"]] == [(s.speaker, s.text) for s in got.segments]
    with open(tmp_path / "hearing.wav", "rb") as f:
        with pytest.raises(openai.BadRequestError) as bad:
            client.audio.transcriptions.create(file=f, model="gpt-4o-transcribe-diarize",
                                               response_format="diarized_json", known_speaker_names=["审判长"],
                                               known_speaker_references=[_data_url(judge[:16000])])
    assert "known_speaker_references[0] (审判长) is 1.0 s" in str(bad.value)
    for name, said in (("说话人2", "is how the machine numbers voices"), ("审判\n\n长", "no control characters")):
        with open(tmp_path / "hearing.wav", "rb") as f:  # a label that would merge two voices, or break a caption
            with pytest.raises(openai.BadRequestError) as bad:
                client.audio.transcriptions.create(file=f, model="gpt-4o-transcribe-diarize", response_format="vtt",
                                                   known_speaker_names=[name],
                                                   known_speaker_references=[_data_url(witness)])
        assert said in str(bad.value)
    with open(tmp_path / "hearing.wav", "rb") as f:  # curl's -F known_speaker_names=… (no []) is read too
        plain = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": f},
                           data={"known_speaker_names": "说话人1", "known_speaker_references": _data_url(witness)})
    assert plain.status_code == 400 and plain.json()["detail"]["code"] == "bad_known_speaker"


def _pcm24(name: str) -> bytes:
    return float_to_pcm16(decode(ZH / name, sample_rate=24000).channel(0))


def test_openai_realtime_transcription_with_the_sdk(server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="not-needed-with-tokens-off", max_retries=0)
    pcm, events = _pcm24("welcome.wav"), []
    with client.realtime.connect(extra_query={"intent": "transcription"}, max_retries=0) as conn:
        conn.send({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-base", "language": "zh", "prompt": "达摩院"}}}}})
        for i in range(0, len(pcm), 9600):  # 200 ms of 24 kHz PCM16 per event
            conn.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + 9600]).decode()})
        conn.send({"type": "input_audio_buffer.commit"})
        for ev in conn:
            events.append(ev)
            if ev.type == "conversation.item.done":
                break
    types = [e.type for e in events]
    assert types[:2] == ["session.created", "session.updated"]
    order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
             "conversation.item.added", "conversation.item.input_audio_transcription.completed",
             "conversation.item.done"]
    assert [t for t in types if t in order] == order
    [done] = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert done.transcript and done.item_id == next(e.item_id for e in events if e.type == "input_audio_buffer.committed")
    # the SDK's own types read the item OpenAI says a commit adds: the user's audio, then its transcript
    added, item_done = events[types.index("conversation.item.added")], events[-1]
    assert added.item.id == item_done.item.id == done.item_id and added.item.role == "user"
    assert added.item.content[0].type == "input_audio" and added.item.content[0].transcript is None
    assert item_done.item.content[0].transcript == done.transcript


def test_openai_realtime_one_big_append_commits_and_times_count_from_the_connections_start(server):
    """A client waiting for its first turn is not idled out; a GA format with no rate (24 kHz), a
    whole 25 s recording in one append (OpenAI takes 15 MiB), a commit with nothing appended (an
    error, as OpenAI's), then more speech: its times go on from the connection's start, not from 0."""
    async def run() -> list[dict]:
        url = server.replace("http", "ws") + "/v1/realtime?intent=transcription"
        got: list[dict] = []

        async def until(kind: str) -> None:
            while not got or got[-1]["type"] != kind:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {
                "input": {"format": {"type": "audio/pcm"}, "transcription": {"language": "zh"}}}}}))
            await until("session.updated")
            await asyncio.sleep(7)  # push-to-talk: no turn yet, past the server's 5 s idle limit (nothing is held)
            big = _pcm24("market_25s.wav")
            assert len(big) > 1 << 20
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(big).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))  # nothing since the last
            await until("error")
            more = _pcm24("custody.wav")
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(more).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            await until("conversation.item.input_audio_transcription.completed")
        return got
    got = asyncio.run(run())
    empty = next(i for i, e in enumerate(got) if e["type"] == "error")
    assert got[empty]["error"]["code"] == "input_audio_buffer_commit_empty"
    first = [e for e in got[:empty] if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert first and all(e["usage"]["type"] == "duration" and e["usage"]["seconds"] > 0 for e in first)
    later = [e["audio_start_ms"] for e in got[empty:] if e["type"] == "input_audio_buffer.speech_started"]
    assert later and min(later) >= 25_000


def test_openai_realtime_beta_events_feed_a_hearing(server):
    """The beta event names, raw over a socket, with ``&hearing=``: the lines are the hearing's record."""
    async def run() -> list[dict]:
        url = server.replace("http", "ws") + "/v1/realtime?intent=transcription&hearing=rt-hearing"
        got = []
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {
                "input_audio_format": "pcm16", "input_audio_transcription": {"model": "whisper-base", "language": "zh"}}}))
            pcm = _pcm24("custody.wav")
            for i in range(0, len(pcm), 9600):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm[i:i + 9600]).decode()}))
            await ws.send(json.dumps({"type": "no.such.event"}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while not got or got[-1]["type"] != "conversation.item.input_audio_transcription.completed":
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
        return got
    got = asyncio.run(run())
    assert got[1]["type"] == "transcription_session.updated"
    types = [e["type"] for e in got]  # beta: the item a commit adds is "created", and no "done"
    created = got[types.index("conversation.item.created")]
    assert types.index("input_audio_buffer.committed") < types.index("conversation.item.created")
    assert created["item"]["id"] == got[-1]["item_id"] and "conversation.item.added" not in types
    assert any(e["type"] == "error" and e["error"]["code"] == "unknown_event" for e in got)
    record = httpx.get(f"{server}/v1/hearings/rt-hearing").json()
    assert got[-1]["transcript"] in [u["text"] for u in record["utterances"]]
