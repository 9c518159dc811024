"""Which lines never aired on the live caption feed though no blanked stretch holds their words:
when the court blanks the captions, the feed drops what its broadcast delay still held, and a
final comes seconds after its words, so a line said before the blank's stretch (in hearing time)
may still have been held, or made while captions were dark. Such a line stays out of every later
public output (archive feeds, the public version, a reconnecting overlay's backfill).

Only finals a live stream made count (``records.model.MACHINE``): an uploaded recording's lines were never
on the air; and only lines that end near the blank (``LAG_MS``): a final replayed from the spool
long after its words aired, or not, then."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from ..records.model import MACHINE

LAG_MS = 30_000  # a final comes at most this long after its words (a loaded server's p95: 20 s)


@dataclass
class _Dark:
    since: dt.datetime  # wall clock: finals made from here on were held, then dumped, or made dark
    from_ms: int  # hearing time the blank's stretch starts at
    until: dt.datetime | None = None  # captions lit again


@dataclass
class Airing:
    """The ledger's switches and live finals, in ledger order (``switch``, ``final``, ``link``)."""

    dark: list[_Dark] = field(default_factory=list)
    finals: dict[str, tuple[dt.datetime, int]] = field(default_factory=dict)  # line → first final, end
    links: list[tuple[str, str, bool]] = field(default_factory=list)  # split or merge: line, other

    def switch(self, payload: dict, at: str, from_ms: int) -> None:
        """A kill-switch entry, its blank's stretch starting at ``from_ms`` (hearing time); the
        delay it dumped is the entry's ``held_ms``, else (older entries) what that stretch says."""
        when = dt.datetime.fromisoformat(at)
        if payload["blanked"] and (not self.dark or self.dark[-1].until is not None):
            held = payload.get("held_ms", payload["at_ms"] - from_ms)
            self.dark.append(_Dark(when - dt.timedelta(milliseconds=held), from_ms))
        elif not payload["blanked"] and self.dark and self.dark[-1].until is None:
            self.dark[-1].until = when

    def final(self, uid: str, at: str, actor: str, payload: str) -> None:
        if actor == MACHINE and uid not in self.finals:
            self.finals[uid] = (dt.datetime.fromisoformat(at), int(json.loads(payload).get("end_ms") or 0))

    def link(self, line: str, other: str, merged: bool) -> None:
        self.links.append((line, other, merged))

    def unaired(self) -> frozenset[str]:
        """The lines that never aired, their halves after a split, and a line a merge gave their words."""
        out = {uid for uid, (at, end_ms) in self.finals.items()
               if any(d.since <= at and (d.until is None or at < d.until) and end_ms > d.from_ms - LAG_MS
                      for d in self.dark)}
        for line, other, merged in self.links:
            if merged and other in out:
                out.add(line)
            elif not merged and line in out:
                out.add(other)
        return frozenset(out)
