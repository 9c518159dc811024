"""Regression tests of an outside security review, each against the real server process of the
access tests (tokens on, TLS): what got through then must not get through now."""
import asyncio
import fcntl
import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets
import yaml
from sqlalchemy import text

from courtscribe.access.guard import is_loopback
from courtscribe.cluster.app import private_token_file
from courtscribe.records.ledger import entry_hash, record_digest
from courtscribe.records.store import RecordStore
from courtscribe.streaming.jobs import Jobs

from conftest import COURT_A, COURT_B, FAILED_AUTH_LIMIT, ROOT, Court, cli, issue_tokens


def _tokens(court: Court) -> dict:
    """Tokens only these tests use (issued once per server)."""
    if not hasattr(court, "sec"):
        court.sec = issue_tokens(court.home, admin_a=("admin", "甲院信息中心", "--court", COURT_A),
                                 judge2=("judge", "周法官", "--court", COURT_A),
                                 # tokens of their own: the shared ones are used by the other tests too
                                 clerk_rt=("clerk", "吴书记员", "--court", COURT_A),
                                 viewer_rt=("viewer", "旁听终端二", "--court", COURT_A))
    return court.sec


def _hearing(court: Court, hid: str, **fields) -> dict:
    body = {"id": hid, "court": COURT_A, "courtroom": "第一法庭", **fields}
    r = court.as_(court.t["admin"], "POST", "/v1/hearings", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _first(court: Court, path: str, token: str | None, *, start: dict | None = None, **connect) -> tuple:
    """Connect, optionally start, and return (first reply, close code or None, the socket's subprotocol)."""
    headers = {"Authorization": f"Bearer {token}", **connect.pop("headers", {})} if token else connect.pop("headers", None)
    async with websockets.connect(f"{court.ws}{path}", ssl=court.tls, additional_headers=headers, **connect) as ws:
        if start is not None:
            try:
                await ws.send(json.dumps(start))
            except websockets.ConnectionClosed:
                pass
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        except websockets.ConnectionClosed:
            reply = None
        try:
            await asyncio.wait_for(ws.recv(), 1)
        except (websockets.ConnectionClosed, asyncio.TimeoutError):
            pass
        return reply, ws.close_code, ws.subprotocol


# 1 ---------------------------------------------------------------------------------------------
def test_a_caption_token_gets_only_the_caption_feed_never_the_events(court):
    _hearing(court, "s-blank", public=True)
    assert court.as_(court.t["clerk"], "POST", "/v1/hearings/s-blank/captions/switch",
                     json={"blanked": True, "reason": "不公开内容"}).status_code == 200
    reply, code, _ = asyncio.run(_first(court, "/v1/hearings/s-blank/events", court.t["caption"]))
    assert reply["code"] == "forbidden" and "caption feed" in reply["message"] and code == 4403
    reply, _, _ = asyncio.run(_first(court, "/v1/hearings/s-blank/captions", court.t["caption"]))
    assert reply["type"] != "error"  # its own feed still opens (and shows the blank)


# 2 ---------------------------------------------------------------------------------------------
def test_a_case_number_finds_the_own_courts_case_only(court):
    r = court.as_(court.t["admin"], "POST", "/v1/hearings", json={
        "id": "s-case-b", "court": COURT_B, "case_number": "(2026)沪0115民初77号", "cause": "商业秘密纠纷",
        "parties": ["乙科技有限公司"]})
    assert r.status_code == 201
    r = court.as_(court.t["clerk"], "POST", "/v1/hearings", json={"case_number": "(2026)沪0115民初77号"})
    assert r.status_code == 201
    mine = r.json()
    assert mine["court"] == COURT_A and mine["cause"] is None and mine["parties"] == []
    assert "乙科技" not in court.as_(court.t["clerk"], "GET", f"/v1/hearings/{mine['id']}").text
    theirs = court.as_(court.t["clerk_b"], "GET", "/v1/hearings/s-case-b").json()["hearing"]
    assert theirs["cause"] == "商业秘密纠纷"


# 3 ---------------------------------------------------------------------------------------------
def _raw(court: Court, head: str, body: bytes = b"") -> int:
    """Send a request's head (and the start of a body) over TLS; the status the server answers
    with, without sending the rest of the declared body."""
    host, port = court.url.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as raw, \
            court.tls.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(head.encode() + b"\r\n\r\n" + body)
        answer = s.recv(4096).decode("latin-1")
    return int(answer.split(" ", 2)[1])


def test_a_body_is_read_only_after_its_token_and_each_route_takes_what_it_needs(court):
    # 300 MB declared, 64 KB sent: the answer comes without the rest (before: read first, 401 after)
    for path in ("/v1/hearings/h-pub/participants/x/voice", "/v1/jobs", "/v1/audio/transcriptions"):
        head = (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {300 << 20}")
        assert _raw(court, head.replace("PUT", "POST") if "voice" not in path else head, b"\0" * 65536) == 401
    voice = court.as_(court.t["clerk"], "PUT", "/v1/hearings/h-pub/participants/x/voice", content=b"\0" * (21 << 20))
    assert voice.status_code == 413  # a voice sample is capped at 20 MB, not at the 2 GB of recordings
    stretch = court.as_(court.t["clerk"], "POST", "/v1/hearings/h-pub/participants/x/voice",
                        content=b"{" + b" " * (2 << 20) + b"}", headers={"content-type": "application/json"})
    assert stretch.status_code == 413  # the JSON route is a small-JSON route


# 4 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["", "localhost", "::"])
def test_without_tokens_only_a_literal_loopback_address_is_served(tmp_path, host):
    out = subprocess.run([sys.executable, "-m", "courtscribe", "serve", "--insecure-no-auth", "--host", host],
                         capture_output=True, text=True, timeout=60,
                         env={"COURTSCRIBE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "refused" in out.stderr
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


# 5 ---------------------------------------------------------------------------------------------
def test_tokens_never_reach_the_log_or_the_handshake(court):
    token = court.t["rec_r1"]
    reply, code, _ = asyncio.run(_first(court, f"/?token={token}", None,
                                        start={"mode": "offline", "wav_name": "t", "is_speaking": False, "is_end": True}))
    assert reply["is_end"] is True  # acknowledged: a config that only ends (nothing to transcribe)
    log = (court.home / "server.log").read_text()
    secret = token.split("_", 2)[2]  # cst_<id>_<secret>: the secret may itself hold "_" (base64url)
    assert secret and token not in log and secret not in log
    assert '"WebSocket /?[redacted]"' in log  # the line is written, its query is not
    for quote in "'\"":  # a quote in the query before the token (the fourth review's finding)
        asyncio.run(_first(court, f"/?x={quote}&token={token}", None,
                           start={"mode": "offline", "wav_name": "t", "is_speaking": False, "is_end": True}))
    assert secret not in (court.home / "server.log").read_text()
    court.as_(court.t["clerk"], "GET", "/v1/hearings/（2026）京0105民初123号/participants/张三/voice")
    log = (court.home / "server.log").read_text()
    assert "/v1/hearings/[redacted]/participants/[redacted]/voice" in log  # court data stays out of the log
    assert not any(x in log for x in ("%E5%BC%A0", "张三", "%EF%BC%88"))
    # a client that offers only its bearer subprotocol is not answered with it
    reply, code, chosen = asyncio.run(_first(court, "/v1/stream", None, subprotocols=[f"bearer.{court.t['clerk']}"],
                                             start={"type": "start"}))
    assert chosen is None and reply["type"] == "ready"


# 6 ---------------------------------------------------------------------------------------------
def _wav(seconds: float, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(16000 * seconds), np.int16), 16000, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def test_a_court_admin_sees_only_its_own_courts_jobs(court):
    admin_a = _tokens(court)["admin_a"]
    r = court.as_(court.t["clerk_b"], "POST", "/v1/jobs", files={"file": ("b.wav", _wav(1.0))})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    assert job not in {j["id"] for j in court.as_(admin_a, "GET", "/v1/jobs").json()["data"]}
    assert court.as_(admin_a, "GET", f"/v1/jobs/{job}").status_code == 404
    assert court.as_(admin_a, "GET", f"/v1/jobs/{job}/result").status_code == 404
    assert court.as_(court.t["admin"], "GET", f"/v1/jobs/{job}").status_code == 200  # server-wide admin
    assert court.as_(court.t["clerk_b"], "GET", f"/v1/jobs/{job}").status_code == 200


# 7 ---------------------------------------------------------------------------------------------
def test_the_signer_is_the_tokens_holder_in_a_role_it_holds(court):
    t = court.t
    _hearing(court, "s-sign")
    assert court.as_(t["clerk"], "POST", "/v1/hearings/s-sign/close").status_code == 200
    for token, body in ((t["clerk"], {"by": "王五", "role": "presiding_judge"}), (t["clerk"], {"role": "presiding_judge"}),
                        (t["clerk"], {"by": "王五", "role": "clerk"}), (t["admin"], {"role": "clerk"})):
        r = court.as_(token, "POST", "/v1/hearings/s-sign/signatures", json=body)
        assert r.status_code == 403, (body, r.text)
    me = court.as_(t["clerk"], "GET", "/v1/whoami").json()  # what the clerk page fills the sign dialog with
    assert me["name"] == "赵书记员" and me["signs_as"] == ["clerk"]
    assert court.as_(t["clerk"], "POST", "/v1/hearings/s-sign/signatures", json={}).status_code == 201
    assert court.as_(t["judge"], "POST", "/v1/hearings/s-sign/signatures", json={"role": "presiding_judge"}).status_code == 201
    signed = court.as_(t["clerk"], "GET", "/v1/hearings/s-sign").json()["signatures"]
    assert [(s["by"], s["role"]) for s in signed] == [("赵书记员", "clerk"), ("孙法官", "presiding_judge")]
    assert court.as_(t["clerk"], "GET", "/v1/hearings/s-sign/verify").json()["ok"] is True


# 8 ---------------------------------------------------------------------------------------------
def test_forwarded_headers_and_foreign_pages_cannot_pose_as_a_courtroom(court):
    reply, code, _ = asyncio.run(_first(court, "/?hearing=s-xff", None, headers={"X-Forwarded-For": "127.0.0.2"},
                                        start={"mode": "online", "wav_name": "x", "is_speaking": True}))
    assert code == 4401 and reply["code"] == "unauthorized"
    assert court.as_(court.t["admin"], "GET", "/v1/hearings/s-xff").status_code == 404  # nothing was created
    reply, code, _ = asyncio.run(_first(court, "/v1/stream", court.t["clerk"], origin="https://evil.example",
                                        start={"type": "start"}))
    assert code == 4403 and reply["code"] == "forbidden_origin"
    reply, code, _ = asyncio.run(_first(court, "/v1/stream", court.t["clerk"], origin=court.url, start={"type": "start"}))
    assert reply["type"] == "ready"  # the server's own pages


# 9 ---------------------------------------------------------------------------------------------
def test_a_small_file_that_decodes_to_hours_is_refused(court):
    flac = _wav(601, "FLAC")  # silence: a few KB that would decode past the server's 600 s
    r = court.as_(court.t["clerk"], "POST", "/v1/audio/transcriptions", files={"file": ("long.flac", flac)})
    assert r.status_code == 413 and r.json()["detail"]["code"] == "too_long"


async def _hold(court: Court, token: str, **start) -> tuple[websockets.ClientConnection, dict]:
    ws = await websockets.connect(f"{court.ws}/v1/stream", ssl=court.tls,
                                  additional_headers={"Authorization": f"Bearer {token}"})
    await ws.send(json.dumps({"type": "start", **start}))
    return ws, json.loads(await ws.recv())


async def _slots(court: Court) -> list[dict]:
    t, judge2 = court.t, _tokens(court)["judge2"]
    held, replies = [], []
    try:
        for token, start in ((t["judge"], {}), (t["judge"], {}), (t["judge"], {}), (t["clerk"], {}), (judge2, {}),
                             (t["rec_r1"], {"hearing_id": "s-slots", "role": "审判长"})):
            ws, reply = await _hold(court, token, **start)
            held.append(ws)
            replies.append(reply)
    finally:
        for ws in held:
            await ws.close()
    return replies


def test_one_token_cannot_take_every_live_slot_and_recorders_come_first(court):
    _hearing(court, "s-slots")
    replies = asyncio.run(_slots(court))  # the server admits 4 live streams, 1 kept for recorders
    assert [r["type"] for r in replies] == ["ready", "ready", "error", "ready", "error", "ready"], replies
    assert "already holds 2" in replies[2]["message"]
    assert "kept for courtroom recorders" in replies[4]["message"]


def test_replay_of_a_line_stretched_by_hand_is_capped(court):
    _hearing(court, "s-replay")
    r = court.as_(court.t["clerk"], "PATCH", "/v1/hearings/s-replay/utterances/u1",
                  json={"text": "很长的一行", "channel": 0, "start_ms": 0, "end_ms": 7_200_000, "speaker": "审判长"})
    assert r.status_code == 200
    r = court.as_(court.t["viewer"], "GET", "/v1/hearings/s-replay/utterances/u1/audio")
    assert r.status_code == 200 and sf.info(io.BytesIO(r.content)).duration <= 60.0
    assert int(r.headers["x-audio-truncated-at-ms"]) == 60_000


def test_failed_tokens_from_an_address_never_lock_out_a_valid_one(court):
    host, port = court.url.rsplit("//", 1)[1].split(":")
    transport = httpx.HTTPTransport(verify=court.tls, local_address="127.0.0.3")  # an address of its own
    with httpx.Client(base_url=court.url, transport=transport, timeout=30) as nat:
        codes = [nat.get("/v1/hearings", headers={"Authorization": "Bearer cst_000000000000_guess"}).status_code
                 for _ in range(FAILED_AUTH_LIMIT + 2)]
        assert codes[0] == 401 and codes[-1] == 429
        ok = nat.get("/v1/hearings", headers={"Authorization": f"Bearer {court.t['viewer']}"})
        assert ok.status_code == 200


def test_a_flood_of_wrong_tokens_past_the_limit_is_audited_once_a_minute_not_once_a_request(court):
    """Every audited request is an fsync'd entry behind one lock: an address past its failed sign-in
    limit gets one entry for the minute (saying so), not one per request."""
    log = court.home / "data" / "audit" / "audit.jsonl"
    transport = httpx.HTTPTransport(verify=court.tls, local_address="127.0.0.4")  # an address of its own
    with httpx.Client(base_url=court.url, transport=transport, timeout=30) as flood:
        codes = [flood.get("/v1/whoami", headers={"Authorization": "Bearer cst_000000000000_guess"}).status_code
                 for _ in range(FAILED_AUTH_LIMIT + 12)]
        assert codes.count(429) >= 10
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    mine = [e for e in entries if e["detail"].get("client") == "127.0.0.4"]
    limited = [e for e in mine if e["outcome"] == "rate_limited"]
    assert len(limited) == 1 and "not audited one by one" in limited[0]["detail"]["note"]
    assert len(mine) == codes.count(401) + 1


def test_a_finished_or_cancelled_job_lets_go_of_its_audio():
    async def run() -> tuple:
        jobs = Jobs()
        audio = np.zeros(16000, np.float32)
        job = jobs.submit(lambda progress: audio.sum(), filename="a.wav", audio_s=1.0)
        jobs.cancel(job.id)
        await jobs.close()
        return jobs, job
    _, job = asyncio.run(run())
    assert job.status.value == "cancelled" and job.run is None


# 10 --------------------------------------------------------------------------------------------
def test_a_torn_audit_line_is_set_aside_and_an_unwritable_log_refuses_changes(court):
    log = court.home / "data" / "audit" / "audit.jsonl"
    _hearing(court, "s-audit")
    with open(log, "ab") as f:  # a writer that crashed mid-write: it held the log's lock, as every writer does
        fcntl.flock(f, fcntl.LOCK_EX)  # (the server may still be auditing the request before: it goes first)
        f.write(b'{"at":"2026-11-26T03:00:00.000+00:00","action":"PATC')
    r = court.as_(court.t["clerk"], "PATCH", "/v1/hearings/s-audit/utterances/u1",
                  json={"text": "第一句。", "channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "审判长"})
    assert r.status_code == 200
    assert b'"action":"PATC' in (log.parent / "audit.jsonl.torn").read_bytes()
    assert cli(court.home, "audit", "verify").returncode == 0
    assert any(e["action"] == "PATCH /v1/hearings/s-audit/utterances/u1" for e in map(json.loads, log.read_text().splitlines()))
    aside = log.with_name("aside.jsonl")
    server_log = court.home / "server.log"
    failed = server_log.read_text().count("audit log cannot be written")
    log.rename(aside)
    log.mkdir()  # the log cannot be opened for writing (a full or failed disk reads the same)
    try:
        r = court.as_(court.t["clerk"], "PATCH", "/v1/hearings/s-audit/utterances/u1", json={"text": "未经审计的修改"})
        assert r.status_code == 503 and r.json()["detail"]["code"] == "audit_unavailable"
        assert court.as_(court.t["clerk"], "GET", "/v1/hearings/s-audit").json()["utterances"][0]["text"] == "第一句。"
        # both requests' closing entries are tried after their answers: wait until the server said so
        deadline = time.monotonic() + 30
        while server_log.read_text().count("audit log cannot be written") < failed + 2:
            assert time.monotonic() < deadline, "the server never reported the unwritable audit log"
            time.sleep(0.1)
    finally:
        log.rmdir()
        aside.rename(log)
    assert cli(court.home, "audit", "verify").returncode == 0


# 11 --------------------------------------------------------------------------------------------
def test_hearings_are_not_public_unless_said_models_need_a_token_and_ids_cannot_be_probed(court):
    made = _hearing(court, "s-default")
    assert made["public"] is False
    reply, code, _ = asyncio.run(_first(court, "/v1/hearings/s-default/captions", court.t["caption"]))
    assert code == 4403
    assert court.as_(None, "GET", "/v1/models").status_code == 401
    assert court.as_(court.t["viewer"], "GET", "/v1/models").status_code == 200
    theirs = court.as_(court.t["clerk_b"], "GET", "/v1/hearings/s-default")
    missing = court.as_(court.t["clerk_b"], "GET", "/v1/hearings/s-no-such")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"]["code"] == missing.json()["detail"]["code"] == "not_found"


# 12 --------------------------------------------------------------------------------------------
def test_rays_ports_are_closed_to_all_but_the_cluster(tmp_path):
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay-rayservice.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        for c in pod["spec"]["containers"]:
            env = {e["name"]: e for e in c["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
            assert 6379 not in [p["containerPort"] for p in c.get("ports", [])]
    assert any(d["kind"] == "NetworkPolicy" for d in docs)
    exposed = [p["port"] for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"]]
    assert exposed == [8000]
    token = tmp_path / "auth_token"
    token.write_text("secret")
    token.chmod(0o644)
    private_token_file(token)
    assert token.stat().st_mode & 0o777 == 0o600


# 13 --------------------------------------------------------------------------------------------
def _rewrite(db: Path, hearing: str, new_text: str) -> None:
    """What someone with write access to the database (not the key) can do: change a line, then
    recompute the digest and every hash, consistently."""
    store = RecordStore(f"sqlite:///{db}")

    def rechain(change) -> None:
        with store.engine.begin() as c:
            rows = c.execute(text("SELECT seq, at, actor, kind, utterance_id, payload FROM ledger "
                                  "WHERE hearing_id=:h ORDER BY seq"), {"h": hearing}).all()
            prev = "0" * 64
            for seq, at, actor, kind, uid, payload in rows:
                p = json.loads(payload)
                change(kind, p)
                body = json.dumps(p, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                h = entry_hash(prev, seq, at, actor, kind, uid, body)
                c.execute(text("UPDATE ledger SET payload=:p, prev_hash=:prev, hash=:hash WHERE hearing_id=:h "
                               "AND seq=:s"), {"p": body, "prev": prev, "hash": h, "h": hearing, "s": seq})
                prev = h

    with store.engine.begin() as c:
        c.execute(text("UPDATE utterances SET text=:t WHERE hearing_id=:h AND id='u1'"), {"t": new_text, "h": hearing})
    rechain(lambda kind, p: p.update(after=new_text) if kind == "edit" else None)
    digest = record_digest(store.record(hearing))
    rechain(lambda kind, p: p.update(digest=digest) if kind == "signed" else None)
    store.close()


def test_a_consistently_rewritten_database_or_a_cut_audit_log_no_longer_verifies(court, tmp_path):
    t = court.t
    _hearing(court, "s-seal")
    assert court.as_(t["clerk"], "PATCH", "/v1/hearings/s-seal/utterances/u1",
                     json={"text": "被告承认借款。", "channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "被告"}
                     ).status_code == 200
    assert court.as_(t["clerk"], "POST", "/v1/hearings/s-seal/close").status_code == 200
    assert court.as_(t["judge"], "POST", "/v1/hearings/s-seal/signatures", json={"role": "presiding_judge"}).status_code == 201
    assert court.as_(t["clerk"], "GET", "/v1/hearings/s-seal/verify").json()["ok"] is True
    _rewrite(court.home / "data" / "courtscribe.db", "s-seal", "被告否认借款。")
    checked = court.as_(t["clerk"], "GET", "/v1/hearings/s-seal/verify").json()
    assert checked["ok"] is False and "sealed" in checked["problem"]
    # the audit log, cut short (a copy, with its sealed head)
    audit = court.home / "data" / "audit"
    lines = (audit / "audit.jsonl").read_text().splitlines()
    shutil.copy(audit / "audit.jsonl.head", tmp_path / "cut.jsonl.head")
    head = json.loads((tmp_path / "cut.jsonl.head").read_text())["seq"]
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:head - 2]) + "\n")
    out = cli(court.home, "audit", "verify", "--file", str(tmp_path / "cut.jsonl"))
    assert out.returncode == 1 and "cut off the end" in out.stdout
    assert cli(court.home, "audit", "verify").returncode == 0


# the endpoints added beside the review take tokens as the others do ------------------------------
def test_realtime_transcription_takes_tokens_as_every_other_socket(court):
    reply, code, _ = asyncio.run(_first(court, "/v1/realtime?intent=transcription", None))
    assert code == 4401 and reply["code"] == "unauthorized"
    assert reply["error"]["code"] == "unauthorized" and reply["error"]["message"]  # what OpenAI's SDKs read
    append = {"type": "input_audio_buffer.append", "audio": "AAAAAA=="}
    reply, code, _ = asyncio.run(_first(court, "/v1/realtime?intent=transcription", _tokens(court)["clerk_rt"]))
    assert reply["type"] == "session.created"
    browser = ["realtime", f"openai-insecure-api-key.{_tokens(court)['clerk_rt']}"]  # OpenAI's browser clients
    reply, code, chosen = asyncio.run(_first(court, "/v1/realtime?intent=transcription", None, subprotocols=browser))
    assert reply["type"] == "session.created" and chosen == "realtime"  # the token is never echoed
    refused = asyncio.run(_realtime_refused(court, _tokens(court)["viewer_rt"], append))
    assert refused["type"] == "error" and refused["error"]["code"] == "forbidden"  # a viewer sends no audio


async def _realtime_refused(court: Court, token: str, first: dict) -> dict:
    async with websockets.connect(f"{court.ws}/v1/realtime?intent=transcription", ssl=court.tls,
                                  additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps(first))
        return json.loads(await asyncio.wait_for(ws.recv(), 30))
