"""What every WebSocket endpoint shares: sending that never raises on a client gone, receiving
with an idle limit (read ahead of a busy decoder, so keepalives stay answered), following a
hearing's events, and the gate a source passes before its audio is taken (the token's scope, its
stream quota, the audit log), and how the sockets end when the server stops."""
from __future__ import annotations

import asyncio
from collections import deque
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Iterator, Protocol

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .. import metrics
from . import deps
from ..access.guard import Access, Denied, note_denied
from ..access.scopes import Principal
from ..logs import get_logger
from ..streaming.events import Event
from ..streaming.hub import Hub, SlowSubscriber
from ..streaming.live import Admitted, Gate
from ..streaming.protocol import ErrorCode, StreamError, error_event

log = get_logger(__name__)

# how a socket ends while the server stops (SIGTERM, a redeploy): "service restart", come back
RESTART = (1012, "the server is restarting: reconnect; everything received is in the record")


class Stopping:
    """The server is going down: each audio socket stops reading, finishes what it received (its
    client gets the last finals) and closes with 1012, which tells a client to come back, before
    uvicorn drops the connections (it closed them at once, with 1012, the last utterance unsaid)."""

    def __init__(self) -> None:
        self.begun = asyncio.Event()
        self._open = 0
        self._none = asyncio.Event()
        self._none.set()

    @contextmanager
    def source(self) -> Iterator[None]:
        """One audio socket's life, counted so the server knows when all have finished."""
        self._open += 1
        self._none.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._none.set()

    async def finish(self, limit_s: float) -> bool:
        """Stop the audio sockets and wait until they have finished (False: ``limit_s`` passed first)."""
        self.begun.set()
        try:
            await asyncio.wait_for(self._none.wait(), limit_s)
            return True
        except asyncio.TimeoutError:
            log.warning("sources still finishing when the server stopped waiting", sources=self._open)
            return False


async def close(ws: WebSocket) -> None:
    """The server ends a socket: 1000, or 1012 (come back) while it stops, or the code of the
    refusal that ended it (4401/4403/4404/4429/4503, as at the handshake: a client that reads only
    close codes must not take a refused stream for one done); a client gone is no error."""
    code, reason = RESTART if deps.stopping(ws).begun.is_set() else (1000, "")
    if (refused := getattr(ws.state, "refused", None)) is not None:
        code, reason = refused, ""
    try:
        await ws.close(code, reason)
    except (RuntimeError, WebSocketDisconnect, OSError):
        pass  # the client went away first


async def send(ws: WebSocket, event: Event | dict) -> bool:
    """An event in its JSON form (or a socket's own reply: ``ready``, ``end``, ``cue``…); False once
    the client is gone."""
    if ws.application_state != WebSocketState.CONNECTED or ws.client_state != WebSocketState.CONNECTED:
        return False
    try:
        await ws.send_json(event.wire() if isinstance(event, Event) else event)
        return True
    except (WebSocketDisconnect, RuntimeError, OSError):
        return False


class Attention:
    """Whether the server is at work on what the client sent (an offline file decoding, a file's
    last finals): the client waits on it meanwhile, so its idle clock stands still, and starts
    again when the work is done."""

    def __init__(self) -> None:
        self.working = False
        self.since = asyncio.get_running_loop().time()

    @contextmanager
    def work(self) -> Iterator[None]:
        self.working = True
        try:
            yield
        finally:
            self.working = False
            self.since = asyncio.get_running_loop().time()


