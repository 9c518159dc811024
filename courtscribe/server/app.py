"""The courtscribe service (FastAPI): wiring only. Start-up builds the services (services.py); each
web concept is a module of its own, included here: hearings and their records, speakers,
transcriptions and jobs, captions, documents, the native, FunASR and OpenAI Realtime sockets, the
pages, and the service's own health and metrics.

Every endpoint checks a scoped token (auth.py over access/); WebSockets are accepted, then
identified, so a refused client is told why before the socket closes.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from ..access import guard
from ..access.guard import Denied
from ..access.quota import Limits
from ..config import Settings, get_settings
from ..diarization.embedding import EncoderError
from ..logs import get_logger, redact_queries
from ..db import unavailable
from ..records.store import RecordError, RecordStore
from ..streaming.peers import Transport
from ..components import Components
from . import (captions, documents, errors, exports, funasr_socket, hearings, meta, pages, realtime, redactions,
               services, signing, speakers, stream_socket, transcriptions)
from .auth import denied
from .files import Busy
from .hosts import HostCheck, allowed_hosts
from .middleware import Guard
from .sockets import Stopping

log = get_logger(__name__)


class InsecureBind(RuntimeError):
    """--insecure-no-auth on an address other hosts can reach."""


async def busy(_request, err: Busy) -> JSONResponse:
    return errors.answer(503, "busy", str(err))


async def store_away(_request, err: DBAPIError) -> JSONResponse:
    """The database is away (restarting, locked, a full disk): a retryable 503 on every route, not a
    bare 500 with a traceback; anything else a database refuses is still a server error."""
    if not unavailable(err):
        raise err
    log.warning("record store unavailable", error=type(err).__name__)
    return errors.answer(503, "store_unavailable", f"the record store cannot be reached ({type(err).__name__}); "
                         "retry in a moment", {"Retry-After": "5"})


def create_app(settings: Settings | None = None, components: Components | None = None,
               records: RecordStore | None = None, peers: Transport | None = None,
               limits: Limits | None = None) -> FastAPI:
    """The whole server. ``peers``: this is one gateway replica of several (``cluster/``);
    ``limits``: counted where every replica counts (the cluster's bus), else here."""
    settings = settings or get_settings()
    if settings.insecure_no_auth:
        if not guard.is_loopback(settings.host):
            raise InsecureBind(f"--insecure-no-auth is refused on {settings.host}: without tokens the server may "
                               "only listen on a loopback address (127.0.0.1, ::1)")
        log.warning("AUTHENTICATION IS OFF (--insecure-no-auth): anyone on this machine can read and change "
                    "court records. Never run a courtroom like this.")
    access = guard.build(settings, limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redact_queries()  # uvicorn has configured its loggers by now
        app.state.services = held = await services.start(settings, access, components, records, peers)
        tasks = [asyncio.create_task(services.flush_spool(held.live))]
        if held.link is not None:
            tasks.append(asyncio.create_task(held.link.run()))
        yield
        for task in tasks:
            task.cancel()
        await services.stop(held)

    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN (none may leave a court's
    # network, and a token pasted into them would meet a third party's script); /openapi.json stays
    app = FastAPI(title="courtscribe", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Speech recognition for courtrooms: recordings and live audio into court records.")
    app.state.access = access
    app.state.stopping = Stopping()  # set on SIGTERM (serving.py): the audio sockets finish, then close
    app.add_middleware(Guard, access=access, max_body=settings.max_body_kb * 1024,
                       max_upload=settings.max_upload_mb * 1024 * 1024)
    # before the token check: a request to a name that is not this server's is answered by nothing else
    app.add_middleware(HostCheck, hosts=allowed_hosts(settings.allowed_hosts, settings.host))
    if settings.cors_origins:  # closed unless court IT names the origins of its own pages
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    # starlette types a handler as taking any Exception; it calls each with the class it is registered for
    app.add_exception_handler(Denied, denied)  # type: ignore[arg-type]
    app.add_exception_handler(RecordError, hearings.record_error)  # type: ignore[arg-type]
    app.add_exception_handler(EncoderError, speakers.bad_enrollment)  # type: ignore[arg-type]
    app.add_exception_handler(Busy, busy)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, store_away)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, errors.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, errors.invalid)  # type: ignore[arg-type]
    for module in (transcriptions, hearings, signing, exports, speakers, captions, redactions, documents, pages, meta,
                   stream_socket, realtime, funasr_socket):
        app.include_router(module.router)
    return app
