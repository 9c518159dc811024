"""PDF of the 笔录 in pure Python (reportlab), from the same blocks as the DOCX and OFD.

Every glyph is embedded (fonts.py: Noto Serif CJK, cut to the document's characters): the record
displays on readers without Asian fonts and the text stays extractable. Every page carries
"第 N 页 共 M 页"; with ``page_signing`` (``COURTSCRIBE_PAGE_SIGNING``) also a strip where the
participants sign or initial each page, as many courts have them do.
"""
from __future__ import annotations

import io
import threading
from contextlib import contextmanager
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import fonts
from .layout import SIGNING_STRIP as STRIP, Block, characters, page_number

MARGIN = 20 * mm


_REGISTRY = threading.Lock()  # reportlab's font registry is global: one PDF build at a time uses it


@contextmanager
def _embedded(text: str):
    """The font subset for ``text``, registered with reportlab for one build and taken out after it
    (a long-running server renders many different subsets: none may stay behind)."""
    sub = fonts.subset(text)
    with _REGISTRY:
        font = TTFont(sub.name, io.BytesIO(sub.data))
        pdfmetrics.registerFont(font)
        try:
            yield sub.name
        finally:
            pdfmetrics._fonts.pop(sub.name, None)  # noqa: SLF001 - reportlab has no unregister
            pdfmetrics._dynFaceNames.pop(font.face.name, None)  # noqa: SLF001


def _canvas(font: str, page_signing: bool):
    class PagedCanvas(Canvas):
        """Holds every page until the end, then stamps 第 N 页 共 M 页 (and the signing strip) on each."""

        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            for n, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont(font, 9)
                self.setFillColor(colors.black)
                self.drawCentredString(width / 2, 10 * mm, page_number(n, len(self._pages)))
                if page_signing:
                    self.drawString(MARGIN, 16 * mm, STRIP)
                    self.line(MARGIN + 20 * mm, 15.5 * mm, width - MARGIN, 15.5 * mm)
                super().showPage()
            super().save()
    return PagedCanvas


def render_pdf(blocks: list[Block], *, page_signing: bool = False) -> bytes:
    blocks = fonts.drawable(blocks)
    with _embedded(characters(blocks) + STRIP) as font:
        return _build(blocks, font, page_signing)


def _build(blocks: list[Block], font: str, page_signing: bool) -> bytes:
    body = ParagraphStyle("body", fontName=font, bulletFontName=font, fontSize=11, leading=17, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=26, alignment=1, spaceAfter=8)
    head = ParagraphStyle("head", parent=body, fontSize=12, spaceBefore=8)
    small = ParagraphStyle("small", parent=body, fontSize=9, leading=13, textColor=colors.grey)

    def table(rows: list[tuple[str, str]], first_mm: float = 38) -> Table:
        t = Table([[Paragraph(escape(k), body), Paragraph(escape(v), body)] for k, v in rows],
                  colWidths=[first_mm * mm, (170 - first_mm) * mm], splitInRow=1)  # a long cell goes on
        t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("FONTNAME", (0, 0), (-1, -1), font)]))  # no Helvetica a reader must supply
        return t

    story = []
    for b in blocks:
        if b.kind == "title":
            story.append(Paragraph(escape(b.text), title))
        elif b.kind in ("facts", "signatures"):
            # a signer's label ("被告代理人王五（签名）") on one line, never "（签 / 名）"
            wide = max((len(k) for k, _ in b.rows or []), default=0) * 4.2 + 6 if b.kind == "signatures" else 38
            story += [table(b.rows or [], min(max(38, wide), 100)), Spacer(1, 6 * mm)]
        elif b.kind == "turn":
            story.append(Paragraph(f'<font size="8" color="grey">[{b.stamp}]</font> {escape(b.who)}：{escape(b.text)}',
                                   body))
        elif b.kind == "heading":
            story.append(Paragraph(escape(b.text), head))
        else:
            story.append(Paragraph(escape(b.text), small if b.kind == "footer" else body))
    buf = io.BytesIO()
    bottom = (26 if page_signing else 18) * mm
    SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=18 * mm, bottomMargin=bottom,
                      title="庭审笔录", creator="courtscribe", initialFontName=font).build(story, canvasmaker=_canvas(font, page_signing))
    return buf.getvalue()
