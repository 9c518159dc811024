"""Hostile input against a real server with tokens on: hypothesis over both WebSocket protocols'
messages and PCM frames, schemathesis over the OpenAPI spec. Zero 5xx, zero internal-error closes,
zero tracebacks; the counts are printed in the run's summary (conftest.FUZZ_COUNTS, from
`record_property("fuzz", …)`)."""
import asyncio
import base64
import collections
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courtscribe.clients import stream_file
from courtscribe.streaming.protocol import MAX_FRAME_BYTES, ErrorCode, StreamError, parse_control

from conftest import ZH, issue, start_server

ERROR_CODES = {v for k, v in vars(ErrorCode).items() if not k.startswith("_")}
SERVER_EVENTS = {"ready", "partial", "final", "error", "end", "keepalive", "speaker_update", "store_delayed"}
INTERNAL_ERROR = 1011  # what a WebSocket server closes with when a handler crashed
ABNORMAL = 1006  # the connection dropped with no close frame: the client is left guessing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
hearing_ids = st.none() | st.sampled_from(["fuzz-1", "../../etc", "a/b", ".", "", "庭审-2026", "x" * 200]) | st.text(max_size=70)
starts = st.fixed_dictionaries({"type": st.just("start")}, optional={
    "hearing_id": hearing_ids, "channel": st.integers(-3, 70) | st.sampled_from(["0", None, 1.5, 2**70]),
    "role": st.sampled_from(["审判长", "presiding_judge", "nobody", 7, None]), "speaker": st.text(max_size=80),
    "sample_rate": st.sampled_from([16000, 8000, 48000, 0, -1, 12345, "16000", 2**64]),
    "hotwords": st.lists(st.text(max_size=20), max_size=4) | json_values, "language": st.text(max_size=6),
    "surprise": json_values})
controls = st.sampled_from([{"type": "stop"}, {"type": "keepalive"}, {"type": "pause"}, {"type": None}]) | starts
texts = (controls.map(json.dumps) | json_values.map(json.dumps) | st.text(max_size=200)
         | st.just('{"type": "start", "hearing_id": "fuzz-1"')  # cut off mid-object
         | st.just("[" * 5000 + "]" * 5000))  # deep nesting
frames = (st.binary(max_size=6400) | st.binary(min_size=1, max_size=9).filter(lambda b: len(b) % 2)
          | st.integers(MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES + 3).map(lambda n: b"\x01" * n))
# half the conversations open with a start the server accepts, so the audio path is fuzzed too
good_starts = st.fixed_dictionaries({"type": st.just("start")}, optional={
    "hearing_id": st.sampled_from(["fuzz-1", "fuzz-2", "庭审-2026"]), "channel": st.integers(0, 3),
    "sample_rate": st.sampled_from([8000, 16000, 44100])}).map(json.dumps)
conversations = st.tuples(good_starts | texts, st.lists(texts | frames, max_size=10)).map(lambda c: [c[0], *c[1]])

funasr_configs = st.fixed_dictionaries({}, optional={
    "mode": st.sampled_from(["online", "offline", "2pass", "bogus", 3, None]),
    "chunk_size": st.sampled_from([[5, 10, 5], [0, 0, 0], [-1], "5,10,5", None]) | json_values,
    "hotwords": st.sampled_from(['{"张三": 20}', '{"x": "20"}', "张三 20", "{", "", None]) | json_values,
    "audio_fs": st.sampled_from([16000, 8000, 0, -16000, "16k", None, 1e300]) | json_values,
    "wav_name": json_values, "is_speaking": json_values, "itn": json_values, "wav_format": json_values})
funasr_conversations = st.tuples(funasr_configs.map(json.dumps) | texts, st.lists(texts | frames, max_size=8))


# OpenAI Realtime: session updates of every shape (GA and beta), appends of any value, commits, clears
pcm_formats = json_values | st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["audio/pcm", "audio/pcmu", 3]),
    "rate": st.sampled_from([24000, 16000, 24000.0, 0, "16000", None, 1e300, float("nan")])})
transcriptions = json_values | st.fixed_dictionaries({}, optional={
    "language": json_values, "prompt": json_values, "model": json_values})
audio_inputs = json_values | st.fixed_dictionaries({}, optional={
    "format": pcm_formats, "transcription": transcriptions, "turn_detection": json_values})
