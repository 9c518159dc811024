"""OpenAI's Realtime transcription protocol at ``/v1/realtime?intent=transcription``, backed by the
same live sessions as the native protocol (so a hearing, its hotwords and diarization work
through it too: ``&hearing=ID``, an extension OpenAI clients need not know).

Client: ``session.update`` (GA) or ``transcription_session.update`` (beta) with the input format
(PCM16, 24 kHz by default), the transcription's language and prompt, its turn detection (server
VAD, or ``null``: manual commits); ``input_audio_buffer.append`` with base64 PCM16;
``input_audio_buffer.commit`` ends the current turn at once; ``…clear`` drops what is not being
transcribed yet. Server: the ``…created``/``…updated`` session, then with server VAD per utterance
``input_audio_buffer.speech_started``/``speech_stopped``/``committed``, the item it adds
(``conversation.item.added``, beta ``…created``), ``conversation.item.input_audio_transcription.delta``
(text as it grows), a diarizing model's ``.segment`` (who said it) and ``.completed`` (the final line;
a stretch that could not be recognized says so in the transcript, never a silent hole), then GA's
``conversation.item.done``; with manual commits one item per commit, holding all its text (and a
diarizing model's segment per line).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field

import numpy as np

from fastapi import APIRouter
from starlette.websockets import WebSocket

from ..asr.base import DecodeOptions
from ..audio import SAMPLE_RATE
from ..logs import get_logger
from ..records.model import HEARING_ID, Utterance
from ..text import grown, joined
from ..access.guard import Denied
from ..streaming.events import Error, Event, Final, Partial
from ..streaming.live import Admitted, Gate, LiveHearings, PcmInput, open_gate
from ..streaming.protocol import MAX_FRAME_BYTES, ErrorCode, StreamError
from ..streaming.session import StreamSession
from ..streaming.source import ANY_CHANNEL, SessionConfig
from . import deps
from .realtime_setup import Setup
from .auth import ws_deny, ws_enter
from .sockets import close, gate, idle_limit, run, send

MAX_APPEND_BYTES = 15 << 20  # OpenAI's limit on one append's audio (base64: cluster.proxy.MAX_WS_MESSAGE)
MAX_APPEND_B64 = 4 * -(-MAX_APPEND_BYTES // 3)
MAX_HELD_BYTES = MAX_APPEND_BYTES  # a manual turn's audio waiting for its commit; past it, transcribed


log = get_logger(__name__)
router = APIRouter()


@router.websocket("/v1/realtime")
async def realtime(ws: WebSocket) -> None:
    """OpenAI's Realtime transcription protocol (``?intent=transcription``; ``&hearing=ID``)."""
    access = deps.access(ws)
    async with ws_enter(ws, access) as who:
        if not who:
            return
        hearing_id = ws.query_params.get("hearing")
        if ws.query_params.get("intent") != "transcription" or (hearing_id and
                                                                not re.fullmatch(HEARING_ID, hearing_id)):
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
class _Items:
    """Our utterance ids as OpenAI conversation items, and what each has been told so far."""
    ids: dict[str, str] = field(default_factory=dict)
    said: dict[str, str] = field(default_factory=dict)
    last: str | None = None
    committed: int = 0  # items committed on this connection
    lines: list[Utterance] = field(default_factory=list)  # a manual turn's lines, for its one item
    ga: bool = True  # the client speaks the GA protocol (``session.update``), else the beta one
    segments: bool = False  # it asked a diarizing model: each line is also a speaker segment (GA)
    before: dict[str, str | None] = field(default_factory=dict)  # a committed item's previous, until done

    def item(self, uid: str) -> tuple[str, bool]:
        """The item of a line (a flagged stretch of an utterance, ``<id>-g1``, is an item of its own)."""
        new = uid not in self.ids
        if new:
            self.ids[uid] = _id("item")
        return self.ids[uid], new

    def commit(self, item: str) -> list[dict]:
        """``item`` committed, the next after the last, and added to the conversation as OpenAI
        says it will be (GA ``conversation.item.added``, beta ``conversation.item.created``): a
        client that keeps the conversation's items finds it before its transcript."""
        committed = event("input_audio_buffer.committed", item_id=item, previous_item_id=self.last)
        added = event("conversation.item.added" if self.ga else "conversation.item.created",
                      previous_item_id=self.last, item=_user_audio(item, None))
        self.before[item] = self.last
        self.last = item
        self.committed += 1
        return [committed, added]

    def done(self, item: str, transcript: str) -> list[dict]:
        """GA's ``conversation.item.done`` once the item's transcript is in (beta has none)."""
        return [event("conversation.item.done", previous_item_id=self.before.pop(item, None),
                      item=_user_audio(item, transcript))] if self.ga else []


