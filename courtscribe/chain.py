"""The hash-chain primitive under both tamper-evident logs (the record ledger: records/ledger.py;
the audit log: access/audit.py): one JSON spelling that is hashed, SHA-256, and the first link."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GENESIS = "0" * 64  # the hash before the first entry


def canonical(obj: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def read_log(path: Path) -> list[dict]:
    """The entries of a JSON-lines log (the audit log), a torn or garbled line skipped: its own
    verification reports it."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
