"""Finding a hearing among a court's years of them: by scope, status and date, and by what it is
(案号, 案由, title, parties, participants) or what was said in it, a page at a time.

What was said is searched through the database's own index: SQLite's FTS5 with the trigram
tokenizer (any 3+ characters of Chinese, no word segmentation needed; shorter queries scan), on
PostgreSQL pg_trgm's index under ILIKE where the extension could be created (migration 0005).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import String, and_, cast, func, or_, select, text
from sqlalchemy.orm import Session

from .db import CaseRow, EntryRow, HearingRow, ParticipantRow, UtteranceRow
from .model import ZH_TZ

HearingStatus = Literal["scheduled", "open", "closed", "signed"]
BRACKETS = "()（）〔〕"


@dataclass(frozen=True)
class HearingFilter:
    """Scope (from the token) and what the person asked for."""
    court: str | None = None
    room: str | None = None
    hearing: str | None = None
    public_only: bool = False
    lines: bool = True  # ``q`` may match what was said, and each hearing shows its first such line
    status: str | None = None
    since: dt.date | None = None  # 开庭时间 on or after this day (Beijing time)
    until: dt.date | None = None  # … on or before this day
    q: str | None = None


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _contains(column, q: str):
    """``column`` holds ``q`` literally (its % and _ are no wildcards), in any letter case."""
    return column.ilike(_like(q), escape="\\")


def _bare(case_number):
    """A 案号 without its brackets, either width: （2026）京… and (2026)京… and 2026京… are one case."""
    if isinstance(case_number, str):
        return "".join(c for c in case_number if c not in BRACKETS)
    for c in BRACKETS:
        case_number = func.replace(case_number, c, "")
    return case_number


def _day(d: dt.date) -> dt.datetime:
    """Midnight of a Beijing day, as the UTC instant the columns hold."""
    return dt.datetime.combine(d, dt.time(), ZH_TZ).astimezone(dt.timezone.utc)


def _has_index(s: Session) -> bool:
    """Whether this SQLite database has the lines' FTS5 index (migration 0005 skips it where SQLite
    lacks FTS5 or the trigram tokenizer)."""
    return s.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'utterance_fts'")).first() is not None


def _said(s: Session, q: str):
    """Hearings in which a line says ``q``."""
    if s.get_bind().dialect.name == "sqlite" and len(q) >= 3 and _has_index(s):
        phrase = '"' + q.replace('"', '""') + '"'
        return text("SELECT u.hearing_id FROM utterance_fts f JOIN utterances u ON u.rowid = f.rowid "
                    "WHERE utterance_fts MATCH :phrase").bindparams(phrase=phrase).columns(hearing_id=String)
    return select(UtteranceRow.hearing_id).where(_contains(UtteranceRow.text, q))


def find(s: Session, f: HearingFilter, *, limit: int, offset: int) -> tuple[int, list[dict]]:
    """(how many match, the page asked for), newest first."""
    when = func.coalesce(HearingRow.scheduled_at, HearingRow.opened_at, HearingRow.created_at)
    conds = []
    for column, value in ((HearingRow.court, f.court), (HearingRow.courtroom, f.room), (HearingRow.id, f.hearing),
                          (HearingRow.status, f.status)):
        if value is not None:
            conds.append(column == value)
    if f.public_only:
        conds.append(HearingRow.public.is_(True))
    if f.since:
        conds.append(when >= _day(f.since))
    if f.until:
        conds.append(when < _day(f.until + dt.timedelta(days=1)))
    q = (f.q or "").strip()
    if q:
        said = [HearingRow.id.in_(select(_said(s, q).subquery().c.hearing_id))] if f.lines else []
        conds.append(or_(HearingRow.id == q, _contains(HearingRow.title, q),
                         _contains(_bare(CaseRow.case_number), _bare(q)), _contains(CaseRow.cause, q),
                         _contains(cast(CaseRow.parties, String), q), _contains(HearingRow.cause, q),
                         _contains(cast(HearingRow.parties, String), q),
                         HearingRow.id.in_(select(ParticipantRow.hearing_id).where(_contains(ParticipantRow.name, q))),
                         *said))
    base = select(HearingRow, CaseRow).outerjoin(CaseRow, HearingRow.case_id == CaseRow.id).where(and_(*conds))
    total = s.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = s.execute(base.order_by(when.desc(), HearingRow.id).limit(limit).offset(offset)).all()
    ids = [h.id for h, _ in rows]
    requests = dict(s.execute(select(EntryRow.hearing_id, func.count()).where(
        EntryRow.hearing_id.in_(ids), EntryRow.kind == "correction_request").group_by(EntryRow.hearing_id)).all())
    people: dict[str, list] = {}
    for hid, name, role in s.execute(select(ParticipantRow.hearing_id, ParticipantRow.name, ParticipantRow.role)
                                     .where(ParticipantRow.hearing_id.in_(ids)).order_by(ParticipantRow.id)):
        people.setdefault(hid, []).append({"name": name, "role": role})
    out = []
    for h, case in rows:
        cause, parties = h.facts(case)
        item: dict[str, Any] = {"id": h.id, "title": h.title, "court": h.court, "courtroom": h.courtroom, "status": h.status,
                "public": h.public, "case_number": case.case_number if case else None,
                "cause": cause, "parties": parties,
                "participants": people.get(h.id, []), "scheduled_at": _iso(h.scheduled_at),
                "opened_at": _iso(h.opened_at), "closed_at": _iso(h.closed_at),
                "correction_requests": requests.get(h.id, 0)}
        if q and f.lines:
            item["match"] = _first_line(s, h.id, q)
        out.append(item)
    return total, out


def _first_line(s: Session, hid: str, q: str) -> dict | None:
    """The first line of the hearing that says ``q`` (the list shows it; a click opens it)."""
    row = s.execute(select(UtteranceRow.id, UtteranceRow.start_ms, UtteranceRow.text)
                    .where(UtteranceRow.hearing_id == hid, _contains(UtteranceRow.text, q))
                    .order_by(UtteranceRow.start_ms).limit(1)).first()
    return None if row is None else {"id": row.id, "start_ms": row.start_ms, "text": row.text}


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat()
