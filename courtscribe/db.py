"""The database underneath the record store and the token store: one declarative base (one schema,
one set of alembic migrations: records/migrations), the engine with the settings a court record
needs, and ``connect`` (engine + schema brought up to date) for anything that opens the database."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).parent / "records" / "migrations"  # most tables are the record's
MIGRATION_LOCK = 0x636F7572  # PostgreSQL advisory lock key of schema upgrades ("cour")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTC(TypeDecorator):
    """A moment, stored and handed back in UTC on every backend. SQLite keeps no zone and PostgreSQL
    answers in its session's zone: without this, the same hearing read ``10:00`` on one and
    ``18:00+08:00`` on the other, and every reader had to remember which. A naive value is UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)


def as_utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


def connect(url: str, **options) -> Engine:
    """An engine on ``url`` with its schema at the newest revision (``options``: create_engine's)."""
    engine = make_engine(url, **options)
    migrate(engine)
    return engine


WAIT_S = 5  # seconds a write waits on a locked SQLite file, or a connection on PostgreSQL


def make_engine(url: str, **options) -> Engine:
    """An engine for ``url``; SQLite files get WAL (readers never block the live writer), full
    fsync on commit (a final that was acknowledged survives a crash) and foreign keys. A database
    that does not answer within ``WAIT_S`` (a lock another process holds, a PostgreSQL that hangs)
    counts as away: a live final then waits in the spool instead of holding the screens up."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": WAIT_S},
                               json_serializer=_json, **options)

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_json,
                         connect_args={"connect_timeout": WAIT_S} if url.startswith("postgresql") else {},
                         **options)


def _json(value) -> str:
    """JSON columns keep Chinese as written (not \\u escapes): searchable with LIKE, readable in psql."""
    return json.dumps(value, ensure_ascii=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (a new database gets every table), one process
    at a time: a cluster's gateway replicas start together, and two that both found a new database
    would both create its tables (one then fails: "table cases already exists")."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _one_process_at_a_time(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # held until this transaction commits the schema
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _one_process_at_a_time(engine: Engine) -> Iterator[None]:
    """SQLite: a lock file beside the database file (PostgreSQL locks in the database itself)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


SERVING_LOCK = "serving.lock"  # in the data folder: held by every server process while it serves


def serving(data_dir: Path) -> IO[str]:
    """Held (shared) by a server process for as long as it serves from ``data_dir``: a tool that
    must not run beside a server (``courtscribe copy-store``) finds it so (:func:`served`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / SERVING_LOCK, "a")
    fcntl.flock(lock, fcntl.LOCK_SH)
    return lock


def served(data_dir: Path) -> bool:
    """Whether a server process on this machine serves from ``data_dir`` now."""
    path = data_dir / SERVING_LOCK
    if not path.exists():
        return False
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def unavailable(err: BaseException) -> bool:
    """Whether an error means "the database is away for now" rather than "this write is wrong"."""
    return isinstance(err, (OperationalError, InterfaceError)) or (
        isinstance(err, DBAPIError) and err.connection_invalidated)