realtime_sessions = json_values | st.fixed_dictionaries({}, optional={
    "type": json_values, "audio": json_values | st.fixed_dictionaries({}, optional={"input": audio_inputs}),
    "input_audio_format": json_values | st.sampled_from(["pcm16", "g711_ulaw"]),
    "input_audio_transcription": transcriptions, "turn_detection": json_values})
realtime_events = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["session.update", "transcription_session.update"]),
                           "session": realtime_sessions}),
    st.fixed_dictionaries({"type": st.just("input_audio_buffer.append"),
                           "audio": st.binary(max_size=4800).map(lambda b: base64.b64encode(b).decode()) | json_values}),
    st.sampled_from([{"type": "input_audio_buffer.commit"}, {"type": "input_audio_buffer.clear"}, {"type": None}]),
).map(json.dumps) | texts
REALTIME_EVENTS = {"session.created", "session.updated", "transcription_session.updated", "error",
                   "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                   "input_audio_buffer.committed", "input_audio_buffer.cleared",
                   "conversation.item.added", "conversation.item.created", "conversation.item.done",
                   "conversation.item.input_audio_transcription.delta",
                   "conversation.item.input_audio_transcription.segment",
                   "conversation.item.input_audio_transcription.completed"}


class Court:
    def __init__(self, url: str, token: str, log: Path):
        self.url, self.token, self.log, self._seen = url, token, log, 0

    def new_tracebacks(self) -> str:
        """The server log since the last call, when it holds a traceback (a handler crashed: the
        client may still see a clean close, so the log is the witness)."""
        text = self.log.read_text()
        fresh, self._seen = text[self._seen:], len(text)
        return fresh if "Traceback" in fresh else ""


@pytest.fixture(scope="module")
def court(tmp_path_factory):
    """A server with tokens on (what a court exposes) and an admin token, so every request reaches
    the handlers instead of stopping at 401."""
    home = tmp_path_factory.mktemp("fuzz")
    token = issue(home, "admin", "模糊测试")
    proc, url = start_server(home, COURTSCRIBE_INSECURE_NO_AUTH="0", COURTSCRIBE_RATE_LIMIT="1000000/minute",
                             COURTSCRIBE_MAX_STREAMS="4", COURTSCRIBE_IDLE_TIMEOUT_S="5")
    yield Court(url, token, home / "server.log")
    proc.terminate()
    proc.wait(timeout=30)
    log = (home / "server.log").read_text()
    assert "Traceback" not in log, "the server logged a traceback"
    assert " 500 " not in log


@given(st.text(max_size=300) | controls.map(json.dumps) | json_values.map(json.dumps))
@settings(max_examples=600, deadline=None)
def test_any_text_frame_parses_or_is_refused_with_a_code(text):
    try:
        parse_control(text)
    except StreamError as err:
        assert err.code in ERROR_CODES and err.message


async def _converse(url: str, token: str, sent: list, counts: collections.Counter) -> None:
    """Sends ``sent`` as one client would, then stop; reads every reply until the server closes."""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None, open_timeout=20) as ws:
        async def read():
            async for reply in ws:
                event = json.loads(reply)
                if event.get("is_end"):  # FunASR: the end-of-input acknowledgement; the socket stays open
                    await ws.close()
                counts["replies"] += 1
                if "type" in event:  # native protocol
                    assert event["type"] in SERVER_EVENTS, event
                    if event["type"] == "error":
                        assert event["code"] in ERROR_CODES, event
                        counts[f"error:{event['code']}"] += 1
                elif event.get("is_end"):  # FunASR's end-of-input acknowledgement
                    assert {"mode", "wav_name", "is_final"} <= event.keys(), event
                else:  # FunASR protocol: its reply shape, whatever came in
                    assert {"mode", "text", "is_final"} <= event.keys(), event
        reader = asyncio.create_task(read())
        try:
            for frame in sent:
                await ws.send(frame)
                counts["frames"] += 1
            await ws.send(json.dumps({"type": "stop"}) if "/v1/" in url
                          else json.dumps({"is_speaking": False, "is_end": True}))
        except websockets.ConnectionClosed:
            pass
        done, _ = await asyncio.wait({reader}, timeout=30)
        if not done:
            await ws.close()
        assert done, f"the server kept the socket open 30 s after the client's stop: {sent!r:.300}"
        try:
            await reader
        except websockets.ConnectionClosed:
            pass
        code = ws.close_code
    counts["conversations"] += 1
    counts[f"close:{code}"] += 1
    assert code not in (INTERNAL_ERROR, ABNORMAL), f"the server closed with {code} after {sent!r:.300}"


