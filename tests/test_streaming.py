"""Live streaming end to end: a real server process, real WebSockets, real clips in real time."""
import asyncio
import json
import time

import httpx
import jiwer
import numpy as np
import pytest
import websockets

from courtscribe.text import for_scoring
from courtscribe.audio import decode, float_to_pcm16
from courtscribe.clients import stream_file

pytestmark = pytest.mark.slow


def ws_url(server: str, path: str) -> str:
    return server.replace("http://", "ws://") + path


async def collect_subscriber(url: str, until_finals: int | asyncio.Future, timeout: float = 60) -> list[dict]:
    """A screen's events until it has seen ``until_finals`` finals (a number, or a future of one: how
    many the source got, known once it ends)."""
    events: list[dict] = []
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "subscribed"
        deadline = time.monotonic() + timeout

        def want() -> float:
            if isinstance(until_finals, int):
                return until_finals
            return until_finals.result() if until_finals.done() else float("inf")

        while sum(e["type"] == "final" for e in events) < want() and time.monotonic() < deadline:
            try:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), min(0.5, deadline - time.monotonic()))))
            except asyncio.TimeoutError:
                continue
    return events


def test_native_protocol_real_time_with_subscriber(server, data_dir, manifest):
    async def main():
        finals = asyncio.get_running_loop().create_future()  # as many as the source gets
        sub = asyncio.create_task(collect_subscriber(ws_url(server, "/v1/hearings/h-native/events"), finals))
        await asyncio.sleep(0.3)
        source = asyncio.create_task(stream_file(ws_url(server, "/v1/stream"), data_dir / "zh-smoke" / "justice.wav",
                                                 hearing_id="h-native", role="审判长"))
        await asyncio.sleep(2.0)
        status = (await asyncio.to_thread(httpx.get, f"{server}/v1/hearings/h-native/status")).json()
        result = await source
        finals.set_result(len(result.finals))
        return result, await sub, status

    result, seen, status = asyncio.run(main())
    assert status["sources"] == [{"channel": 0, "speaker": "审判长"}]  # what a screen opened now shows
    # the channel panel's feed: the source connected, its level a few times a second, louder while speaking
    assert {"type": "channel", "hearing_id": "h-native", "channel": 0, "speaker": "审判长", "connected": True} in seen
    levels = [e for e in seen if e["type"] == "level"]
    assert len(levels) >= 8 and all(-90 <= e["rms_db"] <= e["peak_db"] <= 0 for e in levels)
    assert max(e["rms_db"] for e in levels if e["speech"]) > -40
    assert not [e for e in result.events if e["type"] in ("level", "channel")]  # screens only, not the source
    assert result.events[-1]["type"] == "end"
    finals = result.finals
    assert finals, result.events
    text = result.text
    assert jiwer.cer(for_scoring(manifest["justice.wav"]["text"]), for_scoring(text)) <= 0.25, text
    for f in finals:
        u = f["utterance"]
        assert 0 <= u["start_ms"] <= u["end_ms"] <= 13100
        assert u["speaker"] == "审判长" and u["role"] == "presiding_judge"
        assert all(u["start_ms"] <= t["start_ms"] <= t["end_ms"] <= u["end_ms"] for t in u["tokens"])
    # partials come while the utterance is still being spoken, and carry the id of their final
    early = 0
    for f in finals:
        uid, end_ms = f["utterance_id"], f["utterance"]["end_ms"]
        mine = [p for p in result.partials if p["utterance_id"] == uid]
        if mine and result.audio_time_sent_at(mine[0]["_received"]) < end_ms:
            early += 1
    assert early >= 1, "no partial arrived before its utterance ended"
    assert {e["utterance_id"] for e in result.partials} <= {f["utterance_id"] for f in finals}
    # the subscriber saw the same finals without sending audio
    assert [e["utterance"]["text"] for e in seen if e["type"] == "final"] == [f["utterance"]["text"] for f in finals]


