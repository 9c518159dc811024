"""The live caption feed as a public audience may see it: each event's words redacted before any
line is cut from them, and a broadcast delay that lets a final's words replace a partial's.

A partial shows nothing that may still become a find (a number read in part, a plate's letters,
the first sound of a protected name): that part waits for the next partial or the final, and a
flush of the last partial cannot show it either. A long utterance's piece ends where its speaker
goes on, possibly inside a number, and an utterance may end at a pause inside one (手机号是一三八。
/ 一二三四，/ 五六七八。): the open tail is carried into the channel's next utterance, when it
begins within ``CARRY_MS``, and searched with it. Partials that come ahead of an earlier utterance's final (``Partial.ahead``: the
decode worker's second lane) are not shown: the order of the words is the final's. The delay
(``COURTSCRIBE_CAPTION_DELAY_MS``, 3 s by default, the broadcast norm) holds every event that
long; a partial whose utterance's final arrived meanwhile shows only what the final agrees with,
so the final's words (and their redaction) are the ones that go out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..records.model import CONTINUES, Utterance
from ..redaction.detect import Find, apply
from ..redaction.public import CARRY_MS, CONTEXT_MS, Choices
from .events import Endpoint, Event, Final, Partial
from .stability import agreed

MAX_ENDED = 256  # utterances whose endpoint is remembered (their finals are whole)


class PublicFeed:
    """A hearing's caption events, in order, made public: ``public(event)`` gives the events to
    cut lines from (none, the event redacted, or a carried tail released as its own final)."""

    def __init__(self, chosen: Choices):
        self.chosen = chosen
        self._ended: dict[str, None] = {}  # utterances the VAD ended: their final is not a piece
        # a voice (channel, speaker) → its piece that ended open (its text, where its open tail
        # starts, the piece): another voice's words between (慢一点) neither take it nor release it
        self._carry: dict[tuple[int, str], tuple[str, int, Utterance]] = {}
        # a voice → its last final that ended open (its text, its end): what that voice says next
        # within ``CONTEXT_MS`` is searched after it, though what it held has aired by then
        self._open: dict[tuple[int, str], tuple[str, int]] = {}

    def public(self, event: Event) -> list[Event]:
        if isinstance(event, Endpoint):
            self._ended[event.utterance_id] = None
            while len(self._ended) > MAX_ENDED:
                self._ended.pop(next(iter(self._ended)))
            return [event]
        if isinstance(event, Partial):
            if event.ahead:  # words said before it have no final yet: what they leave open is not known
                return []
            voice = (event.channel, event.speaker)
            goes_on = event.continues or self._resumes(voice, event.start_ms)
            released = [] if goes_on else self._release(voice)
            return [*released, self._partial(event, goes_on)]
        if isinstance(event, Final):
            u = event.utterance
            voice = (u.channel, u.speaker)
            goes_on = CONTINUES in u.flags or self._resumes(voice, u.start_ms)
            released = [] if goes_on else self._release(voice)
            return [*released, self._final(event, goes_on)]
        return [event]

    def _resumes(self, voice: tuple[int, str], start_ms: int) -> bool:
        """A voice's open tail is carried into its next utterance that begins within ``CARRY_MS``
        of it (another voice on a mixed channel never takes it)."""
        carried = self._carry.get(voice)
        return carried is not None and start_ms - carried[2].end_ms <= CARRY_MS

    def _partial(self, e: Partial, goes_on: bool) -> Partial:
        text, finds = self._window((e.channel, e.speaker), goes_on, e.text, e.utterance_id, e.start_ms)
        line = e.utterance_id
        shown = _before(finds, self.chosen.open_from(text, line))  # a flush of this partial shows no more
        stable = len(text) - len(e.text) + e.stable
        settled = _before(finds, min(stable, shown, self.chosen.open_from(text[:stable], line)))
        return e.model_copy(update={"text": _masked(text, finds, shown),
                                    "stable": len(_masked(text, finds, settled))})

    def _final(self, e: Final, goes_on: bool) -> Final:
        u = e.utterance
        voice = (u.channel, u.speaker)
        text, finds = self._window(voice, goes_on, u.text, u.id, u.start_ms)
        self._open.pop(voice, None)
        if goes_on:
            self._carry.pop(voice, None)
        # a piece: its speaker goes on, maybe inside a number or a name; an utterance ended at a pause
        # maybe too (a number read out in parts), unless what ends it is masked already
        tail = self.chosen.open_from(text, u.id)
        whole = u.id in self._ended and any(f.start <= tail < f.end for f in finds)
        end = len(text) if whole else _before(finds, tail)
        if tail < len(text):
            self._open[voice] = (text, u.end_ms)
        if end < len(text):
            self._carry[voice] = (text, end, u)
        return e.model_copy(update={"utterance": self._utterance(u, _masked(text, finds, end))})

    def _window(self, voice: tuple[int, str], goes_on: bool, text: str, line: str,
                start_ms: int) -> tuple[str, list[Find]]:
        """``text`` after the open tail the voice's last piece carried, and its finds, searched
        together with that whole piece (a cue word, the start of a number) but not shown again;
        not going on, still searched after the voice's last open final if that ended just before."""
        before, start, _ = self._carry.get(voice, ("", 0, None)) if goes_on else ("", 0, None)
        said, end_ms = self._open.get(voice, ("", 0))
        if not goes_on and said and start_ms - end_ms <= CONTEXT_MS:
            before, start = said, len(said)
        whole = before + text
        finds = self.chosen.finds(whole, line)
        # a find begun in what was shown already: the rest of it is masked at least
        return whole[start:], [Find(f.category, max(0, f.start - start), f.end - start,
                                    f.replacement if f.start >= start else "×")
                               for f in finds if f.end > start]

    def release(self, channel: int, utterance_id: str) -> list[Event]:
        """The tail that utterance of the channel carried, when ``CARRY_MS`` passed and nothing came."""
        voice = next((v for v, held in self._carry.items() if v[0] == channel and held[2].id == utterance_id),
                     None)
        return self._release(voice) if voice is not None else []

    def _release(self, voice: tuple[int, str]) -> list[Event]:
        """A carried tail whose voice did not go on after all: its own final, masked as part of its
        piece."""
        if voice not in self._carry:
            return []
        text, end, u = self._carry.pop(voice)
        finds = self.chosen.finds(text, u.id)
        tail = apply(text, finds)[len(_masked(text, finds, end)):]
        tail_id = f"{u.id}.tail"
        said = self._utterance(u, tail).model_copy(update={"id": tail_id, "start_ms": u.end_ms, "flags": [CONTINUES]})
        return [Final(hearing_id=None, utterance_id=tail_id, utterance=said)]

    def _utterance(self, u: Utterance, text: str) -> Utterance:
        """``u`` with public ``text``, its speaker and participant redacted, no word times."""
        participant = self.chosen.redact(u.participant, u.id) if u.participant else None
        return u.model_copy(update={"text": text, "tokens": [], "machine_text": None, "participant": participant,
                                    "speaker": self.chosen.redact(u.speaker, u.id)})


