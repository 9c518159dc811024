"""The third outside security review, each finding against the real TLS server of the access tests
(tokens on): what got through then must not now. The open socket of a token revoked meanwhile is in
test_access.py beside the other revocation checks."""
import asyncio
import base64
import io
import json

import docx
import websockets

from conftest import COURT_A, Court, issue_tokens

LINE = {"channel": 0, "start_ms": 0, "end_ms": 1000, "speaker": "审判长"}


def _tokens(court: Court) -> dict:
    return court.tokens("sec3", clerk=("clerk", "吴书记员", "--court", COURT_A),
                        judge=("judge", "郑法官", "--court", COURT_A),
                        caption=("caption", "直播导播三", "--court", COURT_A))


def _signed(court: Court) -> str:
    """A hearing of court A, one line long, closed and signed by its judge."""
    t = _tokens(court)
    r = court.as_(t["clerk"], "POST", "/v1/hearings", json={"title": "补正申请", "courtroom": "第一法庭"})
    hid = r.json()["id"]
    assert court.as_(t["clerk"], "PATCH", f"/v1/hearings/{hid}/utterances/u1",
                     json={"text": "借款五万元。", **LINE}).status_code == 200
    assert court.as_(t["clerk"], "POST", f"/v1/hearings/{hid}/close").status_code == 200
    assert court.as_(t["judge"], "POST", f"/v1/hearings/{hid}/signatures", json={}).status_code == 201
    return hid


def _printed(court: Court, hid: str) -> str:
    """The 笔录 as printed (its DOCX)."""
    r = court.as_(_tokens(court)["judge"], "GET", f"/v1/hearings/{hid}/export", params={"format": "docx"})
    doc = docx.Document(io.BytesIO(r.content))
    cells = [c.text for table in doc.tables for row in table.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def test_a_token_that_may_send_no_audio_has_none_held_for_it(court):
    """A caption token's push-to-talk turn (``turn_detection: null``) is refused at its first append,
    before any audio is held: appended audio waited for its commit, and the permission with it."""
    async def run() -> tuple[dict, int | None]:
        async with websockets.connect(f"{court.ws}/v1/realtime?intent=transcription", ssl=court.tls,
                                      additional_headers={"Authorization": f"Bearer {_tokens(court)['caption']}"}
                                      ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}}}}))
            assert json.loads(await ws.recv())["type"] == "session.updated"
            chunk = base64.b64encode(bytes(48_000)).decode()
            try:
                for _ in range(50):
                    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                last = {}
                while True:
                    last = json.loads(await asyncio.wait_for(ws.recv(), 30))
            except websockets.ConnectionClosed:
                return last, ws.close_code

    said, _ = asyncio.run(run())
    assert said["type"] == "error" and said["error"]["code"] == "forbidden", said


def test_a_correction_request_is_asked_in_a_role_the_token_holds_or_noted_for_a_participant(court):
    t = _tokens(court)
    hid = _signed(court)
    path = f"/v1/hearings/{hid}/correction-requests"
    ask = {"text": "应为五千元", "reason": "记录有误", "utterance_id": "u1"}
    r = court.as_(t["clerk"], "POST", path, json={**ask, "role": "presiding_judge"})
    assert r.status_code == 403 and "presiding_judge" in r.json()["detail"]["message"]
    assert court.as_(t["clerk"], "POST", path, json={**ask, "role": "defendant"}).status_code == 422  # who?
    r = court.as_(t["clerk"], "POST", path, json={**ask, "role": "defendant", "name": "李四"})
    assert r.status_code == 201 and (r.json()["by"], r.json()["noted_by"]) == ("李四", "吴书记员")
    assert court.as_(t["judge"], "POST", path, json={**ask, "role": "presiding_judge"}).status_code == 201
    text = _printed(court, hid)
    assert "李四（被告），" in text and "吴书记员记录" in text and "“借款五万元。”" in text


def test_a_witness_signature_is_noted_and_printed(court):
    t = _tokens(court)
    hid = _signed(court)
    r = court.as_(t["clerk"], "POST", f"/v1/hearings/{hid}/party-signatures",
                  json={"name": "王证人", "role": "witness", "refused": True, "reason": "不同意记录"})
    assert r.status_code == 201
    assert any(s["role"] == "witness" and s["state"] == "refused" for s in r.json()["signers"])
    assert "不同意记录" in _printed(court, hid)