def test_funasr_compatible_2pass(server, data_dir, manifest):
    """What FunASR's funasr_wss_client.py sends and expects, byte for byte in shape."""
    audio = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    pcm = float_to_pcm16(audio)

    async def main():
        msgs = []
        async with websockets.connect(ws_url(server, "/"), subprotocols=["binary"]) as ws:
            await ws.send(json.dumps({"mode": "2pass", "chunk_size": [5, 10, 5], "chunk_interval": 10,
                                      "encoder_chunk_look_back": 4, "decoder_chunk_look_back": 0,
                                      "audio_fs": 16000, "wav_name": "justice", "wav_format": "pcm",
                                      "is_speaking": True, "hotwords": json.dumps({"正义": 20}), "itn": True}))
            stride = 16000 * 60 * 5 // 1000 // 10 * 2  # 60 ms of PCM16, as the client sends it
            t0 = time.perf_counter()
            for i in range(0, len(pcm), stride):
                await ws.send(pcm[i:i + stride])
                await asyncio.sleep(max(0.0, t0 + (i + stride) / 32000 - time.perf_counter()))
                while True:
                    try:
                        msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 0.001)))
                    except asyncio.TimeoutError:
                        break
            await ws.send(json.dumps({"is_speaking": False}))
            async for raw in ws:
                msgs.append(json.loads(raw))
                if msgs[-1]["is_final"]:
                    break
        return msgs

    msgs = asyncio.run(main())
    assert all(set(m) == {"mode", "wav_name", "text", "is_final", "timestamp", "stamp_sents"} for m in msgs)
    assert {m["mode"] for m in msgs} <= {"2pass-online", "2pass-offline"}
    online = [m for m in msgs if m["mode"] == "2pass-online"]
    offline = [m for m in msgs if m["mode"] == "2pass-offline" and m["text"]]
    assert online and offline
    assert msgs[-1]["is_final"] is True and sum(m["is_final"] for m in msgs) == 1
    text = "".join(m["text"] for m in offline)
    assert jiwer.cer(for_scoring(manifest["justice.wav"]["text"]), for_scoring(text)) <= 0.25, text
    for m in offline:
        stamps = json.loads(m["timestamp"])
        assert stamps and all(0 <= a <= b <= 13100 for a, b in stamps)
        assert m["stamp_sents"] and {"text_seg", "punc", "start", "end", "ts_list"} == set(m["stamp_sents"][0])


def test_funasr_offline_mode_whole_file(server, data_dir):
    wav = (data_dir / "zh-smoke" / "news_kfc.wav").read_bytes()

    async def main():
        async with websockets.connect(ws_url(server, "/funasr")) as ws:
            await ws.send(json.dumps({"mode": "offline", "wav_name": "kfc", "wav_format": "wav", "is_speaking": True}))
            await ws.send(wav)
            await ws.send(json.dumps({"is_speaking": False}))
            return json.loads(await asyncio.wait_for(ws.recv(), 60))

    reply = asyncio.run(main())
    assert reply["mode"] == "offline" and reply["is_final"] is True and reply["wav_name"] == "kfc"
    assert "肯德基" in reply["text"]


async def _send_start(ws, **extra):
    await ws.send(json.dumps({"type": "start", "sample_rate": 16000, **extra}))
    return json.loads(await ws.recv())


def test_bad_input_gets_error_codes_and_the_stream_goes_on(server, data_dir):
    clip = decode(data_dir / "zh-smoke" / "news_kfc.wav").channel(0)

    async def main():
        codes = []
        async with websockets.connect(ws_url(server, "/v1/stream"), max_size=None) as ws:
            await ws.send(b"\x00\x01" * 100)  # audio before start
            codes.append(json.loads(await ws.recv())["code"])
            await ws.send("{not json")
            codes.append(json.loads(await ws.recv())["code"])
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "colour": "red"}))
            codes.append(json.loads(await ws.recv())["code"])
            await ws.send(json.dumps({"type": "start", "sample_rate": 12345}))
            codes.append(json.loads(await ws.recv())["code"])
            assert (await _send_start(ws, hearing_id="h-bad"))["type"] == "ready"
            await ws.send(b"\x00" * (2 << 20))  # 2 MB in one frame
            codes.append(json.loads(await ws.recv())["code"])
            pcm = float_to_pcm16(clip)
            for i in range(0, len(pcm), 6401):  # the stream still works; odd frames are one byte stream
                await ws.send(pcm[i:i + 6401])
            await ws.send(json.dumps({"type": "stop"}))
            events = [json.loads(m) async for m in ws]
        return codes, events

    codes, events = asyncio.run(main())
    assert codes == ["not_started", "bad_json", "bad_message", "bad_sample_rate", "frame_too_large"]
    assert any(e["type"] == "final" and "肯德基" in e["utterance"]["text"] for e in events), events
    assert events[-1]["type"] == "end"


