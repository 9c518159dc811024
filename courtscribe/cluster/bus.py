"""The gateways' shared event bus: one small ``Events`` replica that every gateway posts to and
long-polls (``streaming/peers.py`` is the gateway's side).

It keeps the last ``size`` messages in order, which sources each gateway holds (from its
``channel`` events) and the last word on each file job, so a gateway that starts late, or finds
the bus restarted, learns what is connected and running now. Seat-mic audio goes only to the
gateways that hold sources of its hearing. A gateway that stops polling is taken
for dead: its sources are announced gone and its unfinished jobs failed. Messages are small
(events, hotwords, a voice print, job progress); a finished job's record stays here, out of the
log, until a gateway asks for it.
"""
from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from typing import Any, Callable

from ray import serve

from ..access.quota import Counters, Slots
from ..access.scopes import Principal
from ..logs import get_logger

log = get_logger(__name__)

Cursor = tuple[str, int]  # (the board's epoch, the last sequence number seen)
DEAD_AFTER_S = 15.0  # gateways poll every few seconds (and post their metrics every second)
POLL_WAIT_S = 4.0  # news answers a poll at once; an idle gateway asks again this often
KEEP_JOBS = 200


class Board:
    """The bus's memory (no Ray here: tested on its own)."""

    def __init__(self, size: int = 20_000, dead_after_s: float = DEAD_AFTER_S):
        self.epoch, self.seq, self.dead_after_s = uuid.uuid4().hex, 0, dead_after_s
        self.log: deque[tuple[int, str, dict]] = deque(maxlen=size)
        self.connected: dict[str, dict[tuple[str, Any], dict]] = {}  # origin → (hearing, channel) → message
        self.jobs: OrderedDict[str, tuple[str, dict]] = OrderedDict()  # job id → (origin, its last message)
        self.metrics: dict[str, str] = {}  # origin → its latest Prometheus exposition (not logged)
        self.seen: dict[str, float] = {}
        self.counters = Counters()  # every gateway's rate limits and stream slots, counted once

    def post(self, origin: str, messages: list[dict], now: float) -> bool:
        """Whether the log has news for the pollers now (a metrics report is kept apart: none; a gateway
        found dead meanwhile: its sources' disconnections)."""
        self.seen[origin], before = now, self.seq
        for message in messages:
            self._append(origin, message)
        self.expire(now)
        return self.seq != before

    def _append(self, origin: str, message: dict) -> None:
        if "metrics" in message:
            self.metrics[origin] = message["metrics"]
            return
        if "job" in message:  # the record (if any) waits here for ``job``; the log carries the rest
            self.jobs[message["job"]["id"]] = (origin, message)
            self.jobs.move_to_end(message["job"]["id"])
            while len(self.jobs) > KEEP_JOBS:
                self.jobs.popitem(last=False)
            message = {k: v for k, v in message.items() if k != "record"}
        self.seq += 1
        self.log.append((self.seq, origin, message))
        event = message.get("event") or {}
        if event.get("type") == "channel":
            key = (message["hearing"], event.get("channel"))
            if event.get("connected"):
                self.connected.setdefault(origin, {})[key] = message
            else:
                self.connected.get(origin, {}).pop(key, None)

    def since(self, origin: str, cursor: Cursor | None, now: float) -> tuple[Cursor, list[tuple[str, dict]]]:
        """The other gateways' messages after ``cursor``; a new gateway (or one that fell behind the
        log, or a board that restarted) gets the sources connected now instead."""
        self.seen[origin] = now
        self.expire(now)
        first = self.log[0][0] if self.log else self.seq + 1
        if cursor is None or cursor[0] != self.epoch or cursor[1] + 1 < first:
            snapshot = [(o, m) for o, held in self.connected.items() if o != origin for m in held.values()]
            snapshot += [(o, {k: v for k, v in m.items() if k != "record"}) for o, m in self.jobs.values() if o != origin]
            return (self.epoch, self.seq), [("", {"reset": True})] + snapshot
        seats = {hearing_id for hearing_id, _ in self.connected.get(origin, {})}
        new = []
        for seq, o, m in reversed(self.log):  # the news is at the end: cost by what is new, not by the log
            if seq <= cursor[1]:
                break
            if o != origin and ("room" not in m or m["hearing"] in seats):
                new.append((o, m))
        new.reverse()
        return (self.epoch, self.seq), new

    def expire(self, now: float) -> None:
        """Gateways silent for ``dead_after_s``: their sources are announced disconnected."""
        for origin, last in list(self.seen.items()):
            if now - last > self.dead_after_s:
                del self.seen[origin]
                self.metrics.pop(origin, None)
                self.counters.drop(origin)
                for (hearing_id, _), message in list(self.connected.pop(origin, {}).items()):
                    self._append(origin, {"hearing": hearing_id, "event": {**message["event"], "connected": False}})
                for owner, message in list(self.jobs.values()):
                    if owner == origin and message["job"]["status"] in ("queued", "running"):
                        self._append(origin, {**message, "job": {
                            **message["job"], "status": "failed", "stage": "failed",
                            "error": "the gateway replica running it stopped; submit the recording again"}})

    def count(self, origin: str, op: str, args: tuple, now: float) -> Any:
        """A gateway's limit call (``access/quota.py``); stream slots scale with the live gateways."""
        self.seen[origin] = now
        if op == "take":
            who, slots = args
            return self.counters.take(who, origin, slots, gateways=max(1, len(self.seen)))
        if op == "give":
            return self.counters.give(args[0], origin)
        if op not in ("hit", "test"):
            raise ValueError(f"no such limit call {op!r}")
        return getattr(self.counters, op)(*args)

    def fetch(self, what: str, key: str | None = None) -> Any:
        """``job``: a job's last message, with its record when it is done; ``metrics``: every
        gateway's latest exposition."""
        if what == "metrics":
            return dict(self.metrics)
        got = self.jobs.get(key)
        return got[1] if got else None


