"""A hearing's record as a file: every writer's format or the 电子卷宗 package, and the public
version (personal data masked: redaction/public.py), named by its 案号."""
from __future__ import annotations

from enum import Enum
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ..access.scopes import Action, Principal
from ..records import fonts
from ..records.service import EXPORTS
from . import deps
from .auth import on_hearing

router = APIRouter(prefix="/v1/hearings", tags=["records"])

ExportFormat = Enum("ExportFormat", {name: name for name in EXPORTS}, type=str)  # type: ignore[misc]


@router.get("/{hearing_id}/export")
def export(hearing_id: str, request: Request, who: Principal = on_hearing(Action.export),
           format: ExportFormat = ExportFormat("docx"),  # type: ignore[valid-type]
           version: Literal["record", "public"] = "record") -> Response:
    """The record in one format (every writer's, or the 电子卷宗 package), named by its 案号;
    ``version=public``: its public version, personal data masked (redaction/public.py)."""
    try:
        got = deps.records(request).export(hearing_id, format.value, public=version == "public")
    except ValueError as err:  # a public package
        raise HTTPException(422, detail={"code": "no_public_package", "message": str(err)}) from None
    except fonts.FontMissing as err:  # a record nobody could read is not printed
        raise HTTPException(503, detail={"code": "font_missing", "message": str(err)}) from None
    # a 案号 is Chinese: RFC 6266 filename* beside an ASCII fallback
    fallback = got.filename.encode("ascii", "replace").decode().replace("?", "_")
    return Response(got.data, media_type=got.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(got.filename)}"})