def test_8khz_source_is_resampled(server, data_dir):
    x = decode(data_dir / "zh-smoke" / "news_kfc.wav", sample_rate=8000).channel(0)

    async def main():
        async with websockets.connect(ws_url(server, "/v1/stream")) as ws:
            assert (await _send_start(ws, sample_rate=8000))["sample_rate"] == 8000
            for i in range(0, x.size, 1600):
                await ws.send(float_to_pcm16(x[i:i + 1600]))
            await ws.send(json.dumps({"type": "stop"}))
            return [json.loads(m) async for m in ws]

    events = asyncio.run(main())
    text = "".join(e["utterance"]["text"] for e in events if e["type"] == "final")
    assert "大学生" in text and "漏洞" in text, text  # telephone-band audio: the gist, not every character


def test_disconnect_mid_utterance_still_finalizes_for_subscribers(server, data_dir):
    clip = decode(data_dir / "zh-smoke" / "news_foxconn.wav").channel(0)

    async def main():
        sub = asyncio.create_task(collect_subscriber(ws_url(server, "/v1/hearings/h-cut/events"), 1, timeout=60))
        await asyncio.sleep(0.3)
        ws = await websockets.connect(ws_url(server, "/v1/stream"))
        await _send_start(ws, hearing_id="h-cut")
        for i in range(0, 16000 * 5, 3200):  # 5 s of an 8 s sentence, then the cable is pulled
            await ws.send(float_to_pcm16(clip[i:i + 3200]))
        ws.transport.abort()
        return await sub

    seen = asyncio.run(main())
    finals = [e for e in seen if e["type"] == "final"]
    assert finals and finals[0]["utterance"]["text"], seen
    assert finals[0]["utterance"]["end_ms"] <= 5000


def wait_until_idle(server: str, timeout: float = 60) -> None:
    """Streams of earlier tests finish their last finals before their slot is free again."""
    import httpx

    deadline = time.monotonic() + timeout
    while httpx.get(f"{server}/healthz").json()["live_streams"] and time.monotonic() < deadline:
        time.sleep(0.2)


def test_busy_when_full_and_idle_timeout(server):
    wait_until_idle(server)

    async def main():
        a = await websockets.connect(ws_url(server, "/v1/stream"))
        b = await websockets.connect(ws_url(server, "/v1/stream"))
        c = await websockets.connect(ws_url(server, "/v1/stream"))
        assert (await _send_start(a))["type"] == "ready"
        assert (await _send_start(b))["type"] == "ready"
        busy = await _send_start(c)
        rest_c = [json.loads(m) async for m in c]
        # a and b send nothing: the server closes them after its idle timeout (5 s in tests)
        rest_a = [json.loads(m) async for m in a]
        await b.close()
        return busy, rest_c, rest_a

    busy, rest_c, rest_a = asyncio.run(main())
    assert busy == {"type": "error", "code": "busy", "message": busy["message"]}
    assert rest_c[-1]["type"] == "end"
    assert [e.get("code") for e in rest_a if e["type"] == "error"] == ["idle_timeout"]


def test_pcm_never_reaches_memory_without_bound(server, data_dir):
    """A client replaying 60 s of audio as fast as it can: accepted, and the server stays healthy."""
    clip = decode(data_dir / "zh-smoke" / "market_25s.wav").channel(0)
    long = np.concatenate([clip, clip, clip[: 16000 * 10]])

    async def main():
        async def chunks():
            for i in range(0, long.size, 3200):
                yield long[i:i + 3200]
        from courtscribe.clients import stream

        return await stream(ws_url(server, "/v1/stream"), chunks(), speed=0)

    result = asyncio.run(main())
    assert len(result.finals) >= 2
    assert all(f["utterance"]["end_ms"] <= 60_100 for f in result.finals)


