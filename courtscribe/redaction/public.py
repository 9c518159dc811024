"""A hearing's public version of the record, and the redaction log the clerk reviews.

The record is never redacted: the public version is made from it whenever it is asked for, with
what ``detect`` finds and what the clerk chose, both kept in the ledger (audited, hash-chained):
``protection`` entries mark a participant protected (a minor, a victim, a protected witness) or
no longer; ``redaction`` entries hide words the finder missed (``add``) or show words it hid that
a public audience may see (``lift``), in one line or, without a line, everywhere. Word times,
the engine's own text and the audio's path are left out of a public version: they would repeat
what is hidden.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Iterable

from pydantic import BaseModel

from ..records.model import PROTECTION, REDACTION, PublicVersion, Record, RedactionNote
from .detect import Find, Finder, apply



def protection(name: str, protected: bool = True, reason: str | None = None) -> dict:
    """A ``protection`` ledger entry's payload: ``name`` is masked (张某) in every public output, or no longer."""
    return {"name": name, "protected": protected, "reason": reason}


def redaction(action: str, text: str, utterance_id: str | None = None, reason: str | None = None) -> dict:
    """A ``redaction`` ledger entry's payload: hide (``add``) or show (``lift``) ``text`` in one line
    or, without one, every line of the public version."""
    if action not in ("add", "lift"):
        raise ValueError(f"a redaction is added or lifted, not {action!r}")
    return {"action": action, "text": text, "utterance_id": utterance_id, "reason": reason}


@dataclass(frozen=True)
class Choices:
    """Who is protected and what the clerk hid or showed, as the ledger says now."""

    protected: tuple[str, ...] = ()
    # line (None: every line) → the words hidden there, or shown there though found
    added: dict[str | None, tuple[str, ...]] = field(default_factory=dict)
    lifted: dict[str | None, frozenset[str]] = field(default_factory=dict)

    def finds(self, text: str, line: str | None = None) -> list[Find]:
        """What a public audience must not see of ``text`` (of line ``line``): the one rule every
        public output passes through."""
        shown = self.lifted.get(None, frozenset()) | self.lifted.get(line, frozenset())
        found = self.finder(line).find(text)
        return [f for f in found if text[f.start:f.end] not in shown or f.category == "clerk"]

    def finder(self, line: str | None = None) -> Finder:
        """The finder for one line: the protected names, and the words hidden there or everywhere."""
        return Finder(self.protected, (*self.added.get(None, ()), *self.added.get(line, ())))

    def redact(self, text: str, line: str | None = None) -> str:
        return apply(text, self.finds(text, line))


def choices(entries: Iterable) -> Choices:
    """The clerk's choices from a hearing's ledger entries (the last word on each name or words wins)."""
    protected: dict[str, bool] = {}
    chosen: dict[tuple[str | None, str], str] = {}
    for e in entries:
        if e.kind == PROTECTION:
            p = json.loads(e.payload)
            protected[p["name"]] = p["protected"]
        elif e.kind == REDACTION:
            p = json.loads(e.payload)
            chosen[(p.get("utterance_id"), p["text"])] = p["action"]
    added: dict[str | None, tuple[str, ...]] = {}
    lifted: dict[str | None, frozenset[str]] = {}
    for (line, words), action in chosen.items():
        if action == "add":
            added[line] = (*added.get(line, ()), words)
        else:
            lifted[line] = lifted.get(line, frozenset()) | {words}
    return Choices(tuple(n for n, on in protected.items() if on), added, lifted)


class Redaction(BaseModel):
    """One line of the redaction log: where, what kind, the words hidden and what shows instead."""

    category: str
    utterance_id: str | None
    field: str
    start: int
    end: int
    words: str
    replacement: str


# the record's fields a public audience reads, besides each utterance's text and participant
_HEARING_FIELDS = ("title",)
_LISTS = {"corrections": ("before", "after", "reason"), "interruptions": ("reason",),
          "correction_requests": ("text", "reason"), "party_signatures": ("name", "reason"),
          "participants": ("name",)}


def public_version(record: Record, chosen: Choices) -> tuple[Record, list[Redaction]]:
    """The record as the public may read it, and the log of what was hidden (in the record's own
    words: for the clerk, never published)."""
    body = record.model_dump(mode="json")
    log: list[Redaction] = []
    notes: list[RedactionNote] = []

    def hide(text: str | None, where: str, line: str | None = None) -> str | None:
        if not text:
            return text
        finds = chosen.finds(text, line)
        shift = 0  # where a mask stands in the public text: earlier masks moved it
        for f in finds:
            log.append(Redaction(category=f.category, utterance_id=line, field=where, start=f.start,
                                 end=f.end, words=text[f.start:f.end], replacement=f.replacement))
            start = f.start + shift
            notes.append(RedactionNote(category=f.category, utterance_id=line, field=where, start=start,
                                       end=start + len(f.replacement)))
            shift += len(f.replacement) - (f.end - f.start)
        return apply(text, finds)

    for key in _HEARING_FIELDS:
        body["hearing"][key] = hide(body["hearing"][key], f"hearing.{key}")
    body["hearing"]["parties"] = [hide(p, "hearing.parties") for p in body["hearing"]["parties"]]
    body["source"]["path"] = None
    for u in body["utterances"]:
        u["text"] = hide(u["text"], "text", u["id"])
        u["participant"] = hide(u["participant"], "participant", u["id"])
        u["tokens"] = []
        u["machine_text"] = None
    for name, keys in _LISTS.items():
        for item in body[name]:
            line = item.get("utterance_id")
            for key in keys:
                item[key] = hide(item.get(key), f"{name}.{key}", line)
    body["public_version"] = PublicVersion(made_at=dt.datetime.now(dt.timezone.utc), redactions=notes)
    return Record.model_validate(body), log


def public_listing(row: dict, chosen: Choices, q: str | None = None) -> dict | None:
    """A hearing list's row as a caption token may see it: title, parties and participants' names
    masked; None when ``q`` touches what is masked (a protected name, or part of one, finds nothing)."""
    texts = [row.get("title"), *row.get("parties", []), *(p.get("name") for p in row.get("participants", []))]
    hidden = [t[f.start:f.end] for t in texts if t for f in chosen.finds(t)]
    if q and any(q in w or w in q for w in hidden):
        return None

    def masked(text: str | None) -> str | None:
        return chosen.redact(text) if text else text

    return {**row, "title": masked(row.get("title")), "parties": [masked(p) for p in row.get("parties", [])],
            "participants": [{**p, "name": masked(p.get("name"))} for p in row.get("participants", [])]}
