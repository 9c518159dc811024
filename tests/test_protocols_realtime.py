"""OpenAI's Realtime transcription protocol against a real server, as push-to-talk clients and
scripts use it: manual commits (``turn_detection: null``), commits of silence, clears, malformed
session updates, a rate changed after audio began, appends of many seconds."""
import asyncio
import base64
import json

import httpx
import websockets

from courtscribe.audio import decode, float_to_pcm16
from courtscribe.cluster.proxy import MAX_WS_MESSAGE
from courtscribe.server.realtime import MAX_APPEND_B64, MAX_APPEND_BYTES

from conftest import ZH

COMPLETED = "conversation.item.input_audio_transcription.completed"
MANUAL = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
    "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"language": "zh"}, "turn_detection": None}}}}
SERVER_VAD = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
    "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"language": "zh"}}}}}
COMMIT, CLEAR = {"type": "input_audio_buffer.commit"}, {"type": "input_audio_buffer.clear"}


def _pcm(name: str, rate: int = 24000) -> bytes:
    return float_to_pcm16(decode(ZH / name, sample_rate=rate).channel(0))


def _appends(pcm: bytes, size: int = 9600) -> list[dict]:
    return [{"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + size]).decode()}
            for i in range(0, len(pcm), size)]


class _Client:
    """One Realtime connection: events out, every event the server sent kept in order."""

    def __init__(self, ws):
        self.ws, self.got = ws, []

    async def send(self, *events: dict) -> None:
        for ev in events:
            await self.ws.send(json.dumps(ev))

    async def until(self, *kinds: str) -> dict:
        """The next event of one of ``kinds`` (those before it kept too)."""
        while True:
            ev = json.loads(await asyncio.wait_for(self.ws.recv(), 120))
            self.got.append(ev)
            if ev["type"] in kinds:
                return ev

    def of(self, kind: str) -> list[dict]:
        return [ev for ev in self.got if ev["type"] == kind]


def _talk(server: str, script, query: str = "") -> _Client:
    async def run() -> _Client:
        url = server.replace("http", "ws") + "/v1/realtime?intent=transcription" + query
        async with websockets.connect(url, max_size=None) as ws:
            client = _Client(ws)
            await client.until("session.created")
            await script(client)
            return client
    return asyncio.run(run())


def test_a_manual_commit_is_one_item_with_all_its_text_and_the_record_keeps_every_line(server):
    """With ``turn_detection: null`` the client decides the turns: a commit is one item (one
    ``committed``, one ``completed`` holding all its text, no VAD events), while the hearing's record
    still gets each line; its usage is the audio committed."""
    pcm = _pcm("justice.wav")

    async def script(c: _Client) -> None:
        await c.send(MANUAL)
        assert (await c.until("session.updated"))["session"]["audio"]["input"]["turn_detection"] is None
        await c.send(*_appends(pcm), COMMIT)
        await c.until(COMPLETED)
    c = _talk(server, script, "&hearing=rt-manual")
    [committed], [done] = c.of("input_audio_buffer.committed"), c.of(COMPLETED)
    assert committed["item_id"] == done["item_id"] and committed["previous_item_id"] is None
    assert not c.of("input_audio_buffer.speech_started") and not c.of("error"), c.got
    lines = [u["text"] for u in httpx.get(f"{server}/v1/hearings/rt-manual").json()["utterances"]]
    assert lines and all(line in done["transcript"] for line in lines), (lines, done["transcript"])
    assert abs(done["usage"]["seconds"] - len(pcm) / 2 / 24000) < 0.05


def test_every_commit_is_answered_even_one_of_silence(server):
    """OpenAI answers each commit with ``committed`` (an empty one with an error): a push-to-talk
    client waits for it, and a commit of silence used to get nothing at all."""
    silence = bytes(2 * 24000 * 2)

    async def script(c: _Client) -> None:
        for update in (SERVER_VAD, MANUAL):
            await c.send(update, *_appends(silence), COMMIT)
            await c.until(COMPLETED)
        await c.send(COMMIT)  # nothing appended since the last
        await c.until("error")
    c = _talk(server, script)
    committed, done = c.of("input_audio_buffer.committed"), c.of(COMPLETED)
    assert len(committed) == len(done) == 2 and [d["transcript"] for d in done] == ["", ""]
    assert committed[1]["previous_item_id"] == committed[0]["item_id"]
    assert c.got[-1]["error"]["code"] == "input_audio_buffer_commit_empty"


BAD_UPDATES = [
    {"type": "session.update", "session": "x"},
    {"type": "session.update", "session": {"audio": "x"}},
    {"type": "session.update", "session": {"audio": {"input": ["x"]}}},
    {"type": "transcription_session.update", "session": {"input_audio_transcription": "whisper-1"}},
    {"type": "session.update", "session": {"audio": {"input": {"format": ["pcm"]}}}},
    {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}},
    {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": 5}}}}},
    {"type": "session.update", "session": {"audio": {"input": {"turn_detection": "none"}}}},
    # a good rate beside a bad prompt: all of the update or none of it
    {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000},
                                                               "transcription": {"prompt": 5}}}}},
]


