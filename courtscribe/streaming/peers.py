"""The other gateway processes of one deployment, as this one sees them.

With several gateway replicas (Ray Serve routes each WebSocket and request on its own) a hearing's
audio sources and its screens may sit in different processes. Over a shared bus each gateway
- sends every event it publishes, and delivers the other gateways' events to its own screens (a
  clerk sees every channel, whichever gateway took it);
- applies the changes that running sources must act on (new hotwords, a voice enrolled) wherever
  the sources are;
- knows which sources the others hold (the channel panel, ``/status``) from their ``channel`` events;
- shares a hearing's seat-mic audio with the gateways that hold its other seats, so a neighbour's
  bleed is recognised whichever gateway each microphone reached (only those gateways get it);
- announces its file jobs, so any replica answers a job's polls (``jobs.py``);
- reports its metrics every second, so a scrape of any replica shows every replica.

Messages are typed (``PeerMessage``, like ``events.py``); JSON-shaped dicts only at the edge
(``wire``/``read``), which the bus keeps and inspects. The transport is three coroutines:
``post(origin, messages)``, ``poll(origin, cursor) -> (cursor, [(origin, message), …])``, a long
poll that answers with the other gateways' messages since ``cursor`` (``None``: what is connected
now), and ``fetch(what, key)``: a job's last word with its record (``"job"``), every gateway's
metrics (``"metrics"``). In a cluster they are calls to the ``Events`` deployment (``cluster/bus.py``).

Two objects, each built with all it needs: ``Peers`` (the way out, and what is known of the others'
sources) is handed to the live hearings, the hub and the jobs as they are made; ``PeerLink`` (the way
in) is made after them, with them, and runs both directions.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import numpy as np

from .. import metrics
from ..logs import get_logger
from .events import Channel, Event, parse
from .jobs import Job, JobNews, Jobs

if TYPE_CHECKING:  # live.py imports this module
    from .live import LiveHearings

log = get_logger(__name__)
Post = Callable[[str, list[dict]], Awaitable[None]]
Poll = Callable[[str, Any], Awaitable[tuple[Any, list[tuple[str, dict]]]]]
Fetch = Callable[[str, str | None], Awaitable[Any]]


@dataclass(frozen=True)
class Transport:
    """How this gateway (``origin``) reaches the bus: in a cluster, the ``Events`` deployment."""
    origin: str
    post: Post
    poll: Poll
    fetch: Fetch | None = None
RETRY_S = 1.0
MAX_BATCH = 500
MAX_WAITING = 20_000  # messages held while the bus is away; past it the oldest go (screens backfill)
HOLD_S = 120.0  # a bus that refuses them this long: what is held is let go (a batch it can never take, stale news)
METRICS_EVERY_S = 1.0


@dataclass(frozen=True)
class EventNote:
    """An event published on a gateway, for the screens the hearing has on the others."""
    hearing: str
    event: Event


@dataclass(frozen=True)
class Command:
    """Something every gateway with sources of the hearing must do (``LiveHearings.apply``)."""
    hearing: str
    name: str
    payload: dict


@dataclass(frozen=True)
class SeatAudio:
    """A seat microphone's audio, for the hearing's seats on other gateways (bleed checks)."""
    hearing: str
    channel: int
    at: int
    pcm: bytes


@dataclass(frozen=True)
class CancelJob:
    id: str


@dataclass(frozen=True)
class Metrics:
    exposition: str


@dataclass(frozen=True)
class Reset:
    """The bus answers with what is connected now: forget what was known of the others."""


PeerMessage = EventNote | Command | SeatAudio | JobNews | CancelJob | Metrics | Reset


def wire(m: PeerMessage) -> dict:
    """A message in the bus's form (the bus keeps and inspects these dicts: ``cluster/bus.py``)."""
    if isinstance(m, EventNote):
        return {"hearing": m.hearing, "event": m.event.wire()}
    if isinstance(m, Command):
        return {"hearing": m.hearing, "command": m.name, **m.payload}
    if isinstance(m, SeatAudio):
        return {"hearing": m.hearing, "room": m.channel, "at": m.at, "pcm": m.pcm}
    if isinstance(m, JobNews):
        return {"job": m.job, "owner": m.owner, "court": m.court, "record": m.record}
    if isinstance(m, CancelJob):
        return {"command": "cancel_job", "id": m.id}
    if isinstance(m, Metrics):
        return {"metrics": m.exposition}
    return {"reset": True}


