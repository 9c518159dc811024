"""The screens people use, served by the service itself with every asset local (courts are often
offline, and a CDN would see court data): the clerk's live screen (书记员), the livestream caption
overlay (庭审直播) and the judge's dictation page (法官语音录入).

Pages carry no data and need no token to load; they read a token from the URL fragment
(``#token=…``, never sent to the server or written to logs) and use it for every API call and socket.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from ..records.model import Role

STATIC = Path(__file__).resolve().parent.parent / "clients" / "web" / "static"
PAGES = {"clerk": "clerk.html", "captions": "captions.html", "dictation": "dictation.html", "": "index.html"}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".svg": "image/svg+xml"}
# Only this server: no CDN, no inline script, no other host for sockets or media.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/ui")
def ui_root() -> RedirectResponse:
    """A browser that opens the server's address finds the front page (FunASR's clients keep the
    WebSocket at ``/``)."""
    return RedirectResponse("/ui/")


@router.get("/ui/")
def index() -> FileResponse:
    return _file(PAGES[""])


@router.get("/ui/roles.json")
def roles() -> dict[str, str]:
    return {role.value: role.label for role in Role}


@router.get("/ui/{page}")
def page(page: str) -> FileResponse:
    if page not in PAGES:
        raise HTTPException(404, detail={"code": "no_such_page", "message": f"no page {page!r}"})
    return _file(PAGES[page])


@router.get("/ui/static/{name}")
def asset(name: str) -> FileResponse:
    """One flat folder of assets, named exactly: no listing, no paths."""
    if "/" in name or name.startswith(".") or Path(name).suffix not in TYPES or not (STATIC / name).is_file():
        raise HTTPException(404, detail={"code": "no_such_asset", "message": f"no asset {name!r}"})
    return _file(name)


def _file(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type=TYPES[Path(name).suffix],
                        headers={"Content-Security-Policy": CSP})
