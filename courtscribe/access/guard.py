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

from ..logs import get_logger
from ..seal import SealKeyError, load_key
from .audit import AuditLog
from .quota import Counters, Limits, Slots, Sockets
from ..records.model import new_hearing_id
from .scopes import AccessRole, Action, HearingScope, NotPublic, Principal
from .tokens import TokenError, Tokens, Unchecked

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
    # (court, courtroom) → the hearing its recorder feeds now: the record store's room_hearing()
    room_of: Callable[[str | None, str], str | None] | None = None
    adhoc: bool = False  # a room recorder with no hearing in its room opens a new one (else refused)
    limits: Limits = field(default_factory=Counters)  # this server's, or the cluster bus's
    sockets: Sockets = field(default_factory=lambda: Sockets(per_token=64, total=4096))  # this server's

    def attach(self, records) -> None:
        """Once the record store is open: hearing scopes come from it, tokens live in its database."""
        self.scope_of, self.room_of = records.scope, records.room_hearing
        if self.tokens is not None:
            self.tokens.bind(records.engine)

    def __post_init__(self) -> None:
        parse_limit(self.rate), parse_limit(self.failed_rate)  # a mistyped limit stops the start

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
        guessing = not self.limits.test(self.failed_rate, "failed", client)
        if not token:
            self.limits.hit(self.failed_rate, "failed", client)
            raise Denied(401, "unauthorized", "this endpoint needs a token (Authorization: Bearer …)")
        try:
            who = self.tokens.verify(token)
        except Unchecked as err:  # no word on the token: try again soon, not a wrong token
            raise Denied(503, "store_unavailable", f"{err}; retry in a moment") from None
        except TokenError as err:
            self.limits.hit(self.failed_rate, "failed", client)
            if guessing:
                raise Denied(429, "rate_limited", "too many failed sign-ins from this address; wait a minute") from None
            raise Denied(401, "unauthorized", str(err)) from None
        if not self.limits.hit(self.rate, "token", who.token_id):
            raise Denied(429, "rate_limited", f"token {who.token_id} exceeded {self.rate}")
        return who

    def still_valid(self, token: str) -> None:
        """Raises Denied (401) when a token accepted before no longer is (revoked or expired since):
        what it opened ends. A store that cannot be asked now says nothing against it."""
        if self.tokens is None:
            return
        try:
            self.tokens.verify(token)
        except Unchecked:
            return
        except TokenError as err:
            raise Denied(401, "unauthorized", str(err)) from None

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
    async def admit(self, who: Principal, hearing_id: str | None, *, into_room: bool = True) -> str | None:
        """Which hearing ``who``'s audio goes into (None: none, e.g. dictation); raises Denied.
        A courtroom's recorder that names none feeds its room's open or scheduled hearing; when the
        room has none it is refused, or (``adhoc``) a new hearing is made under an id of our own."""
        if not (self.enabled and hearing_id is None and into_room and who.role is AccessRole.recorder and who.room):
            await self.check(who, Action.send_audio if hearing_id else Action.dictate, hearing_id, missing_ok=True)
            return hearing_id
        assert self.room_of is not None, "attach() the record store first"
        try:
            hearing_id = await asyncio.to_thread(self.room_of, who.court, who.room)
        except Exception as err:  # noqa: BLE001 - the database is away: say so, do not guess
            raise Denied(503, "store_unavailable", f"the record store cannot be reached: {type(err).__name__}") from None
        if hearing_id is not None:
            await self.check(who, Action.send_audio, hearing_id)
            return hearing_id
        if not self.adhoc:
            raise Denied(404, "not_found", f"no hearing is open or scheduled today in {who.room}: the clerk "
                         "schedules it first (or the recorder names its hearing id)")
        await self.check(who, Action.send_audio)
        return new_hearing_id()  # made in the recorder's court and room when the stream joins

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
            if found is None and missing_ok and who.court is None:
                found = (None, who.room, None)  # a server-wide token may name a new hearing
            if found is None or (who.court is not None and found[0] != who.court):
                # another court's hearing reads as a missing one, and a court's token never makes a
                # hearing by naming it: its ids cannot be probed
                raise Denied(404, "not_found", f"no hearing {hearing_id!r}")
            scope = HearingScope(hearing_id, *found)
        why = who.refusal(action, scope)
        if why:
            raise Denied(403, "not_public" if isinstance(why, NotPublic) else "forbidden", why)
        return scope


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


QUIET = "1/minute"  # an address past its limit: one refusal a minute is audited for all of them
QUIET_NOTE = "this address is past its limit: its further refusals this minute are not audited one by one"


async def audits(access: Access, who: Principal | None, err: Denied | None, client: str | None) -> bool:
    """Whether a refusal gets an audit entry of its own. Each does, except those of an address past
    its limit, of which the first each minute stands for the rest: else a flood of wrong tokens
    grows the log without end and holds every request behind its fsync."""
    if who is not None or err is None or err.status != 429 or not client:
        return True
    return await asyncio.to_thread(access.limits.hit, QUIET, "audited", client)


async def note_denied(access: Access, who: Principal | None, err: Denied, *, client: str | None = None,
                      **detail) -> None:
    """Audit a refusal (``audits``); the refusal stands even when the log cannot be written (that is logged)."""
    if not await audits(access, who, err, client):
        return
    if err.status == 429 and who is None:
        detail["note"] = QUIET_NOTE
    try:
        await access.audit.arecord("denied", who, outcome=err.code, reason=err.message, client=client, **detail)
    except (OSError, ValueError) as failure:
        log.error("audit log cannot be written", refused=err.code, error=repr(failure))


def build(settings, limits: Limits | None = None) -> Access:
    """The app's Access from settings (the record store is attached at start-up); ``limits``: kept
    elsewhere (a cluster's bus), else counted here."""
    tokens = None
    if not settings.insecure_no_auth:
        tokens = Tokens(None, jwt_key=settings.jwt_key, jwt_public_key=settings.jwt_public_key,
                        jwt_audience=settings.jwt_audience)
    hosts = {ip: RecorderHost(**v) for ip, v in settings.recorder_hosts.items()}
    audit = AuditLog(Path(settings.audit_file), load_key(settings))  # an emptied seal key stops us here
    if (missing := audit.head_missing()) is not None:
        raise SealKeyError(missing.message)
    limits = limits or Counters(Slots(max_streams=settings.max_streams, per_token=settings.max_streams_per_token,
                                      per_room=settings.max_streams_per_room,
                                      reserved=settings.reserved_streams))
    return Access(tokens=tokens, audit=audit, rate=settings.rate_limit, limits=limits,
                  failed_rate=settings.failed_auth_limit, recorder_hosts=hosts, adhoc=settings.adhoc_hearings,
                  origins=frozenset(settings.ws_origins) | frozenset(settings.cors_origins),
                  sockets=Sockets(per_token=settings.max_sockets_per_token, total=settings.max_connections))
