"""The audit log: who did what, when, appended to one JSON-lines file and hash-chained.

Each entry's hash covers the previous entry's hash and its own canonical JSON, so removing or
altering any line breaks every link after it (``verify``). The file is only ever appended to,
under an exclusive lock, so the server and the admin CLI (token issue/revoke) can share it.
It lives beside the records but outside the database: a database outage is when it matters.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records.ledger import GENESIS, canonical, sha256
from .scopes import Principal


@dataclass
class AuditProblem:
    line: int
    message: str


def _hash(prev: str, body: dict) -> str:
    return sha256(prev + "\n" + canonical(body))


def _last_line(f) -> bytes:
    f.seek(0, os.SEEK_END)
    end = f.tell()
    pos, tail = end, b""
    while pos > 0 and tail.count(b"\n") < 2:
        step = min(4096, pos)
        pos -= step
        f.seek(pos)
        tail = f.read(step) + tail
    lines = tail.rstrip(b"\n").split(b"\n")
    return lines[-1] if lines and lines[-1] else b""


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, action: str, who: Principal | None = None, *, hearing: str | None = None,
               outcome: str = "ok", **detail: Any) -> dict:
        """Append one entry and fsync it. ``who`` None: the request carried no valid token."""
        body = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "action": action,
                "token": who.token_id if who else None, "role": who.role.value if who else None,
                "name": who.name if who else None, "court": who.court if who else None,
                "hearing": hearing, "outcome": outcome, "detail": detail}
        with self._lock, open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                last = _last_line(f)
                prev = json.loads(last) if last else None
                body["seq"] = prev["seq"] + 1 if prev else 1
                body["prev"] = prev["hash"] if prev else GENESIS
                body["hash"] = _hash(body["prev"], {k: v for k, v in body.items() if k not in ("hash", "prev")})
                f.seek(0, os.SEEK_END)
                f.write(canonical(body).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return body

    async def arecord(self, action: str, who: Principal | None = None, **kw: Any) -> dict:
        """``record`` from the event loop: the fsync waits in a worker thread, not in front of every socket."""
        return await asyncio.to_thread(self.record, action, who, **kw)

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def verify(self) -> list[AuditProblem]:
        """Every break in the chain: an altered, inserted or deleted entry, or a line that is not JSON."""
        problems, prev, seq = [], GENESIS, 0
        if not self.path.exists():
            return problems
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    e = json.loads(line)
                except ValueError:
                    problems.append(AuditProblem(n, "not a JSON entry"))
                    continue
                body = {k: v for k, v in e.items() if k not in ("hash", "prev")}
                if e.get("prev") != prev or e.get("seq") != seq + 1:
                    problems.append(AuditProblem(n, f"chain broken before entry {e.get('seq')}: an entry was "
                                                    "removed, inserted or reordered"))
                if e.get("hash") != _hash(e.get("prev", ""), body):
                    problems.append(AuditProblem(n, f"entry {e.get('seq')} was altered"))
                prev, seq = e.get("hash", ""), e.get("seq", seq)
        return problems
