"""The courtscribe service (FastAPI): loads the engines once, then wires live WebSocket streaming
(native and FunASR-compatible), hearing subscribers and the file API (files.py) onto one app.

Every endpoint checks a scoped token (access/guard.py); WebSockets are accepted, then identified,
so a refused client is told why before the socket closes. CPU-bound work runs off the event loop: live decodes in the shared DecodeScheduler, file
pipelines in a bounded worker pool; when either is full a client gets "busy" at once instead of
everyone slowing down.
"""
from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager

import numpy as np
from fastapi import FastAPI, Response, WebSocket
from fastapi.middleware.cors import CORSMiddleware

from ..access import guard
from ..access.guard import Denied, note_denied, ws_deny, ws_enter
from ..access.middleware import Guard
from ..access.quota import StreamQuota
from ..access.scopes import SIGNS_AS, AccessRole, Action, Principal

from ..asr import finals
from ..asr.base import DecodeOptions
from ..asr.hotwords import load_lexicon
from ..clients import web
from ..cluster import metrics
from ..config import Settings, get_settings
from ..logs import get_logger, redact_queries
from ..diarization import api as speakers_api
from ..records import api as records_api
from ..records import archive, documents
from ..records.model import HEARING_ID, Pipeline
from ..records.spool import Spool
from ..records.store import RecordError, RecordStore
from ..seal import load_key
from ..transcribe import Components, load_components, load_stream_vad
from . import captions, files
from .files import WorkerPool
from .funasr_compat import funasr_stream
from .hub import Hub
from .jobs import Jobs
from .live import Live, hearing_events, native_stream
from .peers import Peers
from .protocol import ErrorCode, StreamError
from .realtime import realtime_stream
from .scheduler import DecodeScheduler

log = get_logger(__name__)


SPOOL_RETRY_S = 1.0


async def _flush_spool(live: Live) -> None:
    """Finals that waited on disk (database away, or a crash during an outage) reach the store as
    soon as it is back; the hearing's screens are told."""
    loop, spool = asyncio.get_running_loop(), live.spool
    spool.on_flushed = lambda hid, n: loop.call_soon_threadsafe(
        live.hub.publish, hid, {"type": "store_recovered", "hearing_id": hid, "lines": n})
    while True:
        if spool.pending:
            try:
                await asyncio.to_thread(spool.flush)
            except Exception as err:  # noqa: BLE001 - keep trying; the lines are safe on disk
                log.error("spool flush failed", error=repr(err))
        await asyncio.sleep(SPOOL_RETRY_S)


class InsecureBind(RuntimeError):
    """--insecure-no-auth on an address other hosts can reach."""