def test_malformed_session_updates_get_an_error_and_change_nothing(server):
    """Each used to crash the handler (AttributeError: the socket closed 1000, no error event)."""
    async def script(c: _Client) -> None:
        for update in BAD_UPDATES:
            await c.send(update)
            await c.until("error")
        await c.send({"type": "session.update", "session": {"type": "transcription"}})
        await c.until("session.updated")
    c = _talk(server, script)
    errors = c.of("error")
    assert len(errors) == len(BAD_UPDATES) and {e["error"]["type"] for e in errors} == {"invalid_request_error"}
    assert c.got[-1]["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_a_rate_changed_after_audio_began_is_the_rate_of_the_audio_after_it(server):
    """A microphone's first 100 ms went out before the update that says its rate: the rest is
    read at the new rate (before, at the first one, while ``session.updated`` said the new one)."""
    at24, at16 = _pcm("welcome.wav", 24000), _pcm("welcome.wav", 16000)

    async def script(c: _Client) -> None:
        await c.send(MANUAL, *_appends(at24[:4800]))
        await c.until("session.updated")
        await c.send({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm",
                                                                                       "rate": 16000}}}}})
        assert (await c.until("session.updated"))["session"]["audio"]["input"]["format"]["rate"] == 16000
        await c.send(*_appends(at16[3200:], 3200), COMMIT)
        await c.until(COMPLETED)
    c = _talk(server, script)
    [done] = c.of(COMPLETED)
    assert abs(done["usage"]["seconds"] - len(at16) / 2 / 16000) < 0.05, done["usage"]
    assert done["transcript"] and not c.of("error")


def test_an_append_of_many_seconds_is_taken_and_one_too_large_is_refused_in_words(server):
    """A script sends a whole recording in one append (OpenAI takes 15 MiB of audio in one): 80 s
    of 24 kHz audio is 5 MB of base64, past the socket's old 4 MiB limit (closed 1009, no error).
    The largest append OpenAI takes fits the socket; a larger one is an error, and the session
    goes on."""
    biggest = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * MAX_APPEND_B64})
    assert len(biggest) <= MAX_WS_MESSAGE  # what `serve` and the cluster's proxy take
    speech = _pcm("welcome.wav")
    long = speech + bytes(80 * 24000 * 2 - len(speech))

    async def script(c: _Client) -> None:
        await c.send(SERVER_VAD, {"type": "input_audio_buffer.append", "audio": base64.b64encode(long).decode()},
                     COMMIT)
        await c.until(COMPLETED)
        await c.send(MANUAL, {"type": "input_audio_buffer.append",
                              "audio": base64.b64encode(bytes(MAX_APPEND_BYTES)).decode()}, CLEAR)
        await c.until("input_audio_buffer.cleared")
        await c.send({"type": "input_audio_buffer.append", "audio": "A" * (MAX_APPEND_B64 + 4)})
        await c.until("error")
    c = _talk(server, script)
    assert any(d["transcript"] for d in c.of(COMPLETED))
    [too_large] = c.of("error")
    assert too_large["error"]["code"] == "input_audio_buffer_append_too_large", too_large


