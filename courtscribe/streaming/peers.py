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

Messages are plain dicts (an event in its JSON form: ``events.py``). The transport is three coroutines: ``post(origin, messages)``,
``poll(origin, cursor) -> (cursor, [(origin, message), …])``, a long poll that answers with the
other gateways' messages since ``cursor`` (``None``: what is connected now), and
``fetch(what, key)``: a job's last word with its record (``"job"``), every gateway's metrics (``"metrics"``). In a cluster they are calls to the ``Events`` deployment (``cluster/bus.py``).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import numpy as np

from .. import metrics
from ..logs import get_logger
from .events import Channel, Event, parse
from .jobs import Job, Jobs

if TYPE_CHECKING:  # live.py imports this module
    from .live import LiveHearings

log = get_logger(__name__)
Post = Callable[[str, list[dict]], Awaitable[None]]
Poll = Callable[[str, Any], Awaitable[tuple[Any, list[tuple[str, dict]]]]]
Fetch = Callable[[str, str | None], Awaitable[Any]]
RETRY_S = 1.0
MAX_BATCH = 500
MAX_WAITING = 20_000  # messages held while the bus is away; past it the oldest go (screens backfill)
METRICS_EVERY_S = 1.0


class Peers:
    """This gateway's link to the others: queues what goes out, applies what comes in."""

    def __init__(self, origin: str, post: Post, poll: Poll, fetch: Fetch | None = None):
        self.origin = origin
        self._post, self._poll, self._fetch = post, poll, fetch
        self._out: list[dict] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.live: LiveHearings | None = None
        self.jobs: Jobs | None = None
        self._sources: dict[str, dict[tuple[str, Any], dict]] = {}  # hearing → (origin, channel) → source

    def attach(self, live: LiveHearings, jobs: Jobs | None = None) -> None:
        """Where what the others send is delivered (on the server's event loop). ``live`` and ``jobs``
        were built with this object as their way out (``LiveHearings(peers=…)``, ``Hub(relay=…)``,
        ``Jobs(peers=…)``: ``server/services.py``)."""
        assert live.peers is self and live.hub.relay == self.event, "build live with these peers"
        self.live, self.jobs = live, jobs
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()

    def announce(self, message: dict) -> None:
        """A file job's news (``Jobs``), for the others to answer its polls."""
        self._push(message)

    async def fetch_job(self, job_id: str) -> dict | None:
        """A job another gateway runs: its last announcement, with the record once done."""
        return await self._fetch("job", job_id) if self._fetch is not None else None

    def cancel_job(self, job_id: str) -> None:
        self._push({"command": "cancel_job", "id": job_id})

    def event(self, hearing_id: str, event: Event) -> None:
        self._push({"hearing": hearing_id, "event": event.wire()})

    def command(self, hearing_id: str, name: str, **payload: Any) -> None:
        """Something every gateway with sources of the hearing must do (``LiveHearings.apply``)."""
        self._push({"hearing": hearing_id, "command": name, **payload})

    def room_audio(self, hearing_id: str, channel: int, at: int, audio: np.ndarray) -> None:
        """A seat mic's audio (any thread), for the hearing's seats on other gateways, if any."""
        if self._sources.get(hearing_id):
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self._push({"hearing": hearing_id, "room": channel, "at": at, "pcm": pcm})

    def sources(self, hearing_id: str) -> list[dict]:
        """The hearing's sources connected to other gateways: ``{"channel", "speaker"}`` each."""
        return list(self._sources.get(hearing_id, {}).values())

    def _push(self, message: dict) -> None:
        if self._loop is None:
            return  # not attached yet: nothing runs that could need it
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
        assert self._wake is not None  # made with the loop, in attach()
        self._wake.set()

    @property
    def _live(self) -> LiveHearings:
        assert self.live is not None, "attach() first: messages arrive only once run() runs"
        return self.live

    def receive(self, origin: str, message: dict) -> None:
        if message.get("reset"):  # a snapshot follows (this gateway is new, or the bus restarted)
            self._sources.clear()
            return
        if "job" in message or message.get("command") == "cancel_job":
            if self.jobs is not None:
                self._job(self.jobs, message)
            return
        hearing_id = message["hearing"]
        if "room" in message:
            room = self._live.rooms.get(hearing_id)
            if room is not None:  # a seat mic of the hearing is here: compare with the others' audio
                audio = np.frombuffer(message["pcm"], "<i2").astype(np.float32) / 32768.0
                room.write(message["room"], message["at"], audio, relay=False)
            return
        if "event" in message:
            try:
                event = parse(message["event"])
            except ValueError as err:  # a gateway of another version: its screens' news, not this one's
                log.warning("event from another gateway not understood", origin=origin, error=str(err))
                return
            if isinstance(event, Channel):
                self._track(origin, hearing_id, event)
            self._live.hub.deliver(hearing_id, event)
        elif "command" in message:
            self._live.apply(hearing_id, message)

    @staticmethod
    def _job(jobs: Jobs, message: dict) -> None:
        if "job" in message:
            jobs.mirror(message)
        elif isinstance(jobs.get(message["id"]), Job):  # only the replica running it cancels it
            jobs.cancel(message["id"])

    def _track(self, origin: str, hearing_id: str, event: Channel) -> None:
        held = self._sources.setdefault(hearing_id, {})
        key = (origin, event.channel)
        if event.connected:
            held[key] = {"channel": event.channel, "speaker": event.speaker}
        else:
            held.pop(key, None)
            if not held:
                del self._sources[hearing_id]
            room = self._live.rooms.get(hearing_id)
            if room is not None and key[1] is not None:  # that seat's audio is no use any more
                room.remove(key[1])

    async def metrics(self) -> dict[str, str]:
        """Every gateway's Prometheus exposition: this one's now, the others' last report."""
        others = await self._fetch("metrics", None) if self._fetch else {}
        return {**others, self.origin: metrics.exposition()[0].decode()}

    async def run(self) -> None:
        """Send and receive until cancelled; a bus that is away is retried, the hearing goes on."""
        await asyncio.gather(self._sending(), self._receiving(), self._reporting())

    async def _reporting(self) -> None:
        while True:
            self._push({"metrics": metrics.exposition()[0].decode()})
            await asyncio.sleep(METRICS_EVERY_S)

    async def _sending(self) -> None:
        wake = self._wake
        assert wake is not None, "attach() before run()"
        while True:
            await wake.wait()
            wake.clear()
            while self._out:
                batch, self._out = self._out[:MAX_BATCH], self._out[MAX_BATCH:]
                try:
                    await self._post(self.origin, batch)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - the bus restarts; local screens are unaffected
                    log.warning("event bus unreachable: events for other gateways dropped", error=repr(err),
                                events=len(batch))
                    await asyncio.sleep(RETRY_S)

    async def _receiving(self) -> None:
        cursor: Any = None
        while True:
            try:
                cursor, messages = await self._poll(self.origin, cursor)
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
