"""A live source's audio level for the clerk's channel panel: is the microphone alive, is anyone
speaking. RMS and peak in dBFS a few times a second, sent to the hearing's screens only (an audio
source's own client, FunASR's included, never sees them)."""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

FLOOR_DB = -90.0
EVERY_S = 0.25  # wall clock: a file replayed faster than real time does not flood the screens


def dbfs(x: float) -> float:
    return round(max(FLOOR_DB, 20 * math.log10(max(x, 1e-12))), 1)


class LevelMeter:
    def __init__(self, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every_s, self._clock = every_s, clock
        self._sq, self._n, self._peak, self._last = 0.0, 0, 0.0, -math.inf

    def feed(self, audio: np.ndarray) -> tuple[float, float] | None:
        """Take a chunk; when a reading is due, (rms_db, peak_db) over the chunks since the last one."""
        if audio.size:
            x = audio.astype(np.float64, copy=False)
            self._sq += float(np.dot(x, x))
            self._n += audio.size
            self._peak = max(self._peak, float(np.abs(x).max()))
        now = self._clock()
        if not self._n or now - self._last < self.every_s:
            return None
        reading = dbfs(math.sqrt(self._sq / self._n)), dbfs(self._peak)
        self._sq, self._n, self._peak, self._last = 0.0, 0, 0.0, now
        return reading