def test_funasr_offline_mode_long_pcm(server, data_dir):
    """A whole 30 s recording as raw 48 kHz PCM (2.9 MB): more than one live frame may hold."""
    import soundfile as sf

    x, rate = sf.read(data_dir / "zh-smoke" / "vad_30s_48k.wav", dtype="int16")
    pcm = x.tobytes()

    async def main():
        async with websockets.connect(ws_url(server, "/funasr"), max_size=None) as ws:
            await ws.send(json.dumps({"mode": "offline", "wav_name": "long", "wav_format": "pcm",
                                      "audio_fs": rate, "is_speaking": True}))
            for i in range(0, len(pcm), 96000):
                await ws.send(pcm[i:i + 96000])
            await ws.send(json.dumps({"is_speaking": False}))
            return json.loads(await asyncio.wait_for(ws.recv(), 120))

    reply = asyncio.run(main())
    assert "error" not in reply, reply
    assert reply["is_final"] is True and len(reply["text"]) > 10
    assert all(0 <= a <= b <= 31000 for a, b in json.loads(reply["timestamp"]))


def _cli(*args, timeout=120):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "courtscribe", "stream", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_streams_a_file_and_prints_finals_as_lines(server, data_dir):
    proc = _cli(str(data_dir / "zh-smoke" / "news_kfc.wav"), "--url", ws_url(server, "/v1/stream"), "--speed", "0",
                "--role", "原告")
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.splitlines()
    assert line.startswith("[") and "原告：" in line and "肯德基" in line, line


def test_cli_streams_a_live_input_device(server, data_dir):
    """--mic reads an FFmpeg input device; a lavfi graph playing a clip stands in for the microphone."""
    device = f"lavfi:amovie={data_dir / 'zh-smoke' / 'news_kfc.wav'}"
    proc = _cli("--mic", "--device", device, "--url", ws_url(server, "/v1/stream"))
    assert proc.returncode == 0, proc.stderr
    assert "肯德基" in proc.stdout, proc.stdout + proc.stderr


def test_cli_names_a_device_it_cannot_open(server):
    proc = _cli("--mic", "--device", "alsa:no-such-card", "--url", ws_url(server, "/v1/stream"))
    assert proc.returncode != 0
    assert "cannot open audio device 'alsa:no-such-card'" in proc.stderr
    proc = _cli("--mic", "--device", "nonsense", "--url", ws_url(server, "/v1/stream"))
    assert proc.returncode != 0 and "expected FORMAT:NAME" in proc.stderr


async def _read_until(ws, kind: str) -> list[dict]:
    out: list[dict] = []
    while not out or out[-1]["type"] != kind:
        out.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
    return out


async def _source(kind: str, server: str, hearing: str, pcm16k: bytes) -> None:
    """One source of each protocol, its audio at 16 kHz, into ``hearing``; returns when it is done."""
    ws_base = server.replace("http://", "ws://")
    if kind == "native":
        async with websockets.connect(f"{ws_base}/v1/stream") as ws:
            await ws.send(json.dumps({"type": "start", "hearing_id": hearing}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for i in range(0, len(pcm16k), 6400):
                await ws.send(pcm16k[i:i + 6400])
                await asyncio.sleep(0.1)  # twice real time: partials come while the audio runs
            await ws.send(json.dumps({"type": "stop"}))
            async for raw in ws:
                if json.loads(raw).get("type") == "done":
                    break
    elif kind.startswith("funasr"):
        async with websockets.connect(f"{ws_base}/?hearing={hearing}", subprotocols=["binary"]) as ws:
            await ws.send(json.dumps({"mode": kind.split("-")[1], "chunk_size": [5, 10, 5], "wav_name": "src",
                                      "wav_format": "pcm", "audio_fs": 16000, "is_speaking": True}))
            for i in range(0, len(pcm16k), 1920):
                await ws.send(pcm16k[i:i + 1920])
                await asyncio.sleep(0.03)
            await ws.send(json.dumps({"is_speaking": False}))
            async for raw in ws:
                if json.loads(raw)["is_final"]:
                    break
    else:  # OpenAI Realtime (transcription intent)
        import base64

        async with websockets.connect(f"{ws_base}/v1/realtime?intent=transcription&hearing={hearing}") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}))
            for i in range(0, len(pcm16k), 6400):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm16k[i:i + 6400]).decode()}))
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            async for raw in ws:
                if json.loads(raw)["type"] == "conversation.item.input_audio_transcription.completed":
                    break