def read(d: dict) -> PeerMessage:
    """A message from the bus; raises ValueError for one this version does not know."""
    if d.get("reset"):
        return Reset()
    if "job" in d:
        return JobNews(d["job"], d.get("owner"), d.get("court"), d.get("record"))
    if d.get("command") == "cancel_job":
        return CancelJob(d["id"])
    if "metrics" in d:
        return Metrics(d["metrics"])
    if "room" in d:
        return SeatAudio(d["hearing"], d["room"], d["at"], d["pcm"])
    if "event" in d:
        return EventNote(d["hearing"], parse(d["event"]))
    if "command" in d:
        return Command(d["hearing"], d["command"], {k: v for k, v in d.items() if k not in ("hearing", "command")})
    raise ValueError(f"unknown message with keys {sorted(d)}")


class Peers:
    """This gateway's way out to the others, and what it knows of their sources. Built on the
    server's event loop; safe to call from any thread."""

    def __init__(self, transport: Transport):
        self.origin, self.poll = transport.origin, transport.poll
        self._post, self._fetch = transport.post, transport.fetch
        self._out: list[dict] = []
        self._failing_since: float | None = None
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._sources: dict[str, dict[tuple[str, Any], dict]] = {}  # hearing → (origin, channel) → source

    # -- what goes out ----------------------------------------------------------------------
    def send(self, message: PeerMessage) -> None:
        self._push(wire(message))

    def event(self, hearing_id: str, event: Event) -> None:
        self.send(EventNote(hearing_id, event))

    def command(self, hearing_id: str, name: str, **payload: Any) -> None:
        self.send(Command(hearing_id, name, payload))

    def room_audio(self, hearing_id: str, channel: int, at: int, audio: np.ndarray) -> None:
        """A seat mic's audio (any thread), for the hearing's seats on other gateways, if any."""
        if self._sources.get(hearing_id):
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self.send(SeatAudio(hearing_id, channel, at, pcm))

    def announce(self, news: JobNews) -> None:
        """A file job's news (``Jobs``), for the others to answer its polls."""
        self.send(news)

    def cancel_job(self, job_id: str) -> None:
        self.send(CancelJob(job_id))

    async def fetch_job(self, job_id: str) -> dict | None:
        """A job another gateway runs: its last announcement, with the record once done."""
        return await self._fetch("job", job_id) if self._fetch is not None else None

    async def metrics(self) -> dict[str, str]:
        """Every gateway's Prometheus exposition: this one's now, the others' last report."""
        others = await self._fetch("metrics", None) if self._fetch else {}
        return {**others, self.origin: metrics.exposition()[0].decode()}

    # -- what is known of the others ----------------------------------------------------------
    def sources(self, hearing_id: str) -> list[dict]:
        """The hearing's sources connected to other gateways: ``{"channel", "speaker"}`` each."""
        return list(self._sources.get(hearing_id, {}).values())

    def track(self, origin: str, hearing_id: str, event: Channel) -> bool:
        """A source connected or went away on another gateway; True when it went."""
        held = self._sources.setdefault(hearing_id, {})
        key = (origin, event.channel)
        if event.connected:
            held[key] = {"channel": event.channel, "speaker": event.speaker}
            return False
        held.pop(key, None)
        if not held:
            del self._sources[hearing_id]
        return True

    def forget(self) -> None:
        self._sources.clear()

    def _push(self, message: dict) -> None:
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if not here:  # a REST endpoint's worker thread
            self._loop.call_soon_threadsafe(self._push, message)
            return
        self._out.append(message)
        if len(self._out) > MAX_WAITING:
            del self._out[:len(self._out) - MAX_WAITING]
        self._wake.set()

    async def sending(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out:
                batch = self._out[:MAX_BATCH]
                del self._out[:MAX_BATCH]
                try:
                    await self._post(self.origin, batch)
                    self._failing_since = None
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - the bus restarts; local screens are unaffected
                    self._held(batch, err)
                    await asyncio.sleep(RETRY_S)

    def _held(self, batch: list[dict], err: Exception) -> None:
        """A batch the bus did not take: held for when it is back (a caption kill switch among it),
        the oldest let go first, and all of it after ``HOLD_S`` of refusals (never retried for ever)."""
        now = self._loop.time()
        self._failing_since = self._failing_since or now
        if now - self._failing_since > HOLD_S:
            log.error("event bus refused events for too long: events for other gateways dropped",
                      error=repr(err), events=len(batch) + len(self._out))
            self._out.clear()
            self._failing_since = None
            return
        self._out[:0] = batch
        if len(self._out) > MAX_WAITING:
            del self._out[:len(self._out) - MAX_WAITING]
        log.warning("event bus unreachable: events for other gateways held", error=repr(err), events=len(self._out))

    async def reporting(self) -> None:
        while True:
            self.send(Metrics(metrics.exposition()[0].decode()))
            await asyncio.sleep(METRICS_EVERY_S)


class PeerLink:
    """The way in: the others' messages delivered to this gateway's live hearings and jobs, which
    were built with ``peers`` as their way out (``server/services.py``)."""

    def __init__(self, peers: Peers, live: LiveHearings, jobs: Jobs | None = None):
        self.peers, self.live, self.jobs = peers, live, jobs

    def receive(self, origin: str, raw: dict) -> None:
        try:
            m = read(raw)
        except ValueError as err:  # a gateway of another version: its news, not this one's
            log.warning("message from another gateway not understood", origin=origin, error=str(err))
            return
        if isinstance(m, Reset):  # a snapshot follows (this gateway is new, or the bus restarted)
            self.peers.forget()
            self.announce()
        elif isinstance(m, JobNews):
            if self.jobs is not None:
                self.jobs.mirror(m)
        elif isinstance(m, CancelJob):
            if self.jobs is not None and isinstance(self.jobs.get(m.id), Job):  # only the replica running it
                self.jobs.cancel(m.id)
        elif isinstance(m, SeatAudio):
            room = self.live.rooms.get(m.hearing)
            if room is not None:  # a seat mic of the hearing is here: compare with the others' audio
                audio = np.frombuffer(m.pcm, "<i2").astype(np.float32) / 32768.0
                room.write(m.channel, m.at, audio, relay=False)
        elif isinstance(m, EventNote):
            if isinstance(m.event, Channel) and self.peers.track(origin, m.hearing, m.event):
                room = self.live.rooms.get(m.hearing)
                here = {s.cfg.channel for s in self.live.sources.get(m.hearing, {})}
                # that seat's audio is no use any more, unless the seat reconnected here meanwhile
                if room is not None and m.event.channel is not None and m.event.channel not in here:
                    room.remove(m.event.channel)
            self.live.hub.deliver(m.hearing, m.event)
        elif isinstance(m, Command):
            self.live.apply(m.hearing, m)

    def announce(self) -> None:
        """Every source running here, said again to the other gateways (a restarted bus, or a new
        gateway, knows none): their seat-mic bleed checks and channel panels count it again."""
        from .live import channel_event  # live.py imports this module

        for hearing_id, sessions in list(self.live.sources.items()):
            for session in list(sessions):
                self.peers.event(hearing_id, channel_event(session, connected=True))

    async def run(self) -> None:
        """Send and receive until cancelled; a bus that is away is retried, the hearing goes on."""
        await asyncio.gather(self.peers.sending(), self._receiving(), self.peers.reporting())

    async def _receiving(self) -> None:
        cursor: Any = None
        while True:
            try:
                cursor, messages = await self.peers.poll(self.peers.origin, cursor)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001
                log.warning("event bus unreachable: retrying", error=repr(err))
                await asyncio.sleep(RETRY_S)
                continue
            for origin, message in messages:
                try:
                    self.receive(origin, message)
                except Exception as err:  # noqa: BLE001 - one odd message must not stop the feed
                    log.error("message from another gateway not applied", error=repr(err), origin=origin)