def _before(finds: list[Find], at: int) -> int:
    """``at``, moved back to the start of a find it would cut through."""
    for f in finds:
        if f.start < at < f.end:
            at = f.start
    return at


def _masked(text: str, finds: list[Find], end: int) -> str:
    """``text`` up to ``end`` (no find cut through) with its finds masked."""
    return apply(text[:end], [f for f in finds if f.end <= end])


@dataclass
class Delayed:
    """Caption events held ``delay_s`` before they are handled, in order. A partial whose utterance's
    final arrived meanwhile keeps settled only the words the final agrees with: the rest goes out in
    the final's words. ``handle`` gets each event when it is due."""

    handle: Callable[[Event], Awaitable[None]]
    delay_s: float
    _queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    _finals: dict[str, list[Final]] = field(default_factory=dict)  # utterance → its finals still held
    _generation: int = 0  # counts clears: an event dequeued before one is dropped after its wait

    def put(self, event: Partial | Final | Endpoint) -> None:
        if isinstance(event, Final):
            self._finals.setdefault(event.utterance_id, []).append(event)
        self._queue.put_nowait((time.monotonic() + self.delay_s, event))

    def holds_final(self, utterance_id: str) -> bool:
        """The utterance's final has come and waits out its delay."""
        return utterance_id in self._finals

    def clear(self) -> None:
        """Drop every event still held (the court blanked the captions)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._finals.clear()
        self._generation += 1

    async def run(self) -> None:
        while True:
            due, event = await self._queue.get()
            generation = self._generation
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if generation != self._generation:
                continue
            if isinstance(event, Final):
                held = self._finals.get(event.utterance_id, [])
                if event in held:
                    held.remove(event)
                if not held:
                    self._finals.pop(event.utterance_id, None)
            elif isinstance(event, Partial) and (later := self._finals.get(event.utterance_id)):
                settled = agreed(later[0].utterance.text, event.text[:event.stable])
                event = event.model_copy(update={"stable": len(settled)})
            await self.handle(event)
