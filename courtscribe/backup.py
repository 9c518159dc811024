"""`courtscribe backup DIR`: a copy of the court data that restores, checked before it is trusted.

Why not ``cp -r DATA_DIR``: the SQLite store runs in WAL mode, so the latest finals live in
``courtscribe.db-wal`` until a checkpoint; a copy of ``courtscribe.db`` alone loses them and still
verifies (each chain just ends earlier). SQLite's online backup API copies the database as one
reader sees it, WAL included, while the server goes on writing; a PostgreSQL store is copied as of
one moment into the same SQLite file (transfer.py), which restores into either backend. The copy
mirrors the data folder (restore = copy it back), and the seal key stays out unless asked for:
whoever holds a backup with its key can rewrite a record and seal it again.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .access.audit import AuditLog
from .config import Settings, masked_url
from .db import make_engine
from .records.verify import Verification
from .seal import load_key
from .transfer import TransferError, copy_rows, read_only, reading

DATABASE = "courtscribe.db"  # its name in the backup, wherever the store's file lives
FOLDERS = ("audit", "spool", "archive")  # copied in this order, the database after them (see make)
MANIFEST = "manifest.json"
SKIPPED = (".lock", ".tmp")  # a process's lock files and half-written temporaries
CHUNK = 1 << 20


class BackupError(Exception):
    """The backup cannot be made as asked (another database, a folder already in use)."""


@dataclass
class Copied:
    path: str  # relative to the backup folder
    bytes: int
    sha256: str


@dataclass
class Backup:
    """What was copied, what was left out and why, and how the copy verified."""

    dest: Path
    started: str
    files: list[Copied] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # path → why
    key: str = ""  # where the seal key is, or that it was copied
    hearings: list[Verification] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    audited: bool = False  # there was an audit log to check

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.hearings) and not self.audit_problems

    def lines(self) -> Iterator[tuple[str, bool]]:
        """The report for court IT, each line with whether it is a problem."""
        size = sum(f.bytes for f in self.files) / 1e6
        yield f"copied {len(self.files)} files ({size:.1f} MB) into {self.dest} ({MANIFEST})", False
        for path, why in self.left_out.items():
            yield f"left out {path}: {why}", False
        yield f"seal key: {self.key}", False
        for v in self.hearings:
            where = f" (ledger entry {v.broken_seq})" if v.broken_seq else ""
            if v.ok:
                yield f"ok: {v.hearing_id}, {v.entries} ledger entries, chain intact", False
            else:
                yield f"BROKEN{where}: {v.hearing_id}: {v.problem}", True
        for problem in self.audit_problems:
            yield f"audit log BROKEN: {problem}", True
        if self.ok:
            also = " and the audit log" if self.audited else " (no audit log in it)"
            yield f"the backup verifies: {len(self.hearings)} hearings{also}", False
        else:
            broken = sum(not v.ok for v in self.hearings)
            yield (f"the backup does NOT verify: {broken} of {len(self.hearings)} hearings broken, "
                   f"{len(self.audit_problems)} audit log problems"), True

    def manifest(self) -> dict:
        audit = self.audit_problems or ("ok" if self.audited else "none")
        return {"created_at": self.started, "files": [asdict(f) for f in self.files],
                "left_out": self.left_out, "seal_key": self.key,
                "verified": {"hearings": {v.hearing_id: v.problem or "ok" for v in self.hearings},
                             "audit_log": audit}}


def make(settings: Settings, dest: Path, *, with_key: bool = False) -> Backup:
    """Copy the data folder's audit log, spool and archive, then the database (so an anchor or a
    spooled final the copy holds is never newer than the database copied after it), write the
    manifest, and verify the copy. Raises BackupError before writing anything if it cannot."""
    source = _source(settings.records_url)
    _check_dest(settings.data_dir, dest)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)  # court data: its owner's alone
    made = Backup(dest, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if with_key:
        _copy_key(settings, made)
    else:
        made.key = (f"not in this backup: it is {_key_source(settings)}; keep a copy of it apart "
                    "from the backup (without it no signature or audit entry verifies after a "
                    "restore)")
    for folder in FOLDERS:
        _copy_folder(settings.data_dir / folder, made, folder)
    if source is None:
        _copy_postgresql(settings.records_url, dest / DATABASE)
    else:
        _copy_database(source, dest / DATABASE)
    made.files.append(_described(dest, DATABASE))
    _verify(settings, made)
    (dest / MANIFEST).write_text(json.dumps(made.manifest(), ensure_ascii=False, indent=1) + "\n")
    return made


# -- where things are -----------------------------------------------------------------------------
def _source(url: str) -> Path | None:
    """The store's SQLite file, or None for PostgreSQL; anything else is refused."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise BackupError(f"the record store URL {masked_url(url)} cannot be read: {err}") from None
    if parsed.get_backend_name() == "postgresql":
        _answers(url)
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise BackupError(f"courtscribe backup copies SQLite and PostgreSQL stores: back up "
                          f"{masked_url(url)} with its own tools")
    path = Path(parsed.database)
    if not path.is_file():
        raise BackupError(f"there is no record store at {path}: check COURTSCRIBE_DATA_DIR "
                          "(or COURTSCRIBE_DATABASE_URL)")
    return path


def _answers(url: str) -> None:
    """A PostgreSQL store that does not answer is said before anything is written."""
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        raise BackupError(f"the record store at {masked_url(url)} does not answer: {err}") from None
    finally:
        engine.dispose()


