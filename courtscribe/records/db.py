"""Storage of court records: SQLAlchemy 2 tables, SQLite (WAL) by default, the same code on PostgreSQL.

The ``ledger`` is the truth: every change to a hearing is one appended, hash-chained entry. The
other tables are its materialised state for fast reads; ``RecordStore.verify`` replays the ledger
and checks both the chain and that the state tables still agree with it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import UTC, Base, utcnow

__all__ = ["Base", "utcnow"]  # the shared base and clock, re-exported for alembic's env.py


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("court", "case_number", name="uq_cases_court_case_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(String(128))  # 案号: unique within its court
    cause: Mapped[str | None] = mapped_column(String(256))  # 案由
    court: Mapped[str | None] = mapped_column(String(256))
    parties: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class HearingRow(Base):
    __tablename__ = "hearings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    title: Mapped[str | None] = mapped_column(String(256))
    court: Mapped[str | None] = mapped_column(String(256))  # the case's, or the recorder's for an unscheduled hearing
    courtroom: Mapped[str | None] = mapped_column(String(128))
    # this hearing's 案由 and parties as the clerk gave them (None: the case's, as first scheduled)
    cause: Mapped[str | None] = mapped_column(String(256))
    parties: Mapped[list | None] = mapped_column(JSON)
    public: Mapped[bool | None] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(16), default="zh")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled|open|closed|signed
    channels: Mapped[dict] = mapped_column(JSON, default=dict)  # {"0": "presiding_judge", ...}
    hotwords: Mapped[list] = mapped_column(JSON, default=list)
    pipeline: Mapped[dict] = mapped_column(JSON, default=dict)
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)

    def facts(self, case: CaseRow | None) -> tuple[str | None, list[str]]:
        """The hearing's 案由 and parties: its own where the clerk gave them, else its case's (a
        later hearing of a case may add a party, or the case may have been made without them)."""
        cause = self.cause or (case.cause if case else None)
        parties = self.parties or (case.parties if case else None) or []
        return cause, list(parties)


class ParticipantRow(Base):
    __tablename__ = "participants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[int | None] = mapped_column(Integer)
    voice: Mapped[bytes | None] = mapped_column(LargeBinary)  # enrolled speaker embedding; never leaves the store


class UtteranceRow(Base):
    __tablename__ = "utterances"
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[int] = mapped_column(Integer, default=0)
    start_ms: Mapped[int] = mapped_column(Integer, default=0)
    end_ms: Mapped[int] = mapped_column(Integer, default=0)
    speaker: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str | None] = mapped_column(String(32))
    participant: Mapped[str | None] = mapped_column(String(128))
    speaker_by: Mapped[str] = mapped_column(String(16), default="machine")  # machine|human
    machine_speaker: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    text_by: Mapped[str] = mapped_column(String(16), default="machine")  # machine|human: who the text is from
    machine_text: Mapped[str | None] = mapped_column(Text)
    tokens: Mapped[list] = mapped_column(JSON, default=list)
    confidence: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="final")
    flags: Mapped[list | None] = mapped_column(JSON, default=list)  # ["unrecognized", reason]: coverage.py


class EntryRow(Base):
    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("hearing_id", "seq", name="uq_ledger_hearing_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hearing_id: Mapped[str] = mapped_column(ForeignKey("hearings.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601, as hashed
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    utterance_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON, as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
