"""Verifying a hearing's record: the hash chain link by link, the stored utterances, participants
and facts (case number, title, parties…) against a replay of the ledger, the hearing's status
against the ledger's end, and every signature against the record as it is now. Court IT runs it
(`courtscribe records verify`) before an export goes into the electronic case file."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from ..db import as_utc
from ..seal import sealed
from .ledger import broken_link, replay, signed_digests


@dataclass
class Verification:
    hearing_id: str
    entries: int
    ok: bool
    broken_seq: int | None = None
    problem: str | None = None


# a hearing made before it held its own (migrations 0002, 0006) holds none: its case's are shown
CASE_FACTS = ("court", "cause", "parties")
ANCHOR = "ledger_anchor"  # an audit-log entry: a signed ledger's head (seq, hash), kept outside the database


def verify(store, hearing_id: str, anchors: Iterable[dict] = ()) -> Verification:
    """Check the chain link by link, then that the stored utterances, participants and facts are
    what the ledger says, then that every signature still matches the record, then that every
    ledger head the audit log anchored at a signature (``anchors``: its entries) is still in the
    ledger — a database rewritten consistently (say, to unsigned) is not. The server and
    ``courtscribe records verify`` both call this, with the same audit log."""
    entries = store.entries(hearing_id)
    if (e := broken_link(entries)) is not None:
        return Verification(hearing_id, len(entries), False, e.seq, f"ledger entry {e.seq} ({e.kind}) "
                            "does not match its hash chain: altered, inserted or removed")
    utterances = replay(entries)
    people = [(p["name"], p["role"], p["channel"]) for p in
              (json.loads(e.payload) for e in entries if e.kind == "participant_added")]
    rows, stored_people, stored_facts = store.stored(hearing_id)
    for uid in sorted(set(utterances) | set(rows)):
        if utterances.get(uid) != rows.get(uid):
            last = max((e.seq for e in entries if e.utterance_id == uid), default=None)
            return Verification(hearing_id, len(entries), False, last,
                                f"utterance {uid} differs from what the ledger records for it")
    if stored_people != people:
        return Verification(hearing_id, len(entries), False, None, "participants differ from the ledger")
    if (fact := _differing_fact(entries, stored_facts)) is not None:
        return Verification(hearing_id, len(entries), False, None,
                            f"the hearing's {fact} differs from what its ledger records")
    status = "scheduled"
    for e in entries:
        status = {"opened": "open", "closed": "closed", "signed": "signed"}.get(e.kind, status)
    if status != store.status(hearing_id):
        return Verification(hearing_id, len(entries), False, len(entries),
                            f"the hearing is marked {store.status(hearing_id)} but its ledger ends {status}: "
                            "entries are missing from the end")
    digests = signed_digests(store.record(hearing_id))
    key = getattr(store, "seal_key", None)
    for e in entries:
        if e.kind != "signed":
            continue
        payload = json.loads(e.payload)
        if payload["digest"] not in digests:
            return Verification(hearing_id, len(entries), False, e.seq,
                                f"the record no longer matches the digest signed at entry {e.seq}")
        if key and not sealed(key, payload.get("seal"), hearing_id, e.prev_hash, payload["digest"]):
            return Verification(hearing_id, len(entries), False, e.seq,
                                f"the signature at entry {e.seq} is not sealed by this server's key: the ledger "
                                "was rewritten (or signed by another server)")
    heads = {e.seq: e.hash for e in entries}
    for a in anchors:
        d = a.get("detail") or {}
        if a.get("action") == ANCHOR and a.get("hearing") == hearing_id and heads.get(d.get("seq")) != d.get("hash"):
            return Verification(hearing_id, len(entries), False, d.get("seq"),
                                f"the ledger's entry {d.get('seq')} is not the one anchored in the audit log when the "
                                "record was signed: the database was rewritten")
    return Verification(hearing_id, len(entries), True)


def _differing_fact(entries, stored: dict) -> str | None:
    """The first of the hearing's facts (case number, title, court, parties…: the 笔录's header,
    which no signature covers before it is signed) stored otherwise than its ledger says them."""
    told: dict = {}
    for e in entries:
        if e.kind == "hearing_created":
            told = json.loads(e.payload)
        elif e.kind == "hotwords_set":
            told["hotwords"] = json.loads(e.payload)["words"]
    for fact, value in told.items():  # a ledger older than a fact says nothing of it
        if fact not in stored or (fact in CASE_FACTS and not stored[fact]):
            continue
        if _as_stored(fact, value) != _as_stored(fact, stored[fact]):
            return fact
    return None


def _as_stored(fact: str, value):
    """A moment as one instant whatever its zone (the ledger keeps the caller's, the store UTC)."""
    if fact == "scheduled_at" and value is not None:
        return as_utc(value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value))
    return value
