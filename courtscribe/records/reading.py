"""Reading a hearing's record: the queries every screen, export and check makes. Writes go through
the ledger in store.py; this side never changes anything."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ..casenumbers import case_word
from ..audio import SAMPLE_RATE
from ..db import utcnow
from . import finder
from .db import CaseRow, EntryRow, HearingRow, ParticipantRow, UtteranceRow
from .finder import HearingFilter
from .ledger import Entry, new_utterance, record_parts, utterance_of
from .model import SPEAKER_UNSURE, Hearing, Participant, Pipeline, Record, Role, Source, Utterance, speaker_number
from .verify import Verification, verify

UTTERANCE_FIELDS = tuple(new_utterance("x"))
ROOM_DAY = dt.timedelta(hours=12)  # a recorder's scheduled hearing: today's, not next week's


def last_end(s: Session, hearing_id: str) -> int:
    """Where the hearing's last stored utterance ends (0 without utterances), in session ``s``."""
    last = s.execute(select(func.max(UtteranceRow.end_ms))
                     .where(UtteranceRow.hearing_id == hearing_id)).scalar()
    return int(last or 0)


class RecordError(Exception):
    status, code = 400, "bad_request"

    def __init__(self, message: str, *, utterance_id: str | None = None):
        super().__init__(message)
        self.utterance_id = utterance_id  # the line it is about, for a screen to take the clerk to


class NotFound(RecordError):
    status, code = 404, "not_found"


class Locked(RecordError):
    status, code = 409, "locked"


class Conflict(RecordError):
    status, code = 409, "conflict"


def plainly(err: BaseException) -> str:
    """What a screen may be told of a failed write: our own errors say why; a database's text (its SQL
    and the line's words as parameters) stays in the server's log."""
    return str(err) if isinstance(err, RecordError) else type(err).__name__


class ChangedMeanwhile(Conflict):
    """A correction made from text the line no longer holds (a final, or another screen's correction,
    came in while the clerk typed): saved, it would hide what came in unseen."""
    code = "changed_meanwhile"

    def __init__(self, message: str, current: str):
        super().__init__(message)
        self.current = current


def _fields(row: UtteranceRow) -> dict:
    utterance = {k: getattr(row, k) for k in UTTERANCE_FIELDS}
    utterance["flags"] = utterance["flags"] or []  # rows stored before utterances had flags
    return utterance


class Stored(NamedTuple):
    """A hearing's rows as the database holds them, for the ledger's replay to be compared with."""
    utterances: dict[str, dict]
    participants: list[tuple]
    facts: dict


class Named(NamedTuple):
    """Who a line is put in the mouth of: the speaker as printed, with role and participant."""
    speaker: str
    role: Role | None
    participant: str | None


@dataclass
class HeardVoice:
    """A voice heard on a mixed channel: where its lines are (newest first) and whom a clerk named
    it as (speaker, role, participant), unless that was undone."""
    voice: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    named: Named | None = None


