"""The courtscribe service (FastAPI). This module wires the file API; live WebSocket streaming
mounts on the same app.

Engines are loaded once at start-up and shared. CPU-bound work runs in a bounded worker pool off
the event loop; when every slot and queue place is taken a request gets 503 "busy" at once instead
of everyone slowing down.
"""
from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np

from fastapi import FastAPI, File, Form, HTTPException, UploadFile, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..asr.base import DecodeOptions
from ..audio import AudioError, decode
from ..config import Settings, get_settings
from ..records import formats
from ..records.model import Record
from ..asr.vad import FsmnVad
from ..transcribe import Components, load_components, transcribe_audio
from .funasr_compat import funasr_stream
from .hub import Hub
from .live import Live, hearing_events, native_stream
from .scheduler import DecodeScheduler

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


class WorkerPool:
    """At most ``workers`` jobs run and ``queue`` wait; beyond that, callers are told to come back."""

    def __init__(self, workers: int, queue: int):
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._run = asyncio.Semaphore(workers)

    async def submit(self, fn, *args, **kwargs):
        if not self._slots.acquire(blocking=False):
            raise HTTPException(503, detail={"code": "busy", "message": "all transcription workers are busy; retry later"})
        try:
            async with self._run:
                return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self._slots.release()


def _openai_json(record: Record, verbose: bool) -> dict:
    text = "".join(u.text for u in record.utterances)
    if not verbose:
        return {"text": text}
    return {
        "task": "transcribe", "language": record.hearing.language, "duration": record.source.duration_ms / 1000,
        "text": text,
        "segments": [{"id": i, "start": u.start_ms / 1000, "end": u.end_ms / 1000, "text": u.text,
                      "speaker": u.speaker, "avg_logprob": None, "confidence": u.confidence}
                     for i, u in enumerate(record.utterances)],
        "words": [{"word": t.text, "start": t.start_ms / 1000, "end": t.end_ms / 1000}
                  for u in record.utterances for t in u.tokens],
    }


def create_app(settings: Settings | None = None, components: Components | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        comp = components or await asyncio.to_thread(load_components, settings)
        app.state.components = comp
        # The first decode of a fresh process pays for allocations; pay it before the first hearing.
        await asyncio.to_thread(comp.engine.transcribe, np.zeros(16000, np.float32))
        app.state.pool = WorkerPool(workers=1, queue=4)
        # Live streams use the streaming FSMN-VAD whatever VAD files use.
        vad = comp.vad if isinstance(comp.vad, FsmnVad) else await asyncio.to_thread(
            FsmnVad, comp.registry.resolve("fsmn-vad-embedded"), max_end_silence_ms=settings.stream_vad_silence_ms,
            max_segment_ms=int(settings.max_segment_s * 1000), device=settings.device)
        scheduler = DecodeScheduler(comp.engine, max_streams=settings.max_streams)
        app.state.live = Live(comp.engine, vad, scheduler, Hub(), idle_timeout_s=settings.idle_timeout_s)
        yield
        await scheduler.close()

    app = FastAPI(title="courtscribe", version="0.1.0", lifespan=lifespan,
                  description="Speech recognition for courtrooms: recordings and live audio into court records.")

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Native protocol: one audio source (see docs/protocol.md)."""
        await native_stream(ws, app.state.live)

    @app.websocket("/v1/hearings/{hearing_id}/events")
    async def events(ws: WebSocket, hearing_id: str) -> None:
        """Every channel's partials and finals of one hearing, for clerk screens and caption feeds."""
        await hearing_events(ws, app.state.live, hearing_id)

    @app.websocket("/")
    async def funasr_root(ws: WebSocket) -> None:
        """FunASR clients connect to ws://host:port with no path."""
        await funasr_stream(ws, app.state.live)

    @app.websocket("/funasr")
    async def funasr_path(ws: WebSocket) -> None:
        await funasr_stream(ws, app.state.live)

    @app.get("/healthz")
    async def healthz() -> dict:
        comp: Components = app.state.components
        live: Live = app.state.live
        return {"status": "ok", "engine": comp.engine.name, "model": comp.engine.model_name, "vad": comp.vad.name,
                "live_streams": live.scheduler.active_streams, "max_streams": live.scheduler.max_streams}

    @app.get("/v1/models")
    async def models() -> dict:
        comp: Components = app.state.components
        return {"object": "list", "data": [{"id": s.name, "object": "model", "kind": s.kind, "owned_by": s.licence}
                                           for s in comp.registry.specs.values()]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(file: UploadFile = File(...), model: str = Form("whisper-base"),
                             language: str | None = Form(None), response_format: ResponseFormat = Form("json"),
                             prompt: str | None = Form(None)) -> Response:
        """OpenAI-compatible file transcription; ``verbose_json`` adds speakers and word times."""
        comp: Components = app.state.components
        limit = settings.max_upload_mb * 1024 * 1024
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, detail={"code": "too_large", "message": f"upload exceeds {settings.max_upload_mb} MB"})
        try:
            audio = await asyncio.to_thread(decode, data)
        except AudioError as err:
            raise HTTPException(400, detail={"code": "bad_audio", "message": str(err)}) from None
        hotwords = tuple(w for w in (prompt or "").split() if w)
        options = DecodeOptions(language=language or settings.language, hotwords=hotwords,
                                beam_size=settings.beam_size)
        record = await app.state.pool.submit(transcribe_audio, audio, comp, options=options,
                                             source_path=file.filename)
        if response_format in ("json", "verbose_json"):
            return JSONResponse(_openai_json(record, response_format == "verbose_json"))
        if response_format == "text":
            return PlainTextResponse("".join(u.text for u in record.utterances) + "\n")
        return PlainTextResponse(formats.render(record, response_format),  # type: ignore[arg-type]
                                 media_type="text/vtt" if response_format == "vtt" else "text/plain")

    return app