def _check_dest(data_dir: Path, dest: Path) -> None:
    here, there = data_dir.resolve(), dest.resolve()
    if there == here or here in there.parents:
        raise BackupError(f"{dest} is inside the data folder {data_dir}: a backup goes elsewhere")
    if there.exists() and (not there.is_dir() or any(there.iterdir())):
        raise BackupError(f"{dest} is not an empty folder: give a new one for each backup")


def _key_source(settings: Settings) -> str:
    return "in COURTSCRIBE_SEAL_KEY" if settings.seal_key else f"the file {settings.seal_key_file}"


def verify_key(settings: Settings) -> bytes | None:
    """The server's key to check seals with; never made here (load_key would make a new one)."""
    return load_key(settings) if settings.seal_key or settings.seal_key_file.is_file() else None


# -- copying ------------------------------------------------------------------------------------
def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy as of one moment, WAL included, into a single file (rollback journal:
    nothing beside it to forget). The live file is only read."""
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as live, \
            closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")


def _copy_postgresql(url: str, target: Path) -> None:
    """A PostgreSQL store as of one moment (one REPEATABLE READ transaction), row for row into the
    backup's SQLite file: one format to verify and to restore from, into either backend."""
    try:
        copy_rows(url, f"sqlite:///{quote(str(target))}", quiet=False)  # a "?" or "%" in the folder
    except TransferError as err:
        raise BackupError(str(err)) from None
    with closing(sqlite3.connect(target)) as copy:
        copy.execute("PRAGMA journal_mode=DELETE")
    Path(f"{target}.migrate-lock").unlink(missing_ok=True)  # db.migrate's, made beside the new file


def _copy_key(settings: Settings, made: Backup) -> None:
    if settings.seal_key:
        made.key = "not in this backup: it is in COURTSCRIBE_SEAL_KEY (keep it in a secrets store)"
        return
    if not settings.seal_key_file.is_file():
        made.key = f"not in this backup: there is none yet at {settings.seal_key_file}"
        return
    target = made.dest / "keys" / "seal.key"
    target.parent.mkdir(mode=0o700)
    made.files.append(_copy(settings.seal_key_file, made.dest, "keys/seal.key"))
    target.chmod(0o600)
    made.key = "keys/seal.key is in this backup: keep the backup where only court IT can read it"


def _copy_folder(root: Path, made: Backup, name: str) -> None:
    """Each file as it is now: a sealed head before its log (a log copied after its head is never
    behind it), JSON-lines up to their last whole line, an archive segment still being recorded
    left out (its recorder holds it locked; one a crash left is copied and finished on restore)."""
    for path in _files(root):
        rel = f"{name}/{path.relative_to(root).as_posix()}"
        if path.name.endswith(SKIPPED):
            continue
        if path.suffix == ".part" and _recording(path):
            made.left_out[rel] = "being recorded: back up again after the hearing"
            continue
        try:
            made.files.append(_copy(path, made.dest, rel, whole_lines=path.suffix == ".jsonl"))
        except FileNotFoundError:  # finished or flushed away meanwhile: what replaced it is copied
            made.left_out[rel] = "gone while the backup ran"


def _files(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names, key=lambda n: (not n.endswith(".head"), n)):
            yield Path(folder) / name


def _recording(part: Path) -> bool:
    """A segment its recorder holds locked (archive.ChannelRecorder), as archive.recover sees."""
    try:
        with open(part, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released as the file closes
    except BlockingIOError:
        return True
    except FileNotFoundError:  # finished meanwhile: its .flac is copied
        pass
    return False


def _copy(source: Path, dest: Path, rel: str, *, whole_lines: bool = False) -> Copied:
    """Copy the bytes there are now (a file still growing: up to here), hashing what was written."""
    target = dest / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(source, "rb") as f, open(target, "wb") as out:
        size = os.fstat(f.fileno()).st_size
        left = size = _last_line_end(f, size) if whole_lines else size
        while left and (chunk := f.read(min(CHUNK, left))):
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return Copied(rel, size - left, digest.hexdigest())


def _last_line_end(f, size: int) -> int:
    """Where the last whole line ends: a line being appended is not copied half."""
    pos = size
    while pos > 0:
        step = min(CHUNK, pos)
        f.seek(pos - step)
        at = f.read(step).rfind(b"\n")
        if at >= 0:
            f.seek(0)
            return pos - step + at + 1
        pos -= step
    f.seek(0)
    return 0


def _described(dest: Path, rel: str) -> Copied:
    digest = hashlib.sha256()
    with open(dest / rel, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return Copied(rel, (dest / rel).stat().st_size, digest.hexdigest())


# -- checking the copy ----------------------------------------------------------------------------
def _verify(settings: Settings, made: Backup) -> None:
    """Every hearing's ledger in the copy, with the copied audit log's anchors, as
    ``courtscribe records verify`` checks the live one; and the copied audit log's own chain."""
    key = verify_key(settings)
    audit_file = made.dest / "audit" / settings.audit_file.name
    audit = AuditLog(audit_file, key) if audit_file.is_file() else None
    anchors = audit.entries() if audit else []
    engine = read_only(made.dest / DATABASE)
    try:
        copy = reading(engine, key)
        made.hearings = [copy.verify(h["id"], anchors) for h in copy.hearings()]
    finally:
        engine.dispose()
    if audit is not None:
        made.audited = True
        made.audit_problems = [f"line {p.line}: {p.message}" for p in audit.verify()]
