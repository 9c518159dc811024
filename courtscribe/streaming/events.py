"""What a hearing's screens and a source's socket are told, as typed events.

The live pipeline (sessions, the live hearings, the REST API's changes) builds these classes; they
become JSON only where they leave the process: at a socket (``server/sockets.send``) and on the bus
between gateways (``streaming/peers.py``, read back with ``parse``). The wire form is
docs/protocol.md's: ``type`` first, then the fields the event was built with (an optional field
left out is left out of the JSON too, as an error's ``fatal`` or a final's ``dictation``).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..records.model import Role, Utterance


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str

    def wire(self) -> dict[str, Any]:
        """The JSON object sent: ``type`` and every field given when the event was built."""
        return self.model_dump(mode="json", include=self.model_fields_set | {"type"})


class SourceEvent(Event):
    """About a live source's speech (``hearing_id`` None: a source not joined to any hearing)."""
    hearing_id: str | None


class HearingEvent(Event):
    """About a hearing and its record."""
    hearing_id: str


# -- from a live source -------------------------------------------------------------------------
class Partial(SourceEvent):
    """The utterance so far, while it is spoken: replaced by the next, then by the final."""
    type: Literal["partial"] = "partial"
    utterance_id: str
    channel: int
    speaker: str
    role: Role | None
    start_ms: int
    end_ms: int
    text: str
    stable: int = 0  # the first ``stable`` characters of ``text`` stay in every later partial (stability.py)
    continues: bool = False  # the speaker goes on from the channel's previous utterance (pieces.py)
    # an earlier utterance of the source has no final yet (partials go on beside a final): a caption
    # feed, which cuts lines in the order words were said, waits for that final
    ahead: bool = False


class Final(SourceEvent):
    """The utterance as recognised and stored, with its speaker and word times."""
    type: Literal["final"] = "final"
    utterance_id: str
    utterance: Utterance
    dictation: list[dict] | None = None  # a dictation stream's voice commands in the text (asr/commands.py)


class Error(Event):
    """Something the client or clerk must know: ``code`` from ``protocol.ErrorCode``."""
    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool | None = None
    channel: int | None = None
    hearing_id: str | None = None
    utterance_id: str | None = None
    start_ms: int | None = None  # where the utterance it is about was (an engine error: its flagged gap)
    end_ms: int | None = None


class SpeakerUpdate(SourceEvent):
    """Diarization changed its mind about an earlier utterance's speaker."""
    type: Literal["speaker_update"] = "speaker_update"
    utterance_id: str
    speaker: str
    role: Role | None
    participant: str | None


class Level(SourceEvent):
    """A source's loudness about four times a second, for the clerk's channel panel."""
    type: Literal["level"] = "level"
    channel: int
    speaker: str
    rms_db: float
    peak_db: float
    speech: bool
    at_ms: int


class Endpoint(SourceEvent):
    """The VAD heard an utterance end; its final follows (captions may show the last partial)."""
    type: Literal["endpoint"] = "endpoint"
    utterance_id: str
    channel: int
    end_ms: int


class Channel(SourceEvent):
    """A source of the hearing came or went (已连接/已断开)."""
    type: Literal["channel"] = "channel"
    channel: int
    speaker: str
    connected: bool


# -- from the hearing and the people working on its record ----------------------------------------
class Status(HearingEvent):
    """open when its first source joins, then closed, signed."""
    type: Literal["status"] = "status"
    status: str


class UtteranceChanged(HearingEvent):
    """An utterance as stored after a person's edit, speaker change, confirmation or split."""
    type: Literal["utterance_changed"] = "utterance_changed"
    utterance_id: str
    utterance: Utterance


class UtteranceRemoved(HearingEvent):
    """An utterance merged into another."""
    type: Literal["utterance_removed"] = "utterance_removed"
    utterance_id: str
    merged_into: str


class Line(UtteranceChanged):
    """``utterance_changed`` under its protocol-1 name, for subscribers written for it."""
    type: Literal["line"] = "line"  # type: ignore[assignment]


class LineRemoved(UtteranceRemoved):
    """``utterance_removed`` under its protocol-1 name."""
    type: Literal["line_removed"] = "line_removed"  # type: ignore[assignment]


class ParticipantAdded(HearingEvent):
    """Someone named to the hearing, in a role (the screens' speaker lists)."""
    type: Literal["participant"] = "participant"
    participant: dict


class InterruptionAdded(HearingEvent):
    """休庭 or 继续开庭, with its reason."""
    type: Literal["interruption"] = "interruption"
    interruption: dict


class Vocabulary(HearingEvent):
    """The words the engine is biased towards in this hearing changed."""
    type: Literal["hotwords"] = "hotwords"
    words: list[str]


class CaptionsSwitched(HearingEvent):
    """The court blanked the captions (不公开内容) or lit them again."""
    type: Literal["captions"] = "captions"
    blanked: bool
    at_ms: int
    reason: str | None


class RedactionChanged(HearingEvent):
    """Who is protected, or what the public version hides, changed (the caption feeds reload it)."""
    type: Literal["redaction"] = "redaction"
    hides: bool = True  # more is masked now (lines held unshown were masked without it); False: a lift


class StoreRecovered(HearingEvent):
    """Utterances that waited on disk while the record store was away are stored now."""
    type: Literal["store_recovered"] = "store_recovered"
    utterances: int
    lines: int  # the same count under its protocol-1 name


AnyEvent = Annotated[Union[Partial, Final, Error, SpeakerUpdate, Level, Endpoint, Channel, Status, UtteranceChanged,
                           UtteranceRemoved, Line, LineRemoved, ParticipantAdded, InterruptionAdded, Vocabulary,
                           CaptionsSwitched, RedactionChanged, StoreRecovered], Field(discriminator="type")]
_ANY: TypeAdapter[Event] = TypeAdapter(AnyEvent)
FIRST_NAMES: dict[type[Event], type[Event]] = {UtteranceChanged: Line, UtteranceRemoved: LineRemoved}


def parse(data: dict) -> Event:
    """An event another gateway sent (its ``wire`` form) as the class it was built as."""
    return _ANY.validate_python(data)


def first_name(event: Event) -> Event | None:
    """The same event under its protocol-1 name, where it had another (docs/protocol.md)."""
    old = FIRST_NAMES.get(type(event))
    return None if old is None else old.model_validate({**event.wire(), "type": old.model_fields["type"].default})
