"""Who may hold live stream slots: recorders first, and no one token everything.

The decode scheduler admits at most ``max_streams`` live streams. Without a quota one judge's
idle dictation sockets (or one leaked viewer token's) could take every slot and leave a courtroom's
recorder with "busy". Here: courtroom recorders are counted only against the total; every other
token may hold ``per_token`` streams, and all of them together leave ``reserved`` slots free for
recorders. Pure bookkeeping, told when a stream starts and ends; it says why it refuses.
"""
from __future__ import annotations

import threading
from collections import Counter

from .scopes import AccessRole, Principal


class StreamQuota:
    def __init__(self, *, max_streams: int, per_token: int, reserved: int):
        self.max_streams, self.per_token, self.reserved = max_streams, per_token, reserved
        self._held: Counter[str] = Counter()
        self._others = 0  # streams held by tokens that are not recorders
        self._lock = threading.Lock()

    def take(self, who: Principal) -> str | None:
        """Count a new stream of ``who``; or why it may not start one (nothing is counted then)."""
        with self._lock:
            if who.role is not AccessRole.recorder:
                if self._held[who.token_id] >= self.per_token:
                    return (f"token {who.token_id} already holds {self.per_token} live streams (the most one "
                            "token may hold); close one first")
                if self._others >= self.max_streams - self.reserved:
                    return (f"the live stream slots left are kept for courtroom recorders ({self.reserved} of "
                            f"{self.max_streams}); retry later")
                self._others += 1
            self._held[who.token_id] += 1
            return None

    def give(self, who: Principal) -> None:
        with self._lock:
            if self._held[who.token_id] > 0:
                self._held[who.token_id] -= 1
                if who.role is not AccessRole.recorder:
                    self._others -= 1
            if self._held[who.token_id] == 0:
                del self._held[who.token_id]