def create_app(settings: Settings | None = None, components: Components | None = None,
               records: RecordStore | None = None, peers: Peers | None = None) -> FastAPI:
    """The whole server. ``peers``: this is one gateway replica of several (``cluster/``)."""
    settings = settings or get_settings()
    if settings.insecure_no_auth:
        if not guard.is_loopback(settings.host):
            raise InsecureBind(f"--insecure-no-auth is refused on {settings.host}: without tokens the server may "
                               "only listen on a loopback address (127.0.0.1, ::1)")
        log.warning("AUTHENTICATION IS OFF (--insecure-no-auth): anyone on this machine can read and change "
                    "court records. Never run a courtroom like this.")
    access = guard.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redact_queries()  # uvicorn has configured its loggers by now
        if settings.decode_workers > 1:  # remote decodes wait in threads: room for all of them and the VAD's
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2 * settings.decode_workers + 8))
        comp = components or await asyncio.to_thread(load_components, settings)
        app.state.components, app.state.settings = comp, settings
        # Live streams use the streaming FSMN-VAD whatever VAD files use (in a cluster: its VAD deployment);
        # it loads (mostly imports) while the engine's first decode runs in C++ and the word lists warm.
        vad_loading = None if comp.stream_vad else asyncio.create_task(
            asyncio.to_thread(load_stream_vad, settings, comp.registry))
        warming = asyncio.get_running_loop().run_in_executor(None, finals.warm)
        # The engine's first call (a cluster's: the first round trip to its replicas) before the first
        # hearing's: a greedy preview of 1 s of silence, 0.5 s on 2 cores. A full decode of silence
        # (1.9 s: it runs Whisper's fallback) bought nothing more: the first real final took 0.97 s
        # without it and 0.92 s after it (zh-smoke/welcome.wav, live options).
        await asyncio.to_thread(comp.engine.preview_many, [(np.zeros(16000, np.float32), 0)], DecodeOptions(live=True))
        app.state.pool = WorkerPool(workers=1, queue=4)
        app.state.jobs = Jobs()
        vad = comp.stream_vad or await vad_loading
        scheduler = DecodeScheduler(comp.engine, max_streams=settings.max_streams, final_batch=settings.final_batch,
                                     final_wait_ms=settings.final_wait_ms, workers=settings.decode_workers,
                                     partial_deadline_ms=settings.partial_deadline_ms,
                                     partial_batch=settings.partial_batch)
        app.state.records = records or await asyncio.to_thread(RecordStore, settings.records_url, load_key(settings))
        access.attach(app.state.records)
        pipeline = Pipeline(engine=comp.engine.name, model=comp.engine.model_name, vad=vad.name, diarizer="channel")
        app.state.archive = settings.data_dir / "archive"
        finished = await asyncio.to_thread(archive.recover, app.state.archive)  # segments a crash left open
        if finished:
            log.warning("finished audio segments left open by a crash", segments=len(finished))
        app.state.live = Live(comp.engine, vad, scheduler, Hub(), idle_timeout_s=settings.idle_timeout_s,
                              records=app.state.records, pipeline=pipeline, archive=app.state.archive,
                              lexicon=load_lexicon(settings.lexicon_file), languages=tuple(settings.languages),
                              max_segment_ms=int(settings.segment_s * 1000),
                              speaker_encoder=await asyncio.to_thread(comp.speaker_encoder),
                              spool=Spool(settings.spool_dir, app.state.records))
        await warming
        tasks = [asyncio.create_task(_flush_spool(app.state.live))]
        if peers is not None:
            peers.attach(app.state.live, app.state.jobs)
            tasks.append(asyncio.create_task(peers.run()))
        yield
        for task in tasks:
            task.cancel()
        await app.state.jobs.close()
        await scheduler.close()
        app.state.records.close()

    app = FastAPI(title="courtscribe", version="0.1.0", lifespan=lifespan,
                  description="Speech recognition for courtrooms: recordings and live audio into court records.")
    app.state.access = access
    app.add_middleware(Guard, access=access, max_body=settings.max_body_kb * 1024,
                       max_upload=settings.max_upload_mb * 1024 * 1024)
    if settings.cors_origins:  # closed unless court IT names the origins of its own pages
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_exception_handler(Denied, guard.denied)
    app.include_router(files.router)
    app.include_router(records_api.router)
    app.include_router(speakers_api.router)
    app.include_router(captions.router)
    app.include_router(documents.router)
    app.include_router(web.router)
    app.add_exception_handler(RecordError, records_api.record_error)
    quota = StreamQuota(max_streams=settings.max_streams, per_token=settings.max_streams_per_token,
                        reserved=settings.reserved_streams)

    @contextmanager
    def gate(who: Principal):
        """May ``who`` send audio into this hearing (None: audio of no hearing)? The connection holds
        one stream slot of ``who``'s quota from its first start until it closes."""
        held: list[Principal] = []

        async def check(hearing_id: str | None) -> tuple[str | None, str | None]:
            try:
                await access.check(who, Action.send_audio if hearing_id else Action.dictate, hearing_id,
                                   missing_ok=True)
                if access.enabled and not held:
                    if why := quota.take(who):
                        raise Denied(503, ErrorCode.BUSY, why)
                    held.append(who)
                await access.audited("send_audio", who, hearing=hearing_id)
            except Denied as err:
                await note_denied(access, who, err, hearing=hearing_id)
                raise StreamError(err.code, err.message, fatal=True) from None
            return who.court, who.room
        try:
            yield check
        finally:
            for holder in held:
                quota.give(holder)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Native protocol: one audio source (see docs/protocol.md)."""
        if who := await ws_enter(ws, access):
            with gate(who) as check:
                await native_stream(ws, app.state.live, check)

    @app.websocket("/v1/hearings/{hearing_id}/events")
    async def events(ws: WebSocket, hearing_id: str) -> None:
        """Every channel's partials and finals of one hearing, for clerk screens and caption feeds."""
        if not (who := await ws_enter(ws, access)):
            return
        try:
            if who.role is AccessRole.caption:  # every partial and final, blanked or not: never a caption feed
                raise Denied(403, "forbidden", f"a caption token reads the caption feed "
                             f"(/v1/hearings/{hearing_id}/captions), not the hearing's events")
            await access.check(who, Action.read, hearing_id)
        except Denied as err:
            await ws_deny(ws, access, err, who, hearing=hearing_id)
            return
        await hearing_events(ws, app.state.live, hearing_id)

    async def funasr(ws: WebSocket) -> None:
        if who := await ws_enter(ws, access, legacy=True):
            hearing_id = ws.query_params.get("hearing")
            if hearing_id is not None and not re.fullmatch(HEARING_ID, hearing_id):
                await ws_deny(ws, access, Denied(400, "bad_message", f"?hearing={hearing_id!r} is not a hearing id"), who)
                return
            with gate(who) as check:
                await funasr_stream(ws, app.state.live, check, hearing_id=hearing_id)

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        """OpenAI's Realtime transcription protocol (``?intent=transcription``; ``&hearing=ID``)."""
        if not (who := await ws_enter(ws, access)):
            return
        hearing_id = ws.query_params.get("hearing")
        if ws.query_params.get("intent") != "transcription" or (hearing_id and not re.fullmatch(HEARING_ID, hearing_id)):
            await ws_deny(ws, access, Denied(400, "bad_request", "only transcription sessions are served here: "
                                             "/v1/realtime?intent=transcription (optionally &hearing=ID)"), who)
            return
        with gate(who) as check:
            await realtime_stream(ws, app.state.live, check, hearing_id=hearing_id)

    @app.websocket("/")
    async def funasr_root(ws: WebSocket) -> None:
        """FunASR clients connect to ws://host:port with no path (token: ?token=…, or a listed recorder host)."""
        await funasr(ws)

    @app.websocket("/funasr")
    async def funasr_path(ws: WebSocket) -> None:
        await funasr(ws)

    @app.get("/healthz")
    async def healthz() -> dict:
        comp: Components = app.state.components
        live: Live = app.state.live
        return {"status": "ok", "engine": comp.engine.name, "model": comp.engine.model_name, "vad": comp.vad.name,
                "live_streams": live.scheduler.active_streams, "max_streams": live.scheduler.max_streams,
                **live.gateway}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(who: Principal = guard.allow(Action.admin)) -> Response:
        """Prometheus exposition (scrape with an admin token): stage latencies, queues, streams, RTF."""
        peers = app.state.live.peers  # one gateway replica of several: all of theirs, labelled
        body, media = metrics.exposition(await peers.metrics() if peers else None)
        return Response(body, media_type=media)

    @app.get("/v1/whoami")
    async def whoami(who: Principal = guard.allow(None)) -> dict:
        """Who the token is and what it may sign as (a page fills the signer in; None: tokens are off)."""
        return {"name": who.name, "role": who.role.value, "court": who.court, "room": who.room,
                "hearing": who.hearing, "signs_as": list(SIGNS_AS.get(who.role, ())) if access.enabled else None,
                "may": sorted(a.value for a in Action if who.may(a))}  # pages offer only what the token may do

    @app.get("/v1/models")
    async def models(who: Principal = guard.allow(None)) -> dict:
        comp: Components = app.state.components
        return {"object": "list", "data": [{"id": s.name, "object": "model", "kind": s.kind, "owned_by": s.licence}
                                           for s in comp.registry.specs.values()]}

    return app
