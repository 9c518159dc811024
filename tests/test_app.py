"""The service as `make serve` runs it: a real uvicorn process on a free port, real HTTP requests."""
import httpx
import pytest
import srt

from courtscribe.text import for_scoring

pytestmark = pytest.mark.slow


def post(url, path, fmt="json", **extra):
    with open(path, "rb") as f:
        return httpx.post(f"{url}/v1/audio/transcriptions", timeout=120,
                          files={"file": (path.name, f, "audio/wav")},
                          data={"model": "whisper-base", "response_format": fmt, **extra})


def test_health_and_models(server):
    health = httpx.get(f"{server}/healthz").json()
    assert {k: health[k] for k in ("status", "engine", "model", "vad")} == {
        "status": "ok", "engine": "whisper", "model": "whisper-base", "vad": "silero"}
    ids = [m["id"] for m in httpx.get(f"{server}/v1/models").json()["data"]]
    assert "whisper-base" in ids and "paraformer-zh" in ids


def test_openai_shaped_transcription(server, data_dir, manifest):
    import jiwer

    r = post(server, data_dir / "zh-smoke" / "justice.wav")
    assert r.status_code == 200, r.text
    text = r.json()["text"]
    assert jiwer.cer(for_scoring(manifest["justice.wav"]["text"]), for_scoring(text)) <= 0.1


def test_verbose_json_and_srt(server, data_dir):
    verbose = post(server, data_dir / "zh-smoke" / "news_foxconn.wav", "verbose_json").json()
    assert verbose["duration"] == pytest.approx(8.0, abs=0.05)
    assert verbose["segments"] and verbose["words"]
    assert all(0 <= s["start"] <= s["end"] <= 8.0 for s in verbose["segments"])
    subs = list(srt.parse(post(server, data_dir / "zh-smoke" / "news_kfc.wav", "srt").text))
    assert subs and subs[0].content.startswith("说话人1：")


def test_bad_audio_is_a_400_with_a_code(server, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    r = post(server, bad)
    assert r.status_code == 400
    assert r.json()["detail"]["code"] == "bad_audio"
    r = post(server, bad, fmt="docx")
    assert r.status_code == 422  # not an OpenAI response format


def test_the_openai_sdk_works_against_the_server(server, data_dir):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key="unused-for-now")
    with open(data_dir / "zh-smoke" / "news_kfc.wav", "rb") as f:
        out = client.audio.transcriptions.create(model="whisper-base", file=f, language="zh")
    assert "肯德基" in out.text
    with open(data_dir / "zh-smoke" / "news_kfc.wav", "rb") as f:
        vtt = client.audio.transcriptions.create(model="whisper-base", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT") and "<v 说话人1>" in vtt


def submit_job(url, path):
    with open(path, "rb") as f:
        return httpx.post(f"{url}/v1/jobs", files={"file": (path.name, f, "audio/wav")}, timeout=60)


def test_long_file_job_reports_progress_then_the_record(server, data_dir, tmp_path):
    import time

    import numpy as np
    import soundfile as sf

    clips = [sf.read(data_dir / "zh-smoke" / name, dtype="float32")[0] for name in
             ("market_25s.wav", "justice.wav", "news_foxconn.wav", "market_25s.wav")]
    long = tmp_path / "hearing.flac"
    sf.write(long, np.concatenate(clips), 16000)  # 71 s: three or more speech windows
    r = submit_job(server, long)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}" and job["status"] == "queued"
    assert job["audio_seconds"] == pytest.approx(sum(c.size for c in clips) / 16000, abs=0.01)
    seen, deadline = [], time.monotonic() + 180
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = httpx.get(f"{server}/v1/jobs/{job['id']}").json()
        seen.append((job["stage"], job["progress"]))
    assert job["status"] == "done", job["error"]
    assert job["progress"] == 1.0 and job["result_url"] and job["utterances"] > 0
    assert any(stage == "transcription" and 0 < p < 1 for stage, p in seen), sorted(set(seen))  # progress while it ran
    record = httpx.get(f"{server}{job['result_url']}").json()
    assert record["schema_version"].startswith("courtscribe.record/") and len(record["utterances"]) == job["utterances"]
    subs = list(srt.parse(httpx.get(f"{server}{job['result_url']}", params={"format": "srt"}).text))
    assert len(subs) == job["utterances"]
    docx = httpx.get(f"{server}{job['result_url']}", params={"format": "docx"})
    assert docx.status_code == 200 and docx.content[:2] == b"PK"
    assert job["id"] in [j["id"] for j in httpx.get(f"{server}/v1/jobs").json()["data"]]


