"""Async client for the native streaming protocol: replay a file (in real time or faster) or a live
source into a courtscribe server, and receive its partials and finals."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

import numpy as np
import websockets

from ..audio import SAMPLE_RATE as SR
from ..audio import decode, float_to_pcm16


@dataclass
class StreamResult:
    events: list[dict] = field(default_factory=list)
    sent_at: list[tuple[float, int]] = field(default_factory=list)  # (wall time, audio ms sent so far)
    ready: dict = field(default_factory=dict)  # the server's ready message (offset_ms: where in the hearing it starts)

    @property
    def finals(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "final"]

    @property
    def partials(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "partial"]

    @property
    def text(self) -> str:
        return "".join(e["utterance"]["text"] for e in self.finals)

    def audio_time_sent_at(self, wall: float) -> int:
        """How much audio (ms) the client had sent at a given wall time."""
        ms = 0
        for t, sent in self.sent_at:
            if t > wall:
                break
            ms = sent
        return ms


def chunks_from_file(path: str | Path, chunk_ms: int = 200) -> AsyncIterator[np.ndarray]:
    """The file's audio in chunks, decoded here and now: a missing or non-audio file is an
    AudioError at the call, before any connection is made."""
    audio = decode(path).channel(0)
    step = SR * chunk_ms // 1000

    async def chunks() -> AsyncIterator[np.ndarray]:
        for i in range(0, audio.size, step):
            yield audio[i:i + step]
    return chunks()


async def stream(url: str, chunks: AsyncIterator[np.ndarray], *, hearing_id: str | None = None, channel: int = 0,
                 role: str | None = None, hotwords: list[str] | None = None, speed: float = 1.0,
                 on_event: Callable[[dict], None] | None = None, extra_headers: dict | None = None,
                 stop: asyncio.Event | None = None, token: str | None = None, ssl=None) -> StreamResult:
    """Send audio paced at ``speed`` × real time (0 = as fast as the server accepts) and collect events.
    Setting ``stop`` ends the audio early; the stream still closes properly and waits for its finals.
    ``token``: the recorder's access token; ``ssl``: an SSLContext for a wss:// server."""
    result = StreamResult()
    start = {"type": "start", "hearing_id": hearing_id, "channel": channel, "sample_rate": SR,
             "hotwords": hotwords or []}
    if role:
        start["role"] = role
    headers = {**(extra_headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with websockets.connect(url, max_size=None, additional_headers=headers or None,
                                  **({"ssl": ssl} if ssl is not None else {})) as ws:
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"server refused the stream: {ready}")
        result.ready = ready

        async def reader() -> None:
            async for raw in ws:
                event = json.loads(raw)
                event["_received"] = time.perf_counter()
                result.events.append(event)
                if on_event:
                    on_event(event)
                if event["type"] == "end":
                    return

        task = asyncio.create_task(reader())
        t0, sent_ms = time.perf_counter(), 0
        async for chunk in chunks:
            if stop is not None and stop.is_set():
                break
            await ws.send(float_to_pcm16(chunk))
            sent_ms += chunk.size * 1000 // SR
            result.sent_at.append((time.perf_counter(), sent_ms))
            if speed > 0:
                delay = t0 + sent_ms / 1000 / speed - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "stop"}))
        await task
    return result


async def stream_file(url: str, path: str | Path, *, chunk_ms: int = 200, **kwargs) -> StreamResult:
    return await stream(url, chunks_from_file(path, chunk_ms), **kwargs)
