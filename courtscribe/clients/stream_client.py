"""Async client for the native streaming protocol: replay a file (in real time or faster) or a live
source into a courtscribe server, and receive its partials and finals."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Protocol

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ..audio import SAMPLE_RATE as SR
from ..audio import AudioError, decode, float_to_pcm16
from .tape import Tape


@dataclass
class StreamResult:
    events: list[dict] = field(default_factory=list)
    sent_at: list[tuple[float, int]] = field(default_factory=list)  # (wall time, audio ms sent so far)
    ready: dict = field(default_factory=dict)  # the server's ready message (offset_ms: where in the hearing it starts)
    resumed: list[dict] = field(default_factory=list)  # its ready each time the source came back

    @property
    def finals(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "final"]

    @property
    def partials(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "partial"]

    @property
    def text(self) -> str:
        return "".join(e["utterance"]["text"] for e in self.finals)

    def audio_time_sent_at(self, wall: float) -> int:
        """How much audio (ms) the client had sent at a given wall time."""
        ms = 0
        for t, sent in self.sent_at:
            if t > wall:
                break
            ms = sent
        return ms


def chunks_from_file(path: str | Path, chunk_ms: int = 200, channels: int = 0) -> AsyncIterator[np.ndarray]:
    """The file's audio in chunks, decoded here and now: a missing or non-audio file is an
    AudioError at the call, before any connection is made. ``channels``: its first that many
    channels apart, each chunk (channels, samples); 0: all of it mixed to one."""
    whole = decode(path, mono=not channels)
    if channels > whole.channels:
        raise AudioError(f"{path}: it has {whole.channels} channel(s), not {channels}")
    audio = whole.samples[:channels] if channels else whole.channel(0)
    step = SR * chunk_ms // 1000

    async def chunks() -> AsyncIterator[np.ndarray]:
        for i in range(0, audio.shape[-1], step):
            yield audio[..., i:i + step]
    return chunks()


def fan_out(chunks: AsyncIterator[np.ndarray], n: int) -> list[AsyncIterator[np.ndarray]]:
    """One multichannel source (chunks of (channels, samples)) as ``n`` mono ones, read once on its one
    clock: a mixer's seat microphones, each streamed as a source of its own."""
    queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(n)]
    pump: list[asyncio.Task] = []
    gone: set[int] = set()  # channels whose stream ended: nothing more is kept for them

    async def read() -> None:
        try:
            async for chunk in chunks:
                for k, (q, row) in enumerate(zip(queues, chunk)):
                    if k not in gone:
                        q.put_nowait(row)
        except Exception as err:  # noqa: BLE001 - each channel's stream raises it where it takes audio
            for q in queues:
                q.put_nowait(err)
        finally:
            for q in queues:
                q.put_nowait(None)

    async def one(k: int) -> AsyncIterator[np.ndarray]:
        if not pump:
            pump.append(asyncio.ensure_future(read()))
        try:
            while (item := await queues[k].get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            gone.add(k)
            queues[k] = asyncio.Queue()  # what was waiting for it is let go
    return [one(k) for k in range(n)]


# a lost connection worth coming back to: going away, dropped, server error, restart, try again later
COME_BACK = {1001, 1006, 1011, 1012, 1013}
KEEP_S = 600.0  # audio kept to resend after a reconnect: 10 minutes (38 MB of float32)
READY_S = 60.0  # a server that has not answered a start by then will not: said, not waited on for ever
# what a server answers a source coming back that it will take a little later: the old connection
# still holds the channel or the token's streams, the record store is restarting too
TRY_AGAIN = {"channel_busy", "busy", "store_unavailable", "too_many_sockets"}
STEADY_S = 30.0  # a connection that lasted this long ended an outage (one failing at once did not)


class NotTakenBack(ConnectionError):
    """The server restarted (or held the channel) and did not take the stream back in time."""


class _Restart(Exception):
    """The server ended the stream to restart (1012) before it had all the source's audio, or still
    holds the channel for the connection this one replaces."""


def _lost(err: BaseException) -> bool:
    """Whether a failed connection is one to come back to: the server restarting or going away, the
    network dropping, the server not answering yet (a restart in progress)."""
    if isinstance(err, _Restart):
        return True
    if isinstance(err, ConnectionClosed):
        return (err.rcvd.code if err.rcvd is not None else 1006) in COME_BACK
    if isinstance(err, InvalidStatus):
        return err.response.status_code in (502, 503, 504)
    return isinstance(err, OSError)


async def stream(url: str, chunks: AsyncIterator[np.ndarray], *, hearing_id: str | None = None, channel: int = 0,
                 role: str | None = None, hotwords: list[str] | None = None, speed: float = 1.0,
                 on_event: Callable[[dict], None] | None = None, extra_headers: dict | None = None,
                 stop: asyncio.Event | None = None, token: str | None = None, ssl=None,
                 reconnect_s: float = 0.0, drain: bool = False,
                 on_unsent: OnUnsent | None = None,
                 first_ms: int | None = None, on_ready: Callable[[dict], None] | None = None,
                 seat: bool = False) -> StreamResult:
    """Send audio paced at ``speed`` × real time (0 = as fast as the server accepts) and collect events.
    Setting ``stop`` ends the audio early; the stream still closes properly and waits for its finals.
    ``token``: the recorder's access token; ``ssl``: an SSLContext for a wss:// server.
    ``reconnect_s``: when the server restarts or the connection drops mid-stream, keep trying to come
    back for this long (0: never), keeping the audio meanwhile, and resend it from where the server's
    archive ends (``resume_ms``); ``on_event`` also sees ``{"type": "reconnecting", "code": …}``.
    ``drain``: ``stop`` ends the source only (a microphone, which stops recording): what it recorded
    is still sent, the audio kept through an outage too. ``on_unsent(hearing_id, hearing_ms,
    audio)``: a stream that ends with audio the server may not have (given up on, stopped while
    away) hands it over, from its last final's end, so it is not lost with the client; one that
    fails while its microphone records on (``drain``, not stopped) may return an :class:`Unsent`,
    into which what it records next goes until the source ends.
    ``first_ms``: the hearing time of its first sample, where another channel of the same source
    was placed (``on_ready`` hears the ready that placed it): one clock for a mixer's channels.
    ``seat``: a seat's own microphone (with no ``role``, the seat the hearing's channel map gives it)."""
    result = StreamResult()
    start = {"type": "start", "hearing_id": hearing_id, "channel": channel, "sample_rate": SR,
             "hotwords": hotwords or []}
    if role:
        start["role"] = role
    if first_ms is not None:
        start["resume_ms"] = first_ms
    if seat:
        start["seat"] = True
    headers = {**(extra_headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    tape = Tape(KEEP_S if reconnect_s > 0 or on_unsent is not None else 0)
    filling = asyncio.create_task(tape.fill(chunks))
    clock = asyncio.get_running_loop().time
    t0 = time.perf_counter()
    attempts = 0  # failed tries since the stream last ran
    give_up_at = 0.0
    try:
        while True:
            try:
                async with websockets.connect(url, max_size=None, additional_headers=headers or None,
                                              **({"ssl": ssl} if ssl is not None else {})) as ws:
                    await _session(ws, start, tape, result, speed, t0, on_event, None if drain else stop, on_ready)
                if tape.waiting:  # stopped before all of it was sent
                    _hand_over(tape, result, on_unsent)
                return result
            except (ConnectionClosed, InvalidStatus, OSError, _Restart) as err:
                stopped = stop is not None and stop.is_set()
                if not (reconnect_s > 0 and result.ready and _lost(err)) or stopped:
                    raise
                if tape.taken_up_at is not None and clock() - tape.taken_up_at >= STEADY_S:
                    attempts = 0  # it ran steadily since the last failure: a new outage
                if not attempts:
                    give_up_at = clock() + reconnect_s
                tape.taken_up_at = None
                attempts += 1
                if clock() >= give_up_at and isinstance(err, _Restart):  # said in the caller's words
                    raise NotTakenBack(f"it did not take the stream back within {reconnect_s:.0f} s")
                if clock() >= give_up_at:
                    raise
                code = err.rcvd.code if isinstance(err, ConnectionClosed) and err.rcvd else None
                code = 1012 if isinstance(err, _Restart) else code  # the server said it restarts
                if on_event:
                    on_event({"type": "reconnecting", "code": code, "attempt": attempts})
                await asyncio.sleep(min(5.0, 0.5 * 2 ** (attempts - 1)))
                if stop is not None and stop.is_set():  # ended while away: what was kept is handed over
                    raise
                # a stream of no hearing has no timeline on the server to resend into: it goes on
                resume = tape.rewind() if result.ready.get("hearing_id") else None
                start = {**start, "hearing_id": result.ready.get("hearing_id"), "resume_ms": resume}
    except Exception:
        going_on = drain and not (stop is not None and stop.is_set()) and not tape.ended
        if going_on and (keep := _hand_over(tape, result, on_unsent, going_on=True)) is not None:
            await _record_on(tape, keep)  # nothing the microphone records after is dropped either
        filling.cancel()
        await asyncio.gather(filling, return_exceptions=True)
        if not going_on:
            _hand_over(tape, result, on_unsent)
        raise
    finally:
        filling.cancel()


async def on_one_clock(one: Callable[..., Awaitable[StreamResult]],
                       sources: list[AsyncIterator[np.ndarray]]) -> list[StreamResult | BaseException]:
    """A mixer's channels streamed at once, each a seat (``one(source, k, first_ms=…, on_ready=…)``
    streams channel k): where the first was placed in the hearing is every channel's first sample,
    so a neighbour's bleed is found by its waveform. Each channel's result, or why it failed (the
    others stream on)."""
    placed: asyncio.Future = asyncio.get_running_loop().create_future()

    def ready(event: dict) -> None:
        if not placed.done():
            placed.set_result(event.get("offset_ms"))

    async def first() -> StreamResult:
        try:
            return await one(sources[0], 0, on_ready=ready)
        finally:
            if not placed.done():  # refused or failed: the others are placed by the server
                placed.set_result(None)

    async def later(k: int) -> StreamResult:
        return await one(sources[k], k, first_ms=await placed)
    return await asyncio.gather(first(), *(later(k) for k in range(1, len(sources))), return_exceptions=True)


class Unsent(Protocol):
    """Where a source's audio the server may not have goes on being kept (a file): its stream ended,
    its microphone goes on recording (a mixer's other seats still stream)."""

    def write(self, audio: np.ndarray) -> None: ...

    def close(self) -> None: ...


OnUnsent = Callable[[str | None, int, np.ndarray], "Unsent | None"]


def _hand_over(tape: Tape, result: StreamResult, on_unsent: OnUnsent | None, *,
               going_on: bool = False) -> Unsent | None:
    """The audio the server may not have, from its last final's end, to ``on_unsent``; with
    ``going_on`` (the source still records), where what it records next is to be kept too."""
    if on_unsent is None or not result.ready:
        return None
    had = max([result.ready.get("offset_ms", 0)] + [e["utterance"]["end_ms"] for e in result.finals])
    at, audio = tape.unsent(had)
    keep = on_unsent(result.ready.get("hearing_id"), at, audio) if audio.size or going_on else None
    if keep is not None and not going_on:
        keep.close()
        return None
    return keep


async def _record_on(tape: Tape, keep: Unsent) -> None:
    """The source's audio after its stream ended, kept as it comes until the source ends (a
    capture that fails ends it too: what came before is kept)."""
    try:
        while (chunk := await tape.take()) is not None:
            keep.write(chunk)
    except Exception:  # noqa: BLE001 - the capture's own failure: the stream's failure is what is raised
        pass
    finally:
        keep.close()


async def _next(tape: Tape, reader: asyncio.Task) -> np.ndarray | None:
    """The next chunk to send; None when the source has ended. A connection that ends while no
    audio is coming (a microphone stalled, a mixer seat gated) is found at once, its error raised,
    not when the next chunk would have been sent."""
    take = asyncio.ensure_future(tape.take())
    await asyncio.wait({take, reader}, return_when=asyncio.FIRST_COMPLETED)
    if take.done():
        return take.result()
    take.cancel()
    await asyncio.gather(take, return_exceptions=True)
    reader.result()  # the connection's end: ConnectionClosed
    return None  # the server ended the stream of its own accord: what follows says how


async def _session(ws, start: dict, tape: Tape, result: StreamResult, speed: float, t0: float,
                   on_event: Callable[[dict], None] | None, stop: asyncio.Event | None,
                   on_ready: Callable[[dict], None] | None = None) -> None:
    """One connection: start (or resume), send the audio, collect the events up to ``end``."""
    await ws.send(json.dumps(start))
    try:
        ready = json.loads(await asyncio.wait_for(ws.recv(), READY_S))
    except TimeoutError:
        raise RuntimeError(f"the server did not answer the stream's start within {READY_S:.0f} s") from None
    if ready.get("type") == "error" and ready.get("code") in TRY_AGAIN and result.ready:
        raise _Restart()  # coming back while the server still holds the old connection, or is busy
    if ready.get("type") != "ready":
        raise RuntimeError(f"server refused the stream: {ready}")
    if result.ready:
        result.resumed.append(ready)
        if start["resume_ms"] is not None:
            tape.resumed_at(start["resume_ms"], ready.get("offset_ms", start["resume_ms"]))
    else:
        result.ready = ready
        tape.base_ms = ready.get("offset_ms", 0)
        if start.get("resume_ms") is not None:  # placed where another channel of its mixer was: audio
            tape.resumed_at(start["resume_ms"], tape.base_ms)  # the server placed later is skipped, one clock
        if on_ready:
            on_ready(ready)
    tape.taken_up_at = asyncio.get_running_loop().time()
    ended: list[dict] = []

    async def reader() -> None:
        async for raw in ws:
            event = json.loads(raw)
            event["_received"] = time.perf_counter()
            result.events.append(event)
            if on_event:
                on_event(event)
            if event["type"] == "end":
                ended.append(event)
                return

    task = asyncio.create_task(reader())
    try:
        while not (stop is not None and stop.is_set()):
            chunk = await _next(tape, task)
            if chunk is None:
                break
            await ws.send(float_to_pcm16(chunk))
            result.sent_at.append((time.perf_counter(), tape.sent_ms()))
            if speed > 0:
                delay = t0 + tape.sent_ms() / 1000 / speed - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "stop"}))
        await task
    except ConnectionClosed:
        await asyncio.wait({task}, timeout=5)  # the events the server sent before it closed
        raise
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if ended and ended[0].get("reason") == "server_restart":
        raise _Restart()


async def stream_file(url: str, path: str | Path, *, chunk_ms: int = 200, **kwargs) -> StreamResult:
    return await stream(url, chunks_from_file(path, chunk_ms), **kwargs)
