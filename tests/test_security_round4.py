"""The fourth outside security review, each finding against a real server: what got through then
must not now."""
import asyncio

import httpx

from courtscribe.server.handshake import HEADER_TIMEOUT_S, MAX_UNFINISHED_PER_ADDRESS

from conftest import COURT_A


async def _closed(reader: asyncio.StreamReader, within_s: float) -> bool:
    """Whether the server closed the connection within ``within_s`` (it sent nothing before); one
    closed with our half request unread in its buffer is reset, which is closed too."""
    try:
        return await asyncio.wait_for(reader.read(1), within_s) == b""
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


def test_connections_that_never_finish_their_headers_take_no_court_down(server):
    """Thousands of connections sending half a request (slowloris) from one host held every
    connection the server allows, and every clerk's request got 503. One address now keeps only a
    few such connections, each for ``HEADER_TIMEOUT_S`` at most, and the API answers meanwhile."""
    host, port = server.removeprefix("http://").split(":")
    n = MAX_UNFINISHED_PER_ADDRESS + 8

    async def main() -> tuple[int, int, int]:
        # from another address than the clerk's (127.0.0.3: loopback too)
        conns = [await asyncio.open_connection(host, int(port), local_addr=("127.0.0.3", 0)) for _ in range(n)]
        for _, writer in conns:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            await writer.drain()
        async with httpx.AsyncClient() as client:  # the API answers beside them
            status = (await client.get(f"{server}/healthz", timeout=10)).status_code
        # by its answer the server had taken every connection before it: those it refused are shut
        shut = await asyncio.gather(*(_closed(r, 3.0) for r, _ in conns))
        held = [r for (r, _), gone in zip(conns, shut) if not gone]
        late = await asyncio.gather(*(_closed(r, HEADER_TIMEOUT_S + 10) for r in held))
        for _, writer in conns:
            writer.close()
        return sum(shut), status, sum(late)

    refused, status, late = asyncio.run(main())
    assert refused >= n - MAX_UNFINISHED_PER_ADDRESS and status == 200, (refused, status)
    assert refused + late == n  # the rest closed at the deadline, not held for ever


def test_a_judge_signs_only_a_seat_the_record_gives_them_and_only_once(court):
    """A judge of the court who does not sit on the bench signed as 审判长, 审判员 and 人民陪审员 beside
    the named 审判长 (the first signature locks the record against the clerk's corrections). Where the
    participants name who sits in a seat, only they sign there, and in their own seat; nobody signs
    twice. The clerk notes a party's signature for the participant named in that seat, not anyone."""
    t = court.tokens("sec4", clerk=("clerk", "冯书记员", "--court", COURT_A),
                     judge=("judge", "王法官", "--court", COURT_A), presiding=("judge", "李法官", "--court", COURT_A))
    made = court.as_(t["clerk"], "POST", "/v1/hearings", json={"title": "签名席位", "participants": [
        {"role": "presiding_judge", "name": "李法官"}, {"role": "plaintiff", "name": "张三"}]})
    hid = made.json()["id"]
    assert court.as_(t["clerk"], "POST", f"/v1/hearings/{hid}/close").status_code == 200
    seat = court.as_(t["judge"], "POST", f"/v1/hearings/{hid}/signatures", json={"role": "presiding_judge"})
    assert seat.status_code == 403 and "李法官" in seat.json()["detail"]["message"], seat.text
    assert court.as_(t["judge"], "POST", f"/v1/hearings/{hid}/signatures", json={"role": "judge"}).status_code == 201
    again = court.as_(t["judge"], "POST", f"/v1/hearings/{hid}/signatures", json={"role": "juror"})
    assert again.status_code == 403 and "already" in again.json()["detail"]["message"], again.text
    astray = court.as_(t["presiding"], "POST", f"/v1/hearings/{hid}/signatures", json={"role": "juror"})
    assert astray.status_code == 403 and "审判长" in astray.json()["detail"]["message"], astray.text
    stranger = court.as_(t["clerk"], "POST", f"/v1/hearings/{hid}/party-signatures",
                         json={"name": "不存在的人", "role": "plaintiff"})
    assert stranger.status_code == 403 and "张三" in stranger.json()["detail"]["message"], stranger.text
    noted = court.as_(t["clerk"], "POST", f"/v1/hearings/{hid}/party-signatures",
                      json={"name": "张三", "role": "plaintiff"})
    assert noted.status_code == 201
    signed = {(s["role"], s["name"], s["state"]) for s in noted.json()["signers"]}
    assert ("presiding_judge", "李法官", "pending") in signed and ("judge", "王法官", "signed") in signed
    own = court.as_(t["presiding"], "POST", f"/v1/hearings/{hid}/signatures", json={"role": "presiding_judge"})
    assert own.status_code == 201, own.text
    assert ("plaintiff", "张三", "signed") in signed and not any(name == "不存在的人" for _, name, _ in signed)
