"""`courtscribe copy-store TARGET`: the whole record store into another database, checked there.

Why: a court starts on one box (SQLite) and grows into a cluster whose gateways share PostgreSQL.
Its hearings, ledgers and tokens must come along as they are, row for row (the same ids, the same
canonical payloads, so every chain and signature verifies on the other side), from one consistent
moment, and nothing written meanwhile may be left behind unsaid. The same copy backs a PostgreSQL
store up into a backup's SQLite file (`backup.py`) and restores one from it.
"""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import sessionmaker

from .access import tokens as _tokens  # noqa: F401 - its table is part of the store
from .config import masked_url
from .db import MIGRATIONS, Base, connect, make_engine
from .records import db as _records  # noqa: F401 - the record's tables
from .records.reading import Reading
from .records.verify import Verification

BATCH = 500  # rows per insert: a long hearing's ledger never sits in memory whole


class TransferError(Exception):
    """The store cannot be copied as asked; no row was written to the target."""


@dataclass
class Transfer:
    """What was copied, and how each hearing verified in the copy (and in the source)."""

    source: str  # masked URLs, fit for a report
    target: str
    rows: dict[str, int] = field(default_factory=dict)  # table → rows copied
    hearings: list[Verification] = field(default_factory=list)  # in the target
    broken_before: set[str] = field(default_factory=set)  # hearings already broken in the source
    sealed: bool = True  # the server's seal key was at hand: signatures' seals were checked

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.hearings)

    def lines(self) -> Iterator[tuple[str, bool]]:
        """The report for court IT, each line with whether it is a problem."""
        rows = ", ".join(f"{table} {n}" for table, n in self.rows.items())
        yield f"copied {self.source} → {self.target}: {rows}", False
        if not self.sealed:
            yield ("seals NOT checked: no seal key here (COURTSCRIBE_SEAL_KEY, or keys/seal.key in "
                   "the data folder): run it with the server's settings"), True
        for v in self.hearings:
            if v.ok:
                yield f"ok: {v.hearing_id}, {v.entries} ledger entries, chain intact", False
            else:
                before = (" (as in the source: copied as it is)"
                          if v.hearing_id in self.broken_before
                          else " (it verifies in the source: do not use this copy)")
                yield f"BROKEN: {v.hearing_id}: {v.problem}{before}", True
        broken = sum(not v.ok for v in self.hearings)
        if broken:
            yield (f"the copy does NOT verify: {broken} of {len(self.hearings)} hearings "
                   "broken"), True
        else:
            yield f"the copy verifies: {len(self.hearings)} hearings", False


def copy_store(source_url: str, target_url: str, *, seal_key: bytes | None = None,
               anchors: Iterable[dict] = ()) -> Transfer:
    """Move a court's records: copy the store at ``source_url`` (which nothing may write
    meanwhile: the server is stopped) into the empty store at ``target_url``, then verify each
    hearing in the copy, beside how it verified in the source."""
    anchors = list(anchors)
    made = Transfer(masked_url(source_url), masked_url(target_url), sealed=seal_key is not None)
    made.rows = copy_rows(source_url, target_url, quiet=True)
    made.hearings = _verified(target_url, seal_key, anchors)
    # a hearing broken in the copy is looked at in the source (unchanged since: quiet), the others not twice
    if broken := [v.hearing_id for v in made.hearings if not v.ok]:
        before = _verified(source_url, seal_key, anchors, broken)
        made.broken_before = {v.hearing_id for v in before if not v.ok}
    return made


def _verified(url: str, seal_key: bytes | None, anchors: list[dict],
              only: list[str] | None = None) -> list[Verification]:
    """Every hearing of the store at ``url`` (or those ``only``) verified, the store only read."""
    engine = _opened(url)
    try:
        store = reading(engine, seal_key)
        ids = only if only is not None else [h["id"] for h in store.hearings()]
        return [store.verify(hid, anchors) for hid in ids]
    finally:
        engine.dispose()


