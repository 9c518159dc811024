"""A connection's request line and headers come within a deadline, and one address keeps only a few
connections that have not sent their first.

uvicorn times out a connection only after a response (keep-alive); one that sends its headers a
byte at a time, or nothing, is held for ever. Some thousands of them from one host took every
connection the server allows (``max_connections``) and every court's screens got 503 until they
went. Headers take a browser, a recorder or a reverse proxy milliseconds: ``HEADER_TIMEOUT_S`` is
generous, and a proxy in front of many screens passes each request's headers at once, so its few
unfinished ones stay under ``MAX_UNFINISHED_PER_ADDRESS``.
"""
from __future__ import annotations

import asyncio
from collections import Counter

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..logs import get_logger

HEADER_TIMEOUT_S = 10.0  # from a connection's start, or the end of its last response
MAX_UNFINISHED_PER_ADDRESS = 32  # connections of one address still before their headers' end

log = get_logger(__name__)


class CourtHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for the headers and a cap per address on connections
    that have not sent them (a WebSocket is past its headers once upgraded)."""

    unfinished: Counter[str] = Counter()  # address → its connections before their headers' end
    warned: set[str] = set()  # addresses at the cap, said once in the log until they fall under it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting = False
        self._address = self.client[0] if self.client else ""
        if CourtHttp.unfinished[self._address] >= MAX_UNFINISHED_PER_ADDRESS:
            if self._address not in CourtHttp.warned:
                CourtHttp.warned.add(self._address)
                log.warning("connections refused: too many unfinished requests from one address",
                            address=self._address, limit=MAX_UNFINISHED_PER_ADDRESS)
            transport.close()
            return
        self._waiting = True
        CourtHttp.unfinished[self._address] += 1
        self._due()

    def _due(self) -> None:
        """Headers are due from now."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._late)

    def _done(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._waiting:
            self._waiting = False
            CourtHttp.unfinished[self._address] -= 1
            if CourtHttp.unfinished[self._address] <= 0:
                del CourtHttp.unfinished[self._address]
                CourtHttp.warned.discard(self._address)

    def _late(self) -> None:
        self._done()
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._done()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)  # a request whose headers came already: it starts now
        super().on_response_complete()
        if not queued and not self.transport.is_closing():
            self._due()  # the next request's (an idle keep-alive connection counts in no cap)

    def handle_websocket_upgrade(self) -> None:
        self._done()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()
        super().connection_lost(exc)
