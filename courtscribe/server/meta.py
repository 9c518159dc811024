"""The service about itself: health, Prometheus metrics, who a token is, which models it runs."""
from __future__ import annotations

import asyncio
import shutil

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .. import metrics
from ..records import formats, package
from ..access.guard import Denied
from ..access.scopes import SIGNS_AS, Action, Principal
from . import deps
from .auth import allow, identify_request

router = APIRouter()


MIN_FREE_BYTES = 1 << 30  # below this a day's recordings may not fit: not ready for a hearing


@router.get("/healthz")
async def healthz(request: Request, ready: bool = False) -> Response:
    """Up or not, for any probe; ``?ready=true``: also whether a hearing can be recorded now (the
    record store answers, the data folder has room), 503 when not. What runs, how many streams are
    live (whether a hearing is in progress) and the checks' figures only for a token, where tokens
    are on."""
    checks = await _readiness(request) if ready else {}
    status = "ok" if checks.get("ready", True) else "unready"
    code = 200 if status == "ok" else 503
    if not await _told_more(request):
        return JSONResponse({"status": status}, status_code=code)
    comp, live = deps.components(request), deps.live(request)
    return JSONResponse({"status": status, "engine": comp.engine.name, "model": comp.engine.model_name,
                         "vad": comp.vad.name, "live_streams": live.scheduler.active_streams,
                         "live_slots": live.scheduler.slots,
                         "max_streams": live.scheduler.max_streams, **live.gateway, **checks}, status_code=code)


async def _told_more(request: Request) -> bool:
    access = deps.access(request)
    if not access.enabled:
        return True
    if not request.headers.get("authorization"):
        return False
    try:
        await identify_request(request, access)
    except Denied:
        return False
    return True


async def _readiness(request: Request) -> dict:
    live, settings = deps.live(request), deps.settings(request)
    up = await asyncio.to_thread(deps.store(request).reachable)
    free = shutil.disk_usage(settings.data_dir).free
    return {"ready": up and free >= MIN_FREE_BYTES, "store_up": up, "data_free_bytes": free,
            "spool_pending": live.spool.pending if live.spool else 0}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request, who: Principal = allow(Action.metrics)) -> Response:
    """Prometheus exposition (scrape with a monitor token): stage latencies, queues, streams, RTF,
    the record store's state and the data folder's free space."""
    peers = deps.live(request).peers  # one gateway replica of several: all of theirs, labelled
    body, media = metrics.exposition(await peers.metrics() if peers else None)
    return Response(body, media_type=media)


@router.get("/v1/whoami")
async def whoami(request: Request, who: Principal = allow(None)) -> dict:
    """Who the token is and what it may sign as (a page fills the signer in; None: tokens are off)."""
    enabled = deps.access(request).enabled
    return {"name": who.name, "role": who.role.value, "court": who.court, "room": who.room,
            "hearing": who.hearing, "signs_as": list(SIGNS_AS.get(who.role, ())) if enabled else None,
            "may": sorted(a.value for a in Action if who.may(a))}  # pages offer only what the token may do


@router.get("/v1/formats")
async def export_formats(who: Principal = allow(None)) -> dict:
    """The export formats (the writer registry, records/formats.py): pages make their buttons from it."""
    return {"formats": [{"format": name, "label": w.label, "extension": w.extension, "media_type": w.media_type,
                         "on_page": w.on_page} for name, w in formats.WRITERS.items()]
            + [{"format": "package", "label": "电子卷宗包", "extension": "zip", "media_type": package.MEDIA_TYPE,
                "on_page": False}]}


@router.get("/v1/models")
async def models(request: Request, who: Principal = allow(None)) -> dict:
    return {"object": "list", "data": [{"id": s.name, "object": "model", "kind": s.kind, "owned_by": s.licence}
                                       for s in deps.components(request).registry.specs.values()]}