async def receive(ws: WebSocket, timeout: float | Callable[[], float], attention: Attention | None = None,
                  stop: asyncio.Event | None = None) -> Message | None:
    """The next client message. Raises WebSocketDisconnect when the client went away and a fatal
    StreamError (idle_timeout) when it sent nothing for ``timeout`` seconds (a callable: asked again
    when that time is up, as the protocol may have come to allow more meanwhile) while the server
    was not at work for it (``attention``); None once ``stop`` is set and no message has come (one
    that has is returned: the socket's own read is the one thing waited on and cancelled)."""
    limit = timeout if callable(timeout) else lambda: timeout
    loop = asyncio.get_running_loop()
    start = loop.time()
    message = asyncio.ensure_future(ws.receive())
    halt = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        while not message.done():
            if halt is not None and halt.done():
                return None
            if attention is not None and attention.working:  # nothing to count yet: look again later
                left = limit()
            else:
                quiet = start if attention is None else max(start, attention.since)
                left = limit() - (loop.time() - quiet)
            if left <= 0:
                raise StreamError(ErrorCode.IDLE_TIMEOUT, f"no message for {limit():.0f} s", fatal=True)
            await asyncio.wait({message} if halt is None else {message, halt}, timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)
    finally:
        message.cancel()
        if halt is not None:
            halt.cancel()
    msg = message.result()
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    return msg


class Adapter(Protocol):
    """One wire protocol (native, FunASR's, OpenAI Realtime) over the receive loop all share (``run``)."""

    async def text(self, text: str) -> bool:
        """A text frame; False: the client said it is done."""

    async def audio(self, data: bytes) -> None:
        """A binary frame."""

    async def failed(self, err: StreamError) -> bool:
        """Tell the client, in the protocol's words; False: the connection ends."""

    async def end(self, gone: bool) -> None:
        """Finish what came (``gone``: the client disconnected) and close: nothing received is lost."""


# how long a socket holding no session may send nothing (FunASR's page configured, before its Start
# click; a push-to-talk Realtime client between turns): it holds no stream, no hearing, no decoder
WAITING_IDLE_S = 1800.0


def idle_limit(idle_timeout_s: float, *, waiting: bool) -> float:
    """How long a client may send nothing: ``idle_timeout_s``, or ``WAITING_IDLE_S`` while its
    protocol holds no session for it (``waiting``)."""
    return max(idle_timeout_s, WAITING_IDLE_S) if waiting else idle_timeout_s
MAX_BACKLOG_BYTES = 16 << 20  # frames read ahead of a busy decoder: 8.7 min of 16 kHz PCM16


@dataclass
class _Closed:
    gone: bool  # the client went away (else: it idled, and the error before this said so, or the server stops)


class _Backlog:
    """Frames read as they come, for the protocol to take in order. The socket is read even while
    the protocol waits on the decoder (a client replaying faster than it decodes), so the
    connection's keepalive pongs are read and the connection stays up; past ``limit`` bytes waiting
    the socket is not read until the decoder catches up (TCP then slows the client)."""

    def __init__(self, limit: int = MAX_BACKLOG_BYTES):
        self.limit = limit
        self._items: deque[tuple[Message | StreamError | _Closed, int]] = deque()
        self._bytes = 0
        self._changed = asyncio.Event()

    async def put(self, item: Message | StreamError | _Closed, size: int = 0) -> None:
        if size and self._bytes >= self.limit:
            log.warning("the decoder is far behind this source: its socket is read no further until it "
                        "catches up", read_ahead_bytes=self._bytes)
            while self._bytes >= self.limit:
                await self._wait()
        self._items.append((item, size))
        self._count(size)

    async def get(self) -> Message | StreamError | _Closed:
        while not self._items:
            await self._wait()
        item, size = self._items.popleft()
        self._count(-size)
        return item

    def clear(self) -> None:
        """What the protocol will not take (sent after the client said it was done)."""
        self._count(-self._bytes)
        self._items.clear()

    def _count(self, size: int) -> None:
        self._bytes += size
        metrics.READ_AHEAD.inc(size)
        self._changed.set()

    async def _wait(self) -> None:
        self._changed.clear()
        await self._changed.wait()


async def _read(ws: WebSocket, idle_s: float | Callable[[], float], backlog: _Backlog,
                attention: Attention, stop: asyncio.Event) -> None:
    """The socket's one reader: every frame into ``backlog`` until the server stops (``stop``),
    then how the reading ended."""
    ending = _Closed(gone=True)
    try:
        while True:
            msg = await receive(ws, idle_s, attention, stop)
            if msg is None:
                ending = _Closed(gone=False)  # the server stops: read no further, finish what came
                break
            await backlog.put(msg, len(msg.get("bytes") or msg.get("text") or ""))
    except StreamError as err:  # idle: said to the client by the protocol, in order
        ending = _Closed(gone=False)
        await backlog.put(err)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await backlog.put(ending)


