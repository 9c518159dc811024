"""A hearing's public version of the record, and the redaction log the clerk reviews.

The record is never redacted: the public version is made from it whenever it is asked for, with
what ``detect`` finds and what the clerk chose, both kept in the ledger (audited, hash-chained):
``protection`` entries mark a participant protected (a minor, a victim, a protected witness) or
no longer; ``redaction`` entries hide words the finder missed (``add``) or show words it hid that
a public audience may see (``lift``), in one line or, without a line, everywhere; ``captions``
entries are the court's kill switch: what was said while captions were ordered off the air is
left out of the public version too, a note in its place. Word times,
the engine's own text and the audio's path are left out of a public version: they would repeat
what is hidden.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

from pydantic import BaseModel

from ..records.model import CONTINUES, LINKED, PROTECTION, REDACTION, PublicVersion, Record, RedactionNote
from .airing import Airing
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


Lines = str | tuple[str, ...] | None  # a line's id, the ids of a long utterance's pieces, or none
CAPTIONS = "captions"  # the kill switch's ledger entries (server/captions.py)
FINAL = "final"  # a line's machine final in the ledger: when it came decides whether it aired
CARRY_MS = 3000  # a pause this long inside a number read out (手机号是一三八。/ 一二三四) still joins its parts
# ... and this long (reading an ID card off the card) still makes the next words searched with the
# open ones: live, what was held aired already, masked as far as it was known (streaming/broadcast.py)
CONTEXT_MS = 10_000
WITHHELD = "〔依法不公开的部分，略〕"  # a public version's line said while captions were ordered off
Stretch = tuple[int, int | None]  # hearing time (ms); an open end: still off


def switched(stretches: list[Stretch], blanked: bool, at_ms: int, from_ms: int | None = None) -> None:
    """``stretches`` after the court blanked the captions (or lit them again) at ``at_ms``; a
    blank's stretch begins ``from_ms``: what the broadcast delay held then was dumped too."""
    if blanked and (not stretches or stretches[-1][1] is not None):
        stretches.append((at_ms if from_ms is None else min(from_ms, at_ms), None))
    elif not blanked and dark(stretches):
        stretches[-1] = (stretches[-1][0], at_ms)


def dark(stretches: list[Stretch]) -> bool:
    """Whether captions are blanked now: the last stretch has no end yet."""
    return bool(stretches) and stretches[-1][1] is None


def within(start_ms: int, end_ms: int, stretches: Iterable[Stretch]) -> bool:
    """Whether [start, end) touches one of the stretches."""
    return any(end_ms > a and (b is None or start_ms < b) for a, b in stretches)


@dataclass(frozen=True)
class Choices:
    """Who is protected and what the clerk hid or showed, as the ledger says now."""

    protected: tuple[str, ...] = ()
    # line (None: every line) → the words hidden there, or shown there though found
    added: dict[str | None, tuple[str, ...]] = field(default_factory=dict)
    lifted: dict[str | None, frozenset[str]] = field(default_factory=dict)
    withheld: tuple[Stretch, ...] = ()  # what the court ordered off the air (the kill switch)
    unaired: frozenset[str] = frozenset()  # lines a blank took off the air (airing.py)

    def finds(self, text: str, line: Lines = None) -> list[Find]:
        """What a public audience must not see of ``text`` (said in ``line``): the one rule every
        public output passes through. A line's own choice wins over a choice for every line."""
        hidden, shown = self._words(line)
        return self.finder(hidden).find(text, shown)

    def open_from(self, text: str, line: Lines = None) -> int:
        """Where the end of ``text`` (said in ``line``) may still become a find once more is said:
        a live caption holds it back (detect.Finder.open_from), the clerk's hidden words too."""
        return self.finder(self._words(line)[0]).open_from(text)

    def _words(self, line: Lines) -> tuple[tuple[str, ...], frozenset[str]]:
        """The words hidden in ``line``, and those shown there though found."""
        lines = (line,) if isinstance(line, str) else tuple(line or ())
        own_added = {w for k in lines for w in self.added.get(k, ())}
        own_lifted = {w for k in lines for w in self.lifted.get(k, frozenset())}
        hidden = [w for w in self.added.get(None, ()) if w not in own_lifted] + sorted(own_added)
        return tuple(hidden), frozenset((self.lifted.get(None, frozenset()) | own_lifted) - own_added)

    def finder(self, hidden: tuple[str, ...] = ()) -> Finder:
        """The finder for the protected names and ``hidden`` words (built once per set of words)."""
        return _finder(self.protected, hidden)

    def redact(self, text: str, line: Lines = None) -> str:
        return apply(text, self.finds(text, line))


