"""The public version's choices: who is protected, and what the clerk hides or shows beyond what the
finder does (redaction/public.py). Every choice is a ledger entry (who, when, why) and reaches the
open caption feeds at once; the record itself is never changed by any of them."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..access.scopes import Action, Principal
from ..records.model import Name, Text
from ..redaction.public import PROTECTION, REDACTION, protection, redaction
from ..streaming.events import RedactionChanged
from . import deps
from .auth import on_hearing
from .hearings import notify

router = APIRouter(prefix="/v1/hearings", tags=["public version"])


class ProtectionIn(BaseModel):
    name: Name = Field(
        min_length=1, description="A participant's (or anyone named in the hearing's) name"
    )
    protected: bool = True
    reason: Name | None = Field(default=None, description="e.g. 未成年人, 被害人, 受保护证人")


class RedactionIn(BaseModel):
    action: Literal["add", "lift"]
    text: Text = Field(
        min_length=1, max_length=200, description="The words to hide (add) or to show (lift)"
    )
    utterance_id: Name | None = Field(
        default=None, description="The line; none: every line of the hearing"
    )
    reason: Name | None = None


@router.post("/{hearing_id}/protection")
def set_protection(
    hearing_id: str, body: ProtectionIn, request: Request, who: Principal = on_hearing(Action.edit)
) -> dict:
    """Mark a person protected (a minor, a victim, a protected witness): their name and its
    sound-alikes are masked (张某) in the captions and the public version from now on."""
    deps.store(request).note(
        hearing_id, actor=who.name, kind=PROTECTION, payload=protection(**body.model_dump())
    )
    notify(request, RedactionChanged(hearing_id=hearing_id, hides=body.protected))
    return redactions(hearing_id, request, who)


@router.post("/{hearing_id}/redactions", status_code=201)
def choose(
    hearing_id: str, body: RedactionIn, request: Request, who: Principal = on_hearing(Action.edit)
) -> dict:
    """Hide words the finder missed, or show words it hid, in one line or every line of the public
    version (and the live captions from now on)."""
    deps.store(request).note(
        hearing_id, actor=who.name, kind=REDACTION, payload=redaction(**body.model_dump())
    )
    notify(request, RedactionChanged(hearing_id=hearing_id, hides=body.action == "add"))
    return redactions(hearing_id, request, who)


@router.get("/{hearing_id}/redactions")
def redactions(hearing_id: str, request: Request, who: Principal = on_hearing(Action.read)) -> dict:
    """The redaction log the clerk reviews: each masked span of the public version in the record's own
    words, who is protected, and the clerk's own choices."""
    records = deps.records(request)
    chosen = records.choices(hearing_id, aired=False)
    return {
        "hearing_id": hearing_id,
        "protected": list(chosen.protected),
        "added": [
            {"utterance_id": k, "text": w} for k, words in chosen.added.items() for w in words
        ],
        "lifted": [
            {"utterance_id": k, "text": w}
            for k, words in chosen.lifted.items()
            for w in sorted(words)
        ],
        "log": [r.model_dump() for r in records.public_version(hearing_id, chosen)[1]],
    }