def test_no_page_of_the_server_loads_a_script_from_elsewhere(court):
    """FastAPI's /docs and /redoc load swagger-ui from a CDN: nothing may leave the court's network,
    and a token pasted there would meet a third party's script. The spec itself stays."""
    for path in ("/docs", "/redoc"):
        assert court.http.get(path).status_code == 404, path
    assert court.as_(_tokens(court)["clerk"], "GET", "/openapi.json").json()["info"]["title"] == "courtscribe"


def test_one_token_holds_so_many_open_sockets_and_no_more(court):
    """uvicorn's connection limit does not count an upgraded socket: one viewer token's idle event
    sockets took every connection, and the clerk's next request got 503."""
    viewer = issue_tokens(court.home, v=("viewer", "多开终端", "--court", COURT_A))["v"]

    async def run() -> tuple[dict, int | None, dict]:
        url, auth = f"{court.ws}/v1/hearings/h-pub/events", ["courtscribe.v1", f"bearer.{viewer}"]
        held = [await websockets.connect(url, ssl=court.tls, subprotocols=auth) for _ in range(64)]
        for ws in held:
            assert json.loads(await ws.recv())["type"] == "subscribed"
        async with websockets.connect(url, ssl=court.tls, subprotocols=auth) as extra:
            refused = json.loads(await extra.recv())
            await extra.wait_closed()
        await held.pop().close()
        for _ in range(100):  # the server lets go of the closed one as its handler ends: soon after
            async with websockets.connect(url, ssl=court.tls, subprotocols=auth) as again:
                hello = json.loads(await again.recv())
            if hello["type"] == "subscribed":
                break
            await asyncio.sleep(0.1)
        for ws in held:
            await ws.close()
        return refused, extra.close_code, hello

    refused, code, hello = asyncio.run(run())
    assert refused["code"] == "too_many_sockets" and code == 4429
    assert hello["type"] == "subscribed"  # one closed: one may open
    assert court.as_(_tokens(court)["clerk"], "GET", "/v1/hearings/h-pub").status_code == 200


def test_a_database_error_in_the_log_never_carries_the_lines_words():
    """A store refusal's text holds its SQL and, as parameters, what was said: the log keeps what the
    database said only (logs never hold hearing content); every log line passes the processor."""
    import inspect

    from sqlalchemy.exc import OperationalError

    from courtscribe import logs

    err = OperationalError("INSERT INTO utterances (text) VALUES (?)", ("被告说他欠我五万元",),
                           Exception("database is locked"))
    said = logs.no_statements(None, "error", {"event": "final not stored", "error": str(err)})
    assert "database is locked" in said["error"] and "五万元" not in said["error"]
    assert "no_statements," in inspect.getsource(logs.configure)


def test_the_data_folder_is_the_server_accounts_alone(tmp_path):
    """Records, recordings and the spool lived in a 0755 folder: any local account could read them."""
    from courtscribe.server.services import _private

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    _private(data)
    assert data.stat().st_mode & 0o777 == 0o700
    _private(tmp_path / "new")  # made for the server: its alone from the start
    assert (tmp_path / "new").stat().st_mode & 0o077 == 0


def test_prometheus_scrapes_with_a_monitor_token_that_reads_no_record(court):
    """/metrics needed a full admin token (it could read every court's records and issue tokens),
    and each scrape was an fsync'd audit entry; the store's state and the disk were not in it."""
    monitor = court.tokens("monitor", m=("monitor", "prometheus"))["m"]  # server-wide: no court's data
    r = court.as_(monitor, "GET", "/metrics")
    assert r.status_code == 200
    for gauge in ("courtscribe_store_up 1.0", "courtscribe_spool_pending 0.0", "courtscribe_data_free_bytes"):
        assert gauge in r.text, gauge
    assert court.as_(monitor, "GET", "/v1/hearings/h-pub").status_code == 403
    assert court.as_(monitor, "GET", "/v1/hearings").json()["total"] == 0  # it lists none
    audit = (court.home / "data" / "audit" / "audit.jsonl").read_text()
    assert "GET /metrics" not in audit


def test_a_readiness_probe_says_whether_a_hearing_can_be_recorded_now(court):
    r = court.http.get("/healthz", params={"ready": "true"})
    assert (r.status_code, r.json()) == (200, {"status": "ok"})  # a stranger: up and ready, no more
    said = court.as_(_tokens(court)["clerk"], "GET", "/healthz", params={"ready": "true"}).json()
    assert said["ready"] is True and said["store_up"] is True and said["data_free_bytes"] > 0
    assert said["spool_pending"] == 0
