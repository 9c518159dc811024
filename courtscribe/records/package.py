"""The e-case-file package (电子卷宗): one ZIP with the record, its printed forms, the audio and a
manifest holding the SHA-256 of every file, so a receiving system can check nothing was altered.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

from . import formats
from .model import Record

MANIFEST = "manifest.json"
PACKAGE_SCHEMA = "courtscribe.package/1"
MEDIA_TYPE = "application/zip"


def build(record: Record, audio: list[tuple[str, Path]] | None = None) -> bytes:
    """``audio``: (name inside ``audio/``, file) pairs, e.g. the hearing's archived FLAC segments."""
    files: dict[str, bytes] = {w.packaged_as: formats.render_bytes(record, fmt)
                               for fmt, w in formats.WRITERS.items() if w.packaged_as}
    files |= {
        "interruptions.json": json.dumps([i.model_dump(mode="json") for i in record.interruptions],
                                         ensure_ascii=False, indent=2).encode(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = {}
        for name, data in files.items():
            zf.writestr(name, data)
            entries[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for arcname, path in audio or []:
            name = f"audio/{arcname}"
            zf.write(path, name, compress_type=zipfile.ZIP_STORED)  # FLAC is compressed already
            entries[name] = {"sha256": _file_sha256(path), "bytes": path.stat().st_size}
        manifest = {"schema": PACKAGE_SCHEMA, "hearing_id": record.hearing.id, "case_number": record.hearing.case_number,
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "signed_digest": record.signatures[0].digest if record.signatures else None, "files": entries}
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    return buf.getvalue()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str | Path) -> list[str]:
    """Problems found (empty when the package is intact): every listed file present with its hash,
    nothing unlisted, and the record still matching the digest it was signed with."""
    from .store import record_digest

    problems = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        return [f"not a readable ZIP package: {err}"]
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            return [f"{MANIFEST} is missing"]
        manifest = json.loads(zf.read(MANIFEST))
        for name, meta in manifest["files"].items():
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            digest = hashlib.sha256()
            with zf.open(name) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != meta["sha256"]:
                problems.append(f"{name}: SHA-256 differs from the manifest (altered)")
        problems += [f"{name}: not listed in the manifest" for name in sorted(names - set(manifest["files"]) - {MANIFEST})]
        if manifest.get("signed_digest") and "record.json" in names:
            record = Record.model_validate_json(zf.read("record.json"))
            if record_digest(record) != manifest["signed_digest"]:
                problems.append("record.json no longer matches the digest it was signed with")
    return problems
