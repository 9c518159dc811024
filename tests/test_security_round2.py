"""The second outside security review (issue "security review, second round"), each finding against
the real TLS server of the access tests, tokens on, two courts: what got through then must not now."""
import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf
import websockets
from sqlalchemy import text

from courtscribe.clients.stream_client import StreamResult, stream_file
from courtscribe.records.store import RecordStore

from conftest import COURT_A, COURT_B, ROOT, Court, cli, free_port, issue_tokens

LINE = {"channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "审判长"}


def _tokens(court: Court) -> dict:
    return court.tokens("sec2", clerk=("clerk", "冯书记员", "--court", COURT_A),
                        clerk_b=("clerk", "陈书记员", "--court", COURT_B),
                        caption=("caption", "直播导播二", "--court", COURT_A))


def _hearing(c: Court, hid: str | None, token: str | None = None, **fields) -> str:
    """Scheduled by the admin under ``hid``, or by a court's token under the id the server picks."""
    body = {"id": hid, "court": COURT_A, "courtroom": "第一法庭", **fields}
    r = c.as_(token or c.t["admin"], "POST", "/v1/hearings", json={k: v for k, v in body.items() if v})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _flac(seconds: float, channels: int, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate), channels), np.int16), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _no_traceback(court: Court) -> None:
    assert "Traceback" not in (court.home / "server.log").read_text(), "the server logged a traceback"


# 1 ---------------------------------------------------------------------------------------------
def test_a_caption_token_never_finds_or_reads_what_was_said(court):
    t = _tokens(court)
    _hearing(court, "r2-blank", public=True)
    assert court.as_(t["clerk"], "PATCH", "/v1/hearings/r2-blank/utterances/u1",
                     json={"text": "这是商业秘密配方。", **LINE}).status_code == 200
    assert court.as_(t["clerk"], "POST", "/v1/hearings/r2-blank/captions/switch",
                     json={"blanked": True, "reason": "商业秘密"}).status_code == 200
    for q in ("配方", "配", "秘密配方"):
        r = court.as_(t["caption"], "GET", "/v1/hearings", params={"q": q})
        assert r.status_code == 200 and r.json()["total"] == 0 and "配方" not in r.text, (q, r.text)
    listed = court.as_(t["caption"], "GET", "/v1/hearings").json()["data"]
    assert "r2-blank" in {h["id"] for h in listed} and not any("match" in h for h in listed)
    found = court.as_(t["clerk"], "GET", "/v1/hearings", params={"q": "配方"}).json()["data"]
    assert any(h["id"] == "r2-blank" and "配方" in h["match"]["text"] for h in found)  # the clerk still finds it


