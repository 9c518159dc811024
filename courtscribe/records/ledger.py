"""The hash-chained ledger of a hearing and the rules that turn its entries into the record.

Every change is an entry ``(seq, at, actor, kind, utterance_id, payload)``; its hash covers the
previous entry's hash and its own canonical JSON, so editing or deleting any entry breaks every
link after it. ``apply`` is the only place where entries change utterance state: the store uses it
when writing and ``verify`` uses it to replay, so the two cannot drift apart.

Merge rules (docs/records.md), for utterances that people and machines both touch:
1. A human edit always wins over machine text that arrives later (an accurate final after the
   clerk already fixed the partial); the machine text is kept beside it as ``machine_text``.
2. An edit may come before the utterance's final exists (the clerk corrects a partial): the utterance is
   created from the edit, and the final fills in times, tokens and ``machine_text`` only.
3. A speaker set by a person wins over later diarization relabels; the machine's label is kept
   as ``machine_speaker``.
4. After the first signature nothing changes: only correction requests are appended.
5. A person may split an utterance in two or merge two utterances once their finals are in. The entry carries
   the resulting texts and the cut time, so a replay needs no text rules; the engine's word times
   go with the half they belong to. A merge keeps both lines' flags; lines in two mouths, or a
   stretch nobody has typed yet, are not merged.
6. A final says why a person must look at it (``flags``: speech without usable text is an
   ``unrecognized`` utterance, never a missing one); the flags stay when the clerk types the text, so the
   record shows the utterance was typed from the audio. A final that comes after the clerk corrected
   the partial, and says otherwise, is flagged ``final_after_edit`` until she edits or confirms it.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..chain import GENESIS, canonical, sha256
from ..db import as_utc
from .model import (CONTINUES, FINAL_AFTER_EDIT, SPEAKER_UNSURE, Correction, CorrectionRequest, Interruption, PartySignature, Record, Role,
                    Signature, Token, Utterance, UtteranceStatus)

UTTERANCE_KINDS = ("final", "edit", "relabel", "assign_speaker", "confirm", "split", "merge")  # entries that change utterances


def entry_hash(prev_hash: str, seq: int, at: str, actor: str, kind: str, utterance_id: str | None,
               payload: str) -> str:
    body = canonical({"seq": seq, "at": at, "actor": actor, "kind": kind, "utterance_id": utterance_id,
                      "payload": json.loads(payload)})
    return sha256(prev_hash + "\n" + body)


class Entry(NamedTuple):
    """One ledger entry as hashed: what the store's rows and the package's ledger.jsonl both hold."""
    seq: int
    at: str
    actor: str
    kind: str
    utterance_id: str | None
    payload: str  # canonical JSON, as hashed
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row) -> Entry:
        return cls(*(getattr(row, f) for f in cls._fields))


def broken_link(entries: Sequence) -> Entry | None:
    """The first entry that does not follow from the one before (altered, inserted or removed)."""
    prev = GENESIS
    for n, e in enumerate(entries, 1):
        if e.seq != n or e.prev_hash != prev or entry_hash(prev, e.seq, e.at, e.actor, e.kind, e.utterance_id,
                                                             e.payload) != e.hash:
            return e
        prev = e.hash
    return None


def replay(entries: Iterable) -> dict[str, dict]:
    """The utterances the ledger says there are (id → fields, as the store's rows hold them)."""
    utterances: dict[str, dict] = {}
    for e in entries:
        apply(utterances, e.kind, e.utterance_id, json.loads(e.payload))
    return utterances


def utterance_of(u: dict) -> Utterance:
    """An utterance as the record shows it, from its fields (a stored row's or a replay's)."""
    return Utterance(id=u["id"], start_ms=u["start_ms"], end_ms=max(u["start_ms"], u["end_ms"]),
                     channel=u["channel"], speaker=u["speaker"] or "", role=Role(u["role"]) if u["role"] else None,
                     text=u["text"], tokens=[Token(**t) for t in u["tokens"]], language=u["language"],
                     confidence=u["confidence"], status=UtteranceStatus(u["status"]), participant=u["participant"],
                     flags=list(u["flags"] or []),
                     machine_text=u["machine_text"] if u["machine_text"] and u["machine_text"] != u["text"] else None)


def new_utterance(uid: str) -> dict:
    return {"id": uid, "channel": 0, "start_ms": 0, "end_ms": 0, "speaker": "", "role": None, "participant": None,
            "speaker_by": "machine", "machine_speaker": None, "text": "", "text_by": "machine", "machine_text": None, "tokens": [],
            "confidence": None, "language": None, "status": "final", "flags": []}


def apply(utterances: dict[str, dict], kind: str, uid: str | None, p: dict) -> None:
    """Apply one entry to the utterance state ``utterances`` (id → utterance dict). Other kinds (hearing
    facts, participants, interruptions, signatures) do not touch utterances and are ignored here."""
    if uid is None or kind not in UTTERANCE_KINDS:
        return
    if kind == "relabel" and uid not in utterances:  # a diarizer's late word on an utterance merged away
        return
    u = utterances.setdefault(uid, new_utterance(uid))
    if kind == "final":
        u.update({k: p[k] for k in ("channel", "start_ms", "end_ms", "tokens", "confidence", "language")})
        u["flags"] = p.get("flags") or []  # rule 6: a gap utterance's flags (entries before flags existed: none)
        if u["speaker_by"] == "human":  # a person already said who it was: not the machine's guess
            u["flags"] = [f for f in u["flags"] if f != SPEAKER_UNSURE]
        u["machine_text"] = p["text"]
        if u["text_by"] != "human":  # rule 1
            u["text"], u["status"] = p["text"], "final"
        _machine_speaker(u, p)
    elif kind == "edit":
        if u["machine_text"] is None:  # rule 2: an utterance that has no final yet takes its place from the edit
            u.update({k: p[k] for k in ("channel", "start_ms", "end_ms", "speaker", "role", "participant")
                      if p.get(k) is not None})
        u.update(text=p["after"], status="edited", text_by="human", flags=_seen(u["flags"]))
    elif kind == "relabel":
        _machine_speaker(u, p)
    elif kind == "assign_speaker":  # a person said who it was: no longer the machine's guess
        u.update(speaker=p["speaker"], role=p.get("role"), participant=p.get("participant"), speaker_by="human",
                 flags=[f for f in u["flags"] if f != SPEAKER_UNSURE])
    elif kind == "confirm":  # the whole line checked, who said it too
        u.update(status="edited" if u["status"] == "edited" else "confirmed", text_by="human",
                 flags=[f for f in _seen(u["flags"]) if f != SPEAKER_UNSURE])
    elif kind == "split":
        cut = p["at_ms"]
        # a cut changes no word: each half keeps the line's warnings and whether it was looked at
        # (entries before "flags" was written: both halves counted as looked at)
        kept = "flags" in p
        flags = p["flags"] if kept else _seen(u["flags"])
        status = u["status"] if kept else "edited"
        utterances[p["new_id"]] = {**u, "id": p["new_id"], "start_ms": cut, "text": p["second"], "machine_text": "",
                                   "tokens": [t for t in u["tokens"] if t["start_ms"] >= cut],
                                   "status": status, "text_by": "human",
                                   "flags": _second_half(flags) if kept else flags}
        u.update(end_ms=cut, text=p["first"], tokens=[t for t in u["tokens"] if t["start_ms"] < cut],
                 status=status, text_by="human", flags=flags)
    elif kind == "merge":
        other = utterances.pop(p["other"])
        u.update(text=p["text"], start_ms=min(u["start_ms"], other["start_ms"]),
                 end_ms=max(u["end_ms"], other["end_ms"]), tokens=u["tokens"] + other["tokens"],
                 machine_text=(u["machine_text"] or "") + (other["machine_text"] or ""),
                 status=p.get("status", "edited"), text_by="human")  # a line not looked at yet stays so
        if "flags" in p:  # both lines' flags (entries before this: the first line's only)
            u["flags"] = p["flags"]


def _second_half(flags: list[str]) -> list[str]:
    """A split line's second half: a new turn (it goes on from nothing), and a late final's other
    reading, of the whole line, stays with the first half, where it is printed and answered."""
    return [f for f in flags if f not in (CONTINUES, FINAL_AFTER_EDIT)]


def _seen(flags: list[str]) -> list[str]:
    """A line's flags once a person looked at it again: a late final's is answered."""
    return [f for f in flags if f != FINAL_AFTER_EDIT]


def split_ms(u: dict, at: int) -> int:
    """Where in time a cut before character ``at`` of the utterance's text falls: the start of the first
    engine word at or after it; without word times, shared out by characters."""
    text, start, end = u["text"], u["start_ms"], u["end_ms"]
    pos = 0
    for t in u["tokens"]:
        piece = t["text"].strip()
        found = text.find(piece, pos) if piece else -1
        if found < 0:
            continue
        if found >= at:
            return max(start + 1, min(end - 1, t["start_ms"]))
        pos = found + len(piece)
    return start + (end - start) * at // max(1, len(text))


def _machine_speaker(u: dict, p: dict) -> None:
    if u["speaker_by"] == "human":  # rule 3
        u["machine_speaker"] = p["speaker"]
    else:
        u.update(speaker=p["speaker"], role=p.get("role"), participant=p.get("participant"))


def record_digest(record: Record) -> str:
    """SHA-256 of what is read back and signed: the record without its signatures, correction
    requests, render time and public-version mark. The hearing's times are hashed as UTC without a
    zone, whatever zone they are written in: the same record read from SQLite, PostgreSQL or a
    package's record.json takes the same digest."""
    return _digest(record, None)


# the zones a PostgreSQL store handed the hearing's times back in before the digest left them out
# (its session's: UTC, or a Chinese server's Beijing time); SQLite's were zone-free as now
_SIGNED_IN = (dt.timezone.utc, dt.timezone(dt.timedelta(hours=8)))


def signed_digests(record: Record) -> frozenset[str]:
    """The digests a signature of this record may hold: ``record_digest``, and the forms a
    signature made on PostgreSQL before the times were hashed zone-free took."""
    return frozenset([record_digest(record), *(_digest(record, zone) for zone in _SIGNED_IN)])


def _digest(record: Record, zone: dt.tzinfo | None) -> str:
    times = {k: as_utc(t).astimezone(zone) if zone else as_utc(t).replace(tzinfo=None)
             for k, t in record.hearing if isinstance(t, dt.datetime)}
    record = record.model_copy(update={"hearing": record.hearing.model_copy(update=times)})
    body = record.model_dump(mode="json", exclude={"signatures", "correction_requests", "party_signatures",
                                                   "public_version", "created_at"})
    return sha256(canonical(body))


def record_parts(entries: list) -> dict:
    """Corrections, interruptions, signatures and correction requests, in ledger order."""
    out: dict[str, list] = {"corrections": [], "interruptions": [], "signatures": [], "correction_requests": [],
                            "party_signatures": []}
    for e in entries:
        p, at = json.loads(e.payload), e.at
        if e.kind == "edit":
            out["corrections"].append(Correction(utterance_id=e.utterance_id, at=at, by=e.actor, field="text",
                                                 before=p["before"], after=p["after"], reason=p["reason"]))
        elif e.kind == "assign_speaker":
            out["corrections"].append(Correction(utterance_id=e.utterance_id, at=at, by=e.actor, field="speaker",
                                                 before=p["before"], after=p["speaker"], reason=p.get("reason")))
        elif e.kind == "split":
            out["corrections"].append(Correction(utterance_id=e.utterance_id, at=at, by=e.actor, field="split",
                                                 before=p["before"], after=f"{p['first']} ‖ {p['second']}"))
        elif e.kind == "merge":
            out["corrections"].append(Correction(utterance_id=e.utterance_id, at=at, by=e.actor, field="merge",
                                                 before=f"{p['before']} ‖ {p['other_text']}", after=p["text"]))
        elif e.kind == "interruption":
            out["interruptions"].append(Interruption(at=at, at_ms=p["at_ms"], kind=p["kind"], reason=p["reason"],
                                                     by=e.actor))
        elif e.kind == "signed":
            out["signatures"].append(Signature(by=p["by"], role=Role(p["role"]), at=at, digest=p["digest"]))
        elif e.kind == "party_signature":
            out["party_signatures"].append(PartySignature(name=p["name"], role=Role(p["role"]), at=at, noted_by=e.actor,
                                                          refused=p["refused"], reason=p.get("reason")))
        elif e.kind == "correction_request":
            out["correction_requests"].append(CorrectionRequest(
                utterance_id=p["utterance_id"], at=at, by=p.get("name") or e.actor,
                noted_by=e.actor if p.get("name") else None, role=Role(p["role"]) if p["role"] else None,
                text=p["text"], reason=p["reason"]))
    return out
