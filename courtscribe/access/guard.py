"""Who a token is and what it may do, with rate limits and the audit log: the policy the web layer
(``server/auth.py``) applies to every request and socket before it reaches an endpoint.

HTTP: ``Authorization: Bearer <token>``. WebSocket: the same header (programs), or the
subprotocol ``bearer.<token>`` beside ``courtscribe.v1`` (browsers cannot set headers), or — on
the FunASR-compatible endpoint only, whose clients can do neither — ``?token=`` or a courtroom
PC's address from the recorder-host allow-list. A WebSocket that fails the check is accepted,
told why in an ``error`` frame and closed with 4401 (who are you?), 4403 (not yours) or 4429
(too many requests), so a browser page can tell the clerk what is wrong.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..logs import get_logger
from ..seal import SealKeyError, load_key
from .audit import AuditLog
from .scopes import AccessRole, Action, HearingScope, Principal
from .tokens import TokenError, Tokens

log = get_logger(__name__)
SUBPROTOCOL = "courtscribe.v1"
BEARER = "bearer."


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    @property
    def ws_code(self) -> int:
        return 4000 + self.status


@dataclass(frozen=True)
class RecorderHost:
    court: str
    room: str


def is_loopback(host: str) -> bool:
    """Only a literal loopback address: "" and "0.0.0.0" mean every interface, and a name such as
    "localhost" can resolve to anything."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Access:
    """What the app needs to decide: the token store, the audit log, limits. ``tokens`` None: auth off."""
    tokens: Tokens | None
    audit: AuditLog
    rate: str = "1200/minute"
    failed_rate: str = "30/minute"  # wrong tokens from one address: slows guessing, never locks a room out
    recorder_hosts: dict[str, RecorderHost] = field(default_factory=dict)
    # hearing id → (court, courtroom, public) | None: the record store's scope()
    scope_of: Callable[[str], tuple[str | None, str | None, bool | None] | None] | None = None
    origins: frozenset[str] = frozenset()  # web pages allowed to open sockets besides the server's own

    def attach(self, records) -> None:
        """Once the record store is open: hearing scopes come from it, tokens live in its database."""
        self.scope_of = records.scope
        if self.tokens is not None:
            self.tokens.bind(records.engine)

    def __post_init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit, self._failed = parse_limit(self.rate), parse_limit(self.failed_rate)

    @property
    def enabled(self) -> bool:
        return self.tokens is not None

    # -- who -------------------------------------------------------------------------------
    def identify(self, token: str | None, client: str, *, local_name: str = "local") -> Principal:
        """The principal behind a token; raises Denied (401/429)."""
        if self.tokens is None:  # auth off
            return Principal(token_id="-", role=AccessRole.admin, name=local_name)
        # Many wrong tokens from one address slow that address's guessing down (429), but a valid
        # token is always let in: a courtroom behind the same NAT is never locked out by address.
        guessing = not self._limiter.test(self._failed, "failed", client)
        if not token:
            self._limiter.hit(self._failed, "failed", client)
            raise Denied(401, "unauthorized", "this endpoint needs a token (Authorization: Bearer …)")
        try:
            who = self.tokens.verify(token)
        except TokenError as err:
            self._limiter.hit(self._failed, "failed", client)
            if guessing:
                raise Denied(429, "rate_limited", "too many failed sign-ins from this address; wait a minute") from None
            raise Denied(401, "unauthorized", str(err)) from None
        if not self._limiter.hit(self._limit, "token", who.token_id):
            raise Denied(429, "rate_limited", f"token {who.token_id} exceeded {self.rate}")
        return who

    async def aidentify(self, token: str | None, client: str, **kw) -> Principal:
        """``identify`` from the event loop: a token not in the cache is looked up in the database,
        which must not hold up every other socket."""
        return await asyncio.to_thread(self.identify, token, client, **kw)

    async def audited(self, action: str, who: Principal | None, **kw) -> None:
        """Write the audit entry of something about to happen; raises Denied (503) when it cannot be
        written (a full disk): nothing happens unaudited."""
        try:
            await self.audit.arecord(action, who, **kw)
        except (OSError, ValueError) as err:
            raise Denied(503, "audit_unavailable", f"the audit log cannot be written ({type(err).__name__}); "
                         "nothing was changed") from None

    def listed_recorder(self, client: str) -> Principal | None:
        host = self.recorder_hosts.get(client)
        if host is None:
            return None
        return Principal(token_id=f"host:{client}", role=AccessRole.recorder, name=f"{host.room} 录音主机 {client}",
                         court=host.court, room=host.room)

    # -- may they --------------------------------------------------------------------------
    async def check(self, who: Principal, action: Action | None, hearing_id: str | None = None, *,
                    missing_ok: bool = False) -> HearingScope | None:
        """Raises Denied (403/404) unless ``who`` may do ``action`` (on the hearing); action None: any
        valid token will do."""
        if not self.enabled or action is None:
            return None
        scope = None
        if hearing_id is not None:
            assert self.scope_of is not None, "attach() the record store first"
            try:
                found = await asyncio.to_thread(self.scope_of, hearing_id)
            except Exception as err:  # noqa: BLE001 - the database is away: say so, do not guess
                raise Denied(503, "store_unavailable", f"the record store cannot be reached: {type(err).__name__}") from None
            if found is None:
                if not missing_ok:
                    raise Denied(404, "not_found", f"no hearing {hearing_id!r}")
                found = (who.court, who.room, None)  # it will be created in this scope
            scope = HearingScope(hearing_id, *found)
            if who.court is not None and scope.court != who.court:  # another court's hearing reads as a
                # missing one: its ids cannot be probed
                if missing_ok:
                    raise Denied(403, "forbidden", f"hearing id {hearing_id!r} cannot be used with this token")
                raise Denied(404, "not_found", f"no hearing {hearing_id!r}")
        why = who.refusal(action, scope)
        if why:
            raise Denied(403, "forbidden", why)
        return scope


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


async def note_denied(access: Access, who: Principal | None, err: Denied, **detail) -> None:
    """Audit a refusal; the refusal stands even when the log cannot be written (that is logged)."""
    try:
        await access.audit.arecord("denied", who, outcome=err.code, reason=err.message, **detail)
    except (OSError, ValueError) as failure:
        log.error("audit log cannot be written", refused=err.code, error=repr(failure))


def build(settings) -> Access:
    """The app's Access from settings (the record store is attached at start-up)."""
    tokens = None
    if not settings.insecure_no_auth:
        tokens = Tokens(None, jwt_key=settings.jwt_key, jwt_public_key=settings.jwt_public_key,
                        jwt_audience=settings.jwt_audience)
    hosts = {ip: RecorderHost(**v) for ip, v in settings.recorder_hosts.items()}
    audit = AuditLog(Path(settings.audit_file), load_key(settings))  # an emptied seal key stops us here
    if (missing := audit.head_missing()) is not None:
        raise SealKeyError(missing.message)
    return Access(tokens=tokens, audit=audit, rate=settings.rate_limit,
                  failed_rate=settings.failed_auth_limit, recorder_hosts=hosts,
                  origins=frozenset(settings.ws_origins) | frozenset(settings.cors_origins))
