"""The gateways' shared event bus: one small ``Events`` replica that every gateway posts to and
long-polls (``streaming/peers.py`` is the gateway's side).

It keeps the last ``size`` messages in order, and which sources each gateway holds (from its
``channel`` events), so a gateway that starts late, or finds the bus restarted, learns what is
connected now. A gateway that stops polling is taken for dead: its sources are announced gone.
Messages are tiny (events, hotwords, a voice print); the bus holds no court data beyond them.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from itertools import islice
from typing import Any

from ray import serve

Cursor = tuple[str, int]  # (the board's epoch, the last sequence number seen)
DEAD_AFTER_S = 15.0  # gateways poll every second or so
POLL_WAIT_S = 1.0


class Board:
    """The bus's memory (no Ray here: tested on its own)."""

    def __init__(self, size: int = 20_000, dead_after_s: float = DEAD_AFTER_S):
        self.epoch, self.seq, self.dead_after_s = uuid.uuid4().hex, 0, dead_after_s
        self.log: deque[tuple[int, str, dict]] = deque(maxlen=size)
        self.connected: dict[str, dict[tuple[str, Any], dict]] = {}  # origin → (hearing, channel) → message
        self.seen: dict[str, float] = {}

    def post(self, origin: str, messages: list[dict], now: float) -> None:
        self.seen[origin] = now
        for message in messages:
            self._append(origin, message)
        self.expire(now)

    def _append(self, origin: str, message: dict) -> None:
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
            return (self.epoch, self.seq), [("", {"reset": True})] + snapshot
        start = max(cursor[1] + 1 - first, 0)
        return (self.epoch, self.seq), [(o, m) for _, o, m in islice(self.log, start, None) if o != origin]

    def expire(self, now: float) -> None:
        """Gateways silent for ``dead_after_s``: their sources are announced disconnected."""
        for origin, last in list(self.seen.items()):
            if now - last > self.dead_after_s:
                del self.seen[origin]
                for (hearing_id, _), message in list(self.connected.pop(origin, {}).items()):
                    self._append(origin, {"hearing": hearing_id, "event": {**message["event"], "connected": False}})


@serve.deployment(name="Events", num_replicas=1, max_ongoing_requests=4096, ray_actor_options={"num_cpus": 0})
class Events:
    """One replica (its memory is the bus); Serve restarts it if it dies and gateways resync."""

    def __init__(self, size: int = 20_000):
        self.board = Board(size)
        self._changed = asyncio.Event()

    async def post(self, origin: str, messages: list[dict]) -> None:
        self.board.post(origin, messages, time.monotonic())
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


def link(handle: Any, origin: str):
    """``Peers`` for a gateway replica, over the ``Events`` deployment's handle."""
    from ..streaming.peers import Peers

    async def post(who: str, messages: list[dict]) -> None:
        await handle.post.remote(who, messages)

    async def poll(who: str, cursor: Cursor | None):
        return await handle.poll.remote(who, cursor)

    return Peers(origin, post, poll)
