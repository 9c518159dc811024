"""Documents a judge dictates (rulings, notes): not part of any hearing's record, so nothing is kept
here; the text comes in, a Word file in the court's type goes out."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..access.scopes import Action, Principal
from ..records import formats
from ..text import printable
from .auth import allow

router = APIRouter(prefix="/v1/documents", tags=["documents"])


class DocumentIn(BaseModel):
    # control characters are not refused: a page break or tab pasted from Word would lose the
    # judge her export; each prints as a visible 〔?〕 (text.printable) for her to see and fix
    title: str | None = Field(None, max_length=200)
    text: str = Field(max_length=200_000)


@router.post("/docx")
def to_docx(body: DocumentIn, who: Principal = allow(Action.dictate)) -> Response:
    """The dictated text as DOCX: a centred title, one paragraph per blank-line-separated block,
    line breaks kept within a paragraph."""
    doc = formats.court_document()
    if body.title and body.title.strip():
        formats.title_paragraph(doc, printable(" ".join(body.title.split())))
    text = printable(body.text.replace("\r\n", "\n").replace("\r", "\n"))
    for block in (b for b in text.split("\n\n") if b.strip()):
        p = doc.add_paragraph()
        for i, line in enumerate(block.strip("\n").split("\n")):
            if i:
                p.add_run().add_break()
            p.add_run(line)
    return Response(formats.docx_bytes(doc), media_type=formats.DOCX,
                    headers={"Content-Disposition": "attachment; filename=\"dictation.docx\"; "
                             "filename*=UTF-8''%E6%96%87%E4%B9%A6.docx"})
