"""The web half of access control: every route's dependency (``allow``, ``on_hearing``), the answer
to a refusal, and a WebSocket's way in (accepted, identified, told why and closed when refused).

The decisions are ``access/`` policy (guard.Access, scopes.py); this module only reads a request or
socket for its token and client address and says the outcome in HTTP or WebSocket terms.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..access.guard import BEARER, SUBPROTOCOL, Access, Denied, bearer, note_denied
from ..access.scopes import Action, Principal
from . import deps, errors

# subprotocols that carry a token: ours (``bearer.<token>``) and OpenAI's browser clients' own
CARRY_TOKENS = (BEARER, "openai-insecure-api-key.")


def _client(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


async def identify_request(request, access: Access) -> Principal:
    """The principal of an HTTP request (the body-size layer may have identified it already, before
    reading the body)."""
    if (who := getattr(request.state, "principal", None)) is not None:
        return who
    local = unquote(request.headers.get("x-courtscribe-user", "anonymous"))
    if len(local) > 128 or not local.isprintable():  # the name every change of the record is written under
        raise Denied(400, "bad_user", "X-Courtscribe-User: a printable name of 128 characters at most")
    request.state.principal = None
    who = await access.aidentify(bearer(request.headers.get("authorization")), _client(request), local_name=local)
    request.state.principal = who
    return who


async def authorize(request: Request, action: Action | None, hearing_id: str | None = None) -> Principal:
    """Raises Denied (answered by ``denied``) unless the request's token may do ``action``. A change
    is written to the audit log before it is made; when the log cannot be written it is refused."""
    access = deps.access(request)
    who = await identify_request(request, access)
    await access.check(who, action, hearing_id)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        await access.audited(f"{request.method} {request.url.path}", who, hearing=hearing_id, outcome="begin")
    return who


async def denied(request: Request, err: Denied) -> JSONResponse:
    """The app's answer to Denied: the status, a code and why (WWW-Authenticate on 401)."""
    request.state.denied = err
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    if err.status == 429:
        headers["Retry-After"] = "60"
    return JSONResponse(errors.body(err.status, {"code": err.code, "message": err.message}), status_code=err.status,
                        headers=headers)


def allow(action: Action | None):
    """Dependency: the caller's principal, when it may do ``action`` (no hearing involved; None: any
    valid token)."""
    async def dep(request: Request) -> Principal:
        return await authorize(request, action)
    return Depends(dep)


def on_hearing(action: Action):
    """Dependency: the caller's principal, when it may do ``action`` on the path's hearing."""
    async def dep(request: Request, hearing_id: str) -> Principal:
        return await authorize(request, action, hearing_id)
    return Depends(dep)


@asynccontextmanager
async def ws_enter(ws: WebSocket, access: Access, *, legacy: bool = False) -> AsyncIterator[Principal | None]:
    """Accept the socket and identify its client for as long as the block runs: ``None`` when it
    was refused (told why and closed). It counts against its token's open sockets, and a token
    revoked or expired while it is open ends it. ``legacy``: the FunASR endpoint, where ``?token=``
    and the recorder-host list are accepted."""
    offered = ws.scope.get("subprotocols") or []
    token = bearer(ws.headers.get("authorization"))
    token = token or next((p.split(".", 1)[1] for p in offered if p.startswith(CARRY_TOKENS)), None)
    if legacy:
        token = token or ws.query_params.get("token")
    # the chosen subprotocol is echoed in the handshake: never one that carries a token
    chosen = SUBPROTOCOL if SUBPROTOCOL in offered else next((p for p in offered if not p.startswith(CARRY_TOKENS)),
                                                             None)
    await ws.accept(subprotocol=chosen)
    client = _client(ws)
    try:
        foreign_page(ws, access)
        who = access.listed_recorder(client) if legacy and access.enabled and not token else None
        who = who or await access.aidentify(token, client)
        if why := access.sockets.take(who, counted=access.enabled):
            raise Denied(429, "too_many_sockets", why)
    except Denied as err:
        await ws_deny(ws, access, err, None, path=ws.url.path, client=client)
        yield None
        return
    hold = asyncio.create_task(_hold(ws, access, token, who)) if token and access.enabled else None
    try:
        await access.audited("connect", who, path=ws.url.path, client=client)
        admitted: Principal | None = who
    except Denied as err:
        await ws_deny(ws, access, err, who, path=ws.url.path, client=client)
        admitted = None
    try:
        yield admitted
    finally:
        if hold is not None:
            hold.cancel()
        access.sockets.give(who)


RECHECK_S = 10.0  # how often an open socket's token is asked again (tokens.CACHE_S: no sooner news)


async def _hold(ws: WebSocket, access: Access, token: str, who: Principal) -> None:
    """A socket outlives its handshake: a token revoked or expired while it is open ends it, told
    why (4401), as a new request with the token would be refused."""
    while True:
        await asyncio.sleep(RECHECK_S)
        try:
            await asyncio.to_thread(access.still_valid, token)
        except Denied as err:
            await ws_deny(ws, access, err, who, path=ws.url.path)
            return


def foreign_page(ws: WebSocket, access: Access) -> None:
    """Raises Denied (403) for a browser socket opened by a page of another site (cross-site
    WebSocket hijacking): its Origin must be this server's or one court IT allowed. Programs send
    no Origin."""
    origin = ws.headers.get("origin")
    if origin is None or origin in access.origins:
        return
    host = ws.headers.get("host", "")
    if origin.split("://", 1)[-1] == host:
        return
    raise Denied(403, "forbidden_origin", f"sockets from pages of {origin} are not allowed (COURTSCRIBE_WS_ORIGINS)")


async def ws_deny(ws: WebSocket, access: Access, err: Denied, who: Principal | None, **detail) -> None:
    """Refused and closed, after saying why: in our error event's words, and in OpenAI's (``error``)."""
    await note_denied(access, who, err, **detail)
    try:
        await ws.send_json({"type": "error", "code": err.code, "message": err.message, "fatal": True,
                            "error": errors.openai_error(err.status, err.code, err.message)})
        await ws.close(err.ws_code)
    except (RuntimeError, OSError, WebSocketDisconnect):  # it left first: the refusal is noted all the same
        pass
