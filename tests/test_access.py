"""Scoped tokens on a real server over TLS: every role and scope rule, positive and negative, on
HTTP and on the WebSocket endpoints (native, events, FunASR-compatible), tokens issued and revoked
with the admin CLI, JWTs, rate limits, the audit log and the --insecure-no-auth guard rail."""
import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from types import SimpleNamespace

import jwt
import pytest
import websockets


from conftest import COURT_A, COURT_B, JWT_KEY, TOKEN_RATE_LIMIT, Court, cli, issue


def test_no_token_or_a_bad_one_is_401_and_health_stays_open(court):
    r = court.as_(None, "GET", "/v1/hearings")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert court.as_("cst_000000000000_forged", "GET", "/v1/hearings").status_code == 401
    assert court.as_(court.t["clerk"] + "x", "GET", "/v1/hearings").status_code == 401
    assert court.http.get("/healthz").json() == {"status": "ok"}  # up, for any probe; no more to a stranger
    assert court.as_(court.t["viewer"], "GET", "/healthz").json()["engine"]  # what runs, to a token
    r = court.as_(None, "POST", "/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF")})
    assert r.status_code == 401


def test_metrics_are_for_the_admin_token_only(court):
    assert court.as_(None, "GET", "/metrics").status_code == 401
    assert court.as_(court.t["clerk"], "GET", "/metrics").status_code == 403
    r = court.as_(court.t["admin"], "GET", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "courtscribe_active_streams" in r.text and "# TYPE courtscribe_stage_seconds histogram" in r.text


def test_scopes_follow_court_and_role(court):
    t = court.t
    assert court.as_(t["clerk"], "GET", "/v1/hearings/h-pub").status_code == 200
    r = court.as_(t["clerk"], "GET", "/v1/hearings/h-b")  # another court's hearing reads as a missing one
    missing = court.as_(t["clerk"], "GET", "/v1/hearings/h-none").text.replace("h-none", "h-b")
    assert r.status_code == 404 and r.text == missing and r.json()["detail"]["code"] == "not_found"
    assert court.as_(t["clerk_b"], "GET", "/v1/hearings/h-b").status_code == 200
    ids = {h["id"] for h in court.as_(t["clerk"], "GET", "/v1/hearings").json()["data"]}
    assert {"h-pub", "h-closed"} <= ids and "h-b" not in ids
    # a clerk schedules inside its own court only; the court is filled in when left out
    assert court.as_(t["clerk"], "POST", "/v1/hearings", json={"id": "h-x", "court": COURT_B}).status_code == 403
    r = court.as_(t["clerk"], "POST", "/v1/hearings", json={"title": "自己法院的庭审"})
    assert r.status_code == 201 and r.json()["court"] == COURT_A
    own = r.json()["id"]
    assert court.as_(t["clerk"], "GET", f"/v1/hearings/{own}").status_code == 200
    # ids are the server's: a court's token never picks one, so it cannot ask whether one is taken
    refused = court.as_(t["clerk"], "POST", "/v1/hearings", json={"id": "h-own"})
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "id_chosen_by_server"
    # viewer: reads, never writes
    assert court.as_(t["viewer"], "GET", "/v1/hearings/h-pub").status_code == 200
    for method, path, body in (("PATCH", "/v1/hearings/h-pub/utterances/u1", {"text": "改"}),
                               ("POST", "/v1/hearings/h-pub/signatures", {"by": "x", "role": "clerk"}),
                               ("POST", "/v1/hearings/h-pub/close", None),
                               ("POST", "/v1/hearings/h-pub/participants", {"role": "原告", "name": "张三"})):
        assert court.as_(t["viewer"], method, path, json=body).status_code == 403, (method, path)
    assert court.as_(t["viewer"], "GET", "/v1/hearings/h-pub/export", params={"format": "txt"}).status_code == 403
    # judge: signs and exports, does not edit lines
    assert court.as_(t["judge"], "PATCH", "/v1/hearings/h-pub/utterances/u1", json={"text": "改"}).status_code == 403
    assert court.as_(t["judge"], "GET", "/v1/hearings/h-pub/export", params={"format": "txt"}).status_code == 200
    assert court.as_(t["judge"], "POST", "/v1/hearings/h-sign/close").status_code == 403  # the clerk closes
    assert court.as_(t["clerk"], "POST", "/v1/hearings/h-sign/close").status_code == 200
    assert court.as_(t["judge"], "POST", "/v1/hearings/h-sign/signatures",
                     json={"by": "孙法官", "role": "presiding_judge"}).status_code == 201
    # caption and recorder tokens never read records
    for role in ("caption", "rec_r1"):
        assert court.as_(t[role], "GET", "/v1/hearings/h-pub").status_code == 403
        assert court.as_(t[role], "POST", "/v1/audio/transcriptions",
                         files={"file": ("a.wav", b"RIFF")}).status_code == 403
    # h-own was scheduled without saying 公开: not public, so no captions
    listed = {h["id"] for h in court.as_(t["caption"], "GET", "/v1/hearings").json()["data"]}
    assert {"h-pub", "h-sign"} <= listed and not {"h-own", "h-closed", "h-b"} & listed
    # the clerk's edit is recorded under the token's name
    r = court.as_(t["clerk"], "PATCH", "/v1/hearings/h-pub/utterances/u1",
                  json={"text": "本庭现在开庭。", "channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "审判长"})
    assert r.status_code == 200, r.text
    fixes = court.as_(t["clerk"], "GET", "/v1/hearings/h-pub/corrections").json()["corrections"]
    assert fixes[-1]["by"] == "赵书记员"


async def _events(court: Court, token: str, hearing: str) -> tuple[dict, int | None]:
    async with websockets.connect(f"{court.ws}/v1/hearings/{hearing}/events", ssl=court.tls,
                                  subprotocols=["courtscribe.v1", f"bearer.{token}"]) as ws:
        assert ws.subprotocol == "courtscribe.v1"  # the token is never echoed back
        first = json.loads(await ws.recv())
        try:
            await asyncio.wait_for(ws.recv(), 2)
        except (websockets.ConnectionClosed, asyncio.TimeoutError):
            pass
        return first, ws.close_code


def test_events_socket_is_for_readers_of_the_hearing(court):
    t = court.t
    first, _ = asyncio.run(_events(court, t["viewer"], "h-pub"))
    assert first["type"] == "subscribed"
    for hearing in ("h-pub", "h-closed"):  # captions read the caption feed, never every partial and final
        first, code = asyncio.run(_events(court, t["caption"], hearing))
        assert first["code"] == "forbidden" and "caption feed" in first["message"] and code == 4403
    first, code = asyncio.run(_events(court, t["clerk_b"], "h-pub"))  # another court's: as if it did not exist
    assert first["code"] == "not_found" and code == 4404
    first, code = asyncio.run(_events(court, "cst_nope_nope", "h-pub"))
    assert first["code"] == "unauthorized" and code == 4401


async def _start(court: Court, token: str | None, hearing: str | None, **connect) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with websockets.connect(f"{court.ws}/v1/stream", ssl=court.tls, additional_headers=headers,
                                  **connect) as ws:
        try:
            await ws.send(json.dumps({"type": "start", "hearing_id": hearing, "role": "审判长"}))
        except websockets.ConnectionClosed:
            pass  # refused at the door: the reason is already waiting
        reply = json.loads(await ws.recv())
        if reply["type"] == "ready":
            await ws.send(json.dumps({"type": "stop"}))
        try:
            async for _ in ws:  # the stream's end, then the close
                pass
        except websockets.ConnectionClosed:
            pass
        return {**reply, "close_code": ws.close_code}


def test_recorder_pushes_audio_into_its_own_room_only(court, data_dir):
    t = court.t
    assert asyncio.run(_start(court, t["rec_r1"], "h-pub"))["type"] == "ready"
    refused = asyncio.run(_start(court, t["rec_r2"], "h-pub"))
    assert refused["type"] == "error" and refused["code"] == "forbidden" and "room 第二法庭" in refused["message"]
    assert refused["close_code"] == 4403  # closed as a refusal, not as a stream done (1000)
    assert asyncio.run(_start(court, t["viewer"], "h-pub"))["code"] == "forbidden"
    assert asyncio.run(_start(court, None, "h-pub"))["code"] == "unauthorized"
    # a query-string token is for FunASR clients only
    assert asyncio.run(_query_native(court, t["rec_r1"]))["code"] == "unauthorized"
    # a recorder's mistyped (or another court's) hearing id is refused alike, and nothing is made
    for wrong in ("h-walkin", "h-b"):
        refused = asyncio.run(_start(court, t["rec_r1"], wrong))
        assert refused["code"] == "not_found" and refused["message"] == f"no hearing {wrong!r}"
        assert refused["close_code"] == 4404
    assert court.as_(t["admin"], "GET", "/v1/hearings/h-walkin").status_code == 404


async def _query_native(court: Court, token: str) -> dict:
    async with websockets.connect(f"{court.ws}/v1/stream?token={token}", ssl=court.tls) as ws:
        return json.loads(await ws.recv())


async def _funasr(court: Court, query: str, local: str = "127.0.0.1") -> list[dict]:
    port = int(court.url.rsplit(":", 1)[1])
    async with websockets.connect(f"{court.ws}/{query}", ssl=court.tls, local_addr=(local, 0)) as ws:
        try:
            await ws.send(json.dumps({"mode": "2pass", "wav_name": "court", "is_speaking": True,
                                      "chunk_size": [5, 10, 5]}))
            await ws.send(b"\0\0" * 16000)
            await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
        except websockets.ConnectionClosed:
            pass  # refused before the client spoke (a loaded server answers first): the reason is read below
        replies = []
        try:
            async for raw in ws:  # until the end-of-input acknowledgement (or the server closes: refused)
                replies.append(json.loads(raw))
                if replies[-1].get("is_end"):
                    await ws.close()
        except websockets.ConnectionClosed:
            pass
        return replies + [{"close_code": ws.close_code, "port": port}]


def test_funasr_endpoint_takes_query_token_or_listed_host_over_wss(court):
    ok = asyncio.run(_funasr(court, f"?token={court.t['rec_r1']}&hearing=h-pub"))
    assert ok[-2] == {"mode": "2pass", "wav_name": "court", "is_final": True, "is_end": True}
    assert ok[-1]["close_code"] == 1000
    listed = asyncio.run(_funasr(court, "?hearing=h-pub", local="127.0.0.2"))  # a courtroom PC on the allow-list
    assert listed[-2]["is_final"] is True and "error" not in listed[-2]
    refused = asyncio.run(_funasr(court, ""))  # 127.0.0.1 is not on the list and has no token
    assert refused[0]["code"] == "unauthorized" and refused[-1]["close_code"] == 4401
    other_room = asyncio.run(_funasr(court, f"?token={court.t['rec_r2']}&hearing=h-pub"))
    assert "room 第二法庭" in other_room[0]["error"] and other_room[-1]["close_code"] == 4403
    for wrong in ("deadbeefdeadbeef", "h-b"):  # none, or another court's: refused, no file answered as done
        missing = asyncio.run(_funasr(court, f"?token={court.t['rec_r1']}&hearing={wrong}"))
        assert missing[0]["code"] == "not_found" and missing[-1]["close_code"] == 4404
        assert [r for r in missing[1:-1] if "error" not in r] == []


def test_a_token_for_one_hearing_schedules_no_other(court):
    """Else a clerk's token for one hearing could schedule a public hearing in any room of its court,
    the hearing that room's recorder joins next when none is open."""
    token = issue(court.home, "clerk", "一案书记员", "--court", COURT_A, "--hearing", "h-pub")
    assert court.as_(token, "GET", "/v1/hearings/h-pub").status_code == 200
    for body in ({"courtroom": "第三法庭", "public": True}, {"title": "另一个庭审"}):
        r = court.as_(token, "POST", "/v1/hearings", json=body)
        assert r.status_code == 403 and "h-pub" in r.json()["detail"]["message"], r.text
    assert court.as_(court.t["clerk"], "POST", "/v1/hearings", json={"title": "法院书记员排期"}).status_code == 201


def test_revoked_and_expired_tokens_stop_working(court):
    token = issue(court.home, "viewer", "临时终端", "--court", COURT_A)
    assert court.as_(token, "GET", "/v1/hearings/h-pub").status_code == 200
    tid = token.split("_")[1]
    assert cli(court.home, "tokens", "revoke", tid).returncode == 0
    deadline = time.monotonic() + 15  # another process revoked it: the server's cache holds ≤ 10 s
    while court.as_(token, "GET", "/v1/hearings/h-pub").status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still works after 15 s"
        time.sleep(1)
    r = court.as_(token, "GET", "/v1/hearings/h-pub")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]["message"]
    short = issue(court.home, "viewer", "一秒终端", "--court", COURT_A, "--days", "0.00001")
    time.sleep(1.5)
    r = court.as_(short, "GET", "/v1/hearings/h-pub")
    assert r.status_code == 401 and "expired" in r.json()["detail"]["message"]
    listing = cli(court.home, "tokens", "list").stdout
    assert f"{tid}\tviewer\trevoked\t临时终端" in listing


def test_a_socket_open_when_its_token_is_revoked_or_expires_is_closed(court):
    """A token checked at the handshake only would read a hearing for as long as its socket stays
    open: revoked (by the CLI, another process) or expired meanwhile, the socket is told and closed."""
    revoked = issue(court.home, "viewer", "撤销终端", "--court", COURT_A)
    expiring = jwt.encode({"sub": "临时", "role": "viewer", "court": COURT_A, "aud": "courtscribe", "jti": "j-exp",
                           "exp": int(time.time()) + 3}, JWT_KEY, algorithm="HS256")

    async def until_closed(token: str, then=None) -> tuple[dict, int | None]:
        async with websockets.connect(f"{court.ws}/v1/hearings/h-pub/events", ssl=court.tls,
                                      subprotocols=["courtscribe.v1", f"bearer.{token}"]) as ws:
            assert json.loads(await ws.recv())["type"] == "subscribed"
            if then:
                await asyncio.to_thread(then)
            last: dict = {}
            try:
                while True:  # the server's cache and its look at open sockets: ≤ 20 s; 90: it never did
                    last = json.loads(await asyncio.wait_for(ws.recv(), 90))
            except websockets.ConnectionClosed:
                return last, ws.close_code

    async def both():
        return await asyncio.gather(
            until_closed(revoked, lambda: cli(court.home, "tokens", "revoke", revoked.split("_")[1])),
            until_closed(expiring))

    (said, code), (said_exp, code_exp) = asyncio.run(both())
    assert code == 4401 and "revoked" in said["message"]
    assert code_exp == 4401 and "expired" in said_exp["message"].lower()


def test_jwt_from_the_court_identity_system(court):
    def make(key=JWT_KEY, **claims):
        body = {"sub": "李书记员", "role": "clerk", "court": COURT_A, "aud": "courtscribe", "jti": claims.pop("jti", "j1"),
                "exp": int(time.time()) + 600, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="HS256")

    assert court.as_(make(), "GET", "/v1/hearings/h-pub").status_code == 200
    assert court.as_(make(court=COURT_B), "GET", "/v1/hearings/h-pub").status_code == 404
    assert court.as_(make(key="another-key-0123456789-0123456789-0123"), "GET", "/v1/hearings").status_code == 401
    assert court.as_(make(exp=None), "GET", "/v1/hearings").status_code == 401
    assert court.as_(make(exp=int(time.time()) - 5), "GET", "/v1/hearings").status_code == 401
    assert court.as_(make(role="superuser"), "GET", "/v1/hearings").status_code == 401
    assert court.as_(make(court=None), "GET", "/v1/hearings").status_code == 401  # only admins are server-wide
    assert cli(court.home, "tokens", "revoke", "j2").returncode == 0
    r = court.as_(make(jti="j2"), "GET", "/v1/hearings")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]["message"]


def test_rate_limit_is_per_token(court):
    codes = [court.as_(court.t["busy"], "GET", "/v1/hearings").status_code for _ in range(TOKEN_RATE_LIMIT + 5)]
    assert codes[:TOKEN_RATE_LIMIT] == [200] * TOKEN_RATE_LIMIT and codes[-1] == 429
    assert court.as_(court.t["viewer"], "GET", "/v1/hearings").status_code == 200  # others unaffected


def test_secure_defaults_headers_cors_and_sizes(court):
    r = court.as_(court.t["clerk"], "GET", "/v1/hearings/h-pub")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert "server" not in r.headers
    pre = court.http.options("/v1/hearings", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in pre.headers
    big = court.as_(court.t["clerk"], "POST", "/v1/hearings", content=b"{" + b" " * (2 << 20) + b"}",
                    headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["detail"]["code"] == "too_large"
    assert court.http.get("/v1/hearings/", follow_redirects=True).status_code == 401  # nothing listed without a token


def test_audit_log_records_who_did_what_and_is_chained(court):
    t = court.t  # what the log must show is done here, so the test stands alone in any order
    assert asyncio.run(_start(court, t["rec_r1"], "h-pub"))["type"] == "ready"  # connect, send_audio
    assert asyncio.run(_start(court, t["rec_r2"], "h-pub"))["code"] == "forbidden"  # denied: another room
    assert court.as_(t["viewer"], "PATCH", "/v1/hearings/h-pub/utterances/u1", json={"text": "改"}).status_code == 403
    assert court.as_(None, "GET", "/v1/hearings/h-pub").status_code == 401
    assert court.as_(t["clerk"], "PATCH", "/v1/hearings/h-pub/utterances/u1",
                     json={"text": "本庭现在开庭。", "channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "审判长"}
                     ).status_code == 200
    assert court.as_(t["judge"], "GET", "/v1/hearings/h-pub/export", params={"format": "txt"}).status_code == 200
    entries = [json.loads(line) for line in (court.home / "data" / "audit" / "audit.jsonl").read_text().splitlines()]
    actions = {e["action"] for e in entries}
    assert {"token_issued", "connect", "send_audio", "denied", "PATCH /v1/hearings/h-pub/utterances/u1",
            "GET /v1/hearings/h-pub/export"} <= actions
    edit = next(e for e in entries if e["action"] == "PATCH /v1/hearings/h-pub/utterances/u1" and e["outcome"] == "ok")
    assert edit["name"] == "赵书记员" and edit["hearing"] == "h-pub" and edit["court"] == COURT_A
    assert any(e["outcome"] == "unauthorized" and e["token"] is None for e in entries)
    assert cli(court.home, "audit", "verify").returncode == 0
    tampered = court.home / "tampered.jsonl"
    lines = (court.home / "data" / "audit" / "audit.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace("赵书记员", "钱书记员") if "赵书记员" in lines[3] else lines[3].replace('"ok"', '"no"')
    del lines[5]
    tampered.write_text("\n".join(lines) + "\n")
    out = cli(court.home, "audit", "verify", "--file", str(tampered))
    assert out.returncode == 1 and "altered" in out.stdout and "chain broken" in out.stdout


def test_insecure_no_auth_is_refused_off_loopback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "courtscribe", "serve", "--insecure-no-auth", "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60,
                         env={"COURTSCRIBE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "refused on 0.0.0.0" in out.stderr


def test_a_token_accepted_before_the_database_went_away_works_through_a_short_outage_only(tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from courtscribe.access import tokens as tokens_module
    from courtscribe.access.tokens import Tokens, TokenError
    from courtscribe.db import Base, connect

    engine = connect(f"sqlite:///{tmp_path / 'tokens.db'}")
    Base.metadata.create_all(engine)
    store = Tokens(engine)
    token = store.issue("viewer", name="旁听终端", court=COURT_A).token
    now = [1000.0]
    monkeypatch.setattr(tokens_module, "time", SimpleNamespace(monotonic=lambda: now[0]))  # this module's clock
    assert store.verify(token).name == "旁听终端"

    def away(_token):
        raise OperationalError("SELECT", {}, Exception("connection refused"))
    monkeypatch.setattr(store, "_verify_api", away)
    now[0] += tokens_module.OUTAGE_S - 1
    assert store.verify(token).name == "旁听终端"  # the database blinked: the courtroom goes on
    now[0] += 2
    with pytest.raises(TokenError, match="cannot be checked"):  # past that, it may have been revoked meanwhile
        store.verify(token)
    # ... which the client hears as "the store is away, retry" (503), never as a wrong token (401):
    # a recorder reconnecting through a database restart retries, and no address is slowed for it
    from courtscribe.access.audit import AuditLog
    from courtscribe.access.guard import Access, Denied

    access = Access(tokens=store, audit=AuditLog(tmp_path / "audit.log"))
    for _ in range(40):
        with pytest.raises(Denied) as refused:
            access.identify(token, "10.0.0.9")
        assert (refused.value.status, refused.value.code) == (503, "store_unavailable")


def test_a_court_identity_systems_public_key_verifies_its_tokens_and_is_never_a_shared_secret(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from courtscribe.access.tokens import Tokens, TokenError
    from courtscribe.db import Base, connect

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp_path / "idp.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    claims = {"sub": "李书记员", "role": "clerk", "court": COURT_A, "aud": "courtscribe", "jti": "k1",
              "exp": int(time.time()) + 600}
    engine = connect(f"sqlite:///{tmp_path / 'tokens.db'}")
    Base.metadata.create_all(engine)
    store = Tokens(engine, jwt_public_key=public)
    assert store.verify(jwt.encode(claims, key, algorithm="RS256")).name == "李书记员"

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    body = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    forged = f"{body}.{b64(hmac.new(public.read_bytes(), body.encode(), hashlib.sha256).digest())}"
    with pytest.raises(TokenError):  # signed with the public key read as an HMAC secret
        store.verify(forged)


def test_a_socket_gone_before_its_refusal_is_said_is_refused_without_a_server_error(tmp_path):
    """A page that closes its socket while the server checks its token (a tab closed, a reload):
    the refusal finds nobody to tell. It is noted as any refusal, never a traceback in the log."""
    import asyncio

    from starlette.websockets import WebSocketDisconnect

    from courtscribe.access.guard import Denied, build
    from courtscribe.config import Settings
    from courtscribe.server.auth import ws_deny

    access = build(Settings(data_dir=tmp_path, insecure_no_auth=False))

    class Gone:  # what Starlette's socket does once its client has left
        async def send_json(self, data):
            raise WebSocketDisconnect(1006)

        async def close(self, code):
            raise WebSocketDisconnect(1006)

    asyncio.run(ws_deny(Gone(), access, Denied(401, "unauthorized", "unknown token"), None, path="/v1/stream"))
    assert [e["action"] for e in access.audit.entries()] == ["denied"]
