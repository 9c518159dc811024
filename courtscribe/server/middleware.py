"""One ASGI layer in front of every HTTP request: the token of a request with a body is checked
before one byte of the body is read, each route's body is capped at what it needs, secure
response headers, and an audit entry for each request that presented (or failed to present) a
token."""
from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import get_logger
from ..access.guard import QUIET_NOTE, Access, Denied, audits, bearer
from ..access.scopes import Action
from . import errors

log = get_logger(__name__)
# Audio uploads may be large; a voice sample a few seconds; everything else is small JSON.
UPLOADS = re.compile(r"^/v1/(audio/transcriptions|jobs)$")
VOICE = re.compile(r"^/v1/hearings/[^/]+/participants/[^/]+/voice$")
VOICE_BYTES = 20 << 20
SECURE_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                  (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store"),
                  (b"cross-origin-resource-policy", b"same-origin")]
UNAUDITED = ("/healthz", "/openapi.json", "/metrics")  # no court's data: a scrape a minute is no entry
# court data that leaves as a copy (an export, a line's audio, a job's record): not sent unless audited
COPIES = re.compile(r"^/v1/(hearings/[^/]+/(export|utterances/[^/]+/audio)|jobs/[^/]+/result)$")


class _TooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, access: Access, *, max_body: int, max_upload: int):
        self.app, self.access, self.max_body, self.max_upload = app, access, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if self.access.enabled and (declared not in (None, b"0") or b"transfer-encoding" in headers):
            if not await self._identified(scope, headers, send):
                return
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen, status, started, audited, withheld = 0, 0, False, False, False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise _TooLarge
            return msg

        async def secured(msg: Message) -> None:
            nonlocal status, started, audited, withheld
            if withheld:
                return
            if msg["type"] == "http.response.start":
                started, status, audited = True, msg["status"], True
                # what leaves the server is in the audit log before its first byte does: an export or a
                # replay read right after (or a crash) never leaves an unaudited copy outside
                if not await self._audit(scope, status) and status < 400 and COPIES.match(scope["path"]):
                    withheld = True
                    await _answer(send, 503, "audit_unavailable", "the audit log cannot be written: court data "
                                  "is not sent unaudited", SECURE_HEADERS)
                    return
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [h for h in SECURE_HEADERS if h[0] not in names]
            await send(msg)

        try:
            await self.app(scope, counted, secured)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)
            status = 413
        finally:
            if not audited:
                await self._audit(scope, status)

    def _limit(self, scope: Scope) -> int:
        if UPLOADS.match(scope["path"]):
            return self.max_upload
        if scope["method"] == "PUT" and VOICE.match(scope["path"]):
            return min(VOICE_BYTES, self.max_upload)
        return self.max_body

    async def _identified(self, scope: Scope, headers: dict, send: Send) -> bool:
        """A request with a body: whose is it? Refused (401/429) before the body is read."""
        state = scope.setdefault("state", {})
        client = scope["client"][0] if scope.get("client") else ""
        token = bearer(headers.get(b"authorization", b"").decode("latin-1"))
        try:
            state["principal"] = who = await self.access.aidentify(token, client)
            need = _needs(scope)
            if who is not None and need is not None and not who.may(need):  # a role that may not: 403 unread
                raise Denied(403, "forbidden", f"a {who.role.value} token may not {need.value}")
            return True
        except Denied as err:
            state["principal"] = state.get("principal")  # who it was, when the token was good but its role not
            state["denied"] = err
            extra = {401: [(b"www-authenticate", b"Bearer")], 429: [(b"retry-after", b"60")]}.get(err.status, [])
            await _answer(send, err.status, err.code, err.message, extra + SECURE_HEADERS)
            await self._audit(scope, err.status)
            return False

    async def _audit(self, scope: Scope, status: int) -> bool:
        """The request's audit entry; False when the log cannot be written."""
        state = scope.get("state") or {}
        if "principal" not in state or scope["path"] in UNAUDITED:
            return True  # the route checked no token (health, docs)
        denied, who = state.get("denied"), state.get("principal")
        client = scope["client"][0] if scope.get("client") else None
        if not await audits(self.access, who, denied, client):
            return True
        quiet = {"note": QUIET_NOTE} if denied is not None and denied.status == 429 and who is None else {}
        try:
            await self.access.audit.arecord(f"{scope['method']} {scope['path']}", who,
                                            hearing=(scope.get("path_params") or {}).get("hearing_id"),
                                            outcome=denied.code if denied else ("ok" if status < 400 else f"http {status}"),
                                            status=status, client=client, **quiet)
            return True
        except (OSError, ValueError) as err:  # changes were refused before they were made (auth.authorize)
            log.error("audit log cannot be written", error=repr(err), path=scope["path"], status=status)
            return False


def _needs(scope: Scope) -> Action | None:
    """What the large-body routes require of a token, checked before their body is read."""
    if scope["method"] == "POST" and UPLOADS.match(scope["path"]):
        return Action.transcribe
    if scope["method"] == "PUT" and VOICE.match(scope["path"]):
        return Action.edit
    return None


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, "too_large", f"request body exceeds {limit} bytes")


async def _answer(send: Send, status: int, code: str, message: str, headers: list | None = None) -> None:
    """An error answered here, before the app, in the app's shape (errors.py)."""
    body = json.dumps(errors.body(status, {"code": code, "message": message})).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