@serve.deployment(name="Events", num_replicas=1, max_ongoing_requests=4096, ray_actor_options={"num_cpus": 0})
class Events:
    """One replica (its memory is the bus); Serve restarts it if it dies and gateways resync."""

    def __init__(self, size: int = 20_000):
        self.board = Board(size)
        self._changed = asyncio.Event()

    async def post(self, origin: str, messages: list[dict]) -> None:
        if self.board.post(origin, messages, time.monotonic()):
            self._changed.set()
            self._changed = asyncio.Event()

    async def poll(self, origin: str, cursor: Cursor | None,
                   wait_s: float = POLL_WAIT_S) -> tuple[Cursor, list[tuple[str, dict]]]:
        """Long poll: answers at once when there is news, else after ``wait_s`` at most."""
        got = self.board.since(origin, cursor, time.monotonic())
        if got[1]:
            return got
        try:
            await asyncio.wait_for(self._changed.wait(), wait_s)
        except asyncio.TimeoutError:
            pass
        return self.board.since(origin, got[0], time.monotonic())


    async def fetch(self, what: str, key: str | None = None) -> Any:
        return self.board.fetch(what, key)

    async def count(self, origin: str, op: str, args: tuple) -> Any:
        return self.board.count(origin, op, args, time.monotonic())


def link(handle: Any, origin: str):
    """A gateway replica's way to the bus (``streaming/peers.py``), over the ``Events`` deployment's handle."""
    from ..streaming.peers import Transport

    async def post(who: str, messages: list[dict]) -> None:
        await handle.post.remote(who, messages)

    async def poll(who: str, cursor: Cursor | None):
        return await handle.poll.remote(who, cursor)

    async def fetch(what: str, key: str | None = None) -> Any:
        return await handle.fetch.remote(what, key)

    return Transport(origin, post, poll, fetch)


class BusLimits:
    """``Limits`` for a gateway replica, counted on the bus so replicas share them. Called off the
    event loop (``access/quota.py``). While the bus is away (Serve restarts it) the replica counts
    on its own for ``AWAY_S`` rather than turn courtrooms away or wait on the bus at every request;
    a stream slot is given back where it was taken (one taken on the bus and given back while it
    was away is given back there when it answers again, else it would stay held)."""

    AWAY_S = 30.0

    def __init__(self, handle: Any, origin: str, slots: Slots, timeout_s: float = 2.0):
        self.handle, self.origin, self.slots, self.timeout_s = handle, origin, slots, timeout_s
        self.alone = Counters(slots)
        self._away_until = 0.0
        self._taken_alone: Counter[str] = Counter()  # token id → slots counted here, not on the bus
        self._owed: deque[Principal] = deque()  # bus slots given back while it was away
        self._lock = threading.Lock()

    def _ask(self, op: str, args: tuple, alone: Callable[[], Any]) -> tuple[Any, bool]:
        """(answer, whether the bus gave it)."""
        if time.monotonic() < self._away_until:
            return alone(), False
        try:
            self._settle()
            return self._call(op, args), True
        except Exception as err:  # noqa: BLE001 - any failure of the bus: count here meanwhile
            self._away_until = time.monotonic() + self.AWAY_S
            log.warning("the bus cannot count limits; this gateway counts alone for a while", op=op,
                        error=repr(err), seconds=self.AWAY_S)
            return alone(), False

    def _call(self, op: str, args: tuple) -> Any:
        return self.handle.count.remote(self.origin, op, args).result(timeout_s=self.timeout_s)

    def _settle(self) -> None:
        """The slots owed to the bus, given back there before anything else is counted."""
        while True:
            with self._lock:
                if not self._owed:
                    return
                who = self._owed.popleft()
            try:
                self._call("give", (who,))
            except Exception:
                with self._lock:
                    self._owed.appendleft(who)
                raise

    def hit(self, rate: str, *keys: str) -> bool:
        return self._ask("hit", (rate, *keys), lambda: self.alone.hit(rate, *keys))[0]

    def test(self, rate: str, *keys: str) -> bool:
        return self._ask("test", (rate, *keys), lambda: self.alone.test(rate, *keys))[0]

    def take(self, who: Principal) -> str | None:
        why, on_bus = self._ask("take", (who, self.slots), lambda: self.alone.take(who))
        if why is None and not on_bus:
            self._taken_alone[who.token_id] += 1
        return why

    def give(self, who: Principal) -> None:
        if self._taken_alone[who.token_id] > 0:
            self._taken_alone[who.token_id] -= 1
            self.alone.give(who)
            return
        if not self._ask("give", (who,), lambda: None)[1]:
            with self._lock:
                self._owed.append(who)
