"""The server's sealing key: an HMAC key kept outside the database.

Hash chains (the ledger of each hearing, the audit log) show that an entry was changed, but
someone who can write the database can recompute a whole chain consistently. A seal is an HMAC
of a chain's head under a key the database does not hold, so a rewritten history no longer
verifies unless the key was stolen too. The key comes from ``COURTSCRIBE_SEAL_KEY`` or a file
created once with mode 0600 (court IT may keep it on another volume or in a secrets store).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path


def load_key(settings) -> bytes:
    """The key from settings, else from its file (made on first use, readable by its owner only)."""
    if settings.seal_key:
        # as the key file is read (stripped): a Secret made --from-file of it gives the same key
        key = settings.seal_key.strip().encode()
        if len(key) < MIN_KEY_BYTES:  # "changeme" seals nothing an intruder can't redo
            raise SealKeyError(f"COURTSCRIBE_SEAL_KEY is too short: give at least {MIN_KEY_BYTES} random bytes "
                               "(e.g. `openssl rand -base64 48`)")
        return key
    return key_file(settings.seal_key_file)


class SealKeyError(ValueError):
    """The seal key is unusable (a file emptied or cut, a short key): sealing would silently be weak or off."""


MIN_KEY_BYTES = 32


def key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < MIN_KEY_BYTES:  # emptied or cut: every entry would verify unsealed
            raise SealKeyError(f"the seal key {path} is {'empty' if not key else 'too short'}: restore it from its "
                               "backup (or set COURTSCRIBE_SEAL_KEY); courtscribe will not run with sealing off") from None
        return key
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def seal(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def sealed(key: bytes, mac: str | None, *parts: str) -> bool:
    return mac is not None and hmac.compare_digest(mac, seal(key, *parts))
