"""API tokens (kept in the record store's database, only their hash) and JWTs signed by a key the
court's own identity system holds.

An API token reads ``cst_<id>_<secret>``: the id finds the row, the secret is compared by hash.
Checked tokens are remembered for a few seconds, so a database hiccup does not lock every
courtroom out mid-hearing, and revocation takes effect within that time (at once in-process).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from sqlalchemy import String, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker
from sqlalchemy.engine import Engine

from ..db import UTC, Base, utcnow
from .scopes import SERVER_WIDE, AccessRole, Principal

PREFIX = "cst_"
CACHE_S = 10.0
OUTAGE_S = 300.0  # while the database is away, a token it accepted this recently stays accepted
SHARED_KEY_ALGORITHMS = ["HS256", "HS384", "HS512"]  # COURTSCRIBE_JWT_KEY
PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256", "EdDSA"]  # COURTSCRIBE_JWT_PUBLIC_KEY: never read as a shared secret


class TokenError(Exception):
    """The presented token is malformed, unknown, expired or revoked."""


class Unchecked(TokenError):
    """The token cannot be checked now (the record store is away): no answer about the token."""


class TokenRow(Base):
    __tablename__ = "access_tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # token id, or a revoked JWT's jti
    kind: Mapped[str] = mapped_column(String(8), default="api")  # api | jwt (a revoked JWT)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    court: Mapped[str | None] = mapped_column(String(256))
    room: Mapped[str | None] = mapped_column(String(128))
    hearing: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTC)


@dataclass
class Issued:
    token: str  # shown once; only its hash is stored
    id: str
    principal: Principal
    expires_at: dt.datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    def __init__(self, engine: Engine | None, *, jwt_key: str | None = None, jwt_public_key: Path | None = None,
                 jwt_audience: str = "courtscribe"):
        self.bind(engine)
        self._jwt_key = jwt_public_key.read_text() if jwt_public_key else jwt_key
        self._algorithms = PUBLIC_KEY_ALGORITHMS if jwt_public_key else SHARED_KEY_ALGORITHMS
        self._audience = jwt_audience
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def bind(self, engine: Engine | None) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    # -- administration ---------------------------------------------------------------------
    def issue(self, role: AccessRole | str, *, name: str, court: str | None = None, room: str | None = None,
              hearing: str | None = None, days: float | None = None) -> Issued:
        role = AccessRole(role)
        if role not in SERVER_WIDE and court is None:
            raise TokenError(f"a {role.value} token needs a court (only admin and monitor tokens may be "
                             "server-wide)")
        if role is AccessRole.recorder and room is None and hearing is None:
            raise TokenError("a recorder token needs the room (or hearing) it records")
        tid, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        expires = utcnow() + dt.timedelta(days=days) if days else None
        with self._session.begin() as s:
            s.add(TokenRow(id=tid, kind="api", secret_hash=_hash(secret), role=role.value, name=name, court=court,
                           room=room, hearing=hearing, expires_at=expires))
        p = Principal(token_id=tid, role=role, name=name, court=court, room=room, hearing=hearing)
        return Issued(token=f"{PREFIX}{tid}_{secret}", id=tid, principal=p, expires_at=expires)

    def revoke(self, token_id: str) -> bool:
        """Revoke an API token by id, or a JWT by its ``jti``. Returns False for an unknown API token id
        that is not a JWT id either (a JWT's jti is recorded as revoked all the same)."""
        with self._session.begin() as s:
            row = s.get(TokenRow, token_id)
            if row is None:
                s.add(TokenRow(id=token_id, kind="jwt", role="-", name="-", revoked_at=utcnow()))
                known = False
            else:
                row.revoked_at = row.revoked_at or utcnow()
                known = True
        with self._lock:
            for key in [k for k, (_, p) in self._cache.items() if p.token_id == token_id]:
                del self._cache[key]
        return known

    def list(self) -> list[TokenRow]:
        with self._session() as s:
            return list(s.execute(select(TokenRow).where(TokenRow.kind == "api").order_by(TokenRow.created_at)).scalars())

    # -- checking ---------------------------------------------------------------------------
    def verify(self, token: str) -> Principal:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        try:
            p = self._verify_jwt(token) if token.count(".") == 2 else self._verify_api(token)
        except SQLAlchemyError:
            # the database is away for a moment: a token it accepted stays accepted, for a while
            # (a token revoked or expired meanwhile must not work for as long as the outage lasts)
            if hit is not None and now - hit[0] < OUTAGE_S:
                return hit[1]
            raise Unchecked("tokens cannot be checked right now (record store unavailable)") from None
        with self._lock:
            self._cache[token] = (now, p)
            if len(self._cache) > 10_000:
                self._cache.clear()
        return p

    def _verify_api(self, token: str) -> Principal:
        if not token.startswith(PREFIX) or token.count("_") < 2:
            raise TokenError("not a courtscribe token")
        tid, secret = token[len(PREFIX):].split("_", 1)
        with self._session() as s:
            row = s.get(TokenRow, tid)
        if row is None or row.kind != "api" or not hmac.compare_digest(row.secret_hash or "", _hash(secret)):
            raise TokenError("unknown token")
        if row.revoked_at is not None:
            raise TokenError(f"token {tid} was revoked")
        if row.expires_at is not None and row.expires_at < utcnow():
            raise TokenError(f"token {tid} expired")
        return Principal(token_id=tid, role=AccessRole(row.role), name=row.name, court=row.court, room=row.room,
                         hearing=row.hearing)

    def _verify_jwt(self, token: str) -> Principal:
        if not self._jwt_key:
            raise TokenError("JWTs are not accepted: no signing key is configured (COURTSCRIBE_JWT_KEY)")
        try:
            claims = jwt.decode(token, self._jwt_key, algorithms=self._algorithms, audience=self._audience,
                                options={"require": ["exp", "sub", "role", "jti"]})
        except jwt.PyJWTError as err:
            raise TokenError(f"invalid JWT: {err}") from None
        with self._session() as s:
            if s.get(TokenRow, str(claims["jti"])) is not None:
                raise TokenError(f"JWT {claims['jti']} was revoked")
        try:
            role = AccessRole(claims["role"])
        except ValueError:
            raise TokenError(f"invalid JWT: unknown role {claims['role']!r}") from None
        if role not in SERVER_WIDE and not claims.get("court"):
            raise TokenError("invalid JWT: only admin and monitor tokens may be server-wide (no court claim)")
        return Principal(token_id=str(claims["jti"]), role=role, name=str(claims["sub"]), court=claims.get("court"),
                         room=claims.get("room"), hearing=claims.get("hearing"))
