"""REST API of the record store: hearings, participants, utterances, corrections, interruptions,
sign-off, exports and verification (documented in the app's OpenAPI spec at /openapi.json).

Every endpoint checks the caller's token against the hearing (auth.py); who did something
is the token's name. With auth off (local development) it is the ``X-Courtscribe-User`` header
(percent-encoded UTF-8), else "anonymous".
"""
from __future__ import annotations

import datetime as dt
import io
from typing import Literal

import soundfile as sf
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from ..access.scopes import AccessRole, Action, HearingScope, Principal
from ..logs import get_logger
from ..records import archive, cases
from ..records.finder import HearingFilter, HearingStatus
from ..records.model import (Channel, HearingId, Millis, Name, Participant, ShortName, Record, Role,
                             Speaker, Text, Utterance, speaker_number)
from ..records.store import ChangedMeanwhile, RecordError
from ..redaction.public import PROTECTION, protection, public_listing
from ..streaming.events import (HearingEvent, InterruptionAdded, ParticipantAdded, RedactionChanged, Status,
                               UtteranceChanged, UtteranceRemoved, Vocabulary, first_name)
from . import deps, errors
from .auth import allow, on_hearing
from .deps import store

router = APIRouter(prefix="/v1/hearings", tags=["records"])
log = get_logger(__name__)
PARTIES = (Role.plaintiff, Role.defendant, Role.third_party)  # the case's 当事人 (agents act for them)
EARLIEST, LATEST = dt.date(1949, 10, 1), dt.date(2199, 12, 31)  # dates a hearing list may be asked for


class ParticipantIn(BaseModel):
    role: Role
    name: ShortName | None = None
    channel: Channel | None = None
    protected: bool = Field(default=False, description=(
        "A minor, victim or protected witness: the name is masked (张某) in captions and the public version"))


