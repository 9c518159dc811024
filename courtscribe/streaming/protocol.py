"""The native streaming protocol, version ``courtscribe.stream/1`` (documented in docs/protocol.md).

Client → server: one JSON ``start``, then binary PCM16 little-endian mono frames, ``keepalive`` at
will, ``stop`` to end. Server → client: ``ready``, ``partial``, ``final``, ``error``, ``end``.
"""
from __future__ import annotations

import json
from typing import Literal, TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..audio import SAMPLE_RATE
from ..records.model import HearingId, Role, Utterance
from .events import Error, Final, Partial

PROTOCOL = "courtscribe.stream/1"
MAX_FRAME_BYTES = 1 << 20  # 32 s of 16 kHz PCM16: more in one frame is a broken or hostile client
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


class ErrorCode:
    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    NOT_STARTED = "not_started"
    ALREADY_STARTED = "already_started"
    BAD_SAMPLE_RATE = "bad_sample_rate"
    FRAME_TOO_LARGE = "frame_too_large"
    BUSY = "busy"
    IDLE_TIMEOUT = "idle_timeout"
    ENGINE = "engine_error"
    STORE = "store_error"
    HEARING_CLOSED = "hearing_closed"
    DISK_FULL = "disk_full"  # the audio archive could not be written: recording stopped
    ARCHIVE = "archive_error"
    STORE_UNAVAILABLE = "store_unavailable"
    CHANNEL_BUSY = "channel_busy"  # another source holds the channel named: try again when it ends
    NO_SEAT = "no_seat"  # a seat microphone naming no role on a channel the hearing's channel map gives no seat
    STORE_DELAYED = "store_delayed"  # the record store is away: finals wait on disk and are stored later


def sample_rate(value: object) -> int:
    """A client's stated sample rate, if it is one served (else a clear ``bad_sample_rate``): an odd
    rate would stretch a few bytes of PCM into hours of audio to resample and decode."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() \
            or int(value) not in SAMPLE_RATES:
        raise StreamError(ErrorCode.BAD_SAMPLE_RATE, f"sample rate {str(value)[:20]!r} is not supported; use one of "
                          f"{SAMPLE_RATES}")
    return int(value)


class StreamError(Exception):
    def __init__(self, code: str, message: str, fatal: bool = False, announced: bool = False,
                 close_code: int | None = None):
        super().__init__(message)
        self.code, self.message, self.fatal = code, message, fatal
        self.announced = announced  # already told to the client and the hearing's subscribers
        self.close_code = close_code  # a refusal (44xx: token, scope, no such hearing, limits)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Start(_Msg):
    type: Literal["start"]
    hearing_id: HearingId | None = None
    channel: int = Field(default=0, ge=0, le=63)
    role: Role | None = None
    speaker: str | None = Field(default=None, max_length=64)
    sample_rate: int = SAMPLE_RATE
    hotwords: list[str] = Field(default_factory=list, max_length=1000)
    language: str = "zh"
    dictation: bool = False  # finals carry the document edits their voice commands mean (asr/commands.py)
    # a source coming back (the server restarted, the network dropped): the hearing time of its first
    # sample, so what it recorded while away lands where it was said (ready's offset_ms: where it does)
    resume_ms: int | None = Field(default=None, ge=0)
    seat: bool = False  # a seat's own microphone: with no role named, the seat the channel map gives its channel

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, v: int) -> int:
        if v not in SAMPLE_RATES:
            raise ValueError(f"sample_rate {v} is not supported; use one of {SAMPLE_RATES}")
        return v

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, v):
        return Role.parse(v) if isinstance(v, str) else v


class Stop(_Msg):
    type: Literal["stop"]


class KeepAlive(_Msg):
    type: Literal["keepalive"]


CONTROL: dict[str, type[Start] | type[Stop] | type[KeepAlive]] = {"start": Start, "stop": Stop, "keepalive": KeepAlive}


def parse_control(text: str) -> Start | Stop | KeepAlive:
    """Parse a client text frame, raising :class:`StreamError` with a code the client can act on."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting deeper than the parser's stack
        raise StreamError(ErrorCode.BAD_JSON, f"text frames must be JSON: {err}"[:300]) from None
    if not isinstance(data, dict) or data.get("type") not in tuple(CONTROL):  # a tuple: ``type`` may be unhashable
        raise StreamError(ErrorCode.BAD_MESSAGE, "expected an object with type start, stop or keepalive")
    model = CONTROL[data["type"]]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in err.errors())
        code = ErrorCode.BAD_SAMPLE_RATE if any(e["loc"] == ("sample_rate",) for e in err.errors()) else ErrorCode.BAD_MESSAGE
        raise StreamError(code, problems) from None


def partial_event(utterance_id: str, channel: int, speaker: str, start_ms: int, end_ms: int, text: str,
                  hearing_id: str | None, role: Role | None = None, *, stable: int = 0,
                  continues: bool = False, ahead: bool = False) -> Partial:
    return Partial(hearing_id=hearing_id, utterance_id=utterance_id, channel=channel, speaker=speaker, role=role,
                   start_ms=start_ms, end_ms=end_ms, text=text, stable=stable, continues=continues,
                   ahead=ahead)


def final_event(utterance: Utterance, hearing_id: str | None) -> Final:
    return Final(hearing_id=hearing_id, utterance_id=utterance.id, utterance=utterance)


class ErrorAbout(TypedDict, total=False):
    """What an error event may say beside its code and message (each only when given); typed, so
    the type checker refuses a field ``events.Error`` does not have (it would fail at run time, in
    the middle of recording a flagged gap)."""
    fatal: bool
    channel: int
    hearing_id: str | None
    utterance_id: str
    start_ms: int
    end_ms: int


def error_event(code: str, message: str, **about: Unpack[ErrorAbout]) -> Error:
    return Error(code=code, message=message, **about)
