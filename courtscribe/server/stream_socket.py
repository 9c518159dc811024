"""The native protocol's sockets (docs/protocol.md): one audio source at ``/v1/stream``; a hearing's
subscribers (clerk screens, caption feeds) at ``/v1/hearings/{id}/events``. Wire-level checks live
here; the audio work lives in StreamSession (streaming/session.py)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.websockets import WebSocket

from ..access.guard import Denied
from ..access.scopes import AccessRole, Action
from ..logs import get_logger
from ..records.reading import NotFound
from ..asr import commands
from ..asr.base import DecodeOptions
from ..streaming.events import Event, Final
from ..streaming.live import Gate, LiveHearings, PcmInput, open_gate
from ..streaming.protocol import PROTOCOL, ErrorCode, KeepAlive, Start, Stop, StreamError, error_event, parse_control
from ..streaming.session import StreamSession
from ..streaming.source import SessionConfig
from . import deps
from .auth import ws_deny, ws_enter
from ..redaction.public import dark
from .captions import blanks
from .sockets import close, follow, gate, run, send

log = get_logger(__name__)

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Native protocol: one audio source (see docs/protocol.md)."""
    access = deps.access(ws)
    async with ws_enter(ws, access) as who:
        if who:
            async with gate(access, who) as check:
                await native_stream(ws, deps.live(ws), check)


@router.websocket("/v1/hearings/{hearing_id}/events")
async def events(ws: WebSocket, hearing_id: str) -> None:
    """Every channel's partials and finals of one hearing, for clerk screens and caption feeds."""
    access = deps.access(ws)
    async with ws_enter(ws, access) as who:
        if not who:
            return
        try:
            if who.role is AccessRole.caption:  # every partial and final, blanked or not: never a caption feed
                raise Denied(403, "forbidden", f"a caption token reads the caption feed "
                             f"(/v1/hearings/{hearing_id}/captions), not the hearing's events")
            await access.check(who, Action.read, hearing_id)
        except Denied as err:
            await ws_deny(ws, access, err, who, hearing=hearing_id)
            return
        await hearing_events(ws, deps.live(ws), hearing_id)


async def native_stream(ws: WebSocket, live: LiveHearings, gate: Gate = open_gate) -> None:
    """An accepted socket of one audio source; ``gate`` decides whether it may send its start's audio."""
    await run(ws, live.idle_timeout_s, _Native(ws, live, gate))


class _Native:
    """The native protocol (docs/protocol.md): ``start``, PCM16 frames, ``stop``; events back."""

    def __init__(self, ws: WebSocket, live: LiveHearings, gate: Gate):
        self.ws, self.live, self.gate = ws, live, gate
        self.session: StreamSession | None = None
        self.pcm: PcmInput | None = None
        self.start: Start | None = None
        self.spoken = commands.Dictation()  # a dictation's finals in turn: a command a pause cut
        self.stopped = False  # the client said stop: it has nothing more to send

    async def emit(self, event: Event) -> None:
        start = self.start
        if start and start.dictation and isinstance(event, Final):
            event = event.model_copy(update={"dictation": self.spoken.parse(event.utterance.text)})
        await send(self.ws, event)

    async def text(self, text: str) -> bool:
        ctl = parse_control(text)
        if isinstance(ctl, Start):
            await self._begin(ctl)
        elif isinstance(ctl, Stop):
            self.stopped = True
            return False
        elif isinstance(ctl, KeepAlive):
            await send(self.ws, {"type": "keepalive"})
        return True

    async def _begin(self, ctl: Start) -> None:
        if self.session is not None:
            raise StreamError(ErrorCode.ALREADY_STARTED, "this connection has already started")
        admitted = await self.gate(ctl.hearing_id)
        self.start, self.pcm = ctl, PcmInput(ctl.sample_rate)
        cfg = SessionConfig(hearing_id=admitted.hearing_id, channel=ctl.channel, role=ctl.role,
                            speaker=ctl.speaker, court=admitted.court, courtroom=admitted.courtroom,
                            resume_ms=ctl.resume_ms, seat=ctl.seat,
                            options=DecodeOptions(language=ctl.language, hotwords=self._hotwords(ctl)))
        self.session = await self.live.join(cfg, self.emit)
        await send(self.ws, {"type": "ready", "protocol": PROTOCOL, "session_id": self.session.label,
                             "hearing_id": cfg.hearing_id, "channel": ctl.channel, "speaker": self.session.speaker,
                             "sample_rate": ctl.sample_rate, "offset_ms": cfg.offset_ms, **self.live.gateway})

    @staticmethod
    def _hotwords(ctl: Start) -> tuple[str, ...]:
        """A dictation's hotwords spare its commands: a name said like 逗号 must not take its place."""
        return commands.spare(ctl.hotwords) if ctl.dictation else tuple(ctl.hotwords)

    async def audio(self, data: bytes) -> None:
        if self.session is None or self.pcm is None:
            raise StreamError(ErrorCode.NOT_STARTED, "send a start message before audio")
        await self.session.feed(self.pcm.convert(data))

    async def failed(self, err: StreamError) -> bool:
        if not err.announced:
            await send(self.ws, error_event(err.code, err.message))
        return not err.fatal

    async def end(self, gone: bool) -> None:
        """An abrupt disconnect too: what was received is still finalized."""
        utterances = self.session.utterances if self.session else []
        await self.live.leave(self.session)
        said = {"type": "end", "utterances": len(utterances)}
        if deps.stopping(self.ws).begun.is_set() and not self.stopped:  # come back (start's resume_ms)
            said["reason"] = "server_restart"
        if await send(self.ws, said):
            await close(self.ws)


async def hearing_events(ws: WebSocket, live: LiveHearings, hearing_id: str) -> None:
    """An accepted subscriber's socket: every event of the hearing until it goes away. Its first
    message says whether the captions are blanked now: a screen that (re)connects shows the state
    the court ordered, not the one it saw before it lost the socket."""
    async def hello() -> dict:
        said = {"type": "subscribed", "hearing_id": hearing_id, "protocol": PROTOCOL, **live.gateway}
        if (dark := await asyncio.to_thread(_blanked_now, live, hearing_id)) is not None:
            said["blanked"] = dark
        return said
    await follow(ws, live.hub, hearing_id, lambda event: send(ws, event), hello=hello)


def _blanked_now(live: LiveHearings, hearing_id: str) -> bool | None:
    """Whether the court has the hearing's captions blanked now (a hearing not created yet: no); None
    when the record store cannot say (the screen keeps what it showed, and its events go on)."""
    try:
        stretches = blanks(live.records, hearing_id) if live.records is not None else []
    except NotFound:  # screens may follow a hearing its first source will open
        return False
    except Exception as err:  # noqa: BLE001 - a store outage must not cost the clerk her screen
        log.warning("caption switch state unknown", hearing=hearing_id, error=repr(err))
        return None
    return dark(stretches)
