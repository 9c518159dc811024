"""The live caption feed as a public audience may see it: each event's words redacted before any
line is cut from them, and a broadcast delay that lets a final's words replace a partial's.

A partial's settled words (stability.py) are what the overlay shows early; here they stop before
anything that may still become a find (a number read in part, a plate's letters, the first sound of
a protected name): that part waits for the next partial, the endpoint or the final. The delay
(``COURTSCRIBE_CAPTION_DELAY_MS``, 3 s by default, the broadcast norm) holds every event that long;
a partial whose utterance's final arrived meanwhile shows only what the final agrees with, so the
final's words (and their redaction) are the ones that go out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..redaction.detect import apply
from ..redaction.public import Choices
from .events import Endpoint, Event, Final, Partial
from .stability import agreed


def public_partial(e: Partial, chosen: Choices) -> Partial:
    """``e`` with its words redacted and its settled prefix ending before anything still open."""
    finds = chosen.finds(e.text, e.utterance_id)
    settled = e.text[: e.stable]
    cut = min(e.stable, chosen.finder(e.utterance_id).open_from(settled))
    for f in finds:
        if f.start < cut < f.end:
            cut = f.start
    before = [f for f in finds if f.end <= cut]
    return e.model_copy(
        update={"text": apply(e.text, finds), "stable": len(apply(e.text[:cut], before))}
    )


def public_final(e: Final, chosen: Choices) -> Final:
    """``e`` with its utterance's text and participant redacted, its word times left out."""
    u = e.utterance
    update: dict[str, object] = {
        "text": chosen.redact(u.text, u.id),
        "tokens": [],
        "machine_text": None,
        "participant": chosen.redact(u.participant, u.id) if u.participant else None,
    }
    return e.model_copy(update={"utterance": u.model_copy(update=update)})


@dataclass
class Delayed:
    """Caption events held ``delay_s`` before they are handled, in order. A partial whose utterance's
    final arrived meanwhile keeps settled only the words the final agrees with: the rest goes out in
    the final's words. ``handle`` gets each event when it is due."""

    handle: Callable[[Event], Awaitable[None]]
    delay_s: float
    _queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    _finals: dict[str, list[Final]] = field(
        default_factory=dict
    )  # utterance → its finals still held

    def put(self, event: Partial | Final | Endpoint) -> None:
        if isinstance(event, Final):
            self._finals.setdefault(event.utterance_id, []).append(event)
        self._queue.put_nowait((time.monotonic() + self.delay_s, event))

    def clear(self) -> None:
        """Drop every event still held (the court blanked the captions)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._finals.clear()

    async def run(self) -> None:
        while True:
            due, event = await self._queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if isinstance(event, Final):
                held = self._finals.get(event.utterance_id, [])
                if event in held:
                    held.remove(event)
                if not held:
                    self._finals.pop(event.utterance_id, None)
            elif isinstance(event, Partial) and (later := self._finals.get(event.utterance_id)):
                settled = agreed(later[0].utterance.text, event.text[: event.stable])
                event = event.model_copy(update={"stable": len(settled)})
            await self.handle(event)