@lru_cache(maxsize=256)
def _finder(protected: tuple[str, ...], hidden: tuple[str, ...]) -> Finder:
    return Finder(protected, hidden)


def choices(entries: Iterable, held_ms: int = 0) -> Choices:
    """The clerk's choices from a hearing's ledger entries (the last word on each name or words
    wins), and the court's kill switch (``held_ms``: the broadcast delay a switch's dump began
    before it, where its entry does not say)."""
    protected: dict[str, bool] = {}
    chosen: dict[tuple[str | None, str], str] = {}
    withheld: list[Stretch] = []
    airing = Airing()
    for e in entries:
        if e.kind == FINAL:
            airing.final(e.utterance_id, e.at, e.actor, e.payload)
        elif e.kind == CAPTIONS:
            p = json.loads(e.payload)
            from_ms = p.get("from_ms", max(0, p["at_ms"] - held_ms))
            switched(withheld, p["blanked"], p["at_ms"], from_ms)
            airing.switch(p, e.at, from_ms)
        elif e.kind == PROTECTION:
            p = json.loads(e.payload)
            protected[p["name"]] = p["protected"]
        elif e.kind == REDACTION:
            p = json.loads(e.payload)
            chosen[(p.get("utterance_id"), p["text"])] = p["action"]
        elif e.kind in LINKED:  # a split's new line, a merge's kept one: the choices go along
            other = json.loads(e.payload)[LINKED[e.kind]]
            _carry(chosen, e.utterance_id, other, e.kind == "merge")
            airing.link(e.utterance_id, other, e.kind == "merge")
    added: dict[str | None, tuple[str, ...]] = {}
    lifted: dict[str | None, frozenset[str]] = {}
    for (line, words), action in chosen.items():
        if action == "add":
            added[line] = (*added.get(line, ()), words)
        else:
            lifted[line] = lifted.get(line, frozenset()) | {words}
    return Choices(tuple(n for n, on in protected.items() if on), added, lifted, tuple(withheld),
                   airing.unaired())


def _carry(chosen: dict[tuple[str | None, str], str], line: str, other: str, merged: bool) -> None:
    """A split carries ``line``'s choices to its new half ``other``; a merge carries the choices of
    the line it removed (``other``) to the one it kept (``line``), a word hidden in either hidden."""
    source, target = (other, line) if merged else (line, other)
    for (at, words), action in list(chosen.items()):
        if at == source and (action == "add" or (target, words) not in chosen):
            chosen[(target, words)] = action


class Redaction(BaseModel):
    """One line of the redaction log: where, what kind, the words hidden and what shows instead."""

    category: str
    utterance_id: str | None
    field: str
    start: int
    end: int
    words: str
    replacement: str


# the record's fields a public audience reads, besides each utterance's text, speaker and participant
_HEARING_FIELDS = ("title", "cause")
_LISTS = {"corrections": ("before", "after", "reason", "by"), "interruptions": ("reason", "by"),
          "correction_requests": ("text", "reason", "by"), "party_signatures": ("name", "reason", "noted_by"),
          "participants": ("name", "speaker"), "signatures": ("by",)}

