"""The service about itself: health, Prometheus metrics, who a token is, which models it runs."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import metrics
from ..records import formats, package
from ..access.guard import Denied
from ..access.scopes import SIGNS_AS, Action, Principal
from . import deps
from .auth import allow, identify_request

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    """Up or not, for any probe; what runs and how many streams are live (whether a hearing is in
    progress) only for a token, where tokens are on."""
    access = deps.access(request)
    if access.enabled and not request.headers.get("authorization"):
        return {"status": "ok"}
    if access.enabled:
        try:
            await identify_request(request, access)
        except Denied:
            return {"status": "ok"}
    comp, live = deps.components(request), deps.live(request)
    return {"status": "ok", "engine": comp.engine.name, "model": comp.engine.model_name, "vad": comp.vad.name,
            "live_streams": live.scheduler.active_streams, "max_streams": live.scheduler.max_streams,
            **live.gateway}


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request, who: Principal = allow(Action.admin)) -> Response:
    """Prometheus exposition (scrape with an admin token): stage latencies, queues, streams, RTF."""
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
