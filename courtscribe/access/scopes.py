"""Access roles and what each may do, scoped by court, courtroom and hearing.

A token carries one access role (not a courtroom role: a 审判长 is a participant, a *judge* token
is what a judge's screen logs in with) and a scope. An empty scope field means "any": a token with
no court is server-wide, which only admins and court IT should hold.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AccessRole(str, Enum):
    recorder = "recorder"  # a courtroom PC: sends audio for its room (or audio of no hearing)
    clerk = "clerk"  # edits, enrolls voices, signs and exports a hearing's record
    judge = "judge"  # reads, signs, exports; dictates documents
    viewer = "viewer"  # reads the transcript, nothing else
    caption = "caption"  # the caption feed of public hearings only
    admin = "admin"  # everything, including scheduling hearings and managing tokens
    monitor = "monitor"  # Prometheus: the metrics (counts and timings), no court's data


class Action(str, Enum):
    send_audio = "send_audio"  # push audio into a hearing (its room's recorder)
    dictate = "dictate"  # stream audio that belongs to no hearing (dictation, ad-hoc transcription)
    read = "read"  # the record, its lines, its audio, live events
    edit = "edit"  # correct lines, speakers, participants, voices, interruptions, hotwords
    sign = "sign"  # sign off, correction requests
    export = "export"  # DOCX/PDF/package exports
    manage = "manage"  # schedule, open, close hearings
    caption = "caption"  # the caption feed
    blank_captions = "blank_captions"  # the kill switch: captions off when the court orders it
    transcribe = "transcribe"  # file transcription API and jobs
    admin = "admin"  # token management, audit log
    metrics = "metrics"  # the Prometheus exposition


PERMISSIONS: dict[AccessRole, frozenset[Action]] = {
    AccessRole.recorder: frozenset({Action.send_audio, Action.dictate}),
    AccessRole.clerk: frozenset({Action.read, Action.edit, Action.sign, Action.export, Action.manage,
                                 Action.caption, Action.blank_captions, Action.dictate, Action.transcribe}),
    AccessRole.judge: frozenset({Action.read, Action.sign, Action.export, Action.caption, Action.blank_captions,
                                 Action.dictate, Action.transcribe}),
    AccessRole.viewer: frozenset({Action.read}),
    AccessRole.caption: frozenset({Action.caption}),
    AccessRole.monitor: frozenset({Action.metrics}),
    AccessRole.admin: frozenset(Action),
}


# the roles a token may hold without a court: they read no court's records
SERVER_WIDE = frozenset({AccessRole.admin, AccessRole.monitor})


# Which courtroom roles (records.model.Role values) a token's holder may sign a record as: the
# signer is the token's holder, never a name typed into the request.
SIGNS_AS: dict[AccessRole, tuple[str, ...]] = {
    AccessRole.judge: ("presiding_judge", "judge", "juror"),
    AccessRole.clerk: ("clerk",),
}


class NotPublic(str):
    """A refusal that is no fault of the token: the hearing has no captions (``not_public``, as an
    overlay says it to its operator)."""


@dataclass(frozen=True)
class HearingScope:
    """What access decisions need to know about a hearing."""
    id: str
    court: str | None
    courtroom: str | None
    public: bool | None


@dataclass(frozen=True)
class Principal:
    """The identity behind a request: a token (or a listed recorder host)."""
    token_id: str
    role: AccessRole
    name: str
    court: str | None = None
    room: str | None = None
    hearing: str | None = None

    def may(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]

    def covers(self, h: HearingScope) -> bool:
        """Whether the hearing lies inside this token's scope (court, courtroom, hearing)."""
        return ((self.court is None or self.court == h.court) and (self.room is None or self.room == h.courtroom)
                and (self.hearing is None or self.hearing == h.id))

    def refusal(self, action: Action, h: HearingScope | None = None) -> str | None:
        """Why this principal may not do ``action`` (on hearing ``h``), or None when it may."""
        if not self.may(action):
            return f"a {self.role.value} token may not {action.value.replace('_', ' ')}"
        if h is None:
            return None
        if not self.covers(h):
            return f"hearing {h.id} is outside this token's scope ({self.scope_text()})"
        if self.role is AccessRole.caption and h.public is not True:
            return NotPublic(f"hearing {h.id} is not public: it has no captions")
        return None

    def signing_refusal(self, role: str | None, name: str | None) -> str | None:
        """Why this principal may not sign as ``role`` under ``name`` (None: it may)."""
        allowed = SIGNS_AS.get(self.role, ())
        if not allowed:
            return f"a {self.role.value} token holds no courtroom role: sign with the judge's or clerk's own token"
        if role is not None and role not in allowed:
            return f"a {self.role.value} token signs as {' / '.join(allowed)}, not as {role}"
        if name is not None and name != self.name:
            return f"a record is signed by the token's holder ({self.name}), not by {name}"
        return None

    def scope_text(self) -> str:
        parts = [f"{k} {v}" for k, v in (("court", self.court), ("room", self.room), ("hearing", self.hearing)) if v]
        return ", ".join(parts) or "server-wide"

    @property
    def actor(self) -> str:
        """How this principal is named in ledgers and the audit log."""
        return f"{self.name} ({self.role.value} {self.token_id})"


NOBODY = Principal(token_id="-", role=AccessRole.admin, name="local")  # --insecure-no-auth: everything allowed