async def _realtime_converse(url: str, token: str, sent: list, counts: collections.Counter) -> None:
    """Sends ``sent``, then an event of a type no one serves, as a marker: every event before it was
    taken once its error comes. Every reply is one of OpenAI's events; the connection stays up."""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None, open_timeout=20) as ws:
        for frame in [*sent, json.dumps({"type": "fuzz.done"})]:
            await ws.send(frame)
            counts["frames"] += 1
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 60))
            counts["replies"] += 1
            assert event["type"] in REALTIME_EVENTS, event
            if event["type"] == "error":
                assert event["error"]["type"] == "invalid_request_error" and event["error"]["message"], event
                counts[f"error:{event['error']['code']}"] += 1
                if "fuzz.done" in event["error"]["message"]:
                    break
    counts["conversations"] += 1


def _fuzz(name: str, court: Court, url: str, strategy, to_frames, examples: int, converse=_converse) -> dict:
    counts = collections.Counter()

    @given(strategy)
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(example):
        asyncio.run(converse(url, court.token, to_frames(example), counts))
        crash = court.new_tracebacks()
        counts["crashes"] += bool(crash)
        assert not crash, crash[-3000:]

    run()
    print(name, dict(counts))
    return {name: dict(sorted(counts.items()))}


def _still_serves(court: Court) -> None:
    """After the fuzzing, a real clip still transcribes and the server answers health checks."""
    assert httpx.get(f"{court.url}/healthz", timeout=10).json()["status"] == "ok"
    result = asyncio.run(stream_file(court.url.replace("http", "ws") + "/v1/stream", ZH / "justice.wav",
                                     token=court.token, speed=0))
    assert result.finals and "正义" in result.text


def test_native_protocol_survives_any_conversation(court, record_property):
    record_property("fuzz", _fuzz("native /v1/stream", court, court.url.replace("http", "ws") + "/v1/stream", conversations, lambda c: c, 80))
    _still_serves(court)


def test_funasr_protocol_survives_any_conversation(court, record_property):
    record_property("fuzz", _fuzz("funasr /", court, court.url.replace("http", "ws") + "/?token=" + court.token, funasr_conversations,
          lambda c: [c[0], *c[1]], 80))
    _still_serves(court)


def test_realtime_protocol_survives_any_session_update(court, record_property):
    """OpenAI Realtime events of any shape: a malformed ``session.update`` (a string for an object,
    a number for a prompt) is an ``error`` event and the session goes on; it used to crash the
    handler (the socket closed, no error)."""
    url = court.url.replace("http", "ws") + "/v1/realtime?intent=transcription"
    record_property("fuzz", _fuzz("realtime /v1/realtime", court, url, st.lists(realtime_events, max_size=8),
                                  lambda c: c, 150, converse=_realtime_converse))
    _still_serves(court)


def test_openapi_spec_under_schemathesis(court, tmp_path, record_property):
    """Every HTTP operation in /openapi.json, positive and negative inputs and stateful sequences
    (create a hearing, then use its id): no response is a 5xx."""
    url, token = court.url, court.token
    report = tmp_path / "schemathesis.json"
    run = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                          "-H", f"Authorization: Bearer {token}", "--checks", "not_a_server_error",
                          "--phases", "coverage,fuzzing,stateful", "-n", "8", "-w", "1", "--seed", "20261122",
                          "--request-timeout", "60", "--report", "json", "--report-json-path", str(report)],
                         capture_output=True, text=True, timeout=900)
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    record_property("fuzz", {"schemathesis /openapi.json": {
        "operations": summary["operations"]["tested"], "cases": cases["generated"],
        "server_errors": cases["with_failures"], "errored": cases["errored"] + len(summary["errors"])}})
    print(run.stdout[-3000:])
    assert summary["operations"]["tested"] == summary["operations"]["total"] > 20
    assert cases["generated"] > 500
    assert cases["with_failures"] == 0 and not summary["failures"], run.stdout[-6000:]
    assert cases["errored"] == 0 and not summary["errors"], run.stdout[-6000:]
