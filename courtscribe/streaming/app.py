"""The courtscribe service (FastAPI): loads the engines once, then wires live WebSocket streaming
(native and FunASR-compatible), hearing subscribers and the file API (files.py) onto one app.

CPU-bound work runs off the event loop: live decodes in the shared DecodeScheduler, file
pipelines in a bounded worker pool; when either is full a client gets "busy" at once instead of
everyone slowing down.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, WebSocket

from ..asr.hotwords import load_lexicon
from ..asr.vad import FsmnVad
from ..config import Settings, get_settings
from ..logs import get_logger
from ..diarization import api as speakers_api
from ..records import api as records_api
from ..records import archive
from ..records.model import Pipeline
from ..records.store import RecordError, RecordStore
from ..transcribe import Components, load_components
from . import files
from .files import WorkerPool
from .funasr_compat import funasr_stream
from .hub import Hub
from .jobs import Jobs
from .live import Live, hearing_events, native_stream
from .scheduler import DecodeScheduler

log = get_logger(__name__)


def create_app(settings: Settings | None = None, components: Components | None = None,
               records: RecordStore | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        comp = components or await asyncio.to_thread(load_components, settings)
        app.state.components, app.state.settings = comp, settings
        # The first decode of a fresh process pays for allocations; pay it before the first hearing.
        await asyncio.to_thread(comp.engine.transcribe, np.zeros(16000, np.float32))
        app.state.pool = WorkerPool(workers=1, queue=4)
        app.state.jobs = Jobs()
        # Live streams use the streaming FSMN-VAD whatever VAD files use.
        vad = comp.vad if isinstance(comp.vad, FsmnVad) else await asyncio.to_thread(
            FsmnVad, comp.registry.resolve("fsmn-vad-embedded"), max_end_silence_ms=settings.stream_vad_silence_ms,
            max_segment_ms=int(settings.segment_s * 1000), device=settings.device)
        scheduler = DecodeScheduler(comp.engine, max_streams=settings.max_streams, final_batch=settings.final_batch,
                                     final_wait_ms=settings.final_wait_ms)
        app.state.records = records or await asyncio.to_thread(RecordStore, settings.records_url)
        pipeline = Pipeline(engine=comp.engine.name, model=comp.engine.model_name, vad=vad.name, diarizer="channel")
        app.state.archive = settings.data_dir / "archive"
        finished = await asyncio.to_thread(archive.recover, app.state.archive)  # segments a crash left open
        if finished:
            log.warning("finished audio segments left open by a crash", segments=len(finished))
        app.state.live = Live(comp.engine, vad, scheduler, Hub(), idle_timeout_s=settings.idle_timeout_s,
                              records=app.state.records, pipeline=pipeline, archive=app.state.archive,
                              lexicon=load_lexicon(settings.lexicon_file), max_segment_ms=int(settings.segment_s * 1000),
                              speaker_encoder=await asyncio.to_thread(comp.speaker_encoder))
        yield
        await app.state.jobs.close()
        await scheduler.close()
        app.state.records.close()

    app = FastAPI(title="courtscribe", version="0.1.0", lifespan=lifespan,
                  description="Speech recognition for courtrooms: recordings and live audio into court records.")
    app.include_router(files.router)
    app.include_router(records_api.router)
    app.include_router(speakers_api.router)
    app.add_exception_handler(RecordError, records_api.record_error)

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

    return app
