"""The native protocol's sockets (docs/protocol.md): one audio source at ``/v1/stream``; a hearing's
subscribers (clerk screens, caption feeds) at ``/v1/hearings/{id}/events``. Wire-level checks live
here; the audio work lives in StreamSession (streaming/session.py)."""
from __future__ import annotations

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..access.guard import Denied
from ..access.scopes import AccessRole, Action
from ..asr import commands
from ..asr.base import DecodeOptions
from ..streaming.live import Gate, LiveHearings, PcmInput, open_gate
from ..streaming.protocol import PROTOCOL, ErrorCode, KeepAlive, Start, Stop, StreamError, error_event, parse_control
from ..streaming.session import SessionConfig, StreamSession
from . import deps
from .auth import ws_deny, ws_enter
from .sockets import follow, gate, receive, send

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Native protocol: one audio source (see docs/protocol.md)."""
    access = deps.access(ws)
    if who := await ws_enter(ws, access):
        with gate(access, deps.quota(ws), who) as check:
            await native_stream(ws, deps.live(ws), check)


@router.websocket("/v1/hearings/{hearing_id}/events")
async def events(ws: WebSocket, hearing_id: str) -> None:
    """Every channel's partials and finals of one hearing, for clerk screens and caption feeds."""
    access = deps.access(ws)
    if not (who := await ws_enter(ws, access)):
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
    session: StreamSession | None = None
    pcm: PcmInput | None = None
    start: Start | None = None

    async def emit(event: dict) -> None:
        if start and start.dictation and event["type"] == "final":
            event = {**event, "dictation": commands.parse(event["utterance"]["text"])}
        live.publish(start.hearing_id if start else None, event)
        await send(ws, event)

    try:
        while True:
            try:
                msg = await receive(ws, live.idle_timeout_s)
                if msg.get("text") is not None:
                    ctl = parse_control(msg["text"])
                    if isinstance(ctl, Start):
                        if session is not None:
                            raise StreamError(ErrorCode.ALREADY_STARTED, "this connection has already started")
                        court, courtroom = await gate(ctl.hearing_id)
                        start, pcm = ctl, PcmInput(ctl.sample_rate)
                        cfg = SessionConfig(hearing_id=ctl.hearing_id, channel=ctl.channel, role=ctl.role,
                                            speaker=ctl.speaker, court=court, courtroom=courtroom,
                                            options=DecodeOptions(language=ctl.language, hotwords=tuple(ctl.hotwords)))
                        session = await live.join(cfg, emit)
                        await send(ws, {"type": "ready", "protocol": PROTOCOL, "session_id": session.label,
                                         "hearing_id": ctl.hearing_id, "channel": ctl.channel,
                                         "speaker": session.speaker, "sample_rate": ctl.sample_rate,
                                         "offset_ms": cfg.offset_ms, **live.gateway})
                    elif isinstance(ctl, Stop):
                        break
                    elif isinstance(ctl, KeepAlive):
                        await send(ws, {"type": "keepalive"})
                elif msg.get("bytes") is not None:
                    if session is None or pcm is None:
                        raise StreamError(ErrorCode.NOT_STARTED, "send a start message before audio")
                    audio, warning = pcm.convert(msg["bytes"])
                    if warning:
                        await send(ws, error_event(ErrorCode.ODD_PCM, warning))
                    await session.feed(audio)
            except StreamError as err:
                if not err.announced:
                    await send(ws, error_event(err.code, err.message))
                if err.fatal:
                    break
    except WebSocketDisconnect:
        pass  # abrupt disconnect: what was received is still finalized below
    finally:
        utterances = session.utterances if session else []
        await live.leave(session)
        if await send(ws, {"type": "end", "utterances": len(utterances)}):
            await ws.close(1000)


async def hearing_events(ws: WebSocket, live: LiveHearings, hearing_id: str) -> None:
    """An accepted subscriber's socket: every event of the hearing until it goes away."""
    await follow(ws, live.hub, hearing_id, lambda event: send(ws, event),
                 hello={"type": "subscribed", "hearing_id": hearing_id, "protocol": PROTOCOL, **live.gateway})