def test_queued_jobs_can_be_cancelled_and_unknown_jobs_are_404(server, data_dir):
    first = submit_job(server, data_dir / "zh-smoke" / "market_25s.wav").json()
    second = submit_job(server, data_dir / "zh-smoke" / "news_kfc.wav").json()
    cancelled = httpx.delete(f"{server}/v1/jobs/{second['id']}").json()
    assert cancelled["status"] == "cancelled"
    r = httpx.get(f"{server}/v1/jobs/{second['id']}/result")
    assert r.status_code == 409 and r.json()["detail"]["code"] == "job_cancelled"
    running = httpx.delete(f"{server}/v1/jobs/{first['id']}").json()  # stops at its next window
    assert running["status"] in ("queued", "running", "cancelled")
    r = httpx.get(f"{server}/v1/jobs/job-nope")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "no_such_job"
    bad = submit_job(server, data_dir / "README.md")
    assert bad.status_code == 400 and bad.json()["detail"]["code"] == "bad_audio"


def test_a_job_can_become_a_hearing_in_the_record_store(server, data_dir):
    import time

    path = data_dir / "zh-smoke" / "news_kfc.wav"
    scheduled = httpx.post(f"{server}/v1/hearings", json={"id": "h-from-job", "case_number": "（2026）京0105民初5号",
                                                          "participants": [{"role": "presiding_judge", "name": "王法官"}]})
    assert scheduled.status_code == 201, scheduled.text  # the clerk set it up; the recording joins it
    with open(path, "rb") as f:
        job = httpx.post(f"{server}/v1/jobs", files={"file": (path.name, f, "audio/wav")},
                         data={"hearing_id": "h-from-job"}, timeout=60).json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = httpx.get(f"{server}/v1/jobs/{job['id']}").json()
    assert job["status"] == "done", job["error"]
    record = httpx.get(f"{server}/v1/hearings/h-from-job").json()
    assert "肯德基" in "".join(u["text"] for u in record["utterances"])
    assert record["hearing"]["case_number"] == "（2026）京0105民初5号" and record["participants"][0]["name"] == "王法官"
    first = record["utterances"][0]["id"]
    wav = httpx.get(f"{server}/v1/hearings/h-from-job/utterances/{first}/audio")
    assert wav.status_code == 200 and len(wav.content) > 16000 * 2  # the line's audio, from the archive
    assert httpx.get(f"{server}/v1/hearings/h-from-job/verify").json()["ok"] is True


def test_a_database_that_is_away_is_a_retryable_503_on_any_route():
    """The hearing list answered a bare 500 (and logged a traceback) while PostgreSQL restarted;
    routes that looked a hearing up first said 503. Every route now says the store is away."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

    from courtscribe.server.app import store_away

    app = FastAPI()
    app.add_exception_handler(DBAPIError, store_away)

    @app.get("/away")
    def away():
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    @app.get("/wrong")
    def wrong():
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/away")
    assert r.status_code == 503 and r.json()["detail"]["code"] == "store_unavailable"
    assert r.headers["retry-after"] == "5"
    assert client.get("/wrong").status_code == 500  # a write the database refuses is no outage
