"""What is counted against a token: its requests per minute, an address's wrong tokens, and live
stream slots (recorders first, and no one token everything).

The decode scheduler admits at most ``max_streams`` live streams. Without a quota one judge's
idle dictation sockets (or one leaked viewer token's) could take every slot and leave a courtroom's
recorder with "busy". Here: courtroom recorders are counted against the total and, where court IT
sets it, ``per_room`` for each courtroom (one room's recorder must not take the slots another
room's hearing needs); every other token may hold ``per_token`` streams, and all of them together
leave ``reserved`` slots free for recorders.

The counting is one ``Counters``: the server's own, or, in a cluster, the one on the gateways' bus
(``cluster/bus.py``), so two gateway replicas count one limit, not two. A gateway is an
``origin``: when it dies its streams' slots are given back.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .scopes import AccessRole, Principal


@dataclass(frozen=True)
class Slots:
    """Live stream slots of one gateway (a cluster has as many of these as live gateways)."""
    max_streams: int
    per_token: int
    reserved: int
    per_room: int | None = None  # a courtroom's recorders' streams at once (None: up to the total)


class Limits(Protocol):
    """The counting a server uses (sync: called off the event loop, it may ask the bus)."""

    def hit(self, rate: str, *keys: str) -> bool: ...

    def test(self, rate: str, *keys: str) -> bool: ...

    def take(self, who: Principal) -> str | None: ...

    def give(self, who: Principal) -> None: ...


class Sockets:
    """Open WebSockets of this server: at most ``per_token`` for one token (a leaked viewer token's
    idle subscribers must not use up the server) and ``total`` in all, which uvicorn's connection
    limit does not count once a socket is upgraded."""

    def __init__(self, per_token: int, total: int):
        self.per_token, self.total = per_token, total
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, who: Principal, *, counted: bool = True) -> str | None:
        """Count one more socket of ``who`` (``counted`` False: tokens are off, only the total
        counts); or why it may not open (nothing is counted then)."""
        with self._lock:
            if sum(self._open.values()) >= self.total:
                return f"the server holds its limit of {self.total} open sockets; retry later"
            if counted and self._open[who.token_id] >= self.per_token:
                return (f"token {who.token_id} already holds {self.per_token} open sockets "
                        "(COURTSCRIBE_MAX_SOCKETS_PER_TOKEN); close one first")
            self._open[who.token_id] += 1
            return None

    def give(self, who: Principal) -> None:
        with self._lock:
            self._open[who.token_id] -= 1
            if self._open[who.token_id] <= 0:
                del self._open[who.token_id]


class Counters:
    """Rate windows and stream slots, for one server or for every gateway of a cluster."""

    def __init__(self, slots: Slots | None = None):
        self.slots = slots
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._held: Counter[tuple[str, str]] = Counter()  # (origin, token id) → its streams there
        self._others: Counter[str] = Counter()  # origin → streams held by tokens that are not recorders
        self._rooms: dict[str, tuple[str | None, str | None]] = {}  # recorder token id → its court, room
        self._lock = threading.Lock()

    def hit(self, rate: str, *keys: str) -> bool:
        """Count one more; False when over ``rate`` (then nothing is counted)."""
        return self._limiter.hit(parse_limit(rate), *keys)

    def test(self, rate: str, *keys: str) -> bool:
        return self._limiter.test(parse_limit(rate), *keys)

    def take(self, who: Principal, origin: str = "", slots: Slots | None = None, gateways: int = 1) -> str | None:
        """Count a new stream of ``who``; or why it may not start one (nothing is counted then)."""
        slots = slots or self.slots
        assert slots is not None, "no slot sizes: pass slots"
        with self._lock:
            if who.role is AccessRole.recorder:
                if slots.per_room is not None and self._room(who) >= slots.per_room:
                    return (f"{who.room or who.court or 'this courtroom'}'s recorders already hold "
                            f"{slots.per_room} live streams (COURTSCRIBE_MAX_STREAMS_PER_ROOM); close one first")
                self._rooms[who.token_id] = (who.court, who.room)
            else:
                if sum(n for (_, t), n in self._held.items() if t == who.token_id) >= slots.per_token:
                    return (f"token {who.token_id} already holds {slots.per_token} live streams (the most one "
                            "token may hold); close one first")
                total, kept = gateways * slots.max_streams, gateways * slots.reserved
                if sum(self._others.values()) >= total - kept:
                    return (f"the live stream slots left are kept for courtroom recorders ({kept} of "
                            f"{total}); retry later")
                self._others[origin] += 1
            self._held[origin, who.token_id] += 1
            return None

    def _room(self, who: Principal) -> int:
        """Streams held now by the recorders of ``who``'s courtroom, on every gateway."""
        return sum(n for (_, t), n in self._held.items() if self._rooms.get(t) == (who.court, who.room))

    def give(self, who: Principal, origin: str = "") -> None:
        with self._lock:
            if self._held[origin, who.token_id] > 0:
                self._held[origin, who.token_id] -= 1
                if who.role is not AccessRole.recorder:
                    self._others[origin] -= 1
            self._held += Counter()  # drops the zeros
            self._others += Counter()

    def drop(self, origin: str) -> None:
        """A gateway died: the slots its streams held are free again."""
        with self._lock:
            for key in [k for k in self._held if k[0] == origin]:
                del self._held[key]
            self._others.pop(origin, None)
