"""The audit log: who did what, when, appended to one JSON-lines file and hash-chained.

Each entry's hash covers the previous entry's hash and its own canonical JSON, so removing or
altering any line breaks every link after it (``verify``). The file is only ever appended to,
under an exclusive lock, so the server and the admin CLI (token issue/revoke) can share it.
It lives beside the records but outside the database: a database outage is when it matters.

With the server's sealing key (``seal.py``) every entry carries a ``mac`` and the newest entry's
seal is kept in ``audit.jsonl.head``: a log rewritten without the key, or cut short, no longer
verifies. A torn last line (a crash or a full disk mid-write) is moved to ``audit.jsonl.torn`` and
the chain goes on from the last whole entry; an entry that cannot be written is an error the
caller must act on (the server refuses the action it was about to audit).
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

from ..chain import GENESIS, canonical, read_log, sha256
from ..seal import seal, sealed
from .scopes import Principal


@dataclass
class AuditProblem:
    line: int
    message: str


def _hash(prev: str, body: dict) -> str:
    return sha256(prev + "\n" + canonical(body))


def _tail(f) -> tuple[dict | None, int]:
    """The last whole entry and the offset where it ends (what follows it, if anything, is torn)."""
    f.seek(0, os.SEEK_END)
    pos = f.tell()
    buf = b""
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        lines, starts, at = buf.split(b"\n"), [], pos
        for line in lines:
            starts.append(at)
            at += len(line) + 1
        for k in reversed(range(1 if pos > 0 else 0, len(lines))):  # the first may be the middle of a line
            if lines[k].strip():
                try:
                    return json.loads(lines[k]), starts[k] + len(lines[k])
                except ValueError:
                    continue
    return None, 0


class AuditLog:
    def __init__(self, path: Path, key: bytes | None = None):
        self.path, self.key = path, key
        self.head = path.with_name(path.name + ".head")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, action: str, who: Principal | None = None, *, hearing: str | None = None,
               outcome: str = "ok", **detail: Any) -> dict:
        """Append one entry and fsync it. ``who`` None: the request carried no valid token."""
        body: dict[str, Any] = {"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), "action": action,
                "token": who.token_id if who else None, "role": who.role.value if who else None,
                "name": who.name if who else None, "court": who.court if who else None,
                "hearing": hearing, "outcome": outcome, "detail": detail}
        with self._lock, open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                prev, whole = _tail(f)
                self._cut_torn(f, whole)
                prev = self._ahead(prev)
                body["seq"] = prev["seq"] + 1 if prev else 1
                body["prev"] = prev["hash"] if prev else GENESIS
                body["hash"] = _hash(body["prev"], {k: v for k, v in body.items() if k not in ("hash", "prev", "mac")})
                if self.key:
                    body["mac"] = seal(self.key, str(body["seq"]), body["hash"])
                f.seek(0, os.SEEK_END)
                f.write(canonical(body).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
                if self.key:
                    self._write_head(body)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return body

    def _cut_torn(self, f, whole: int) -> None:
        """Bytes after the last whole entry (a write a crash cut short) go to the ``.torn`` file."""
        f.seek(whole)
        rest = f.read()
        if rest == (b"\n" if whole else b""):
            return
        if rest.strip():
            with open(self.path.with_name(self.path.name + ".torn"), "ab") as out:
                out.write(rest.strip(b"\n") + b"\n")
                out.flush()
                os.fsync(out.fileno())
        f.truncate(whole)
        if whole:
            f.seek(whole)
            f.write(b"\n")

    def _ahead(self, last: dict | None) -> dict | None:
        """The sealed head, when the file ends before it (entries were cut off): the next entry
        chains from the head, so the cut stays visible to ``verify`` instead of being written over."""
        if not self.key or not self.head.exists():
            return last
        try:
            head = json.loads(self.head.read_text())
        except ValueError:
            return last
        if sealed(self.key, head.get("mac"), str(head.get("seq")), str(head.get("hash"))) and \
                head["seq"] > (last["seq"] if last else 0):
            return head
        return last

    def _write_head(self, body: dict) -> None:
        tmp = self.head.with_name(self.head.name + ".tmp")
        tmp.write_text(canonical({"seq": body["seq"], "hash": body["hash"], "mac": body["mac"]}) + "\n")
        os.replace(tmp, self.head)

    async def arecord(self, action: str, who: Principal | None = None, **kw: Any) -> dict:
        """``record`` from the event loop: the fsync waits in a worker thread, not in front of every socket."""
        return await asyncio.to_thread(self.record, action, who, **kw)

    def entries(self) -> list[dict]:
        return read_log(self.path)

    def verify(self) -> list[AuditProblem]:
        """Every break in the chain: an altered, inserted or deleted entry, or a line that is not JSON."""
        problems, prev, seq, n = [], GENESIS, 0, 0
        if not self.path.exists():
            return self._check_head(0, prev, 0)
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    e = json.loads(line)
                except ValueError:
                    problems.append(AuditProblem(n, "not a JSON entry"))
                    continue
                body = {k: v for k, v in e.items() if k not in ("hash", "prev", "mac")}
                if e.get("prev") != prev or e.get("seq") != seq + 1:
                    problems.append(AuditProblem(n, f"chain broken before entry {e.get('seq')}: an entry was "
                                                    "removed, inserted or reordered"))
                if e.get("hash") != _hash(e.get("prev", ""), body):
                    problems.append(AuditProblem(n, f"entry {e.get('seq')} was altered"))
                elif self.key and not sealed(self.key, e.get("mac"), str(e.get("seq")), e.get("hash", "")):
                    problems.append(AuditProblem(n, f"entry {e.get('seq')} is not sealed by this server's key: "
                                                    "the log was rewritten"))
                prev, seq = e.get("hash", ""), e.get("seq", seq)
        return problems + self._check_head(seq, prev, n)

    def head_missing(self) -> AuditProblem | None:
        """A sealed log with entries always has its head beside it; without one, a cut is invisible."""
        if self.key and not self.head.exists() and self.path.exists() and self.path.stat().st_size:
            return AuditProblem(0, f"the sealed head {self.head.name} is missing: the log cannot show whether "
                                   "entries were cut off its end (restore it from its backup)")
        return None

    def _check_head(self, seq: int, last_hash: str, lines: int) -> list[AuditProblem]:
        """The sealed head names the newest entry: a log that ends before it was cut off."""
        if (missing := self.head_missing()) is not None:
            return [AuditProblem(lines, missing.message)]
        if not self.key or not self.head.exists():
            return []
        try:
            head = json.loads(self.head.read_text())
        except ValueError:
            return [AuditProblem(lines, "the sealed head of the log is unreadable")]
        if not sealed(self.key, head.get("mac"), str(head.get("seq")), str(head.get("hash"))):
            return [AuditProblem(lines, "the head of the log is not sealed by this server's key")]
        if head["seq"] > seq:
            return [AuditProblem(lines, f"entries {seq + 1}–{head['seq']} were cut off the end of the log")]
        return []
