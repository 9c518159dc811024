"""A live source's audio as it comes, in hearing time: what is still to send, and what was sent
lately, which a source coming back after an outage sends again (stream_client.py)."""
from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator

import numpy as np

from ..audio import SAMPLE_RATE as SR


class Tape:
    """The source's audio as it comes, in hearing time: what is still to send, and what was sent in
    the last ``keep_s`` seconds, which a source coming back resends (the server takes it from where
    its archive of the channel ends, so nothing is lost and nothing doubled)."""

    def __init__(self, keep_s: float):
        self.keep = int(keep_s * SR)
        self.kept: deque[np.ndarray] = deque()  # sent, oldest first
        self.kept_samples = 0
        self.waiting: deque[np.ndarray] = deque()  # not sent yet
        self.next_sample = 0  # the sample number of waiting[0]
        self.base_ms = 0  # hearing time of sample number 0
        self.ended = False
        self.taken_up_at: float | None = None  # when a connection last took the audio up (monotonic)
        self.failed: BaseException | None = None
        self._changed = asyncio.Event()

    async def fill(self, chunks: AsyncIterator[np.ndarray]) -> None:
        try:
            async for chunk in chunks:
                self.waiting.append(chunk)
                self._changed.set()
        except Exception as err:  # noqa: BLE001 - raised where the audio is taken
            self.failed = err
        finally:
            self.ended = True
            self._changed.set()

    async def take(self) -> np.ndarray | None:
        """The next chunk to send (None: the source has ended)."""
        while not self.waiting:
            if self.failed is not None:
                raise self.failed
            if self.ended:
                return None
            self._changed.clear()
            await self._changed.wait()
        chunk = self.waiting.popleft()
        self.next_sample += chunk.size
        if self.keep:
            self.kept.append(chunk)
            self.kept_samples += chunk.size
            while self.kept_samples - self.kept[0].size >= self.keep:
                self.kept_samples -= self.kept.popleft().size
        return chunk

    def sent_ms(self) -> int:
        return self.next_sample * 1000 // SR

    def rewind(self) -> int:
        """Put what was kept back to send again; the hearing time of its first sample."""
        self.waiting.extendleft(reversed(self.kept))
        self.next_sample -= self.kept_samples
        self.kept.clear()
        self.kept_samples = 0
        return self.base_ms + self.next_sample * 1000 // SR

    def unsent(self, had_ms: int) -> tuple[int, np.ndarray]:
        """What the server may not have, for a stream it will not take back: the audio from where
        it had the source (``had_ms``, hearing time: its last final's end) on, kept and waiting,
        and the hearing time of its first sample."""
        kept_from = self.rewind()
        self.resumed_at(kept_from, max(had_ms, kept_from))
        audio = np.concatenate(self.waiting) if self.waiting else np.zeros(0, np.float32)
        at = self.base_ms + self.next_sample * 1000 // SR
        self.next_sample += audio.size  # handed over: taken, never handed twice
        self.waiting.clear()
        return at, audio

    def resumed_at(self, asked_ms: int, offset_ms: int) -> None:
        """The server took the audio up from ``offset_ms`` (asked: ``asked_ms``): what it already
        has is not sent again, and hearing time runs on from there."""
        skip = max(0, (offset_ms - asked_ms) * SR // 1000)
        while skip and self.waiting:
            head = self.waiting.popleft()
            if head.size > skip:
                self.waiting.appendleft(head[skip:])
            cut = min(skip, head.size)
            self.next_sample += cut
            skip -= cut
        self.base_ms = offset_ms - self.next_sample * 1000 // SR