def test_a_clear_drops_what_is_not_transcribed_yet_and_never_claims_more(server):
    """With manual commits the audio waits for its commit, so a clear drops it: nothing of it is
    transcribed or stored. With server VAD audio is transcribed into the record as it comes: a
    clear says so instead of claiming ``cleared``."""
    speech = _pcm("welcome.wav")

    async def manual(c: _Client) -> None:
        await c.send(MANUAL, *_appends(speech), CLEAR)
        await c.until("input_audio_buffer.cleared")
        await c.send(COMMIT)
        await c.until("error")
    c = _talk(server, manual, "&hearing=rt-cleared")
    assert c.got[-1]["error"]["code"] == "input_audio_buffer_commit_empty" and not c.of(COMPLETED)
    record = httpx.get(f"{server}/v1/hearings/rt-cleared")
    assert record.status_code == 404 or record.json()["utterances"] == []

    async def server_vad(c: _Client) -> None:
        await c.send(SERVER_VAD, *_appends(speech), CLEAR)
        await c.until("error")
        await c.send(COMMIT)
        await c.until(COMPLETED)
    c = _talk(server, server_vad)
    assert not c.of("input_audio_buffer.cleared")
    assert c.of("error")[0]["error"]["code"] == "input_audio_buffer_clear_incomplete"
    assert any(d["transcript"] for d in c.of(COMPLETED))  # what was not cleared is there


def test_a_prompt_changed_mid_session_keeps_the_hearings_vocabulary(tmp_path):
    """A Realtime client's new prompt words join the hearing's own (its parties, its 案由, the
    court's lexicon): they never replace them."""
    import asyncio
    import types

    from courtscribe.records.store import RecordStore
    from courtscribe.streaming.hub import Hub
    from courtscribe.streaming.live import LiveHearings

    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h", parties=["张三", "李四"], cause="民间借贷纠纷")
    live = LiveHearings(engine=None, vad=None, scheduler=None, hub=Hub(), records=store, lexicon=("本院",))
    got: list = []

    class Session:  # what LiveHearings reads of a running source
        cfg = types.SimpleNamespace(hearing_id="h")
        use_hotwords = staticmethod(got.append)
    session = Session()
    live.sources["h"] = {session: ()}
    asyncio.run(live.own_hotwords(session, ("王五",)))
    assert {"王五", "张三", "李四", "民间借贷纠纷", "本院"} <= set(got[-1]) and live.sources["h"][session] == ("王五",)


def test_a_diarizing_model_gets_each_line_as_a_speaker_segment(server):
    """A client that asks OpenAI's diarizing model (``gpt-4o-transcribe-diarize``) reads who said
    each line from ``…transcription.segment`` before the line's ``completed``: here, the hearing's
    speaker labels, its text the line's own."""
    diarize = json.loads(json.dumps(SERVER_VAD))
    diarize["session"]["audio"]["input"]["transcription"]["model"] = "gpt-4o-transcribe-diarize"

    async def script(c: _Client) -> None:
        await c.send(diarize, *_appends(_pcm("welcome.wav") + bytes(48000 * 2)))
        await c.until("conversation.item.done")
    c = _talk(server, script)
    segment, done = c.of("conversation.item.input_audio_transcription.segment")[0], c.of(COMPLETED)[0]
    assert segment["item_id"] == done["item_id"] and segment["text"] == done["transcript"]
    assert segment["speaker"] and 0 <= segment["start"] < segment["end"]
    types = [e["type"] for e in c.got]
    assert types.index("conversation.item.input_audio_transcription.segment") < types.index(COMPLETED)
    plain = _talk(server, lambda c: _say(c, SERVER_VAD))
    assert not plain.of("conversation.item.input_audio_transcription.segment")  # asked only by diarizing
    manual = json.loads(json.dumps(MANUAL))  # push-to-talk: the commit's one item, a segment per line
    manual["session"]["audio"]["input"]["transcription"]["model"] = "gpt-4o-transcribe-diarize"

    async def push_to_talk(c: _Client) -> None:
        await c.send(manual, *_appends(_pcm("welcome.wav")), COMMIT)
        await c.until("conversation.item.done")
    c = _talk(server, push_to_talk)
    segments, [done] = c.of("conversation.item.input_audio_transcription.segment"), c.of(COMPLETED)
    assert segments and {s["item_id"] for s in segments} == {done["item_id"]}
    assert "".join(s["text"] for s in segments) == done["transcript"].replace(" ", "")
    assert all(0 <= s["start"] < s["end"] <= 6 for s in segments)  # within the turn (welcome.wav: 5.5 s)


async def _say(c: _Client, update: dict) -> None:
    await c.send(update, *_appends(_pcm("welcome.wav") + bytes(48000 * 2)))
    await c.until("conversation.item.done")