# 2 ---------------------------------------------------------------------------------------------
def test_the_realtime_socket_refuses_a_sample_rate_it_does_not_serve(court):
    async def run() -> list[dict]:
        async with websockets.connect(f"{court.ws}/v1/realtime?intent=transcription", ssl=court.tls,
                                      additional_headers={"Authorization": f"Bearer {_tokens(court)['clerk']}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            replies = []
            for rate in (1, 0, "abc", 10 ** 12, None):
                await ws.send(json.dumps({"type": "session.update", "session": {
                    "type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}}}}))
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            await ws.send(json.dumps({"type": "session.update", "session": {"input_audio_format": "pcm16"}}))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            return replies

    *refused, fine = asyncio.run(run())
    assert all(r["type"] == "error" and r["error"]["code"] == "bad_sample_rate" for r in refused), refused
    assert fine["type"] == "session.updated"  # the socket stayed usable
    _no_traceback(court)


# 3 ---------------------------------------------------------------------------------------------
def test_small_files_that_decode_to_huge_audio_are_refused_everywhere(court):
    t = _tokens(court)
    bomb = _flac(59, 8, 384_000)  # a few KB; 59 s (under the server's 600 s) but 181 M samples
    r = court.as_(t["clerk"], "POST", "/v1/audio/transcriptions", files={"file": ("bomb.flac", bomb)})
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_long"
    r = court.as_(t["clerk"], "POST", "/v1/jobs", files={"file": ("bomb.flac", bomb)})
    assert r.status_code == 413
    _hearing(court, "r2-voice")
    r = court.as_(t["clerk"], "POST", "/v1/hearings/r2-voice/participants", json={"role": "plaintiff", "name": "张三"})
    assert r.status_code == 201
    r = court.as_(t["clerk"], "PUT", f"/v1/hearings/r2-voice/participants/{quote('张三')}/voice", content=bomb)
    assert r.status_code in (413, 422) and r.status_code != 500

    async def offline(data: bytes) -> dict:  # FunASR's offline mode: a whole file over the socket
        async with websockets.connect(f"{court.ws}/?token={t['clerk']}", ssl=court.tls) as ws:
            await ws.send(json.dumps({"mode": "offline", "wav_name": "bomb", "wav_format": "flac",
                                      "is_speaking": True}))
            await ws.send(data)
            await ws.send(json.dumps({"is_speaking": False}))
            return json.loads(await asyncio.wait_for(ws.recv(), 60))

    reply = asyncio.run(offline(_flac(700, 8, 48_000)))  # 700 s: past the server's 600 s
    assert reply["is_final"] and reply["code"] == "too_long", reply
    assert court.as_(None, "GET", "/healthz").status_code == 200
    _no_traceback(court)


# 4 ---------------------------------------------------------------------------------------------
def test_a_job_never_writes_into_another_courts_hearing(court, data_dir):
    """A job names a hearing of its own court: one not (yet) made, or another court's, is refused
    alike before anything runs, so no job can wait for another court to make that id."""
    t = _tokens(court)
    clip = (data_dir / "zh-smoke" / "market_25s.wav").read_bytes()
    answers = [court.as_(t["clerk"], "POST", "/v1/jobs", files={"file": ("a.wav", clip)}, data={"hearing_id": hid})
               for hid in ("r2-late", "h-b")]
    assert [(r.status_code, r.json()["detail"]["code"]) for r in answers] == [(404, "not_found")] * 2
    assert court.as_(t["clerk_b"], "GET", "/v1/hearings/h-b").json()["utterances"] == []
    assert court.as_(court.t["admin"], "GET", "/v1/hearings/r2-late").status_code == 404


# 9 ---------------------------------------------------------------------------------------------
def test_another_courts_hearing_ids_cannot_be_probed(court):
    """Scheduling, jobs and streams answer the same for another court's id as for a missing one,
    and a court's token never picks an id (the server's are unguessable)."""
    t = _tokens(court)
    for hid in ("h-b", "r2-nothing"):
        made = court.as_(t["clerk"], "POST", "/v1/hearings", json={"id": hid})
        assert made.status_code == 422 and made.json()["detail"]["code"] == "id_chosen_by_server"
        read = court.as_(t["clerk"], "GET", f"/v1/hearings/{hid}")
        assert read.status_code == 404 and read.json()["detail"]["message"] == f"no hearing {hid!r}"
    ids = {_hearing(court, None, t["clerk"]) for _ in range(2)}
    assert len(ids) == 2 and all(len(i) >= 16 for i in ids)


def test_a_room_recorder_without_an_id_feeds_its_rooms_hearing(court, data_dir):
    """No id to type: the room's recorder streams into the hearing scheduled there today; with none
    scheduled it is refused and nothing is made."""
    rec = issue_tokens(court.home, rec=("recorder", "第九法庭录音", "--court", COURT_A, "--room", "第九法庭"))["rec"]
    clip = data_dir / "zh-smoke" / "market_25s.wav"

    def play() -> StreamResult:
        return asyncio.run(stream_file(f"{court.ws}/v1/stream", clip, token=rec, ssl=court.tls, speed=0,
                                       role="审判长", chunk_ms=500))

    def in_room() -> list[str]:
        every = court.as_(court.t["admin"], "GET", "/v1/hearings", params={"limit": 200}).json()["data"]
        return [h["id"] for h in every if h["courtroom"] == "第九法庭"]
    with pytest.raises(RuntimeError, match="no hearing is open or scheduled today in 第九法庭"):
        play()
    assert in_room() == []
    now = dt.datetime.now(dt.timezone.utc)
    later = _hearing(court, None, _tokens(court)["clerk"], courtroom="第九法庭",
                     scheduled_at=(now + dt.timedelta(days=7)).isoformat())
    today = _hearing(court, None, _tokens(court)["clerk"], courtroom="第九法庭",
                     scheduled_at=(now + dt.timedelta(hours=1)).isoformat())
    result = play()
    assert result.ready["hearing_id"] == today and result.finals
    assert court.as_(court.t["admin"], "GET", f"/v1/hearings/{today}/status").json()["status"] == "open"
    lines = court.as_(court.t["admin"], "GET", f"/v1/hearings/{today}").json()["utterances"]
    replay = court.as_(_tokens(court)["clerk"], "GET", f"/v1/hearings/{today}/utterances/{lines[0]['id']}/audio")
    assert replay.headers["content-type"] == "audio/wav"  # its audio was archived under that hearing
    assert court.as_(court.t["admin"], "GET", f"/v1/hearings/{later}").json()["utterances"] == []


# 6 ---------------------------------------------------------------------------------------------
def test_the_cli_and_the_api_find_a_record_rewritten_to_unsigned(court):
    t = court.t
    _hearing(court, "r2-unsigned")
    assert court.as_(t["clerk"], "PATCH", "/v1/hearings/r2-unsigned/utterances/u1",
                     json={"text": "被告承认借款。", **LINE}).status_code == 200
    assert court.as_(t["clerk"], "POST", "/v1/hearings/r2-unsigned/close").status_code == 200
    assert court.as_(t["judge"], "POST", "/v1/hearings/r2-unsigned/signatures",
                     json={"role": "presiding_judge"}).status_code == 201
    assert cli(court.home, "records", "verify", "r2-unsigned").returncode == 0
    store = RecordStore(f"sqlite:///{court.home / 'data' / 'courtscribe.db'}")
    with store.engine.begin() as c:  # the signature deleted; the chain before it is still whole
        c.execute(text("DELETE FROM ledger WHERE hearing_id='r2-unsigned' AND kind='signed'"))
        c.execute(text("UPDATE hearings SET status='closed' WHERE id='r2-unsigned'"))
    store.close()
    api = court.as_(t["clerk"], "GET", "/v1/hearings/r2-unsigned/verify").json()
    out = cli(court.home, "records", "verify", "r2-unsigned")
    assert api["ok"] is False and out.returncode == 1
    assert api["problem"] in out.stderr and "rewritten" in api["problem"]


# 7 ---------------------------------------------------------------------------------------------
def test_a_missing_audit_head_or_an_emptied_seal_key_is_an_error_not_a_downgrade(court, tmp_path):
    audit = court.home / "data" / "audit"
    (tmp_path / "copy.jsonl").write_bytes((audit / "audit.jsonl").read_bytes())  # without its sealed head
    out = cli(court.home, "audit", "verify", "--file", str(tmp_path / "copy.jsonl"))
    assert out.returncode == 1 and "head" in out.stdout and "missing" in out.stdout
    home = tmp_path / "emptied"
    (home / "data" / "keys").mkdir(parents=True)
    (home / "data" / "keys" / "seal.key").write_text("")
    out = cli(home, "audit", "verify")
    assert out.returncode == 1 and "seal key" in out.stdout and "empty" in out.stdout
    env = {**os.environ, "COURTSCRIBE_DATA_DIR": str(home / "data"), "COURTSCRIBE_INSECURE_NO_AUTH": "1"}
    env.pop("COURTSCRIBE_SEAL_KEY", None)
    started = subprocess.run([sys.executable, "-m", "courtscribe", "serve", "--port", str(free_port())], env=env,
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert started.returncode != 0 and "seal key" in started.stdout + started.stderr
    from types import SimpleNamespace

    from courtscribe.seal import SealKeyError, load_key
    with pytest.raises(SealKeyError, match="too short"):  # a key an intruder guesses seals nothing
        load_key(SimpleNamespace(seal_key="changeme", seal_key_file=home / "unused.key"))


# 8, 11 -----------------------------------------------------------------------------------------
def test_nul_in_a_search_is_refused_and_case_numbers_of_any_digits_are_one_case(court):
    t = _tokens(court)
    assert court.as_(t["clerk"], "GET", "/v1/hearings", params={"q": "abc\x00def"}).status_code == 422
    wide = _hearing(court, None, t["clerk"], case_number="（２０２６）京０１０５民初９８７６号")
    arabic = _hearing(court, None, t["clerk"], case_number="（٢٠٢٦）京0105民初9876号")
    for hid in (wide, arabic):
        assert court.as_(t["clerk"], "GET", f"/v1/hearings/{hid}").json()["hearing"]["case_number"] == \
            "（2026）京0105民初9876号"
    found = court.as_(t["clerk"], "GET", "/v1/hearings", params={"q": "(2026)京0105民初9876号"}).json()["data"]
    assert {wide, arabic} <= {h["id"] for h in found}


# 10 --------------------------------------------------------------------------------------------
def test_an_upload_is_refused_on_the_tokens_role_before_its_body_is_read(court):
    from test_security import _raw

    part = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + b"\0" * 65536)
    for path in ("/v1/audio/transcriptions", "/v1/jobs"):  # a form upload: the route would read it all first
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {_tokens(court)['caption']}\r\n"
                f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {20 << 20}")
        assert _raw(court, head, part) == 403  # answered with 20 MB declared and 64 KB sent
    head = (f"PUT /v1/hearings/h-pub/participants/x/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {court.t['viewer']}\r\nContent-Length: {10 << 20}")
    assert _raw(court, head, b"\0" * 65536) == 403


# 13 --------------------------------------------------------------------------------------------
def test_an_export_is_in_the_audit_log_before_its_bytes_arrive(court):
    log = court.home / "data" / "audit" / "audit.jsonl"
    for _ in range(3):
        before = len(log.read_text().splitlines())
        r = court.as_(court.t["clerk"], "GET", "/v1/hearings/h-pub/export", params={"format": "txt"})
        assert r.status_code == 200
        # read at once, no waiting (another test's late entry may come between: any order of those)
        since = [json.loads(line) for line in log.read_text().splitlines()[before:]]
        assert any(e["action"] == "GET /v1/hearings/h-pub/export" and e["outcome"] == "ok" for e in since)
    aside = log.with_name("aside2.jsonl")
    log.rename(aside)
    log.mkdir()  # the log cannot be written: no copy of court data leaves unaudited
    try:
        r = court.as_(court.t["clerk"], "GET", "/v1/hearings/h-pub/export", params={"format": "txt"})
        assert r.status_code == 503 and r.json()["detail"]["code"] == "audit_unavailable"
    finally:
        log.rmdir()
        aside.rename(log)
    assert cli(court.home, "audit", "verify").returncode == 0


# 5 ---------------------------------------------------------------------------------------------
def test_a_page_on_a_rebound_name_cannot_pose_as_the_courtroom_pc(court):
    """DNS rebinding: the attacker's page names its own host in Host and Origin. The courtroom PC's
    address (127.0.0.2 is listed for 第一法庭) no longer lets such a socket in; the PC itself, naming
    this server, still streams without a token."""
    port = court.url.rsplit(":", 1)[1]
    evil = f"evil.example:{port}"

    async def from_the_pc(host: str, origin: str | None) -> str:
        headers = {"Host": host, **({"Origin": f"https://{host}"} if origin else {})}
        try:
            async with websockets.connect(f"{court.ws}/?hearing=h-pub", ssl=court.tls, server_hostname="127.0.0.1",
                                          additional_headers=headers, local_addr=("127.0.0.2", 0)) as ws:
                await ws.send(json.dumps({"mode": "online", "wav_name": "pc", "is_speaking": True}))
                await ws.send(b"\0" * 3200)
                return "open"
        except websockets.InvalidStatus as err:
            return f"refused {err.response.status_code}"

    assert asyncio.run(from_the_pc(evil, origin="page")) == "refused 403"
    assert asyncio.run(from_the_pc(f"127.0.0.1:{port}", origin=None)) == "open"
    assert court.as_(None, "GET", "/healthz", headers={"Host": evil}).status_code == 400
