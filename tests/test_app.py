"""The service as `make serve` runs it: a real uvicorn process on a free port, real HTTP requests."""
import httpx
import pytest
import srt

from courtscribe.asr.text import for_scoring

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
