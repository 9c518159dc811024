"""Sign-off: the bench and the clerk sign the read-back 笔录 in their own names, the clerk notes the
parties' signatures (or refusals), and after the first signature only correction requests (补正申请)
are taken."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from ..access.scopes import SIGNS_AS, Action, Principal
from ..records.model import Name, Role, Text
from ..records.signing import NOTED
from ..records.signing import signers
from ..streaming.events import Status
from . import deps
from .auth import on_hearing
from .deps import store
from .hearings import notify, status_of

router = APIRouter(prefix="/v1/hearings", tags=["records"])


class SignatureIn(BaseModel):
    """With tokens the signer is the token's holder: ``by`` may be left out (when given it must be
    that name) and ``role`` must be one the token holds (a judge token: 审判长/审判员/人民陪审员)."""
    by: Name | None = Field(default=None, min_length=1)
    role: Role | None = None
    digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description=(
        "The record's digest as read back (GET …/digest when the read-back began): a record changed "
        "since (a late line, another screen's correction) is not signed (409 record_changed)"))


class CorrectionRequestIn(BaseModel):
    """A 补正申请: the bench's or clerk's own (``role`` one the token holds, or left out), or a
    participant's that the clerk notes for them (``role`` theirs, ``name`` who asks)."""
    text: Text = Field(min_length=1)
    reason: Name = Field(min_length=1)
    role: Role | None = None
    name: Name | None = Field(default=None, min_length=1)
    utterance_id: Name | None = None


class PartySignatureIn(BaseModel):
    name: Name
    role: Role
    refused: bool = False
    reason: Text | None = None


@router.post("/{hearing_id}/signatures", status_code=201)
def sign(hearing_id: str, body: SignatureIn, request: Request, who: Principal = on_hearing(Action.sign)) -> dict:
    by, role = body.by, body.role
    if deps.access(request).enabled:
        why = who.signing_refusal(role.value if role else None, by)
        if why:
            raise HTTPException(403, detail={"code": "forbidden", "message": why})
        by, role = who.name, role or Role(SIGNS_AS[who.role][0])
    if by is None or role is None:
        raise HTTPException(422, detail={"code": "bad_signature", "message": "name the signer (by) and their role"})
    signed = deps.records(request).sign(hearing_id, by=by, role=role, who=who, read_back=body.digest)
    return {"digest": signed.digest, **status_of(request, hearing_id)}


@router.get("/{hearing_id}/digest")
def digest(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """What a signature would sign now: fetch it when the read-back begins, sign with it (``digest``)."""
    return {"digest": store(request).digest(hearing_id), "status": store(request).status(hearing_id)}


@router.get("/{hearing_id}/signatures")
def signatures(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """Who must sign and where each stands (signed, when; pending; refused, why)."""
    everyone = signers(store(request).record(hearing_id), deps.settings(request).parties_sign)
    return {"signers": [s.view() for s in everyone], "complete": all(s.state != "pending" for s in everyone)}


@router.post("/{hearing_id}/party-signatures", status_code=201)
def party_signature(hearing_id: str, body: PartySignatureIn, request: Request,
                    who: Principal = on_hearing(Action.edit)) -> dict:
    """The clerk notes a party's signature on the read-back 笔录, or that the party refused (and why)."""
    if body.role not in NOTED:
        raise HTTPException(422, detail={"code": "not_a_party", "message": f"{body.role.label} signs in their own "
                                         "name (POST …/signatures); the clerk notes the other participants' "
                                         "signatures"})
    if body.refused and not body.reason:
        raise HTTPException(422, detail={"code": "reason_needed", "message": "say why the party refused to sign"})
    store(request).note_party_signature(hearing_id, actor=who.name, **body.model_dump())
    notify(request, Status(hearing_id=hearing_id, status=store(request).status(hearing_id)))
    return signatures(hearing_id, request, who)


@router.post("/{hearing_id}/correction-requests", status_code=201)
def correction_request(hearing_id: str, body: CorrectionRequestIn, request: Request,
                       who: Principal = on_hearing(Action.sign)) -> dict:
    own = SIGNS_AS.get(who.role, ()) if deps.access(request).enabled else tuple(r.value for r in Role)
    if body.role in NOTED and not body.name:
        raise HTTPException(422, detail={"code": "name_needed", "message": f"name the {body.role.label} who asks "
                                         "for the correction (name)"})
    if body.role is not None and body.role not in NOTED and body.role.value not in own:
        raise HTTPException(403, detail={"code": "forbidden", "message": f"a {who.role.value} token asks as "
                                         f"{' / '.join(own) or 'nobody'}, or notes a participant's request, not "
                                         f"as {body.role.value}"})
    store(request).request_correction(hearing_id, by=who.name, **body.model_dump())
    return store(request).record(hearing_id).correction_requests[-1].model_dump(mode="json")
