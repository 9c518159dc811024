"""OpenAI's Realtime transcription protocol at ``/v1/realtime?intent=transcription``, backed by the
same live sessions as the native protocol (so a hearing, its hotwords and diarization work
through it too: ``&hearing=ID``, an extension OpenAI clients need not know).

Client: ``session.update`` (GA) or ``transcription_session.update`` (beta) with the input format
(PCM16, 24 kHz by default), the transcription's language and prompt; ``input_audio_buffer.append``
with base64 PCM16; ``input_audio_buffer.commit`` ends the current speech at once. Server: the
``…created``/``…updated`` session, then per utterance the server-VAD events
``input_audio_buffer.speech_started``/``speech_stopped``/``committed`` and
``conversation.item.input_audio_transcription.delta`` (text as it grows) and ``.completed`` (the
final line; a stretch that could not be recognized says so in the transcript, never a silent hole).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..asr.base import DecodeOptions
from ..audio import SAMPLE_RATE
from ..asr.hotwords import merge
from ..text import grown
from ..access.guard import Denied
from ..records.model import HEARING_ID
from ..streaming.events import Error, Event, Final, Partial
from ..streaming.live import Gate, LiveHearings, PcmInput, open_gate
from ..streaming.protocol import MAX_FRAME_BYTES, ErrorCode, StreamError, sample_rate
from ..streaming.session import StreamSession
from ..streaming.source import SessionConfig
from . import deps
from .auth import ws_deny, ws_enter
from .sockets import gate, idle_limit, run, send

DEFAULT_RATE = 24_000  # OpenAI's pcm16


router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    """OpenAI's Realtime transcription protocol (``?intent=transcription``; ``&hearing=ID``)."""
    access = deps.access(ws)
    if not (who := await ws_enter(ws, access)):
        return
    hearing_id = ws.query_params.get("hearing")
    if ws.query_params.get("intent") != "transcription" or (hearing_id and not re.fullmatch(HEARING_ID, hearing_id)):
        await ws_deny(ws, access, Denied(400, "bad_request", "only transcription sessions are served here: "
                                         "/v1/realtime?intent=transcription (optionally &hearing=ID)"), who)
        return
    async with gate(access, who) as check:
        await realtime_stream(ws, deps.live(ws), check, hearing_id=hearing_id)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def event(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": _id("event"), **fields}


def error(code: str, message: str) -> dict:
    return event("error", error={"type": "invalid_request_error", "code": code, "message": message})


@dataclass
class Setup:
    """What the client configured (both the GA and the beta shapes of ``session``)."""
    rate: int = DEFAULT_RATE
    language: str | None = None
    prompt: str | None = None
    model: str = "whisper-base"

    def update(self, session: dict) -> None:
        audio_in = (session.get("audio") or {}).get("input") or {}  # GA
        fmt = audio_in.get("format") or session.get("input_audio_format")
        if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm":  # GA: its rate may be left out
            self.rate = sample_rate(fmt.get("rate", DEFAULT_RATE))
        elif fmt in ("pcm16", "audio/pcm"):
            self.rate = DEFAULT_RATE
        elif fmt is not None:
            raise StreamError("unsupported_format", f"input audio format {fmt!r}: only PCM16 is served")
        transcription = audio_in.get("transcription") or session.get("input_audio_transcription") or {}
        self.language = transcription.get("language", self.language)
        self.prompt = transcription.get("prompt", self.prompt)
        self.model = transcription.get("model", self.model)

    def view(self, ga: bool) -> dict:
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt or ""}
        if ga:
            return {"type": "transcription", "object": "realtime.transcription_session", "id": "session",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": self.rate},
                                        "transcription": transcription,
                                        "turn_detection": {"type": "server_vad"}}}}
        return {"object": "realtime.transcription_session", "id": "session", "input_audio_format": "pcm16",
                "input_audio_transcription": transcription, "turn_detection": {"type": "server_vad"}}


@dataclass
class _Items:
    """Our utterance ids as OpenAI conversation items, and what each has been told so far."""
    ids: dict[str, str] = field(default_factory=dict)
    said: dict[str, str] = field(default_factory=dict)
    last: str | None = None

    def item(self, uid: str) -> tuple[str, bool]:
        """The item of a line (a flagged stretch of an utterance, ``<id>-g1``, is an item of its own)."""
        new = uid not in self.ids
        if new:
            self.ids[uid] = _id("item")
        return self.ids[uid], new


async def realtime_stream(ws: WebSocket, live: LiveHearings, gate: Gate = open_gate, hearing_id: str | None = None) -> None:
    """An accepted Realtime client's socket."""
    adapter = _Realtime(ws, live, gate, hearing_id)
    await send(ws, event("session.created", session=adapter.cfg.view(ga=True)))
    await run(ws, adapter.idle_s, adapter)