def copy_rows(source_url: str, target_url: str, *, quiet: bool,
              check: Callable[[Connection], None] | None = None) -> dict[str, int]:
    """Copy every table of the store at ``source_url``, as of one moment, into the empty store at
    ``target_url`` (made with the newest schema if it does not exist), in one transaction; the rows
    copied per table. ``quiet``: the source must not change meanwhile (a write rolls the copy back
    and is said); a backup of a running store passes False: one consistent moment is what it keeps.
    ``check`` reads the source's moment before anything is written."""
    _readable(source_url)
    _readable(target_url)
    if _same(source_url, target_url):
        raise TransferError(f"{masked_url(target_url)} is the store being copied: "
                            "give another database")
    rows: dict[str, int] = {}
    with _snapshot(source_url) as (source, moment):
        _at_head(source, source_url)
        if check:
            check(source)
        _untouched(target_url)  # refused before anything is made or changed there
        try:
            target = connect(target_url, hide_parameters=True)  # no court data in an error
        except CommandError as err:
            raise TransferError(f"{masked_url(target_url)}: {err}") from None
        try:
            with target.begin() as out:
                _lock(out)
                _empty(out, target_url)
                for table in Base.metadata.sorted_tables:
                    rows[table.name] = _copy_table(source, out, table)
                _continue_sequences(out)
                if quiet and (now := _moment(source_url)) != moment:
                    raise TransferError(
                        f"the store at {masked_url(source_url)} was written while it was copied "
                        f"({_changed(moment, now)}): stop the server (and any other writer), "
                        f"then copy again (into {masked_url(target_url)} too: no row was written "
                        "there, its tables stay empty)")
        finally:
            target.dispose()
    return rows


# -- the source, as of one moment ---------------------------------------------------------------
@contextmanager
def _snapshot(url: str) -> Iterator[tuple[Connection, dict[str, int | str]]]:
    """The source as of one moment, read-only, with that moment's fingerprint. SQLite: its online
    backup into a private temporary file (the WAL's finals included; the live file is only read).
    PostgreSQL: one REPEATABLE READ, READ ONLY transaction."""
    if make_url(url).get_backend_name() == "sqlite":
        live = _sqlite_path(url)
        folder = Path(tempfile.mkdtemp(prefix="courtscribe-copy-"))  # 0700: court data, its owner's
        try:
            snapshot = folder / "snapshot.db"
            try:
                with closing(sqlite3.connect(f"{live.resolve().as_uri()}?mode=ro", uri=True)) as src, \
                        closing(sqlite3.connect(snapshot)) as snap:
                    src.backup(snap)
                    snap.execute("PRAGMA journal_mode=DELETE")  # one file: nothing left beside it
            except sqlite3.Error as err:
                raise TransferError(f"the store at {masked_url(url)} cannot be read: {err}") from None
            engine = read_only(snapshot)
            try:
                with engine.connect() as conn:
                    yield conn, _fingerprint(conn)
            finally:
                engine.dispose()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    engine = make_engine(url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                yield conn, _fingerprint(conn)
    finally:
        engine.dispose()


def read_only(path: Path, *, immutable: bool = False) -> Engine:
    """A SQLite file opened read-only: reading a copy never migrates or changes it. ``immutable``:
    not even a WAL file's index beside it (a look that the write transaction checks again)."""
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))


def _sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:" or not Path(path).is_file():
        raise TransferError(f"there is no record store at {path or url}: check the URL")
    return Path(path)


def _opened(url: str) -> Engine:
    """An engine on a store to be read: a SQLite file read-only (never migrated or changed)."""
    if make_url(url).get_backend_name() == "sqlite":
        return read_only(_sqlite_path(url))
    return make_engine(url, hide_parameters=True)


def _moment(url: str) -> dict[str, int | str]:
    """The source's fingerprint now, on a connection of its own."""
    engine = _opened(url)
    try:
        with engine.connect() as conn:
            return _fingerprint(conn)
    finally:
        engine.dispose()


def _fingerprint(conn: Connection) -> dict[str, int | str]:
    """Enough to tell that a store changed: every table's rows, the ledger's last entry (each change
    to a line is one), the revoked tokens (a revocation changes a row, adds none) and what the
    hearings and participants rows hold (a hearing's models, a voice enrolled: no ledger entry)."""
    seen: dict[str, int | str] = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                                  for t in Base.metadata.sorted_tables}
    ledger = Base.metadata.tables["ledger"]
    tokens = Base.metadata.tables["access_tokens"]
    seen["last ledger entry"] = conn.execute(select(func.max(ledger.c.id))).scalar_one() or 0
    revoked = select(func.count()).select_from(tokens).where(tokens.c.revoked_at.is_not(None))
    seen["revoked tokens"] = conn.execute(revoked).scalar_one()
    for name in ("hearings", "participants"):
        table = Base.metadata.tables[name]
        digest = hashlib.sha256()
        for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
            digest.update(repr(tuple(row)).encode())
        seen[f"{name}' contents"] = digest.hexdigest()
    return seen


