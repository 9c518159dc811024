"""The database underneath the record store and the token store: one declarative base (one schema,
one set of alembic migrations: records/migrations), the engine with the settings a court record
needs, and ``connect`` (engine + schema brought up to date) for anything that opens the database."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

MIGRATIONS = Path(__file__).parent / "records" / "migrations"  # most tables are the record's


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


def connect(url: str) -> Engine:
    """An engine on ``url`` with its schema at the newest revision."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL (readers never block the live writer), full
    fsync on commit (a final that was acknowledged survives a crash) and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json)

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:
            cur = conn.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
                cur.execute(f"PRAGMA {pragma}")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_json)


def _json(value) -> str:
    """JSON columns keep Chinese as written (not \\u escapes): searchable with LIKE, readable in psql."""
    return json.dumps(value, ensure_ascii=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (a new database gets every table)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
