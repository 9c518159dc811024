"""What a live source asked for and where its output goes: a session's settings apart from its sinks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

import numpy as np

from ..asr.base import DecodeOptions
from ..diarization.bleed import RoomAudio
from ..records.model import Role, Utterance
from ..records.spool import Written
from .events import Event
from .speakers import Label, LiveSpeakers


class Recorder(Protocol):
    def write(self, audio: np.ndarray) -> None: ...
    def close(self) -> None: ...


ANY_CHANNEL = -1


@dataclass
class SessionConfig:
    """What the source asked for and where it sits in its hearing."""

    hearing_id: str | None = None
    channel: int = 0  # ANY_CHANNEL: a protocol without channels (FunASR's, Realtime): the lowest free one
    role: Role | None = None
    speaker: str | None = None
    options: DecodeOptions = field(default_factory=DecodeOptions)
    offset_ms: int = 0  # hearing time of the stream's first sample (a reconnect continues the timeline)
    resume_ms: int | None = None  # a source coming back: where it says its first sample was said
    court: str | None = None  # where a hearing this stream creates belongs (its recorder's scope)
    courtroom: str | None = None
    seat: bool = False  # a seat's own microphone, whose role may come from the hearing's channel map

    @property
    def seat_of(self) -> str | None:
        """The hearing this source is a seat microphone of (one seat's own mic: it has a role)."""
        return self.hearing_id if self.role is not None else None


@dataclass
class Sinks:
    """Where a session's output goes and what it consults, set up when it joins its hearing
    (streaming/live.py); none for a stream of no hearing."""

    # persists a final before it is announced (line, voice); False: it waits on disk until the store
    # is back; a Named: the record put it under that speaker (a clerk named or unnamed its voice meanwhile)
    on_final: Callable[[Utterance, str | None], Awaitable[Written]] | None = None
    on_relabel: Callable[[str, Label], Awaitable[Written]] | None = None  # persists a speaker update
    on_screen: Callable[[Event], None] | None = None  # to the hearing's screens only: levels, endpoints
    recorder: Recorder | None = None  # archives the raw audio as it arrives
    speakers: LiveSpeakers | None = None  # a mixed channel: who speaks each utterance (online diarization)
    room: RoomAudio | None = None  # a seat mic: its neighbours' audio, to drop their bleed