class Reading:
    """The read side of :class:`~courtscribe.records.store.RecordStore` (which sets ``_session``)."""

    _session: sessionmaker[Session]

    def _hearing(self, s: Session, hearing_id: str, *, lock: bool = False) -> HearingRow:
        if lock and s.get_bind().dialect.name == "sqlite":
            # SQLite has no row locks: a no-op write first takes the file's write lock, so another
            # process (a second gateway replica) cannot append to the ledger between this
            # transaction's read of its head and its append (PostgreSQL: FOR UPDATE below)
            s.execute(update(HearingRow).where(HearingRow.id == hearing_id).values(id=HearingRow.id))
        q = select(HearingRow).where(HearingRow.id == hearing_id)
        row = s.execute(q.with_for_update() if lock else q).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no hearing {hearing_id!r}")
        return row

    def voices(self, hearing_id: str) -> list[tuple[Participant, bytes]]:
        """Enrolled participants and their voice prints (float32 bytes)."""
        with self._session() as s:
            rows = s.execute(select(ParticipantRow).where(ParticipantRow.hearing_id == hearing_id,
                                                          ParticipantRow.voice.is_not(None))).scalars()
            return [(Participant(name=r.name, role=Role(r.role), channel=r.channel), r.voice) for r in rows
                    if r.voice is not None]

    def channel_roles(self, hearing_id: str) -> dict[int, Role]:
        with self._session() as s:
            return {int(ch): Role(r) for ch, r in (self._hearing(s, hearing_id).channels or {}).items() if r}

    def human_speakers(self, hearing_id: str) -> set[str]:
        """Utterances whose speaker a person set: refinement proposes nothing for them."""
        with self._session() as s:
            return set(s.execute(select(UtteranceRow.id).where(UtteranceRow.hearing_id == hearing_id,
                                                               UtteranceRow.speaker_by == "human")).scalars())

    def heard_voices(self, hearing_id: str, channel: int) -> list[HeardVoice]:
        """The voices the live labeller numbered on a mixed channel (说话人N), each with its lines'
        times, newest first, and the person a clerk named it as, as its newest line stands (named,
        or undone). Lines a person labelled one by one are nobody's voice here."""
        changes = self._voice_changes(hearing_id)
        labelled = self._machine_voices(hearing_id)
        with self._session() as s:
            rows = s.execute(select(UtteranceRow).where(UtteranceRow.hearing_id == hearing_id,
                                                        UtteranceRow.channel == channel)
                             .order_by(UtteranceRow.start_ms.desc())).scalars().all()
        voices: dict[str, HeardVoice] = {}
        for r in rows:
            change = changes.get(r.id, {})
            if SPEAKER_UNSURE in (r.flags or []) and r.speaker_by != "human":
                continue  # the machine's guess: maybe another person's voice
            if r.speaker_by == "human":  # named with its voice by a clerk, or that undone
                voice = change.get("voice") or change.get("undo")
                named = bool(change.get("voice"))
            else:  # the live labeller's: a clerk's name for a voice, or the voice's own number
                voice = labelled.get(r.id) or r.speaker
                named = bool(labelled.get(r.id))
            if not voice or speaker_number(voice) is None:
                continue
            if voice not in voices:  # its newest line
                voices[voice] = HeardVoice(voice, named=Named(r.speaker, Role(r.role) if r.role else None,
                                                              r.participant) if named else None)
            voices[voice].spans.append((r.start_ms, r.end_ms))
        return list(voices.values())

    def voices_numbered(self, hearing_id: str) -> int:
        """The highest 说话人N the live labeller gave a line of the hearing (0: none yet), a voice a
        clerk has named since included (its lines carry the name, the ledger the number)."""
        with self._session() as s:
            labels = s.execute(select(UtteranceRow.speaker, UtteranceRow.machine_speaker)
                               .where(UtteranceRow.hearing_id == hearing_id)).all()
        named = [json.loads(e.payload).get("voice") for e in self.entries(hearing_id, kinds=("voice_named",))]
        heard = [label for pair in labels for label in pair] + named
        return max((n for label in heard if label for n in [speaker_number(label)] if n is not None), default=0)

    def reachable(self) -> bool:
        """Whether the database answers now (a probe's and a dashboard's question)."""
        try:
            with self._session() as s:
                s.execute(select(1))
            return True
        except DBAPIError:
            return False

    def head(self, hearing_id: str) -> int:
        """The number of the hearing's newest ledger entry: the record read at one head is always the
        same record (what is made from it may be kept until the head moves)."""
        with self._session() as s:
            return s.execute(select(func.max(EntryRow.seq)).where(EntryRow.hearing_id == hearing_id)).scalar() or 0

    def _machine_voices(self, hearing_id: str) -> dict[str, str | None]:
        """Each line's voice as its latest machine label said, when that label was a clerk's name for
        a voice (``voice`` in the final's or relabel's payload); else None."""
        return {e.utterance_id: json.loads(e.payload).get("voice")
                for e in self.entries(hearing_id, ("final", "relabel")) if e.utterance_id}

    def _channels(self, hearing_id: str) -> dict[str, tuple[int, str]]:
        """Each line's channel and who set its speaker (machine or human)."""
        with self._session() as s:
            rows = s.execute(select(UtteranceRow.id, UtteranceRow.channel, UtteranceRow.speaker_by)
                             .where(UtteranceRow.hearing_id == hearing_id))
            return {uid: (channel, by) for uid, channel, by in rows}

    def _current(self, hearing_id: str, uid: str, field: str):
        """One field of one line as stored now (None: no such line)."""
        with self._session() as s:
            row = s.get(UtteranceRow, (hearing_id, uid))
            return getattr(row, field) if row else None

    def _voice_changes(self, hearing_id: str) -> dict[str, dict]:
        """Each line's latest speaker change (its ledger payload)."""
        latest: dict[str, dict] = {}
        for e in self.entries(hearing_id, ("assign_speaker",)):
            if e.utterance_id:
                latest[e.utterance_id] = json.loads(e.payload)
        return latest

    # -- reading ----------------------------------------------------------------------------
    def hearings(self) -> list[dict]:
        with self._session() as s:
            rows = s.execute(select(HearingRow).order_by(HearingRow.created_at)).scalars()
            return [{"id": h.id, "title": h.title, "court": h.court, "courtroom": h.courtroom, "status": h.status,
                     "public": h.public} for h in rows]

    def find_hearings(self, f: HearingFilter, *, limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
        """(how many match, one page of them) for the court's list: finder.py."""
        with self._session() as s:
            return finder.find(s, f, limit=limit, offset=offset)

    def scope(self, hearing_id: str) -> tuple[str | None, str | None, bool | None] | None:
        """(court, courtroom, public) of a hearing, for access checks; None when there is no such hearing."""
        with self._session() as s:
            h = s.get(HearingRow, hearing_id)
            return None if h is None else (h.court, h.courtroom, h.public)

    def room_hearing(self, court: str | None, courtroom: str, now: dt.datetime | None = None,
                     within: dt.timedelta = ROOM_DAY) -> str | None:
        """The hearing a courtroom's recorder feeds when it names none: the room's open hearing (the
        latest opened, within ``within``: one left open yesterday is not today's), else its scheduled
        one nearest to ``now`` within ``within`` either side."""
        now = now or utcnow()
        here = [HearingRow.courtroom == courtroom,
                HearingRow.court.is_(None) if court is None else HearingRow.court == court]
        with self._session() as s:
            hid = s.execute(select(HearingRow.id).where(*here, HearingRow.status == "open",
                                                        HearingRow.opened_at >= now - within)  # not yesterday's
                            .order_by(HearingRow.opened_at.desc()).limit(1)).scalar_one_or_none()
            if hid is not None:
                return hid
            rows = s.execute(select(HearingRow.id, HearingRow.scheduled_at).where(
                *here, HearingRow.status == "scheduled", HearingRow.scheduled_at.is_not(None))).all()
        near = sorted((abs(at - now), hid) for hid, at in rows if at is not None)
        return near[0][1] if near and near[0][0] <= within else None

    def vocabulary(self, hearing_id: str) -> list[str]:
        """What the engine should be biased towards in this hearing: its hotwords, the case's
        parties and 案由, and the participants' names."""
        with self._session() as s:
            h = self._hearing(s, hearing_id)
            case = s.get(CaseRow, h.case_id) if h.case_id else None
            names = s.execute(select(ParticipantRow.name).where(ParticipantRow.hearing_id == hearing_id)).scalars()
            cause, parties = h.facts(case)
            words = list(h.hotwords or []) + parties + [n for n in names if n]
            if cause:
                words.append(cause)
            if case and case.case_number:
                words.append(case_word(case.case_number))
            return words

    def opened_at(self, hearing_id: str) -> dt.datetime | None:
        """When the hearing opened: hearing time 0 on the wall clock (UTC)."""
        with self._session() as s:
            opened = self._hearing(s, hearing_id).opened_at
            return opened

    def now_ms(self, hearing_id: str) -> int:
        """Hearing time now: ms since it opened on the wall clock, but never before the end of its last
        stored utterance (a source that sent faster than real time has already filled that stretch)."""
        opened = self.opened_at(hearing_id)
        wall = (dt.datetime.now(dt.timezone.utc) - opened).total_seconds() * 1000 if opened else 0
        return max(0, int(wall), self.last_end_ms(hearing_id))

    def last_end_ms(self, hearing_id: str) -> int:
        """Where the hearing's last stored utterance ends (0 without utterances)."""
        with self._session() as s:
            return last_end(s, hearing_id)

    def recent(self, hearing_id: str, since_ms: int) -> list[Utterance]:
        """The lines that end after ``since_ms``, in the order they were said (what a caption overlay
        that reconnects missed while it was away)."""
        with self._session() as s:
            rows = s.execute(select(UtteranceRow).where(UtteranceRow.hearing_id == hearing_id,
                                                        UtteranceRow.end_ms > since_ms)
                             .order_by(UtteranceRow.start_ms, UtteranceRow.id)).scalars().all()
            return [self._utterance(r) for r in rows]

    def hotwords(self, hearing_id: str) -> list[str]:
        """The hearing's own hotwords (without the parties and names its vocabulary adds)."""
        with self._session() as s:
            return list(self._hearing(s, hearing_id).hotwords or [])

    def status(self, hearing_id: str) -> str:
        with self._session() as s:
            return self._hearing(s, hearing_id).status

    def entries(self, hearing_id: str, kinds: tuple[str, ...] | None = None) -> list[EntryRow]:
        """The hearing's ledger in order (only entries of ``kinds`` when given)."""
        with self._session() as s:
            self._hearing(s, hearing_id)
            query = select(EntryRow).where(EntryRow.hearing_id == hearing_id)
            if kinds is not None:
                query = query.where(EntryRow.kind.in_(kinds))
            return list(s.execute(query.order_by(EntryRow.seq)).scalars())

    @staticmethod
    def _head_seq(s: Session, hearing_id: str) -> int:
        return s.execute(select(func.max(EntryRow.seq)).where(EntryRow.hearing_id == hearing_id)).scalar() or 0

    def snapshot(self, hearing_id: str, tries: int = 5) -> tuple[Record, list[Entry]]:
        """The record and the ledger it was read from, as of one moment: read again when a write
        (a live line, a correction) came between the two."""
        for _ in range(tries):
            with self._session() as s:
                head = self._head_seq(s, hearing_id)
            record = self.record(hearing_id)
            entries = [Entry.of(e) for e in self.entries(hearing_id)]
            if len(entries) == head:
                return record, entries
        raise Conflict(f"hearing {hearing_id} is being written to without a pause: try again when it is")

    def record(self, hearing_id: str) -> Record:
        with self._session() as s:
            h = self._hearing(s, hearing_id)
            case = s.get(CaseRow, h.case_id) if h.case_id else None
            parts = s.execute(select(ParticipantRow).where(ParticipantRow.hearing_id == h.id)
                              .order_by(ParticipantRow.id)).scalars()
            rows = s.execute(select(UtteranceRow).where(UtteranceRow.hearing_id == h.id)).scalars()
            utts = sorted((self._utterance(r) for r in rows), key=lambda u: (u.start_ms, u.channel, u.id))
            entries = s.execute(select(EntryRow).where(EntryRow.hearing_id == h.id).order_by(EntryRow.seq)).scalars()
            extra = record_parts(list(entries))
            participants = [Participant(name=p.name, role=Role(p.role), channel=p.channel) for p in parts]
        cause, parties = h.facts(case)
        hearing = Hearing(id=h.id, title=h.title, case_number=case.case_number if case else None,
                          cause=cause, court=h.court or (case.court if case else None), parties=parties,
                          courtroom=h.courtroom, public=h.public, scheduled_at=h.scheduled_at,
                          started_at=h.opened_at, closed_at=h.closed_at, language=h.language)
        pipeline = Pipeline(**h.pipeline) if h.pipeline else Pipeline(engine="-", model="-", vad="-", diarizer="-")
        source = Source(duration_ms=max((u.end_ms for u in utts), default=0), sample_rate=SAMPLE_RATE,
                        channels=max(1, len(h.channels)))
        return Record(hearing=hearing, source=source, pipeline=pipeline, participants=participants, utterances=utts,
                      created_at=h.created_at, **extra)

    def utterance(self, hearing_id: str, uid: str) -> Utterance:
        """One utterance as the record shows it, without rebuilding the whole record (a clerk's edit or
        replay click on a 3-hour hearing would otherwise load thousands of utterances)."""
        with self._session() as s:
            self._hearing(s, hearing_id)
            row = s.get(UtteranceRow, (hearing_id, uid))
            if row is None:
                raise NotFound(f"no utterance {uid!r} in hearing {hearing_id}")
            return self._utterance(row)

    @staticmethod
    def _utterance(r: UtteranceRow) -> Utterance:
        return utterance_of(_fields(r))

    def verify(self, hearing_id: str, anchors: Iterable[dict] = ()) -> Verification:
        """Check the chain, the stored utterances and participants against it, every signature, and the
        heads the audit log anchored (``anchors``: its entries; records/verify.py)."""
        return verify(self, hearing_id, anchors)

    def stored(self, hearing_id: str) -> Stored:
        """The hearing as stored: its utterances (id → fields), participants (name, role, channel)
        and facts (as its ``hearing_created`` entry holds them), for :func:`verify`."""
        with self._session() as s:
            h = self._hearing(s, hearing_id)
            case = s.get(CaseRow, h.case_id) if h.case_id is not None else None
            rows = {r.id: _fields(r) for r in s.execute(
                select(UtteranceRow).where(UtteranceRow.hearing_id == hearing_id)).scalars()}
            people = [(p.name, p.role, p.channel) for p in s.execute(
                select(ParticipantRow).where(ParticipantRow.hearing_id == hearing_id)
                .order_by(ParticipantRow.id)).scalars()]
            facts = {"case_number": case.case_number if case else None, "cause": h.cause, "court": h.court,
                     "parties": h.parties or [], "title": h.title, "courtroom": h.courtroom,
                     "public": h.public, "channels": h.channels, "hotwords": h.hotwords,
                     "scheduled_at": h.scheduled_at, "language": h.language}
        return Stored(rows, people, facts)