class HearingIn(BaseModel):
    id: HearingId | None = None
    case_number: ShortName | None = None
    cause: Name | None = None
    court: Name | None = None
    parties: list[Name] = Field(default=[], max_length=100)
    title: Name | None = None
    courtroom: ShortName | None = None
    public: bool = False  # 不公开 unless the court says 公开: an unknown hearing gets no captions
    scheduled_at: dt.datetime | None = Field(default=None, description="ISO 8601; without a zone, Beijing time")
    channels: dict[Channel, Role] = {}
    hotwords: list[Name] = Field(default=[], max_length=1000)
    language: str = Field(default="zh", pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
    participants: list[ParticipantIn] = Field(default=[], max_length=100,
                                              description="parties, agents and the bench, added with the hearing")

    @field_validator("case_number")
    @classmethod
    def _case_number(cls, value: str | None) -> str | None:
        return cases.ascii_digits(value) if value else value  # checked in create_hearing: said as our errors are


class HotwordsIn(BaseModel):
    words: list[Name] = Field(max_length=1000)


class InterruptionIn(BaseModel):
    kind: Literal["paused", "resumed"]
    at_ms: Millis
    reason: Name = Field(min_length=1)


class UtteranceChange(BaseModel):
    """A clerk's change to one utterance: new text, a speaker, or both. ``channel``/``start_ms``/
    ``end_ms``/``speaker`` place an utterance whose final has not arrived yet (an edited partial)."""
    text: Text | None = None
    speaker: Speaker | None = None
    role: Role | None = None
    participant: ShortName | None = None
    reason: Name | None = None
    base: Text | None = Field(None, description="the text the clerk corrected: where the line reads otherwise "
                                                "now, 409 changed_meanwhile with the line's text as `current`")
    channel: Channel | None = None
    start_ms: Millis | None = None
    end_ms: Millis | None = None

    @model_validator(mode="after")
    def _named(self) -> UtteranceChange:
        """``{speaker: 张三, role: 原告}``: the speaker is the person, whom the 笔录 prints beside the
        role (原告张三), as the clerk screen sends it as ``participant``; a role's own label or a
        machine's voice number names nobody."""
        speaker = self.speaker
        if self.participant is None and self.role is not None and speaker is not None \
                and speaker != self.role.label and speaker_number(speaker) is None:
            self.participant = speaker
        return self


class SplitIn(BaseModel):
    at: int = Field(ge=1, le=100_000, description="cut before this character of the utterance's text")


class MergeIn(BaseModel):
    other: Name = Field(description="the utterance to join with this one (the earlier of the two is kept)")


def notify(request: Request, event: HearingEvent) -> None:
    """Tell the hearing's open screens about a change made here (another clerk's edit, a sign-off),
    through the same event feed that carries the live utterances."""
    live = deps.live(request)
    live.publish(event.hearing_id, event)
    if (old := first_name(event)) is not None:  # subscribers written for its first name still hear it
        live.publish(event.hearing_id, old)


def status_of(request: Request, hearing_id: str) -> dict:
    status = store(request).status(hearing_id)
    notify(request, Status(hearing_id=hearing_id, status=status))
    return {"status": status}


async def record_error(_request: Request, err: RecordError) -> JSONResponse:
    more = {"current": err.current} if isinstance(err, ChangedMeanwhile) else {}
    if err.utterance_id is not None:
        more["utterance_id"] = err.utterance_id
    return errors.answer(err.status, err.code, str(err), more=more)


@router.post("", status_code=201)
def create_hearing(body: HearingIn, request: Request, who: Principal = allow(Action.manage)) -> dict:
    if body.case_number and (why := cases.problem(body.case_number)):
        raise HTTPException(422, detail={"code": "bad_case_number", "message": why, "field": "case_number"})
    body = _in_scope(body, who)
    pipeline = deps.live(request).pipeline  # the live models' until a recording says otherwise
    people = [Participant(role=p.role, name=p.name, channel=p.channel) for p in body.participants]
    parties = body.parties or [p.name for p in people if p.name and p.role in PARTIES]
    h = store(request).create_hearing(actor=who.name, hearing_id=body.id, pipeline=pipeline, participants=people,
                                      parties=parties, **body.model_dump(exclude={"id", "participants", "parties"}))
    for p in body.participants:
        _protect(request, h.id, p, who.name)
    return h.model_dump(mode="json")


def _protect(request: Request, hearing_id: str, p: ParticipantIn, actor: str) -> None:
    if p.protected and p.name:
        store(request).note(hearing_id, actor=actor, kind=PROTECTION, payload=protection(p.name))
        notify(request, RedactionChanged(hearing_id=hearing_id))


def _in_scope(body: HearingIn, who: Principal) -> HearingIn:
    """A hearing is scheduled inside the scheduler's own court (and room): filled in when left out.
    A court's token takes the id the server chooses: ids are global, and one it chose could answer
    "taken" for another court's hearing. A token for one hearing schedules none: the hearing it
    made could be the one its room's recorder joins next (that room's audio in its hands)."""
    if who.hearing is not None:
        raise HTTPException(403, detail={"code": "forbidden", "message": f"this token is for hearing {who.hearing} "
                                         "only: hearings are scheduled with a court's or a courtroom's token"})
    for field, mine in (("court", who.court), ("courtroom", who.room)):
        given = getattr(body, field)
        if mine is not None and given not in (None, mine):
            raise HTTPException(403, detail={"code": "forbidden", "message": f"this token may only schedule "
                                             f"hearings in {field} {mine}, not {given}"})
        if given is None and mine is not None:
            body = body.model_copy(update={field: mine})
    if body.id is not None and who.court is not None:
        raise HTTPException(422, detail={"code": "id_chosen_by_server", "message": "hearing ids are chosen "
                                         "by the server: leave out id (the answer carries it)"})
    return body


@router.get("")
def list_hearings(request: Request, who: Principal = allow(None),
                  status: HearingStatus | None = Query(None, description="scheduled | open | closed | signed"),
                  # FastAPI types ge/le as numbers; pydantic bounds dates with them too
                  since: dt.date | None = Query(None, ge=EARLIEST, le=LATEST,  # type: ignore[arg-type]
                                                description="开庭 on or after this day (Beijing time)"),
                  until: dt.date | None = Query(None, ge=EARLIEST, le=LATEST,  # type: ignore[arg-type]
                                                description="开庭 on or before this day"),
                  q: str | None = Query(None, max_length=100, pattern=r"^[^\x00]*$",
                                        description="案号, 案由, title, a party or participant, or words said in the "
                                                    "hearing (not for a caption token: it never searches what was said)"),
                  limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    """The hearings this token may see (a caption token: public ones only), newest first, a page at a
    time; ``total`` counts every match."""
    action = Action.caption if who.role is AccessRole.caption else Action.read
    if not who.may(action):
        return {"data": [], "total": 0, "limit": limit, "offset": offset}
    captions = action is Action.caption  # sees what its captions feed shows, never the record's lines
    f = HearingFilter(court=who.court, room=who.room, hearing=who.hearing, public_only=captions, lines=not captions,
                      status=status, since=since, until=until, q=q)
    if captions and q:  # found by what the caption feed shows only: every match, masked, then the page
        _, found = store(request).find_hearings(f, limit=MAX_PUBLIC_MATCHES, offset=0)
        public = _public_rows(request, found, who, q)
        return {"data": public[offset:offset + limit], "total": len(public), "limit": limit, "offset": offset}
    total, page = store(request).find_hearings(f, limit=limit, offset=offset)
    shown = _public_rows(request, page, who, None) if captions else page
    return {"data": [h for h in shown if who.refusal(action, _scope(h)) is None], "total": total,
            "limit": limit, "offset": offset}


MAX_PUBLIC_MATCHES = 1000  # a caption token's search, masked before it is counted


def _public_rows(request: Request, rows: list[dict], who: Principal, q: str | None) -> list[dict]:
    """Rows a caption token may see, protected names masked (and never found by)."""
    records = deps.records(request)
    mine = [h for h in rows if who.refusal(Action.caption, _scope(h)) is None]
    listed = (public_listing(h, records.choices(h["id"], aired=False), q) for h in mine)
    return [x for x in listed if x is not None]


def _scope(h: dict) -> HearingScope:
    return HearingScope(h["id"], h["court"], h["courtroom"], h["public"])


@router.get("/{hearing_id}", response_model=Record)
def get_record(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> Record:
    return store(request).record(hearing_id)


@router.get("/{hearing_id}/status")
def hearing_status(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """scheduled, open, closed or signed (a signed record is locked), and the audio sources
    connected now (a screen opened mid-hearing fills its channel panel from them)."""
    return {"status": store(request).status(hearing_id), "sources": deps.live(request).connected(hearing_id)}


class WhenIn(BaseModel):
    at: dt.datetime | None = Field(default=None, description=(
        "When, where it was not now (a hearing held before its recording was uploaded); ISO 8601, "
        "without a zone Beijing time; never still to come. 闭庭 by default: now, or for a hearing "
        "held elsewhere where its recorded audio ends"))


@router.post("/{hearing_id}/open")
def open_hearing(hearing_id: str, request: Request, body: WhenIn | None = None,
                 who: Principal = on_hearing(Action.manage)) -> dict:
    store(request).open_hearing(hearing_id, actor=who.name, at=body.at if body else None)
    return status_of(request, hearing_id)


@router.post("/{hearing_id}/close")
def close_hearing(hearing_id: str, request: Request, body: WhenIn | None = None,
                  who: Principal = on_hearing(Action.manage)) -> dict:
    store(request).close_hearing(hearing_id, actor=who.name, at=body.at if body else None)
    return status_of(request, hearing_id)


@router.post("/{hearing_id}/participants", status_code=201)
def add_participant(hearing_id: str, body: ParticipantIn, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    person = store(request).add_participant(hearing_id, actor=who.name, **body.model_dump(exclude={"protected"}))
    _protect(request, hearing_id, body, who.name)
    added = {**person.model_dump(mode="json"), "protected": body.protected}
    notify(request, ParticipantAdded(hearing_id=hearing_id, participant=added))
    if added.get("name"):  # a name is a hotword of the hearing
        vocabulary_changed(request, hearing_id)
    return added


@router.post("/{hearing_id}/interruptions", status_code=201)
def add_interruption(hearing_id: str, body: InterruptionIn, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    store(request).interruption(hearing_id, actor=who.name, **body.model_dump())
    added = store(request).record(hearing_id).interruptions[-1].model_dump(mode="json")
    notify(request, InterruptionAdded(hearing_id=hearing_id, interruption=added))
    return added


@router.patch("/{hearing_id}/utterances/{uid}")
def change_utterance(hearing_id: str, uid: str, body: UtteranceChange, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    s = store(request)
    if body.text is None and body.speaker is None:
        raise RecordError("give the new text, the speaker, or both")
    if body.text is not None:
        s.edit(hearing_id, uid, body.text, actor=who.name, reason=body.reason, channel=body.channel,
               start_ms=body.start_ms, end_ms=body.end_ms, speaker=body.speaker, role=body.role,
               participant=body.participant, base=body.base)
    # a speaker sent alone is her choice, the same label too (she confirms the machine's guess); sent with
    # a correction, only one other than the line's is
    if body.speaker is not None and (body.text is None or _another_speaker(s.utterance(hearing_id, uid), body)):
        s.assign_speaker(hearing_id, uid, actor=who.name, speaker=body.speaker, role=body.role,
                         participant=body.participant, reason=body.reason)
    return changed(request, hearing_id, uid)


def _another_speaker(line: Utterance, body: UtteranceChange) -> bool:
    """Whether the change names a speaker other than the line's: with the text of a line still being
    spoken, its speaker only places it (the machine's label, not a person's choice)."""
    return (line.speaker, line.role, line.participant) != (body.speaker, body.role, body.participant)


@router.post("/{hearing_id}/utterances/{uid}/confirm")
def confirm_utterance(hearing_id: str, uid: str, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    store(request).confirm(hearing_id, uid, actor=who.name)
    return changed(request, hearing_id, uid)


@router.post("/{hearing_id}/utterances/{uid}/split")
def split_utterance(hearing_id: str, uid: str, body: SplitIn, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    """Cut an utterance in two (two sentences or two speakers the VAD ran together); both are
    ``utterance_changed`` events. (``lines``: the same list under its protocol-1 name.)"""
    second = store(request).split(hearing_id, uid, body.at, actor=who.name)
    both = [changed(request, hearing_id, uid), changed(request, hearing_id, second)]
    return {"utterances": both, "lines": both}


@router.post("/{hearing_id}/utterances/{uid}/merge")
def merge_utterances(hearing_id: str, uid: str, body: MergeIn, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    """Join two utterances of a channel into the earlier one; screens drop the other
    (``utterance_removed``). (``line``: the kept one under its protocol-1 name.)"""
    s = store(request)
    kept = s.merge(hearing_id, uid, body.other, actor=who.name)
    gone = body.other if kept == uid else uid
    notify(request, UtteranceRemoved(hearing_id=hearing_id, utterance_id=gone, merged_into=kept))
    merged = changed(request, hearing_id, kept)
    return {"utterance": merged, "line": merged, "removed": gone}


def changed(request: Request, hearing_id: str, uid: str) -> dict:
    """The changed utterance as stored, also sent to the hearing's screens (``utterance_changed``)."""
    utterance = store(request).utterance(hearing_id, uid)
    notify(request, UtteranceChanged(hearing_id=hearing_id, utterance_id=uid, utterance=utterance))
    return utterance.model_dump(mode="json")


@router.get("/{hearing_id}/utterances/{uid}", response_model=Utterance)
def get_utterance(hearing_id: str, uid: str, request: Request, who: Principal = on_hearing(Action.read)) -> Utterance:
    """One line as the record holds it (a screen whose correction met a line changed meanwhile)."""
    return store(request).utterance(hearing_id, uid)


@router.get("/{hearing_id}/utterances/{uid}/audio")
def utterance_audio(hearing_id: str, uid: str, request: Request, pad_ms: int = Query(300, ge=0, le=10_000), who: Principal = on_hearing(Action.read)) -> Response:
    """The archived audio of one utterance (WAV), for click-to-replay on the clerk's screen."""
    u = store(request).utterance(hearing_id, uid)
    start = max(0, u.start_ms - pad_ms)
    end = u.end_ms + pad_ms
    longest = int(deps.settings(request).max_replay_s * 1000)
    cut = end - start > longest  # an utterance stretched by hand to hours is replayed from its start, so far
    end = min(end, start + longest)
    audio = archive.read(deps.archive(request), hearing_id, u.channel, start, end)
    buf = io.BytesIO()
    sf.write(buf, audio, archive.SR, format="WAV", subtype="PCM_16")
    # where the utterance begins inside this clip: a player seeks there so replay starts at the utterance itself
    return Response(buf.getvalue(), media_type="audio/wav", headers={
        "X-Audio-Start-Ms": str(start), "X-Utterance-Offset-Ms": str(u.start_ms - start),
        "X-Line-Offset-Ms": str(u.start_ms - start),  # its protocol-1 name
        **({"X-Audio-Truncated-At-Ms": str(end)} if cut else {})})


@router.get("/{hearing_id}/hotwords")
def hotwords(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """What the engine is biased towards in this hearing: its hotwords, parties, names and 案由."""
    return {"hearing_id": hearing_id, "hotwords": store(request).hotwords(hearing_id),
            "words": store(request).vocabulary(hearing_id)}


@router.put("/{hearing_id}/hotwords")
def set_hotwords(hearing_id: str, body: HotwordsIn, request: Request, who: Principal = on_hearing(Action.edit)) -> dict:
    """Replace the hearing's own hotwords (a name the engine keeps missing): running sources use
    them from their next utterance on."""
    store(request).set_hotwords(hearing_id, body.words, actor=who.name)
    return vocabulary_changed(request, hearing_id)


def vocabulary_changed(request: Request, hearing_id: str) -> dict:
    """Hotwords or participants changed: the hearing's running sources and open screens learn it."""
    words = store(request).vocabulary(hearing_id)
    running = deps.live(request).vocabulary_changed(hearing_id, words)
    notify(request, Vocabulary(hearing_id=hearing_id, words=words))
    return {"hearing_id": hearing_id, "hotwords": store(request).hotwords(hearing_id), "words": words,
            "running_sources": running}


@router.get("/{hearing_id}/corrections")
def corrections(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    record = store(request).record(hearing_id)
    return {"corrections": [c.model_dump(mode="json") for c in record.corrections],
            "correction_requests": [c.model_dump(mode="json") for c in record.correction_requests]}


@router.get("/{hearing_id}/verify")
def verify(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """The ledger's chain, utterances, status, signatures and seals; then the heads anchored in the audit
    log at each signature must still be in the ledger (a consistently rewritten database is not)."""
    return vars(deps.records(request).verify(hearing_id))
