"""When a hearing opened and closed: now, as a live recorder or a clerk's click says it; or, for a
hearing held elsewhere whose recording was uploaded afterwards, as the court states it or as its
recordings show (the scheduled time, and as long after as the audio lasts)."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import as_utc, utcnow
from .db import EntryRow, HearingRow
from .model import ZH_TZ
from .reading import Conflict, RecordError, last_end

RECORDING_ADDED = "recording_added"  # a ledger note: a recording joined (offset, duration)


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


def close(s: Session, h: HearingRow, at: dt.datetime | None) -> dict[str, str | None]:
    """Close ``h`` (``at``: 闭庭 as the clerk states it); the times its ledger entry keeps, where
    they are not now. A second 闭庭 (another screen's) moves nothing."""
    if h.status == "closed":
        if at:
            raise Conflict(f"hearing {h.id} closed at {h.closed_at} already")
        return {}
    was = as_utc(h.opened_at) if h.opened_at else None
    opened, h.closed_at = closing(s, h, at)
    h.status = "closed"
    if opened != was:  # held elsewhere: its times are its recordings'
        h.opened_at = opened
        return {"opened": opened.isoformat() if opened else None, "at": h.closed_at.isoformat()}
    return {"at": at.isoformat()} if at else {}


def closing(s: Session, h: HearingRow,
            at: dt.datetime | None) -> tuple[dt.datetime | None, dt.datetime]:
    """(开庭, 闭庭) as the record keeps them when ``h`` closes; ``at``: 闭庭 as the clerk states it.
    A hearing heard live (or opened by a click) closes now; one only its uploaded recordings hold
    opened when scheduled (else as long before now as they last) and closes where they end; one the
    clerk opened at a stated time closes where its audio ends. A stated 闭庭 never cuts off words."""
    now, last = utcnow(), last_end(s, h.id)
    recorded = _recorded_ms(s, h.id, last)
    opened = as_utc(h.opened_at) if h.opened_at else None
    if opened is None and recorded:  # held elsewhere: no live source and no click opened it
        length = dt.timedelta(milliseconds=recorded)
        scheduled = as_utc(h.scheduled_at) if h.scheduled_at else None
        ended_by = at or now
        opened = scheduled if scheduled and scheduled + length <= ended_by else ended_by - length
        return opened, at or opened + length
    if opened is None:
        return None, at or now
    said = opened + dt.timedelta(milliseconds=last)
    if at is not None and at < said:
        raise RecordError(f"闭庭时间 {at.isoformat()} is before the record's last words "
                          f"({said.isoformat()})")
    if at is None and _opened_as_stated(s, h.id):
        return opened, min(now, opened + dt.timedelta(milliseconds=recorded))
    return opened, at or now


def _recorded_ms(s: Session, hearing_id: str, last: int) -> int:
    """Where the hearing's uploaded recordings end in hearing time (``last``: its last words)."""
    notes = s.execute(select(EntryRow.payload).where(EntryRow.hearing_id == hearing_id,
                                                     EntryRow.kind == RECORDING_ADDED)).scalars()
    ends = [int(p.get("offset_ms") or 0) + int(p.get("duration_ms") or 0)
            for p in map(json.loads, notes)]
    return max([last] + ends) if ends else 0


def _opened_as_stated(s: Session, hearing_id: str) -> bool:
    """Did the clerk state when the hearing opened (a hearing held before its recording came)?"""
    first = s.execute(select(EntryRow.payload)
                      .where(EntryRow.hearing_id == hearing_id, EntryRow.kind == "opened")
                      .order_by(EntryRow.seq).limit(1)).scalar()
    return first is not None and "at" in json.loads(first)