class _Realtime:
    """OpenAI's Realtime events: session updates, base64 audio appended and committed."""

    def __init__(self, ws: WebSocket, live: LiveHearings, gate: Gate, hearing_id: str | None):
        self.ws, self.live, self.gate, self.hearing_id = ws, live, gate, hearing_id
        self.cfg, self.items, self.ga = Setup(), _Items(), True
        self.session: StreamSession | None = None
        self.pcm: PcmInput | None = None
        self.heard = 0  # samples (16 kHz) of this connection's audio so far: OpenAI's times count from its start

    async def text(self, text: str) -> bool:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise StreamError("invalid_json", "the event is not JSON") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind in ("session.update", "transcription_session.update"):
            self.ga = kind == "session.update"
            self.cfg.update(data.get("session") or {})
            if self.session is not None:
                self.session.use_hotwords(merge(tuple((self.cfg.prompt or "").split()), self.live.lexicon))
            await send(self.ws, event(kind.replace("update", "updated"), session=self.cfg.view(self.ga)))
        elif kind == "input_audio_buffer.append":
            await self._append(data.get("audio"))
        elif kind == "input_audio_buffer.commit":  # end the speech now: its lines come out
            if self.session is None:
                raise StreamError("input_audio_buffer_commit_empty", "nothing was appended since the last commit")
            await self.live.leave(self.session)
            self.session = None
        elif kind == "input_audio_buffer.clear":
            await send(self.ws, event("input_audio_buffer.cleared"))
        else:
            raise StreamError("unknown_event", f"event type {kind!r} is not served here (transcription only)")
        return True

    async def _append(self, b64) -> None:
        try:
            raw = base64.b64decode(b64 or "", validate=True)
        except (binascii.Error, TypeError):
            raise StreamError("invalid_audio", "audio must be base64 PCM16") from None
        if self.session is None:
            await self._join()
        assert self.session is not None and self.pcm is not None  # made together
        for at in range(0, max(len(raw), 1), MAX_FRAME_BYTES):  # OpenAI takes appends of up to 15 MiB
            audio = self.pcm.convert(raw[at:at + MAX_FRAME_BYTES])
            self.heard += audio.size
            await self.session.feed(audio)

    async def _join(self) -> None:
        """A session from the first audio after the start or a commit; its times (hearing time with
        ``&hearing=``, else from 0 at each session) are told from this connection's first audio, as
        OpenAI counts them."""
        admitted = await self.gate(self.hearing_id)
        options = DecodeOptions(language=self.cfg.language or "zh", hotwords=tuple((self.cfg.prompt or "").split()))
        shift = [0]

        async def emit(ev: Event) -> None:
            await _deliver(self.ws, self.items, ev, shift[0])
        self.session = await self.live.join(SessionConfig(hearing_id=admitted.hearing_id, court=admitted.court,
                                                          courtroom=admitted.courtroom, options=options), emit)
        shift[0] = self.heard * 1000 // SAMPLE_RATE - self.session.cfg.offset_ms
        self.pcm = PcmInput(self.cfg.rate)

    def idle_s(self) -> float:
        """How long the client may send nothing: between turns (no session since its last commit) a
        push-to-talk client holds nothing, so it may wait far longer than while it speaks."""
        return idle_limit(self.live.idle_timeout_s, waiting=self.session is None)

    async def audio(self, data: bytes) -> None:
        raise StreamError("invalid_event", "send JSON events (audio goes base64 in input_audio_buffer.append)")

    async def failed(self, err: StreamError) -> bool:
        await send(self.ws, error(err.code, err.message))
        return not err.fatal

    async def end(self, gone: bool) -> None:
        await self.live.leave(self.session)
        try:
            await self.ws.close(1000)
        except (RuntimeError, WebSocketDisconnect):
            pass  # the client went away first


async def _deliver(ws: WebSocket, items: _Items, ev: Event, shift: int = 0) -> None:
    """A live session's event in OpenAI's terms (``shift``: its times to this connection's)."""
    if isinstance(ev, Partial):
        if ev.ahead:  # items begin in the order they were said: after the final of the one before
            return
        item, new = items.item(ev.utterance_id)
        if new:
            await send(ws, event("input_audio_buffer.speech_started", item_id=item, audio_start_ms=ev.start_ms + shift))
        settled = ev.text[:ev.stable]  # deltas only ever append: only what stays
        if more := grown(items.said.get(item, ""), settled):
            items.said[item] = settled
            await send(ws, event("conversation.item.input_audio_transcription.delta", item_id=item,
                                  content_index=0, delta=more))
    elif isinstance(ev, Final):
        u = ev.utterance
        item, new = items.item(ev.utterance_id)
        if new:
            await send(ws, event("input_audio_buffer.speech_started", item_id=item, audio_start_ms=u.start_ms + shift))
        await send(ws, event("input_audio_buffer.speech_stopped", item_id=item, audio_end_ms=u.end_ms + shift))
        await send(ws, event("input_audio_buffer.committed", item_id=item, previous_item_id=items.last))
        await send(ws, event("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                              transcript=u.shown_text,
                              usage={"type": "duration", "seconds": (u.end_ms - u.start_ms) / 1000}))
        items.last, items.said[item] = item, "done"
    elif isinstance(ev, Error) and ev.code == ErrorCode.ENGINE and ev.utterance_id is not None:
        return  # its item's completed transcript is the gap to replay (a failed item would come out of order)
    elif isinstance(ev, Error):
        await send(ws, error(ev.code, ev.message))
