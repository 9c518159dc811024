"""Every error answer in one shape: ``detail`` (``code``, ``message``: courtscribe's own clients) and
``error`` (``message``, ``type``, ``param``, ``code``: what OpenAI's SDKs read, and all they read, so
an upload refused as bad audio, too large or busy says why through their exceptions too)."""
from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


def openai_error(status: int, code: str | None, message: str, param: str | None = None) -> dict:
    return {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
            "param": param, "code": code}


def body(status: int, detail) -> dict:
    """An error body from FastAPI's ``detail`` (ours: a dict with ``code`` and ``message``)."""
    if isinstance(detail, dict):
        message = str(detail.get("message") or detail.get("code") or "")
        error = openai_error(status, detail.get("code"), message, detail.get("field"))
    else:
        error = openai_error(status, None, str(detail))
    return {"detail": detail, "error": error}


def answer(status: int, code: str, message: str, headers: dict | None = None, *, more: dict | None = None
           ) -> JSONResponse:
    """``more``: what else the client needs to act on it (the line as it reads now, for a conflict)."""
    return JSONResponse(body(status, {"code": code, "message": message, **(more or {})}), status_code=status,
                        headers=headers)


async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    """FastAPI's answer to HTTPException (``{"detail": …}``), with ``error`` beside it."""
    return JSONResponse(body(exc.status_code, exc.detail), status_code=exc.status_code, headers=exc.headers)


async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (``detail``: its list of problems), with the first problem as ``error``."""
    problems = list(exc.errors())
    first = problems[0] if problems else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg") or "invalid request")
    return JSONResponse({"detail": _plain(problems), "error": openai_error(422, "invalid_request", message, where)},
                        status_code=422)


def _plain(value):
    """Validation problems as JSON (their ``ctx`` may hold exceptions)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
