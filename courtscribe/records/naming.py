"""A clerk's name for a voice the live labeller numbered (说话人N): given to the voice's lines at
once, taken back, and given to its lines still on their way, here or from another gateway.

The naming is a ledger entry of its own (``voice_named``) written before the lines are changed, and
every machine label of a voice is written in one transaction with a look at the latest naming:
so a line labelled before the clerk's click and stored after it is never left in the wrong mouth.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import EntryRow, HearingRow, UtteranceRow
from .model import SPEAKER_UNSURE, Role
from .reading import Named, Reading


class VoiceNaming(Reading):
    """The store's voice naming (``RecordStore`` writes)."""

    if TYPE_CHECKING:
        def _write(self, hearing_id: str, actor: str, kind: str, payload: dict, uid: str | None = None, *,
                   signed_ok: bool = False, change=None) -> EntryRow: ...

        def assign_speaker(self, hearing_id: str, uid: str, *, actor: str, speaker: str, role: Role | None = None,
                           participant: str | None = None, reason: str | None = None,
                           voice: str | None = None) -> None: ...

    def name_voice(self, hearing_id: str, voice: str, *, channel: int, actor: str, speaker: str,
                   role: Role | None = None, participant: str | None = None) -> list[str]:
        """Every line one channel's labeller gave one voice (说话人N: each mixed channel numbers its own
        voices) goes to a person: one speaker entry per line, audited and undoable
        (``unname_voice``); a line a person gave someone else keeps its speaker. Returns the lines.
        The naming is written first: a line of that voice stored after it is named as it goes in."""
        self._write(hearing_id, actor, "voice_named", {"voice": voice, "channel": channel, "speaker": speaker,
                                                       "role": role.value if role else None,
                                                       "participant": participant})
        undone = {uid for uid, p in self._voice_changes(hearing_id).items() if p.get("undo") == voice}
        with self._session() as s:
            rows = s.execute(select(UtteranceRow.id, UtteranceRow.speaker_by, UtteranceRow.flags).where(
                UtteranceRow.hearing_id == hearing_id, UtteranceRow.channel == channel,
                UtteranceRow.speaker == voice).order_by(UtteranceRow.start_ms, UtteranceRow.id)).all()
        # a line whose voice the machine could not tell only shows the voice before it: not this voice's
        lines = [uid for uid, by, flags in rows
                 if (by == "machine" and SPEAKER_UNSURE not in (flags or [])) or uid in undone]
        for uid in lines:
            self.assign_speaker(hearing_id, uid, actor=actor, speaker=speaker, role=role, participant=participant,
                                reason=f"{voice} 的每一行", voice=voice)
        return lines

    def unname_voice(self, hearing_id: str, voice: str, *, actor: str, channel: int | None = None) -> list[str]:
        """Undo ``name_voice``: each line whose latest speaker change named ``voice`` goes back to it
        (and may be named again), and so does each line the live labeller wrote under that name
        meanwhile, or writes after this. ``channel``: that channel's voice only."""
        self._write(hearing_id, actor, "voice_named", {"voice": voice, "channel": channel, "speaker": None,
                                                       "role": None, "participant": None})
        on = self._channels(hearing_id)
        named = [uid for uid, p in self._voice_changes(hearing_id).items()
                 if p.get("voice") == voice and channel in (None, on.get(uid, (None,))[0])]
        labelled = [uid for uid, v in self._machine_voices(hearing_id).items()
                    if v == voice and uid in on and on[uid][1] != "human" and channel in (None, on[uid][0])]
        for uid in named:
            self._write(hearing_id, actor, "assign_speaker", {"before": self._current(hearing_id, uid, "speaker"),
                                                              "speaker": voice, "reason": f"撤销：{voice} 的每一行",
                                                              "role": None, "participant": None, "undo": voice}, uid)
        for uid in labelled:
            self._write(hearing_id, actor, "relabel", {"speaker": voice, "role": None, "participant": None}, uid)
        return named + labelled

    def _labelled(self, hearing_id: str, actor: str, kind: str, payload: dict, uid: str,
                  voice: str | None, also: Callable[[Session, HearingRow], None] | None = None) -> Named | None:
        """A machine label written; returns the label the record holds for the line after it, where
        that is not the one written (a person's label wins, rule 3; or ``_as_named``). ``also``: more
        that the write's transaction settles in the payload."""
        came = _named(payload)

        def settle(s: Session, h: HearingRow) -> None:
            if also is not None:
                also(s, h)
            if voice is not None:
                _as_named(payload, voice, _naming(s, h.id, voice, _channel(s, h.id, uid, payload)))
        self._write(hearing_id, actor, kind, payload, uid, change=settle)
        with self._session() as s:
            row = s.get(UtteranceRow, (hearing_id, uid))
            held = None if row is None else Named(row.speaker, Role(row.role) if row.role else None, row.participant)
        return held if held is not None and held != came else None


def _named(payload: dict) -> Named:
    return Named(payload["speaker"], Role(payload["role"]) if payload["role"] else None, payload["participant"])


def _channel(s: Session, hearing_id: str, uid: str, payload: dict) -> int | None:
    """A machine label's channel: a final's own, a relabel's line's (in the write's transaction)."""
    if payload.get("channel") is not None:
        return payload["channel"]
    return s.scalar(select(UtteranceRow.channel).where(UtteranceRow.hearing_id == hearing_id, UtteranceRow.id == uid))


def _naming(s: Session, hearing_id: str, voice: str, channel: int | None) -> dict | None:
    """Whom a clerk names one channel's voice as now: the latest ``voice_named`` entry for it
    (speaker None: the name was undone); None when no clerk ever named it."""
    for body in s.scalars(select(EntryRow.payload).where(EntryRow.hearing_id == hearing_id,
                                                         EntryRow.kind == "voice_named")
                          .order_by(EntryRow.seq.desc())):
        p = json.loads(body)
        if p["voice"] == voice and p["channel"] in (None, channel):
            return p
    return None


def _as_named(payload: dict, voice: str, naming: dict | None) -> None:
    """A machine label of ``voice`` as the record must hold it: under the clerk's name for the voice,
    or the voice's own number where the name was undone; ``voice`` stays in the payload only
    where the line carries a name, so an undo finds it."""
    if naming is not None:
        payload.update({k: naming[k] for k in ("speaker", "role", "participant")})
        if naming["speaker"] is None:
            payload.update(speaker=voice, role=None, participant=None)
    if payload["speaker"] != voice:
        payload["voice"] = voice