def _segment(item: str, u: Utterance) -> dict:
    """A line of ``item`` as a diarizing model's segment: who said it, when (the connection's time)."""
    return event("conversation.item.input_audio_transcription.segment", item_id=item, content_index=0, id=u.id,
                 start=u.start_ms / 1000, end=u.end_ms / 1000, speaker=u.speaker, text=u.shown_text)


def _user_audio(item: str, transcript: str | None) -> dict:
    """A committed turn as OpenAI's user message item (its audio is not sent back)."""
    return {"id": item, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": transcript}]}


@dataclass
class _Held:
    """A manual turn's audio as appended since its last commit, not yet transcribed (so a clear
    drops it): runs of bytes at the rate they came in."""
    runs: list[tuple[int, bytearray]] = field(default_factory=list)
    size: int = 0  # bytes

    def add(self, rate: int, raw: bytes) -> None:
        if self.runs and self.runs[-1][0] == rate:
            self.runs[-1][1].extend(raw)
        else:
            self.runs.append((rate, bytearray(raw)))
        self.size += len(raw)

    def take(self) -> list[tuple[int, bytearray]]:
        runs, self.runs, self.size = self.runs, [], 0
        return runs

    def ms(self) -> int:
        return sum(len(raw) // 2 * 1000 // rate for rate, raw in self.runs)


class _Input:
    """PCM16 at the client's rate as 16 kHz: a rate changed by a session update starts a new
    resampler, from the next audio on."""

    def __init__(self) -> None:
        self.rate = 0
        self.pcm: PcmInput | None = None

    def convert(self, rate: int, raw: bytes) -> np.ndarray:
        if self.pcm is None or rate != self.rate:
            self.rate, self.pcm = rate, PcmInput(rate)
        return self.pcm.convert(raw)


async def realtime_stream(ws: WebSocket, live: LiveHearings, gate: Gate = open_gate, hearing_id: str | None = None) -> None:
    """An accepted Realtime client's socket."""
    adapter = _Realtime(ws, live, gate, hearing_id)
    await send(ws, event("session.created", session=adapter.cfg.view(ga=True)))
    await run(ws, adapter.idle_s, adapter)


class _Realtime:
    """OpenAI's Realtime events: session updates, base64 audio appended and committed. With server
    VAD the audio is transcribed as it comes, each utterance an item; with ``turn_detection: null``
    a turn's audio waits for its commit (a clear drops it) and the commit is one item."""

    def __init__(self, ws: WebSocket, live: LiveHearings, gate: Gate, hearing_id: str | None):
        self.ws, self.live, self.gate, self.hearing_id = ws, live, gate, hearing_id
        self.cfg, self.items, self.ga = Setup(), _Items(), True
        self.session: StreamSession | None = None  # audio fed since the last commit
        self.input, self.held = _Input(), _Held()
        self.heard = 0  # samples (16 kHz) of this connection's audio so far: OpenAI's times count from its start
        self.turn = 0  # samples (16 kHz) fed since the last commit
        self.turn_from = 0  # items committed before this turn's session began
        self.admitted = False  # the token may send audio here: asked before any is held

    async def text(self, text: str) -> bool:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise StreamError("invalid_json", "the event is not JSON") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind in ("session.update", "transcription_session.update"):
            await self._update(kind, data.get("session"))
        elif kind == "input_audio_buffer.append":
            await self._append(data.get("audio"))
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        elif kind == "input_audio_buffer.clear":
            await self._clear()
        else:
            raise StreamError("unknown_event", f"event type {kind!r} is not served here (transcription only)")
        return True

    async def _update(self, kind: str, session: object) -> None:
        cfg = self.cfg.updated(session)
        if cfg.manual != self.cfg.manual and (self.held.size or self.session is not None):
            raise StreamError("invalid_value", "turn_detection changes between turns: commit or clear the audio "
                              "appended since the last commit first")
        self.cfg, self.ga = cfg, kind == "session.update"
        self.items.ga = self.ga
        self.items.segments = self.ga and "diarize" in cfg.model  # a GA event: beta clients have none
        if self.session is not None:  # the hearing's vocabulary stays with the client's words
            await self.live.own_hotwords(self.session, tuple((cfg.prompt or "").split()))
        await send(self.ws, event(kind.replace("update", "updated"), session=cfg.view(self.ga)))

    async def _append(self, b64: object) -> None:
        if b64 is not None and not isinstance(b64, str):
            raise StreamError("invalid_audio", "audio must be base64 PCM16")
        if len(b64 or "") > MAX_APPEND_B64:
            raise StreamError("input_audio_buffer_append_too_large", f"one append holds at most "
                              f"{MAX_APPEND_BYTES >> 20} MiB of audio: send it in several")
        try:
            raw = base64.b64decode(b64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise StreamError("invalid_audio", "audio must be base64 PCM16") from None
        if not raw:
            return
        if not self.cfg.manual:
            await self._feed(self.cfg.rate, raw)
            return
        if not self.admitted:  # a token that may send no audio here never has any held for it
            await self._admit()
        if self.held.size + len(raw) > MAX_HELD_BYTES:  # a long turn: what came so far is transcribed now
            await self._flush()
        self.held.add(self.cfg.rate, raw)

    async def _feed(self, rate: int, raw: bytes) -> None:
        if self.session is None:
            await self._join()
        assert self.session is not None
        for at in range(0, len(raw), MAX_FRAME_BYTES):
            audio = self.input.convert(rate, raw[at:at + MAX_FRAME_BYTES])
            self.heard += audio.size
            self.turn += audio.size
            await self.session.feed(audio)

    async def _flush(self) -> None:
        for rate, raw in self.held.take():
            await self._feed(rate, bytes(raw))

    async def _commit(self) -> None:
        """The turn's audio transcribed and its lines out. Every commit is answered: with server VAD
        by the items of its utterances (one with an empty transcript when it held no speech), with
        manual turns by one item holding all its text."""
        if self.session is None and not self.held.size:
            raise StreamError("input_audio_buffer_commit_empty", "nothing was appended since the last commit")
        await self._flush()
        await self.live.leave(self.session)
        self.session = None
        seconds, self.turn = self.turn / SAMPLE_RATE, 0
        if self.cfg.manual or self.items.committed == self.turn_from:
            lines, self.items.lines = self.items.lines, []
            await _commit_item(self.ws, self.items, lines, seconds)

    async def _clear(self) -> None:
        """Drops the audio appended since the last commit that is not being transcribed yet; says
        exactly that when some of it is."""
        cleared = self.held.ms()
        self.held.take()
        if self.session is not None:
            raise self._not_all_cleared(cleared)
        await send(self.ws, event("input_audio_buffer.cleared"))

    def _not_all_cleared(self, cleared_ms: int) -> StreamError:
        """What a clear left: server VAD transcribes audio as it comes; a manual turn past
        ``MAX_HELD_BYTES``, what came before."""
        why = (f"a turn holds at most {MAX_HELD_BYTES >> 20} MiB before it is transcribed" if self.cfg.manual
               else "server VAD transcribes audio as it comes, into the record")
        kept = f"{self.turn * 1000 // SAMPLE_RATE} ms appended since the last commit"
        said = f"cleared the last {cleared_ms} ms appended; the {kept} before them" if cleared_ms else \
            f"nothing was cleared: the {kept}"
        return StreamError("input_audio_buffer_clear_incomplete", f"{said} are being transcribed already ({why}) "
                           "and stay: commit them")

    async def _join(self) -> None:
        """A session from the first audio after the start or a commit; its times (hearing time with
        ``&hearing=``, else from 0 at each session) are told from this connection's first audio, as
        OpenAI counts them."""
        admitted = await self._admit()
        options = DecodeOptions(language=self.cfg.language or "zh", hotwords=tuple((self.cfg.prompt or "").split()))
        shift, manual = [0], self.cfg.manual  # turn detection changes only between sessions

        async def emit(ev: Event) -> None:
            await _deliver(self.ws, self.items, ev, shift[0], manual=manual)
        self.session = await self.live.join(SessionConfig(hearing_id=admitted.hearing_id, channel=ANY_CHANNEL,
                                                          court=admitted.court,
                                                          courtroom=admitted.courtroom, options=options), emit)
        shift[0] = self.heard * 1000 // SAMPLE_RATE - self.session.cfg.offset_ms
        self.turn_from = self.items.committed

    async def _admit(self) -> Admitted:
        """The gate's word on this connection's audio (its token's scope, the hearing, a stream slot)."""
        admitted = await self.gate(self.hearing_id)
        self.admitted = True
        return admitted

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
        """Nothing received is lost: audio not committed yet is transcribed into the record (and
        the client, if still there, gets its items; a manual turn, its one item)."""
        try:
            if self.cfg.manual and (self.held.size or self.session is not None):
                await self._commit()
        except StreamError as err:  # the gate refused it, as it refused the client before
            log.warning("audio at the close not transcribed", code=err.code, error=err.message)
        finally:
            await self.live.leave(self.session)
            await close(self.ws)


async def _commit_item(ws: WebSocket, items: _Items, lines: list[Utterance], seconds: float) -> None:
    """A commit's one item: all its lines' text (the record's gap notes included)."""
    item = _id("item")
    text = joined([u.shown_text for u in lines])
    for committed in items.commit(item):
        await send(ws, committed)
    if text:
        await send(ws, event("conversation.item.input_audio_transcription.delta", item_id=item, content_index=0,
                             delta=text))
    for u in lines if items.segments else []:
        await send(ws, _segment(item, u))
    await send(ws, event("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                         transcript=text, usage={"type": "duration", "seconds": seconds}))
    for done in items.done(item, text):
        await send(ws, done)


async def _deliver(ws: WebSocket, items: _Items, ev: Event, shift: int = 0, *, manual: bool = False) -> None:
    """A live session's event in OpenAI's terms (``shift``: its times to this connection's;
    ``manual``: lines wait for their commit's one item)."""
    if isinstance(ev, Error):
        if not (ev.code == ErrorCode.ENGINE and ev.utterance_id is not None):
            await send(ws, error(ev.code, ev.message))
        return  # an engine failure's item is the gap to replay (a failed item would come out of order)
    if manual:
        if isinstance(ev, Final):  # its times as the connection counts them, for its segment
            u = ev.utterance
            items.lines.append(u.model_copy(update={"start_ms": u.start_ms + shift, "end_ms": u.end_ms + shift}))
        return
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
        for committed in items.commit(item):
            await send(ws, committed)
        if items.segments:  # who said it, as OpenAI's diarizing model tells it
            await send(ws, _segment(item, u.model_copy(update={"start_ms": u.start_ms + shift,
                                                               "end_ms": u.end_ms + shift})))
        await send(ws, event("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                              transcript=u.shown_text,
                              usage={"type": "duration", "seconds": (u.end_ms - u.start_ms) / 1000}))
        for done in items.done(item, u.shown_text):
            await send(ws, done)
        items.said[item] = "done"
