"""The e-case-file package (电子卷宗): one ZIP with the record, its printed forms, the audio and a
manifest holding the SHA-256 of every file, so a receiving system can check nothing was altered,
and the hearing's ledger (ledger.jsonl: every line, correction and signature, hash-chained), so it
can also see who changed what, and that the record is what the ledger says.

Hashes alone prove nothing to someone who can rewrite the manifest too, so the manifest is sealed
with the court's key (``seal.py``: an HMAC the package does not hold); the court's own ``verify``
checks the seal. Without the key a reader still finds a record that no longer matches the
signatures inside it, or a manifest that no longer names them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..chain import canonical
from ..seal import seal, sealed
from . import formats
from .ledger import Entry, broken_link, replay, signed_digests, utterance_of
from .model import Record

MANIFEST = "manifest.json"
LEDGER = "ledger.jsonl"
PACKAGE_SCHEMA = "courtscribe.package/2"  # /2: the ledger is part of the package
WITHOUT_LEDGER = "courtscribe.package/1"
MEDIA_TYPE = "application/zip"


def build(record: Record, audio: list[tuple[str, Path]] | None = None, key: bytes | None = None,
          ledger: Sequence[Entry] = ()) -> bytes:
    """``audio``: (name inside ``audio/``, file) pairs, e.g. the hearing's archived FLAC segments;
    ``key``: the court's seal key (the manifest is then sealed); ``ledger``: the hearing's ledger,
    as it stood when ``record`` was read."""
    files: dict[str, bytes] = {w.packaged_as: formats.render_bytes(record, fmt)
                               for fmt, w in formats.WRITERS.items() if w.packaged_as}
    files |= {
        "interruptions.json": json.dumps([i.model_dump(mode="json") for i in record.interruptions],
                                         ensure_ascii=False, indent=2).encode(),
    }
    if ledger:
        files[LEDGER] = "".join(json.dumps(e._asdict(), ensure_ascii=False) + "\n" for e in ledger).encode()
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
        manifest = {"schema": PACKAGE_SCHEMA if ledger else WITHOUT_LEDGER, "hearing_id": record.hearing.id, "case_number": record.hearing.case_number,
                    "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "signed_digest": record.signatures[0].digest if record.signatures else None, "files": entries}
        if key:
            manifest["seal"] = _seal(key, manifest)
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    return buf.getvalue()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sealed_part(manifest: dict) -> str:
    """What the seal covers: the manifest without its seal."""
    return canonical({k: v for k, v in manifest.items() if k != "seal"})


def _seal(key: bytes, manifest: dict) -> str:
    return seal(key, manifest["schema"], _sealed_part(manifest))


def verify(path: str | Path, key: bytes | None = None) -> list[str]:
    """Problems found (empty when the package is intact): every listed file present with its hash,
    nothing unlisted, the record still matching every signature in it and the digest the manifest
    names, and with ``key`` (the court's) the manifest's seal."""

    problems = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        return [f"not a readable ZIP package: {err}"]
    with zf:
        problems += _entries(zf.namelist())
        names = set(zf.namelist())
        if MANIFEST not in names:
            return [*problems, f"{MANIFEST} is missing"]
        try:
            manifest = json.loads(zf.read(MANIFEST))
            manifest["files"].items()
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            return [*problems, f"{MANIFEST} cannot be read ({type(err).__name__}): altered"]
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
        if key is not None and manifest.get("seal") is None and manifest.get("schema") == WITHOUT_LEDGER:
            problems.append(f"{MANIFEST} carries no seal: a package made before packages were sealed, or one "
                            "whose seal was taken off; export it again from the record store to check it against "
                            "this court's key")
        elif key is not None and not sealed(key, manifest.get("seal"), str(manifest.get("schema")),
                                            _sealed_part(manifest)):
            problems.append(f"{MANIFEST}: its seal does not verify with this court's key (altered, or not sealed "
                            "by this court)")
        if "record.json" in names:
            record = Record.model_validate_json(zf.read("record.json"))
            problems += _signatures(record, manifest.get("signed_digest"))
            if LEDGER in names:
                problems += _read_ledger(zf.read(LEDGER), record, key)
            elif manifest.get("schema") == PACKAGE_SCHEMA:
                problems.append(f"{LEDGER} is missing: a package of this kind carries the hearing's ledger")
    return problems


def _entries(names: list[str]) -> list[str]:
    """A name held twice (a reader of the ZIP takes the last, an unzip tool may keep the first: a
    forged copy put before the genuine file), or one that would be written outside the folder it is
    unpacked into."""
    seen = Counter(names)
    problems = [f"{name}: in the package {n} times (one copy may be forged): altered"
                for name, n in sorted(seen.items()) if n > 1]
    for name in sorted(seen):
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in "".join(path.parts[:1]):
            problems.append(f"{name}: a path outside the package: altered")
    return problems


def _read_ledger(data: bytes, record: Record, key: bytes | None) -> list[str]:
    try:
        entries = [Entry(**json.loads(line)) for line in data.splitlines() if line.strip()]
    except (ValueError, TypeError) as err:
        return [f"{LEDGER} cannot be read as the hearing's ledger ({type(err).__name__}): altered"]
    return _ledger(entries, record, key)


def _ledger(entries: list[Entry], record: Record, key: bytes | None) -> list[str]:
    """The ledger against its own chain, and the record against the ledger: its lines are what the
    ledger says they are, its signatures the ledger's (sealed by the court, with ``key``)."""
    if (e := broken_link(entries)) is not None:
        return [f"{LEDGER}: entry {e.seq} ({e.kind}) does not match its hash chain: altered, inserted or removed"]
    problems = []
    said = {uid: utterance_of(u) for uid, u in replay(entries).items()}
    shown = {u.id: u for u in record.utterances}
    problems += [f"record.json: line {uid} is not what {LEDGER} records for it"
                 for uid in sorted(set(said) | set(shown)) if said.get(uid) != shown.get(uid)]
    digests = signed_digests(record)
    for e in (e for e in entries if e.kind == "signed"):
        signed = json.loads(e.payload)
        if signed["digest"] not in digests:
            problems.append(f"record.json does not match the digest signed at {LEDGER} entry {e.seq}")
        if key is not None and not sealed(key, signed.get("seal"), record.hearing.id, e.prev_hash, signed["digest"]):
            problems.append(f"{LEDGER}: the signature at entry {e.seq} is not sealed by this court's key")
    return problems


def _signatures(record: Record, named: str | None) -> list[str]:
    """The record against its own signatures and the digest the manifest names."""
    digests = signed_digests(record)
    problems = []
    if named and named not in digests:
        problems.append("record.json no longer matches the digest it was signed with")
    if any(s.digest not in digests for s in record.signatures):
        problems.append("record.json no longer matches the digest its signatures signed")
    if record.signatures and named != record.signatures[0].digest:
        problems.append(f"{MANIFEST} does not name the digest the record was signed with")
    return problems
