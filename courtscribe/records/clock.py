"""When a hearing opened and closed: now, as a live recorder or a clerk's click says it, or as the
court states it for a hearing recorded elsewhere (its recording uploaded afterwards)."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import as_utc, utcnow
from .db import EntryRow, HearingRow, UtteranceRow
from .model import ZH_TZ
from .reading import RecordError


def court_time(t: dt.datetime) -> dt.datetime:
    """``t`` in UTC; a time without a zone is the court's: Beijing time."""
    return as_utc(t if t.tzinfo else t.replace(tzinfo=ZH_TZ))


def stated(at: dt.datetime | None) -> dt.datetime | None:
    """A time a clerk states for 开庭 or 闭庭 (court time), never one still to come."""
    if at is None:
        return None
    if court_time(at) > utcnow():
        raise RecordError(f"{court_time(at).isoformat()} is still to come: say when it happened")
    return court_time(at)


def closing_time(s: Session, h: HearingRow, at: dt.datetime | None) -> dt.datetime:
    """闭庭时间: ``at`` as stated (``stated``; not before 开庭), else now, or for a hearing a
    recording made elsewhere opened, where the audio recorded so far ends."""
    now, opened = utcnow(), as_utc(h.opened_at) if h.opened_at else None
    if at is not None:
        if opened is not None and at < opened:
            raise RecordError(f"闭庭时间 {at.isoformat()} is before 开庭 ({opened.isoformat()})")
        return at
    first = s.execute(select(EntryRow.payload).where(EntryRow.hearing_id == h.id, EntryRow.kind == "opened")
                      .order_by(EntryRow.seq).limit(1)).scalar()
    if opened is None or not first or json.loads(first).get("from") != "recording":
        return now
    ended = s.execute(select(func.max(UtteranceRow.end_ms)).where(UtteranceRow.hearing_id == h.id)).scalar()
    return min(now, opened + dt.timedelta(milliseconds=int(ended or 0)))
