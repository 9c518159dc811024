"""The record store: hearings and their utterances, written only through the hash-chained ledger.

One method per thing that happens in a courtroom (a hearing is scheduled, opened, a participant
is named, the engine finalises an utterance, a clerk corrects it, recording pauses, the record is
signed, a correction is requested after signing). Each appends one ledger entry and updates the
materialised tables in the same transaction, so a crash leaves either both or neither.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..chain import GENESIS, canonical, sha256
from ..db import connect, utcnow
from ..seal import seal
from ..text import joined, printable
from .cases import ascii_digits
from .clock import close, court_time, stated
from .db import CaseRow, EntryRow, HearingRow, ParticipantRow, UtteranceRow
from .ledger import UTTERANCE_KINDS, apply, entry_hash, split_ms
from .model import (CONTINUES, CROSSTALK_UNCHECKED, FINAL_AFTER_EDIT, LINKED, MACHINE, PROTECTION, REDACTION, UNRECOGNIZED,
                    new_hearing_id, split_id, Hearing, Participant, Pipeline, Record, Role, Utterance,
                    UtteranceStatus)
from .signoff import Signed, SignOff
from .reading import ChangedMeanwhile, Conflict, Locked, Named, NotFound, RecordError, _fields

__all__ = ["ChangedMeanwhile", "Conflict", "Locked", "NotFound", "RecordError", "RecordStore", "Signed"]


class RecordStore(SignOff):
    def __init__(self, url: str, seal_key: bytes | None = None):
        """``seal_key``: the server's key (``seal.py``); signatures are then sealed with it."""
        self.url, self.seal_key = url, seal_key
        self.engine = connect(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.RLock()  # one writer per process; PostgreSQL also locks the hearing row

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ----------------------------------------------------------------------------
    def _append(self, s: Session, h: HearingRow, actor: str, kind: str, payload: dict,
                uid: str | None = None) -> EntryRow:
        last = s.execute(select(EntryRow).where(EntryRow.hearing_id == h.id).order_by(EntryRow.seq.desc())
                         .limit(1)).scalar_one_or_none()
        seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
        payload, actor = _printable(payload), printable(actor)  # whoever wrote it: the CLI, an import
        if kind == "signed" and self.seal_key:  # the ledger up to here, sealed with a key the database lacks
            payload = {**payload, "seal": seal(self.seal_key, h.id, prev, payload["digest"])}
        at, body = utcnow().isoformat(timespec="milliseconds"), canonical(payload)
        entry = EntryRow(hearing_id=h.id, seq=seq, at=at, actor=actor, kind=kind, utterance_id=uid, payload=body,
                         prev_hash=prev, hash=entry_hash(prev, seq, at, actor, kind, uid, body))
        s.add(entry)
        if uid is not None and kind in UTTERANCE_KINDS:
            p = json.loads(body)
            ids = [uid] + ([p[LINKED[kind]]] if kind in LINKED else [])  # a split makes an utterance, a merge removes one
            rows = {i: s.get(UtteranceRow, (h.id, i)) for i in ids}
            utterances = {i: _fields(r) for i, r in rows.items() if r is not None}
            apply(utterances, kind, uid, p)
            for i, row in rows.items():
                if i not in utterances:
                    if row is not None:
                        s.delete(row)
                    continue
                if row is None:
                    row = UtteranceRow(hearing_id=h.id, id=i)
                    s.add(row)
                for k, v in utterances[i].items():
                    setattr(row, k, v)
        return entry

    def _write(self, hearing_id: str, actor: str, kind: str, payload: dict, uid: str | None = None, *,
               signed_ok: bool = False, change=None) -> EntryRow:
        with self._lock, self._session.begin() as s:
            h = self._hearing(s, hearing_id, lock=True)
            if h.status == "signed" and not signed_ok:
                raise Locked(f"hearing {hearing_id} is signed: only correction requests (补正申请) can be added")
            if change:
                change(s, h)
            return self._append(s, h, actor, kind, payload, uid)

    def create_hearing(self, *, actor: str, hearing_id: str | None = None, case_number: str | None = None,
                       cause: str | None = None, court: str | None = None, parties: list[str] | None = None,
                       title: str | None = None, courtroom: str | None = None, public: bool | None = False,
                       scheduled_at=None, channels: dict[int, Role] | None = None, hotwords: list[str] | None = None,
                       language: str = "zh", pipeline: Pipeline | None = None,
                       participants: Sequence[Participant] = ()) -> Hearing:
        """A hearing (and its case, found or made within the same court); ``participants`` are added
        in the same transaction, so a scheduled hearing never lacks the people it was scheduled with."""
        hid = hearing_id or new_hearing_id()
        if scheduled_at is not None:
            scheduled_at = court_time(scheduled_at)
        try:
            facts = _printable({"case_number": case_number, "cause": cause, "court": court, "parties": parties,
                                "title": title, "courtroom": courtroom})
            self._create(hid, actor, **facts, public=public, scheduled_at=scheduled_at, channels=channels,
                         hotwords=hotwords, language=language, pipeline=pipeline, participants=participants)
        except IntegrityError:
            with self._session() as s:
                if s.get(HearingRow, hid) is None:
                    raise
            # another process (a second gateway replica) created it between our check and our insert
            raise Conflict(f"hearing {hid!r} already exists") from None
        return self.record(hid).hearing

    def _create(self, hid: str, actor: str, *, case_number, cause, court, parties, title, courtroom, public,
                scheduled_at, channels, hotwords, language, pipeline, participants) -> None:
        with self._lock, self._session.begin() as s:
            if s.get(HearingRow, hid) is not None:
                raise Conflict(f"hearing {hid!r} already exists")
            case = None
            case_number = ascii_digits(case_number) if case_number else case_number
            if case_number:
                # a case is found in the hearing's own court only: another court's case is never echoed
                same_court = CaseRow.court.is_(None) if court is None else CaseRow.court == court
                case = s.execute(select(CaseRow).where(CaseRow.case_number == case_number, same_court)).scalar_one_or_none()
                if case is None:
                    case = CaseRow(case_number=case_number, cause=cause, court=court, parties=parties or [])
                    s.add(case)
                    s.flush()
            chans = {str(c): Role(r).value for c, r in (channels or {}).items()}
            h = HearingRow(id=hid, case_id=case.id if case else None, title=title, courtroom=courtroom, public=public,
                           cause=cause, parties=list(parties) if parties else None,
                           court=(case.court if case else None) or court,
                           language=language, channels=chans, hotwords=list(hotwords or []),
                           pipeline=pipeline.model_dump() if pipeline else {}, scheduled_at=scheduled_at)
            s.add(h)
            s.flush()
            self._append(s, h, actor, "hearing_created", {
                "case_number": case_number, "cause": cause, "court": court, "parties": parties or [], "title": title,
                "courtroom": courtroom, "public": public, "channels": chans, "hotwords": list(hotwords or []),
                "scheduled_at": scheduled_at.isoformat() if scheduled_at else None, "language": language})
            for p in participants:
                s.add(ParticipantRow(hearing_id=hid, name=p.name, role=Role(p.role).value, channel=p.channel))
                self._append(s, h, actor, "participant_added", _participant(p.role, p.name, p.channel))

    def open_hearing(self, hearing_id: str, *, actor: str, at: dt.datetime | None = None) -> None:
        """``at``: when it opened, where not now (a hearing held before its recording came)."""
        at = stated(at)

        def change(s, h):
            if h.status not in ("scheduled", "open") or (at and h.opened_at):
                raise Conflict(f"hearing {hearing_id} is {h.status} "
                               f"(opened {h.opened_at or 'never'})")
            h.status, h.opened_at = "open", h.opened_at or at or utcnow()
        said = {"at": at.isoformat()} if at else {}
        self._write(hearing_id, actor, "opened", said, change=change)

    def join_live(self, hearing_id: str, *, actor: str, pipeline: Pipeline | None = None, court: str | None = None,
                  courtroom: str | None = None) -> dt.datetime | None:
        """A live source joins: the hearing is created if nobody scheduled it, opened if it was only
        scheduled. Returns when it opened (the zero of hearing time), or None when this source opened
        it (its first sample is the zero). Closed hearings refuse audio. An unscheduled hearing is
        created in the recorder's court and courtroom."""
        with self._session() as s:
            exists = s.get(HearingRow, hearing_id)
        if exists is None:
            try:
                self.create_hearing(actor=actor, hearing_id=hearing_id, title=hearing_id, pipeline=pipeline, court=court,
                                    courtroom=courtroom, public=None)  # not known to be public: no captions
            except Conflict:
                pass  # another channel of the same hearing created it first
        with self._session() as s:
            status = self._hearing(s, hearing_id).status
        if status not in ("scheduled", "open"):
            raise Locked(f"hearing {hearing_id} is {status}: it takes no more audio")
        if pipeline:
            self.set_pipeline(hearing_id, pipeline)
        if status == "scheduled":
            self.open_hearing(hearing_id, actor=actor)
            return None
        with self._session() as s:
            opened = self._hearing(s, hearing_id).opened_at
        assert opened is not None  # opened just above, or before
        return opened

    def close_hearing(self, hearing_id: str, *, actor: str, at: dt.datetime | None = None) -> None:
        """``at``: 闭庭 where it was not now (records/clock.py: a hearing held elsewhere)."""
        at = stated(at)
        said: dict[str, str | None] = {}  # the times the ledger keeps, where not now
        self._write(hearing_id, actor, "closed", said,
                    change=lambda s, h: said.update(close(s, h, at)))

    def set_pipeline(self, hearing_id: str, pipeline: Pipeline) -> None:
        """Which models write this hearing's utterances (recorded once, by the first live source)."""
        with self._lock, self._session.begin() as s:
            h = self._hearing(s, hearing_id)
            if h.pipeline != pipeline.model_dump():
                h.pipeline = pipeline.model_dump()

    def add_participant(self, hearing_id: str, *, actor: str, role: Role, name: str | None = None,
                        channel: int | None = None) -> Participant:
        def change(s, h):
            s.add(ParticipantRow(hearing_id=h.id, name=name, role=Role(role).value, channel=channel))
        self._write(hearing_id, actor, "participant_added", _participant(role, name, channel), change=change)
        return Participant(name=name, role=role, channel=channel)

    def enroll_voice(self, hearing_id: str, name: str, embedding, *, actor: str, source: str) -> Participant:
        """Keep a participant's voice print with the hearing (never sent anywhere). The ledger
        records that it was enrolled, from what and its hash, not the print itself."""
        import numpy as np

        data = np.asarray(embedding, np.float32).tobytes()
        enrolled: list[Participant] = []

        def change(s, h):
            row = s.execute(select(ParticipantRow).where(ParticipantRow.hearing_id == h.id,
                                                         ParticipantRow.name == name)).scalars().first()
            if row is None:
                raise NotFound(f"hearing {hearing_id} has no participant named {name!r}; add them first")
            row.voice = data
            enrolled.append(Participant(name=row.name, role=Role(row.role), channel=row.channel))
        self._write(hearing_id, actor, "voice_enrolled", {"name": name, "source": source, "sha256": sha256(data)},
                    change=change)
        return enrolled[0]

    def interruption(self, hearing_id: str, *, actor: str, kind: str, at_ms: int, reason: str) -> None:
        if kind not in ("paused", "resumed") or not reason.strip():
            raise RecordError("an interruption is 'paused' or 'resumed' and needs a reason")
        self._write(hearing_id, actor, "interruption", {"kind": kind, "at_ms": int(at_ms), "reason": reason})

    def import_record(self, record: Record, *, actor: str, hearing_id: str | None = None) -> str:
        """A file transcription becomes a hearing of its own: its facts, participants and utterances
        (each utterance a ``final`` entry by the engine that wrote it). A record people worked on
        (corrections, edited lines, pauses, signatures) is refused: imported so, its people's work
        would become the engine's words and the rest would vanish; its package is the way to keep it."""
        kept = {"corrections": record.corrections, "interruptions": record.interruptions,
                "signatures": record.signatures, "party signatures": record.party_signatures,
                "correction requests": record.correction_requests}
        worked = [what for what, items in kept.items() if items]
        if any(u.status is not UtteranceStatus.final for u in record.utterances):
            worked.append("lines a person edited or confirmed")
        if worked:
            raise RecordError(f"this record holds {', '.join(worked)}: only a transcription nobody has worked on "
                              "is imported (keep the e-case-file package of a worked record)")
        h = record.hearing
        hid = hearing_id or h.id
        self.create_hearing(actor=actor, hearing_id=hid, case_number=h.case_number, cause=h.cause, court=h.court,
                            parties=h.parties, courtroom=h.courtroom, title=h.title, public=h.public, language=h.language,
                            pipeline=record.pipeline)
        for p in record.participants:
            self.add_participant(hid, actor=actor, role=p.role, name=p.name, channel=p.channel)
        engine = f"{record.pipeline.engine}/{record.pipeline.model}"
        for u in record.utterances:
            self.machine_final(hid, u, actor=engine)
        return hid

    # -- utterances ------------------------------------------------------------------------------
    def machine_final(self, hearing_id: str, u: Utterance, *, actor: str = MACHINE,
                      voice: str | None = None) -> Named | None:
        """``voice``: the voice (说话人N) the live labeller heard; the line goes in as a clerk names
        that voice when it is written (``_as_named``: a name given or undone while the line was on its
        way). Returns the line's label as the record holds it, where not the one it came with."""
        payload = {"text": printable(u.text), "tokens": [t.model_dump() for t in u.tokens], "channel": u.channel,
                   "start_ms": u.start_ms, "end_ms": u.end_ms, "speaker": u.speaker,
                   "role": u.role.value if u.role else None, "participant": u.participant,
                   "confidence": u.confidence, "language": u.language}
        if u.flags:
            payload["flags"] = list(u.flags)

        def late(s: Session, h: HearingRow) -> None:  # rule 1 keeps her text: the final's waits for her look
            row = s.get(UtteranceRow, (h.id, u.id))
            if row is not None and row.machine_text is None and row.text_by == "human" and row.text != u.text:
                payload["flags"] = list(u.flags) + [FINAL_AFTER_EDIT]
        return self._labelled(hearing_id, actor, "final", payload, u.id, voice, also=late)

    def relabel(self, hearing_id: str, uid: str, *, speaker: str, role: Role | None = None,
                participant: str | None = None, actor: str = "diarizer", voice: str | None = None) -> Named | None:
        """A machine's later word on a line's speaker; ``voice`` and the answer as for ``machine_final``."""
        payload = {"speaker": speaker, "role": role.value if role else None, "participant": participant}
        return self._labelled(hearing_id, actor, "relabel", payload, uid, voice)

    def edit(self, hearing_id: str, uid: str, text: str, *, actor: str, reason: str | None = None,
             channel: int | None = None, start_ms: int | None = None, end_ms: int | None = None,
             speaker: str | None = None, role: Role | None = None, participant: str | None = None,
             base: str | None = None) -> None:
        """A clerk's correction; for an utterance whose final has not arrived, where it sits and the
        machine's label it has (rule 2). ``base``: the text she corrected; where the stored line reads
        otherwise now, nothing is written (``ChangedMeanwhile``): what came in while she typed is hers
        to see first."""
        payload = {"before": None, "after": text, "reason": reason, "channel": channel, "start_ms": start_ms,
                   "end_ms": end_ms, "speaker": speaker, **({"role": Role(role).value} if role else {}),
                   **({"participant": participant} if participant else {})}

        def against(s: Session, h: HearingRow) -> None:  # read and checked in the write's own transaction
            row = s.get(UtteranceRow, (h.id, uid))
            if row is None:
                return
            if base is not None and row.text != base and row.text != text:
                raise ChangedMeanwhile(f"line {uid} changed while it was being corrected: it now reads "
                                       f"{row.text!r}", current=row.text)
            payload["before"] = row.text
        self._write(hearing_id, actor, "edit", payload, uid, change=against)

    def assign_speaker(self, hearing_id: str, uid: str, *, actor: str, speaker: str, role: Role | None = None,
                       participant: str | None = None, reason: str | None = None, voice: str | None = None) -> None:
        """``voice``: this change named a whole voice (``name_voice``), so undoing that finds it. Only a
        line the record has (a line still being spoken has none yet: an empty line at 00:00 would)."""
        before = self._current(hearing_id, uid, "speaker")
        if self._current(hearing_id, uid, "text") is None:
            raise NotFound(f"no utterance {uid!r} in hearing {hearing_id}: a line still being spoken gets its "
                           "speaker once its final is in")
        self._write(hearing_id, actor, "assign_speaker", {"before": before, "speaker": speaker, "reason": reason,
                                                          "role": role.value if role else None,
                                                          "participant": participant,
                                                          **({"voice": voice} if voice else {})}, uid)

    def confirm(self, hearing_id: str, uid: str, *, actor: str) -> None:
        if self._current(hearing_id, uid, "text") is None:
            raise NotFound(f"no utterance {uid!r} in hearing {hearing_id}")
        self._write(hearing_id, actor, "confirm", {}, uid)

    def split(self, hearing_id: str, uid: str, at: int, *, actor: str) -> str:
        """Cut an utterance in two before character ``at`` (the VAD joined two sentences, or two speakers
        spoke without a pause). The cut's time comes from the engine's word times; returns the new
        second utterance's id."""
        utterance = self._final_utterance(hearing_id, uid)
        first, second = utterance["text"][:at].strip(), utterance["text"][at:].strip()
        if not first or not second:
            raise RecordError(f"cut utterance {uid} between words: both halves need text (at={at})")
        new_id = split_id(uid, secrets.token_hex(3))
        self._write(hearing_id, actor, "split", {"new_id": new_id, "before": utterance["text"], "first": first,
                                                 "second": second, "at_ms": split_ms(utterance, at),
                                                 "flags": utterance["flags"]}, uid)
        return new_id

    def merge(self, hearing_id: str, uid: str, other: str, *, actor: str) -> str:
        """Join two utterances of one channel into the earlier one (the VAD cut a sentence at a pause);
        the later utterance is gone from the record, its words and times kept in the ledger. Returns the
        kept utterance's id."""
        a, b = sorted((self._final_utterance(hearing_id, uid), self._final_utterance(hearing_id, other)),
                      key=lambda x: (x["start_ms"], x["id"]))
        if a["id"] == b["id"] or a["channel"] != b["channel"]:
            raise Conflict("merge two different utterances of the same channel")
        with self._session() as s:
            between = s.scalar(select(func.count()).where(
                UtteranceRow.hearing_id == hearing_id, UtteranceRow.channel == a["channel"],
                UtteranceRow.start_ms > a["start_ms"], UtteranceRow.start_ms < b["start_ms"]))
        if between:
            raise Conflict(f"{between} line(s) of the channel lie between these two: merge a line with the next one")
        if a["speaker"] != b["speaker"]:
            raise Conflict(f"the two lines are in two mouths ({a['speaker']}, {b['speaker']}): give them one speaker "
                           "first, if one person said both")
        if untyped := [x["id"] for x in (a, b) if UNRECOGNIZED in x["flags"] and not x["text"].strip()]:
            raise Conflict(f"line {untyped[0]} was not recognized: replay it and type what was said before merging "
                           "(merged, its gap would no longer show)")
        # both lines' flags (a seat's bleed warning of a line looked at already is answered); whether
        # the line goes on from the one before is the first line's alone; not looked at if either was not
        flags = list(dict.fromkeys(f for x in (a, b) for f in x["flags"] if not _answered(x, f)
                                   and (x is a or f != CONTINUES)))
        status = "final" if "final" in (a["status"], b["status"]) else "edited"
        self._write(hearing_id, actor, "merge", {"other": b["id"], "before": a["text"], "other_text": b["text"],
                                                 "text": joined([a["text"], b["text"]]), "flags": flags,
                                                 "status": status}, a["id"])
        return a["id"]

    def _final_utterance(self, hearing_id: str, uid: str) -> dict:
        """An utterance whose final is in: only those are split or merged (a late final must not land on an
        utterance that was cut or joined meanwhile)."""
        with self._session() as s:
            self._hearing(s, hearing_id)
            row = s.get(UtteranceRow, (hearing_id, uid))
            if row is None:
                raise NotFound(f"no utterance {uid!r} in hearing {hearing_id}")
            if row.machine_text is None:
                raise Conflict(f"utterance {uid} is still being recognised: split or merge it once its final is in")
            return _fields(row)

    def set_hotwords(self, hearing_id: str, words: list[str], *, actor: str) -> None:
        """The hearing's own hotwords, replaced (a ledger entry: who changed the engine's bias, when)."""
        words = list(dict.fromkeys(w.strip() for w in words if w.strip()))

        def change(s, h):
            h.hotwords = words
        self._write(hearing_id, actor, "hotwords_set", {"words": words}, change=change)

    def note(self, hearing_id: str, *, actor: str, kind: str, payload: dict) -> None:
        """A ledger entry about the hearing that changes no utterance (e.g. the caption kill switch)."""
        if kind in UTTERANCE_KINDS:
            raise ValueError(f"{kind} entries change utterances: use the method for it")
        self._write(hearing_id, actor, kind, payload, signed_ok=kind in (PROTECTION, REDACTION))


def _printable(value):
    """Every text in an entry's payload as a record can print it (``text.printable``)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


def _answered(line: dict, flag: str) -> bool:
    """A seat's bleed warning on a line a person has looked at (edited or confirmed): answered."""
    return flag == CROSSTALK_UNCHECKED and line["status"] != "final"


def _participant(role: Role, name: str | None, channel: int | None) -> dict:
    return {"name": name, "role": Role(role).value, "channel": channel}
