"""A live source's recent audio: what the open utterance and a second of context need, no more.

Memory stays flat however long a hearing runs or however fast a client replays a file. Shared
between the event loop (audio in) and the decode worker (a partial takes what arrived since its
last look), so every read and write holds one lock.
"""
from __future__ import annotations

import threading

import numpy as np


class RecentAudio:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = np.zeros(0, np.float32)
        self.start = 0  # absolute sample index of the oldest sample kept
        self.end = 0  # samples received so far: the index of the next one

    def append(self, audio: np.ndarray) -> int:
        """Keep ``audio``; the absolute index of its first sample."""
        with self._lock:
            self._buf = np.concatenate([self._buf, audio.astype(np.float32, copy=False)])
            at = self.end
            self.end += audio.size
            return at

    def slice(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b), as far as they are still kept (a copy)."""
        with self._lock:
            return self._slice(a, b)

    def since(self, a: int) -> tuple[np.ndarray, int]:
        """Everything from ``a`` to now, and where now is: the next look starts there."""
        with self._lock:
            return self._slice(a, self.end), self.end

    def forget_before(self, sample: int) -> None:
        with self._lock:
            cut = sample - self.start
            if cut > 0:
                self._buf = self._buf[cut:]
                self.start += cut

    def _slice(self, a: int, b: int) -> np.ndarray:
        lo, hi = max(0, a - self.start), max(0, b - self.start)
        return self._buf[lo:hi].copy()