# what an item about a line says of its words
_WITHHELD_KEYS = {"corrections": ("before", "after", "reason"), "correction_requests": ("text", "reason")}


def public_version(record: Record, chosen: Choices) -> tuple[Record, list[Redaction]]:
    """The record as the public may read it, and the log of what was hidden (in the record's own
    words: for the clerk, never published). A long utterance's pieces are searched as one text:
    a number or a name cut between two pieces is found whole."""
    body = record.model_dump(mode="json")
    log: list[Redaction] = []
    notes: list[RedactionNote] = []

    def hide(text: str | None, where: str, line: str | None = None) -> str | None:
        return _hide_pieces([text], [where], [line], chosen, log, notes)[0]

    for key in _HEARING_FIELDS:
        body["hearing"][key] = hide(body["hearing"][key], f"hearing.{key}")
    body["hearing"]["parties"] = [hide(p, f"hearing.parties[{i}]") for i, p in enumerate(body["hearing"]["parties"])]
    body["source"]["path"] = None
    held = {u["id"] for u in body["utterances"]
            if within(u["start_ms"], u["end_ms"], chosen.withheld) or u["id"] in chosen.unaired}
    for u in body["utterances"]:
        if u["id"] in held:
            log.append(Redaction(category="withheld", utterance_id=u["id"], field="text", start=0,
                                 end=len(u["text"]), words=u["text"], replacement=WITHHELD))
            notes.append(RedactionNote(category="withheld", utterance_id=u["id"], field="text", start=0,
                                       end=len(WITHHELD)))
            u.update(text=WITHHELD, flags=[f for f in u["flags"] if f == CONTINUES])
    chains = _chains(body["utterances"], chosen)
    around = _around(chains)
    for chain in chains:
        texts = _hide_pieces([u["text"] for u in chain], ["text"] * len(chain), [u["id"] for u in chain],
                             chosen, log, notes)
        for u, text in zip(chain, texts):
            u["text"] = text
            u["speaker"] = hide(u["speaker"], "speaker", u["id"])
            u["participant"] = hide(u["participant"], "participant", u["id"])
            u["tokens"] = []
            u["machine_text"] = None
    known = {u["id"] for u in body["utterances"]}
    for name, keys in _LISTS.items():
        for i, item in enumerate(body[name]):
            line = item.get("utterance_id")
            # a correction of a withheld line (or of one merged away, when anything is withheld) says
            # what was said there: withheld too
            if line is not None and (line in held or chosen.withheld and line not in known):
                for key in _WITHHELD_KEYS.get(name, ()):
                    log.append(Redaction(category="withheld", utterance_id=line, field=f"{name}[{i}].{key}",
                                         start=0, end=len(item[key] or ""), words=item[key] or "",
                                         replacement=WITHHELD))
                    item[key] = WITHHELD
            for key in keys:
                before, after = around.get(line, ("", "")) if line is not None else ("", "")
                item[key] = _hide_pieces([before, item.get(key), after], ["", f"{name}[{i}].{key}", ""],
                                         [None, line, None], chosen, log, notes, only=1)[1]
    body["public_version"] = PublicVersion(made_at=dt.datetime.now(dt.timezone.utc), redactions=notes)
    return Record.model_validate(body), log


def _chains(utterances: list[dict], chosen: Choices) -> list[list[dict]]:
    """Utterances grouped into the texts searched as one: a piece that goes on (``continues``) from
    the channel's utterance before it joins that utterance's group, and so does its speaker's next
    utterance within ``CONTEXT_MS`` of one that ended inside a number or a name (a pause in it, or
    another voice's words: 慢一点)."""
    out: list[list[dict]] = []
    last: dict[int, list[dict]] = {}  # a channel's last chain: where its next piece goes on
    voices: dict[tuple[int, str], list[dict]] = {}  # a voice's: another's words between do not part it
    for u in utterances:
        piece = CONTINUES in u["flags"]
        voice = (u["channel"], u["speaker"])
        chain = last.get(u["channel"]) if piece else voices.get(voice)
        if chain is not None and (piece or _goes_on(chain[-1], u, chosen)):
            chain.append(u)
        else:
            chain = [u]
            out.append(chain)
        last[u["channel"]] = chain
        voices[voice] = chain
    return out


