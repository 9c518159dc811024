"""kill -9 the server while a hearing streams a real clip: after a restart every final the client saw
is in the record, the audio is there up to the last flush, and the hearing goes on."""
import asyncio
import os
import signal
import zipfile

import httpx
import pytest

from courtscribe.clients import stream_file
from courtscribe.records import archive, package

from conftest import start_server

pytestmark = pytest.mark.slow
SYNC_MS = 2000  # the archive fsyncs at least this often


def test_kill_9_mid_hearing_loses_no_final_and_no_flushed_audio(tmp_path, data_dir):
    proc, url = start_server(tmp_path)
    ws = url.replace("http://", "ws://") + "/v1/stream"
    seen: list[dict] = []

    def on_event(event: dict) -> None:
        seen.append(event)
        if event["type"] == "final" and event["utterance"]["end_ms"] > 4000:
            os.kill(proc.pid, signal.SIGKILL)  # mid-hearing, right after a final was announced

    async def stream_until_killed():
        try:
            return await stream_file(ws, data_dir / "zh-smoke" / "justice.wav", hearing_id="h-crash",
                                     role="审判长", on_event=on_event)
        except Exception:  # noqa: BLE001 - the server died under the client, as intended
            return None

    asyncio.run(asyncio.wait_for(stream_until_killed(), 60))
    proc.wait(timeout=10)
    finals = [e["utterance"] for e in seen if e["type"] == "final"]
    assert finals, "no final arrived before the kill"

    proc, url = start_server(tmp_path)  # restart on the same data dir
    try:
        record = httpx.get(f"{url}/v1/hearings/h-crash").json()
        stored = {u["id"]: u["text"] for u in record["utterances"]}
        assert all(stored.get(f["id"]) == f["text"] for f in finals), (stored, finals)
        root = tmp_path / "data" / "archive"
        assert not list(root.glob("*/*/*.part"))  # the open segment was finished on start-up
        # at the kill the client had sent at least up to the last final's end (plus the VAD's silence)
        heard = archive.recorded_ms(root, "h-crash", 0)
        assert heard >= finals[-1]["end_ms"] - SYNC_MS
        # what was being said at the kill is in the archive: a flagged line to replay covers it
        cut = [u for u in record["utterances"] if "interrupted" in u["flags"]]
        said_until = max(u["end_ms"] for u in record["utterances"] if u not in cut)
        if heard - said_until >= 300:
            assert [(u["start_ms"], u["end_ms"], u["text"]) for u in cut] == [(said_until, heard, "")]
        else:
            assert cut == []
        assert httpx.get(f"{url}/v1/hearings/h-crash/verify").json()["ok"] is True
        # the hearing continues: a reconnecting source carries on its timeline
        again = asyncio.run(stream_file(url.replace("http://", "ws://") + "/v1/stream",
                                        data_dir / "zh-smoke" / "news_kfc.wav", hearing_id="h-crash", speed=0))
        assert again.ready["offset_ms"] > finals[-1]["end_ms"]  # ready says where in the hearing it resumes
        assert again.finals and again.finals[0]["utterance"]["start_ms"] > finals[-1]["end_ms"]
        lines = httpx.get(f"{url}/v1/hearings/h-crash").json()["utterances"]
        assert len(lines) == len(stored) + len(again.finals) and "肯德基" in lines[-1]["text"]
        replay = httpx.get(f"{url}/v1/hearings/h-crash/utterances/{finals[0]['id']}/audio")
        assert replay.headers["content-type"] == "audio/wav" and len(replay.content) > 16000
        zpath = tmp_path / "h-crash.zip"
        zpath.write_bytes(httpx.get(f"{url}/v1/hearings/h-crash/export", params={"format": "package"}).content)
        assert package.verify(zpath) == []
        names = zipfile.ZipFile(zpath).namelist()
        assert any(n.startswith("audio/ch0/") and n.endswith(".flac") for n in names), names
    finally:
        proc.terminate()
        proc.wait(timeout=30)
