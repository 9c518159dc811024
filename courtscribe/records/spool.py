"""Live writes that wait on disk while the record store is away, then reach it in order.

A final the clerk has already seen must not be lost because PostgreSQL restarted or SQLite was
locked for a moment. ``Spool.write`` tries the store; when the database cannot be reached (or
earlier writes are still waiting, so order is kept) the write is appended to a JSON-lines file
and fsync'd, and ``flush`` replays it later — also at the next start-up after a crash. A write
the store refuses for good (e.g. the hearing was signed meanwhile) goes to ``rejected.jsonl``
beside it instead of blocking the queue.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Callable, Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ..logs import get_logger
from .model import Role, Utterance
from .reading import Named, plainly
from .store import RecordError, RecordStore

log = get_logger(__name__)
Written = Named | None | Literal[False]  # False: waits on disk; a Named: stored under that label


def unavailable(err: BaseException) -> bool:
    """Whether an error means "the database is away for now" rather than "this write is wrong"."""
    return isinstance(err, (OperationalError, InterfaceError)) or (
        isinstance(err, DBAPIError) and err.connection_invalidated)


class Spool:
    def __init__(self, directory: Path, store: RecordStore):
        self.dir, self.store = Path(directory), store
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path, self.rejected = self.dir / "pending.jsonl", self.dir / "rejected.jsonl"
        self._lock = threading.RLock()  # _write holds it around _exclusive's
        self.on_flushed: Callable[[str, int], object] | None = None  # hearing id, lines now stored
        # hearing id, the line's id (None: a relabel's), why the store refused it for good
        self.on_refused: Callable[[str, str | None, str], object] | None = None

    @property
    def pending(self) -> int:
        if not self.path.exists():
            return 0
        with open(self.path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())

    # -- writing ----------------------------------------------------------------------------
    def machine_final(self, hearing_id: str, u: Utterance, *, voice: str | None = None) -> Written:
        """Store a live final; False when it had to wait on disk (the caller tells the clerk), else
        what the store answered (``RecordStore.machine_final``)."""
        return self._write({"op": "final", "hearing_id": hearing_id, "utterance": u.model_dump(mode="json"),
                            "voice": voice})

    def relabel(self, hearing_id: str, uid: str, *, speaker: str, role: Role | None = None,
                participant: str | None = None, voice: str | None = None) -> Written:
        return self._write({"op": "relabel", "hearing_id": hearing_id, "uid": uid, "speaker": speaker,
                            "role": role.value if role else None, "participant": participant, "voice": voice})

    @contextlib.contextmanager
    def _exclusive(self):
        """The spool file to this process alone: gateway replicas that share the data folder spool
        into one file, and a replay must not replace it under another's append."""
        with self._lock, open(self.dir / "spool.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _queued(self, entry: dict) -> bool:
        """Appended where others wait already (so the order is kept)."""
        with self._exclusive():
            if self.path.exists() and self.path.stat().st_size:
                self._append(entry)
                return True
            return False

    def _write(self, entry: dict) -> Written:
        with self._lock:
            if self._queued(entry):
                return False
            try:
                return self._apply(entry)
            except Exception as err:  # noqa: BLE001 - classified below
                if not unavailable(err):  # refused for good: kept on disk all the same, and said
                    with self._exclusive():
                        self._append({**entry, "refused": str(err).splitlines()[0]}, self.rejected)
                    raise
                log.warning("record store unavailable: write kept on disk", hearing=entry["hearing_id"],
                            error=str(err).splitlines()[0])
                with self._exclusive():
                    self._append(entry)
                return False

    def _append(self, entry: dict, path: Path | None = None) -> None:
        with open(path or self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _apply(self, e: dict) -> Named | None:
        if e["op"] == "final":
            return self.store.machine_final(e["hearing_id"], Utterance.model_validate(e["utterance"]),
                                            voice=e.get("voice"))
        if e["op"] == "relabel":
            return self.store.relabel(e["hearing_id"], e["uid"], speaker=e["speaker"],
                                      role=Role(e["role"]) if e["role"] else None, participant=e["participant"],
                                      voice=e.get("voice"))
        raise RecordError(f"unknown spooled operation {e['op']!r}")

    # -- replaying --------------------------------------------------------------------------
    def flush(self) -> int:
        """Replay waiting writes in order until the store fails again; returns how many were stored."""
        with self._exclusive():
            if not self.path.exists():
                return 0
            with open(self.path, encoding="utf-8") as f:
                entries = [json.loads(line) for line in f if line.strip()]
            done, stored, refused = 0, dict[str, int](), list[tuple[str, str | None, str]]()
            for e in entries:
                try:
                    self._apply(e)
                    stored[e["hearing_id"]] = stored.get(e["hearing_id"], 0) + 1
                except Exception as err:  # noqa: BLE001
                    if unavailable(err):
                        break
                    log.error("spooled write refused by the record store", hearing=e["hearing_id"], error=repr(err))
                    self._append({**e, "refused": str(err)}, self.rejected)
                    refused.append((e["hearing_id"], (e.get("utterance") or {}).get("id"), plainly(err)))
                done += 1
            rest = entries[done:]
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in rest)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            if not rest:
                self.path.unlink()
        for hearing_id, n in stored.items():
            log.info("spooled writes stored", hearing=hearing_id, lines=n)
            if self.on_flushed:
                self.on_flushed(hearing_id, n)
        for hearing_id, uid, why in refused:  # the clerk hears of it: a line outside the record is never silent
            if self.on_refused:
                self.on_refused(hearing_id, uid, why)
        return sum(stored.values())
