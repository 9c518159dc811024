"""Serve's HTTP proxy held to the rules ``courtscribe serve`` gives uvicorn: which reverse proxies'
X-Forwarded-For is believed (``COURTSCRIBE_FORWARDED_ALLOW_IPS``; none by default, where Serve's
own uvicorn believes 127.0.0.1), and how large one WebSocket frame may be.

Serve calls ``middlewares`` in each proxy process (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``,
set by ``cluster/app.py`` for the clusters it starts, and in the KubeRay manifest) before its
uvicorn is configured, which reads ``FORWARDED_ALLOW_IPS`` then.
"""
from __future__ import annotations

import os

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..streaming.protocol import MAX_FRAME_BYTES

CALLBACK = "courtscribe.cluster.proxy:middlewares"
# what `courtscribe serve` gives uvicorn as ws_max_size: an OpenAI Realtime append of 15 MiB of audio in base64
# (20 MiB) and its event; each protocol refuses its own frames over its own limit, in its own words
MAX_WS_MESSAGE = 21 * MAX_FRAME_BYTES


class FrameLimit:
    """A WebSocket message over ``max_bytes`` closes the socket (1009, as uvicorn does) before it
    reaches a gateway."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_WS_MESSAGE):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                size = len(message.get("bytes") or b"") + len((message.get("text") or "").encode())
                if size > self.max_bytes:
                    await send({"type": "websocket.close", "code": 1009,
                                "reason": f"message of {size} bytes exceeds {self.max_bytes}"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message
        await self.app(scope, limited, send)


def trusted_proxies(settings: Settings) -> str:
    """uvicorn's FORWARDED_ALLOW_IPS for our setting ("" trusts no address)."""
    return ",".join(settings.forwarded_allow_ips)


def middlewares() -> list[Middleware]:
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies(Settings())
    return [Middleware(FrameLimit)]
