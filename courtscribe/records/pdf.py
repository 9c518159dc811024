"""PDF of the 笔录 in pure Python (reportlab), from the same blocks as the DOCX.

Chinese text uses reportlab's built-in Adobe CID font STSong-Light (UniGB-UCS2-H): no font file
has to ship, any PDF reader supplies the glyphs, and the text stays extractable (searchable).
"""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .layout import Block

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))
_BODY = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=17, wordWrap="CJK")
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=18, leading=26, alignment=1, spaceAfter=8)
_HEAD = ParagraphStyle("head", parent=_BODY, fontSize=12, spaceBefore=8)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=9, leading=13, textColor=colors.grey)


def _table(rows: list[tuple[str, str]]) -> Table:
    t = Table([[Paragraph(escape(k), _BODY), Paragraph(escape(v), _BODY)] for k, v in rows],
              colWidths=[32 * mm, 138 * mm])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def render_pdf(blocks: list[Block]) -> bytes:
    story = []
    for b in blocks:
        if b.kind == "title":
            story.append(Paragraph(escape(b.text), _TITLE))
        elif b.kind in ("facts", "signatures"):
            story += [_table(b.rows or []), Spacer(1, 6 * mm)]
        elif b.kind == "turn":
            story.append(Paragraph(f'<font size="8" color="grey">[{b.stamp}]</font> <b>{escape(b.who)}：</b>'
                                   f"{escape(b.text)}", _BODY))
        elif b.kind == "heading":
            story.append(Paragraph(f"<b>{escape(b.text)}</b>", _HEAD))
        else:
            story.append(Paragraph(escape(b.text), _SMALL if b.kind == "footer" else _BODY))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                      bottomMargin=18 * mm, title="庭审笔录", creator="courtscribe").build(story)
    return buf.getvalue()