def _changed(before: dict[str, int | str], now: dict[str, int | str]) -> str:
    return ", ".join(f"{k} {before[k]} → {now[k]}" if isinstance(now[k], int) else k
                     for k in before if before[k] != now[k])


def _at_head(source: Connection, url: str) -> None:
    """Rows are copied column by column into the newest schema: the source must have it too."""
    have = MigrationContext.configure(source).get_current_revision()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if have is None:
        raise TransferError(f"{masked_url(url)} is not a courtscribe record store "
                            "(no schema revision)")
    if have != head:
        raise TransferError(
            f"the store at {masked_url(url)} has schema revision {have}, this courtscribe writes "
            f"{head}: bring a copy of it up to date first (a backup's: copy the file, then "
            "`COURTSCRIBE_DATABASE_URL=<the copy> courtscribe records list` upgrades it), and copy "
            "from that")


# -- the target -----------------------------------------------------------------------------------
def _untouched(url: str) -> None:
    """Refuse a target that is not new before anything is made or changed in it: a database with
    tables of its own (another application's, a store of an older or newer version, a backup given
    as the target by mistake), or a courtscribe store that holds records."""
    if make_url(url).get_backend_name() == "sqlite":
        path = make_url(url).database
        if not path or not Path(path).exists():
            return  # made new
        engine = read_only(Path(path), immutable=True)
    else:
        engine = make_engine(url, hide_parameters=True)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if not tables:
                return
            ours = {t.name for t in Base.metadata.sorted_tables}
            have = MigrationContext.configure(conn).get_current_revision()
            if not ours <= tables or have != ScriptDirectory(str(MIGRATIONS)).get_current_head():
                raise TransferError(f"{masked_url(url)} already holds tables ({', '.join(sorted(tables))}"
                                    "): copy into a new, empty database")
            _empty(conn, url)
    finally:
        engine.dispose()


def _lock(out: Connection) -> None:
    """PostgreSQL: nobody else writes the target's tables until the copy is in (a gateway started
    on it early would mix its rows with the copied ones)."""
    if out.dialect.name == "postgresql":
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        out.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))


def _empty(out: Connection, url: str) -> None:
    """A copy goes into an empty store only: never merged with, or over, another court's records."""
    held = {t.name: n for t in Base.metadata.sorted_tables
            if (n := out.execute(select(func.count()).select_from(t)).scalar_one())}
    if held:
        rows = ", ".join(f"{table} {n}" for table, n in held.items())
        raise TransferError(f"{masked_url(url)} is not empty ({rows}): copy into a new, "
                            "empty database")


def _copy_table(source: Connection, out: Connection, table: Table) -> int:
    """Every row in primary-key order, in batches, through the column types (so a moment stays UTC
    and JSON stays JSON on either backend; the ledger's payloads are text, copied as hashed)."""
    rows = source.execution_options(stream_results=True).execute(
        select(table).order_by(*table.primary_key.columns))
    copied = 0
    for batch in rows.mappings().partitions(BATCH):
        out.execute(table.insert(), [dict(r) for r in batch])
        copied += len(batch)
    return copied


def _continue_sequences(out: Connection) -> None:
    """PostgreSQL numbers new rows from a sequence that copied ids did not move: set each past them
    (else the next case, participant or ledger entry collides with a copied one)."""
    if out.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        if (column := table.autoincrement_column) is not None:
            t = table.name
            c = column.name
            out.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', '{c}'), "
                             f"COALESCE(MAX({c}), 1), MAX({c}) IS NOT NULL) FROM {t}"))


# -- checking -------------------------------------------------------------------------------------
class _Reading(Reading):
    def __init__(self, bind: Engine | Connection, seal_key: bytes | None) -> None:
        self.seal_key = seal_key
        self._session = sessionmaker(bind, expire_on_commit=False)


def reading(bind: Engine | Connection, seal_key: bytes | None = None) -> Reading:
    """The record's read side over any engine or connection (a snapshot's, a copy's), never
    migrating it; ``seal_key`` checks the seals."""
    return _Reading(bind, seal_key)


def _readable(url: str) -> None:
    try:
        make_url(url)
    except ArgumentError as err:
        raise TransferError(f"the database URL {masked_url(url)} cannot be read: {err}") from None


def _same(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite":
        return Path(ua.database or "").resolve() == Path(ub.database or "").resolve()
    return (ua.get_backend_name(), ua.host, ua.port, ua.database) == (
        ub.get_backend_name(), ub.host, ub.port, ub.database)
