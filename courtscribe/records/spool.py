"""Live writes that wait on disk while the record store is away, then reach it in order.

A final the clerk has already seen must not be lost because PostgreSQL restarted or SQLite was
locked for a moment. ``Spool.write`` tries the store; when the database cannot be reached (or
earlier writes are still waiting, so order is kept) the write is appended to a JSON-lines file
and fsync'd, and ``flush`` replays it later — also at the next start-up after a crash. A write
the store refuses for good (e.g. the hearing was signed meanwhile) goes to ``rejected.jsonl``
beside it instead of blocking the queue. When the disk refuses the append too (full), the write
waits in memory, after what waits on disk, until one of them takes it: the clerk was told it is
not stored yet, and a server that dies meanwhile leaves its audio past the record's last line to
the start-up's check (``archive.recover``'s stretches become flagged lines).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Callable, Literal


from ..db import unavailable
from ..logs import get_logger
from .model import Role, Utterance
from .reading import Named, plainly
from .store import RecordError, RecordStore

log = get_logger(__name__)
Written = Named | None | Literal[False]  # False: waits on disk; a Named: stored under that label


class Spool:
    def __init__(self, directory: Path, store: RecordStore):
        self.dir, self.store = Path(directory), store
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path, self.rejected = self.dir / "pending.jsonl", self.dir / "rejected.jsonl"
        self._lock = threading.RLock()  # _write holds it around _exclusive's
        self._unwritten: list[dict] = []  # writes the disk refused too (full): in order, after the file's
        self.on_flushed: Callable[[str, int], object] | None = None  # hearing id, lines now stored
        # hearing id, the line's id (None: a relabel's), why the store refused it for good
        self.on_refused: Callable[[str, str | None, str], object] | None = None

    @property
    def pending(self) -> int:
        waiting = len(self._unwritten)
        if not self.path.exists():
            return waiting
        with open(self.path, encoding="utf-8") as f:
            return waiting + sum(1 for line in f if line.strip())

    def waiting(self) -> list[tuple[str, Utterance]]:
        """The lines that wait to be stored (hearing id, line), in order."""
        entries = list(self._unwritten)
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                entries = [json.loads(line) for line in f if line.strip()] + entries
        return [(e["hearing_id"], Utterance.model_validate(e["utterance"])) for e in entries if e["op"] == "final"]

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
        """Kept where others wait already (so the order is kept)."""
        if self._unwritten:
            self._unwritten.append(entry)
            return True
        try:
            with self._exclusive():
                if self.path.exists() and self.path.stat().st_size:
                    self._append_or_hold(entry)
                    return True
        except OSError:  # no lock file on a full disk: the store is asked, then _keep holds it
            pass
        return False

    def _keep(self, entry: dict) -> None:
        """On disk, or in memory when the disk refuses it (full): never nowhere."""
        try:
            with self._exclusive():
                self._append_or_hold(entry)
        except OSError:
            self._hold(entry)

    def _append_or_hold(self, entry: dict) -> None:
        try:
            self._append(entry)
        except OSError:
            self._hold(entry)

    def _hold(self, entry: dict) -> None:
        self._unwritten.append(entry)
        log.error("write kept in memory: the spool's disk refused it", hearing=entry["hearing_id"],
                  waiting=len(self._unwritten))

    def _write(self, entry: dict) -> Written:
        with self._lock:
            try:
                if self._queued(entry):
                    return False
                return self._apply(entry)
            except Exception as err:  # noqa: BLE001 - classified below
                if not unavailable(err):  # refused for good: kept on disk all the same, and said
                    self._refuse(entry, plainly(err))
                    raise
                log.warning("record store unavailable: write waits", hearing=entry["hearing_id"],
                            error=type(err).__name__)
                self._keep(entry)
                return False

    def _refuse(self, entry: dict, why: str) -> None:
        try:
            with self._exclusive():
                self._reject(entry, why)
        except OSError:
            log.error("refused write not kept on disk", hearing=entry["hearing_id"], why=why)

    def _reject(self, entry: dict, why: str) -> None:
        """Into rejected.jsonl (the caller holds ``_exclusive``)."""
        log.error("write refused by the record store", hearing=entry["hearing_id"], why=why)
        try:
            self._append({**entry, "refused": why}, self.rejected)
        except OSError as err:  # a full disk: the log holds where it was (the words stay out of it)
            log.error("refused write not kept on disk", hearing=entry["hearing_id"], why=why,
                      error=type(err).__name__)

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
        with self._lock:
            stored = self._flush_file()
            if not self.path.exists() or not self.path.stat().st_size:
                stored += self._flush_memory()
            return stored

    def _flush_memory(self) -> int:
        """The writes that waited in memory, once the file's are stored: to the store, in order."""
        done = 0
        while self._unwritten:
            entry = self._unwritten[0]
            try:
                self._apply(entry)
            except Exception as err:  # noqa: BLE001
                if unavailable(err):
                    break
                self._refuse(entry, plainly(err))
                self._told({}, [(entry["hearing_id"], (entry.get("utterance") or {}).get("id"), plainly(err))])
            else:
                done += 1
                self._told({entry["hearing_id"]: 1}, [])
            self._unwritten.pop(0)
        return done

    def _flush_file(self) -> int:
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
                    self._reject(e, plainly(err))
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
        self._told(stored, refused)
        return sum(stored.values())

    def _told(self, stored: dict[str, int], refused: list[tuple[str, str | None, str]]) -> None:
        """The hearings' screens hear of lines stored at last, and of lines refused for good: a line
        outside the record is never silent."""
        for hearing_id, n in stored.items():
            log.info("spooled writes stored", hearing=hearing_id, lines=n)
            if self.on_flushed:
                self.on_flushed(hearing_id, n)
        for hearing_id, uid, why in refused:
            if self.on_refused:
                self.on_refused(hearing_id, uid, why)