@pytest.mark.parametrize("kind", ["native", "funasr-2pass", "funasr-online", "realtime"])
def test_every_source_reaches_the_hearings_screens_and_captions(server, data_dir, kind):
    """Whatever protocol a courtroom streams with, the clerk's events socket and the captions feed see
    its partials and finals (the live layer publishes them, not each protocol adapter)."""
    hearing = f"h-src-{kind}"
    assert httpx.post(f"{server}/v1/hearings", json={"id": hearing, "public": True}).status_code == 201
    pcm = float_to_pcm16(decode(data_dir / "zh-smoke" / "justice.wav").channel(0))

    async def main():
        async with websockets.connect(ws_url(server, f"/v1/hearings/{hearing}/events")) as screen, \
                websockets.connect(ws_url(server, f"/v1/hearings/{hearing}/captions")) as captions:
            for ws in (screen, captions):  # both subscribed before the first word
                assert json.loads(await ws.recv())["type"] == "subscribed"
            seen = asyncio.gather(_read_until(screen, "final"), _read_until(captions, "cue"))
            await _source(kind, server, hearing, pcm)
            return await seen

    events, cues = asyncio.run(main())
    kinds = [e["type"] for e in events]
    assert "partial" in kinds and "final" in kinds, kinds
    assert cues[-1]["lines"], cues[-1]
    record = httpx.get(f"{server}/v1/hearings/{hearing}").json()
    finals = [e["utterance"]["id"] for e in events if e["type"] == "final"]
    assert finals and set(finals) <= {u["id"] for u in record["utterances"]}


def test_a_long_utterance_reaches_the_screens_in_pieces_and_settled_words_stay(server, data_dir):
    """market_25s.wav: one speaker for 21.7 s without a pause the VAD ends on. Its finals come in
    pieces while it is spoken (streaming/pieces.py), each going on from the one before, and every
    partial keeps the words earlier partials of its piece settled (streaming/stability.py)."""
    from courtscribe.streaming.pieces import HARD_MS

    result = asyncio.run(stream_file(ws_url(server, "/v1/stream"), data_dir / "zh-smoke" / "market_25s.wav",
                                     hearing_id="h-long", role="审判长", speed=2.0))
    assert result.events[-1]["type"] == "end"
    said = sorted((f["utterance"] for f in result.finals if f["utterance"]["text"] or f["utterance"]["flags"]),
                  key=lambda u: u["start_ms"])
    stretches: list[list[dict]] = []  # an utterance the VAD began, and the pieces that go on from it
    for u in said:
        if "continues" in u["flags"]:
            assert stretches and stretches[-1][-1]["end_ms"] == u["start_ms"]  # nothing between them lost
            stretches[-1].append(u)
        else:
            stretches.append([u])
    longest = max(stretches, key=len)
    assert len(longest) >= 3 and longest[-1]["end_ms"] - longest[0]["start_ms"] >= 15_000, said
    assert all(u["end_ms"] - u["start_ms"] <= HARD_MS + 200 for u in longest[:-1])
    for uid in {p["utterance_id"] for p in result.partials}:
        mine = [p for p in result.partials if p["utterance_id"] == uid]
        settled = [p["text"][:p["stable"]] for p in mine]
        assert all(b.startswith(a) for a, b in zip(settled, settled[1:])), settled
        assert len({p["continues"] for p in mine}) == 1
    record = httpx.get(f"{server}/v1/hearings/h-long").json()
    stored = {u["id"]: u["flags"] for u in record["utterances"]}
    assert all(stored[u["id"]] == u["flags"] for u in said)


def test_frames_are_one_byte_stream_whatever_their_sizes():
    """A frame that ends inside a sample leaves its last byte for the next: the samples are those
    of the whole stream, at 16 kHz and resampled alike."""
    from courtscribe.streaming.live import PcmInput

    pcm = float_to_pcm16(np.sin(np.arange(44100, dtype=np.float32) / 20) * 0.5)
    for rate in (16000, 44100):
        whole = PcmInput(rate).convert(pcm)
        cut = PcmInput(rate)
        parts = [cut.convert(pcm[i:i + 4233]) for i in range(0, len(pcm), 4233)]
        assert np.array_equal(np.concatenate(parts), whole)