async def run(ws: WebSocket, idle_timeout_s: float | Callable[[], float], adapter: Adapter) -> None:
    """The receive loop of every audio socket: frames to the protocol until the client is done, a
    fatal error, idleness (``idle_timeout_s``: or how long, asked before each frame; never counted
    while the protocol is at work on a frame), a disconnect or the server stopping (``Stopping``);
    then the protocol finishes what came."""
    stopping = deps.stopping(ws)
    with stopping.source():
        await _run(ws, idle_timeout_s, adapter, stopping.begun)


async def _run(ws: WebSocket, idle_timeout_s: float | Callable[[], float], adapter: Adapter,
               stop: asyncio.Event) -> None:
    backlog, attention = _Backlog(), Attention()
    reader = asyncio.create_task(_read(ws, idle_timeout_s, backlog, attention, stop))
    gone = False
    try:
        while True:
            msg = await backlog.get()
            if isinstance(msg, _Closed):
                gone = msg.gone
                break
            try:
                if isinstance(msg, StreamError):
                    raise msg
                with attention.work():
                    if msg.get("text") is not None:
                        if not await adapter.text(msg["text"]):
                            break
                    elif msg.get("bytes") is not None:
                        await adapter.audio(msg["bytes"])
            except StreamError as err:
                if err.fatal and err.close_code is not None:
                    ws.state.refused = err.close_code  # ``close`` says it, whichever protocol closes
                if not await adapter.failed(err):
                    break
    except WebSocketDisconnect:
        gone = True
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        backlog.clear()
        await adapter.end(gone)


@asynccontextmanager
async def gate(access: Access, who: Principal) -> AsyncIterator[Gate]:
    """May ``who`` send audio into this hearing (None: audio of no hearing)? The connection holds
    one stream slot of ``who``'s quota from its first start until it closes."""
    held: list[Principal] = []

    async def check(hearing_id: str | None, *, into_room: bool = True) -> Admitted:
        try:
            hearing_id = await access.admit(who, hearing_id, into_room=into_room)
            if access.enabled and not held:
                if why := await asyncio.to_thread(access.limits.take, who):
                    raise Denied(503, ErrorCode.BUSY, why)
                held.append(who)
            await access.audited("send_audio", who, hearing=hearing_id)
        except Denied as err:
            await note_denied(access, who, err, hearing=hearing_id)
            raise StreamError(err.code, err.message, fatal=True, close_code=err.ws_code) from None
        return Admitted(hearing_id, who.court, who.room)
    try:
        yield check
    finally:
        for holder in held:
            await asyncio.to_thread(access.limits.give, holder)


async def follow(ws: WebSocket, hub: Hub, hearing_id: str, deliver: Callable[[Event], Awaitable[bool]], *,
                 hello: dict | Callable[[], Awaitable[dict]]) -> None:
    """Subscribe, say ``hello`` (a callable: made once subscribed, so no event falls between what it
    says and what follows), then hand every event of the hearing to ``deliver`` until the client
    goes away or ``deliver`` returns False. A subscriber that falls behind is told and closed (1008)."""
    sub = hub.subscribe(hearing_id)
    reader = asyncio.create_task(_drain_client(ws))
    try:
        if await send(ws, hello if isinstance(hello, dict) else await hello()):
            while not reader.done():
                getter = asyncio.create_task(sub.next())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                if not await deliver(getter.result()):
                    break
    except SlowSubscriber as err:
        await send(ws, error_event("slow_subscriber", str(err)))
        await ws.close(1008)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away mid-send
    finally:
        reader.cancel()
        hub.unsubscribe(hearing_id, sub)


async def _drain_client(ws: WebSocket) -> None:
    """Subscribers send nothing but keepalives; returning means the client went away."""
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
