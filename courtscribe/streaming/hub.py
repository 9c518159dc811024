"""Fan-out of a hearing's live events to its subscribers (clerk screens, caption feeds).

Each subscriber has a bounded queue: a subscriber that stops reading loses its oldest partials and
levels first and is disconnected if finals would be lost, so one slow screen never holds up the hearing.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Callable

from .events import Event

QUEUE_SIZE = 1000
DROPPABLE = ("partial", "level")  # superseded by the next one: what a slow screen loses first


class SlowSubscriber(Exception):
    pass


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.queue.full():
            # make room by dropping a queued partial; if there is none, this subscriber is too slow
            kept = [e for e in _drain(self.queue) if e.type not in DROPPABLE]
            if len(kept) >= QUEUE_SIZE:
                self.overflowed = True
                return
            for e in kept:
                self.queue.put_nowait(e)
        self.queue.put_nowait(event)

    async def next(self) -> Event:
        if self.overflowed:
            raise SlowSubscriber("subscriber fell too far behind")
        return await self.queue.get()


def _drain(q: asyncio.Queue) -> list[Event]:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items


class Hub:
    """Subscribers per hearing. Created on the server's event loop; ``publish`` may also be called from
    a worker thread (the REST API's endpoints run there), which hands the event to the loop."""

    def __init__(self, relay: Callable[[str, Event], None] | None = None) -> None:
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)
        # a gateway replica among several: what is published here goes to the others too (peers.py)
        self.relay = relay
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def subscribe(self, hearing_id: str) -> Subscriber:
        sub = Subscriber()
        self._subs[hearing_id].add(sub)
        return sub

    def unsubscribe(self, hearing_id: str, sub: Subscriber) -> None:
        self._subs[hearing_id].discard(sub)
        if not self._subs[hearing_id]:
            del self._subs[hearing_id]

    def publish(self, hearing_id: str | None, event: Event) -> None:
        if hearing_id is None:
            return
        if self._loop is not None and not _on(self._loop):
            self._loop.call_soon_threadsafe(self.publish, hearing_id, event)
            return
        self.deliver(hearing_id, event)
        if self.relay is not None:
            self.relay(hearing_id, event)

    def deliver(self, hearing_id: str, event: Event) -> None:
        """To this process's subscribers only (an event another gateway published)."""
        for sub in list(self._subs.get(hearing_id, ())):
            sub.offer(event)


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