def _around(chains: list[list[dict]]) -> dict[str, tuple[str, str]]:
    """Each chained line's neighbours' words, as said (before anything is masked): what a note about
    the line (a correction of it, a request to correct it) is searched between, so the part of a
    number or a name it repeats is found as the line's own text is."""
    out = {}
    for chain in chains:
        texts = [u["text"] or "" for u in chain]
        for k, u in enumerate(chain):
            if len(chain) > 1:
                out[u["id"]] = ("".join(texts[:k]), "".join(texts[k + 1:]))
    return out


def _goes_on(before: dict, u: dict, chosen: Choices) -> bool:
    """``u`` goes on from ``before``'s open end (a number or a name a pause split), its speaker's."""
    text = before["text"] or ""
    return (u["speaker"] == before["speaker"] and u["start_ms"] - before["end_ms"] <= CONTEXT_MS
            and chosen.open_from(text, before["id"]) < len(text))


def _hide_pieces(texts: list[str | None], fields: list[str], lines: list[str | None], chosen: Choices,
                 log: list[Redaction], notes: list[RedactionNote],
                 only: int | None = None) -> list[str | None]:
    """``texts`` (the pieces of one turn) masked as one text; each mask logged on the piece it
    starts in, and what a find spans of later pieces taken out of them; ``only``: the one piece
    masked and logged, the others its context."""
    whole = "".join(t or "" for t in texts)
    ids = tuple(x for x in lines if x)
    finds = chosen.finds(whole, ids if len(ids) > 1 else (ids[0] if ids else None)) if whole else []
    out: list[str | None] = []
    offset = 0
    for k, (text, where, line) in enumerate(zip(texts, fields, lines)):
        if not text or only is not None and k != only:
            out.append(text)
            offset += len(text or "")
            continue
        end = offset + len(text)
        parts = [Find(f.category, max(f.start, offset) - offset, min(f.end, end) - offset,
                      f.replacement if f.start >= offset or only is not None else "")
                 for f in finds if f.start < end and f.end > offset]
        shift = 0  # where a mask stands in the public text: earlier masks moved it
        for f in parts:
            log.append(Redaction(category=f.category, utterance_id=line, field=where, start=f.start,
                                 end=f.end, words=text[f.start:f.end], replacement=f.replacement))
            notes.append(RedactionNote(category=f.category, utterance_id=line, field=where,
                                       start=f.start + shift, end=f.start + shift + len(f.replacement)))
            shift += len(f.replacement) - (f.end - f.start)
        out.append(apply(text, parts))
        offset = end
    return out


def public_listing(row: dict, chosen: Choices, q: str | None = None) -> dict | None:
    """A hearing list's row as a caption token may see it: title, parties and participants' names
    masked; None when ``q`` is not in what it shows (a protected name, or part of one, finds nothing)."""
    def masked(text: str | None) -> str | None:
        return chosen.redact(text) if text else text

    out = {**row, "title": masked(row.get("title")), "cause": masked(row.get("cause")),
           "parties": [masked(p) for p in row.get("parties", [])],
           "participants": [{**p, "name": masked(p.get("name"))} for p in row.get("participants", [])]}
    shown = [out["id"], out["title"], out["cause"], *out["parties"], *(p["name"] for p in out["participants"])]
    if q and not any(q.lower() in (t or "").lower() for t in shown) and _bare(q) not in _bare(out.get("case_number")):
        return None
    return out


def _bare(text: str | None) -> str:
    """A 案号 without brackets and spaces: searched in either bracket style."""
    return re.sub(r"[()（）〔〕\[\]\s]", "", text or "")
