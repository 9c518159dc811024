"""OFD (GB/T 33190-2016, China's fixed-layout document format) of the 笔录, from the same blocks as
the PDF and DOCX: what 电子卷宗 systems file.

An OFD is a ZIP of XML: ``OFD.xml`` points at a document, which lists its pages and resources; each
page places text objects at millimetre positions in an embedded font. No maintained Python library
writes OFD, so this module lays the pages out itself (fixed layout: wrapping by the embedded font's
own advance widths, A4, "第 N 页 共 M 页" on every page, the optional signing strip), and the tests read
the result back with an independent reader (easyofd).
"""
from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from . import fonts
from .layout import SIGNING_STRIP as STRIP, Block, characters, page_number

NS = "http://www.ofdspec.org/2016"
PAGE_W, PAGE_H, MARGIN, TOP, BOTTOM = 210.0, 297.0, 20.0, 20.0, 22.0  # mm
PT = 25.4 / 72  # one point in mm


@dataclass
class Line:
    text: str
    size: float  # mm
    x: float  # mm from the left edge
    gap: float = 0.0  # extra space above (mm)
    value: tuple[str, float] | None = None  # a table row's value beside its key: (text, x)


class _Measure:
    def __init__(self, sub: fonts.Subset):
        self.sub = sub

    def advances(self, text: str, size: float) -> list[float]:
        em = self.sub.units_per_em
        return [self.sub.advance.get(c, em) / em * size for c in text]

    def wrap(self, text: str, size: float, width: float) -> list[str]:
        """Lines of at most ``width``; a line break in the text (a clerk's, a judge's paragraph) starts one."""
        out: list[str] = []
        for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            line, used = "", 0.0
            for c, w in zip(part, self.advances(part, size)):
                if used + w > width and line:
                    out.append(line)
                    line, used = "", 0.0
                line, used = line + c, used + w
            out.append(line)
        return out


def _lines(blocks: list[Block], m: _Measure) -> list[Line]:
    body, small, width = 11 * PT, 9 * PT, PAGE_W - 2 * MARGIN
    out: list[Line] = []

    def para(text: str, size: float, *, indent: float = 0.0, gap: float = 0.0) -> None:
        for i, piece in enumerate(m.wrap(text, size, width - indent)):
            out.append(Line(piece, size, MARGIN + (indent if i else 0.0), gap if i == 0 else 0.0))

    for b in blocks:
        if b.kind == "title":
            size = 18 * PT
            x = (PAGE_W - sum(m.advances(b.text, size))) / 2
            out.append(Line(b.text, size, x, 0.0))
        elif b.kind in ("facts", "signatures"):
            # the widest key (人民陪审员 and a long name) and a gap: a key never runs under its value
            key_w = min(max([38.0] + [sum(m.advances(k, body)) + 3.0 for k, _ in b.rows or []]), width / 2)
            for n, (k, v) in enumerate(b.rows or []):
                pieces = m.wrap(v, body, width - key_w)
                out.append(Line(k, body, MARGIN, 4.0 if n == 0 else 1.0, (pieces[0], MARGIN + key_w)))
                out += [Line(p, body, MARGIN + key_w) for p in pieces[1:]]
        elif b.kind == "turn":
            para(f"[{b.stamp}] {b.who}：{b.text}", body, indent=6.0, gap=1.0)
        elif b.kind == "heading":
            para(b.text, 12 * PT, gap=4.0)
        else:
            para(b.text, small if b.kind == "footer" else body, gap=1.0)
    return out


def _pages(lines: list[Line], page_signing: bool) -> list[list[tuple[Line, float]]]:
    """Lines placed on pages: (line, baseline y in mm from the top)."""
    floor = PAGE_H - BOTTOM - (8.0 if page_signing else 0.0)
    pages: list[list[tuple[Line, float]]] = [[]]
    y = TOP
    for line in lines:
        step = line.gap + line.size * 1.55
        if y + step > floor and pages[-1]:
            pages.append([])
            y = TOP
            step = line.size * 1.55
        y += step
        pages[-1].append((line, y))
    return pages


def _text(obj_id: int, font_id: int, text: str, size: float, x: float, y: float, m: _Measure) -> str:
    deltas = " ".join(f"{d:.3f}" for d in m.advances(text, size)[:-1])
    width = sum(m.advances(text, size))
    box = f"{x:.3f} {y - size:.3f} {max(width, 0.1):.3f} {size * 1.3:.3f}"
    delta = f" DeltaX={quoteattr(deltas)}" if deltas else ""
    return (f'<ofd:TextObject ID="{obj_id}" Boundary="{box}" Font="{font_id}" Size="{size:.3f}">'
            f'<ofd:FillColor Value="0 0 0"/><ofd:TextCode X="0" Y="{size:.3f}"{delta}>{escape(text)}</ofd:TextCode></ofd:TextObject>')


def render_ofd(blocks: list[Block], *, page_signing: bool = False, title: str = "庭审笔录") -> bytes:
    blocks = fonts.drawable(blocks)
    sub = fonts.subset(characters(blocks) + STRIP)
    m = _Measure(sub)
    pages = _pages(_lines(blocks, m), page_signing)
    font_id, next_id = 1, 2
    page_xml, page_ids = [], []
    for n, placed in enumerate(pages, 1):
        page_ids.append(next_id)
        layer_id = next_id + 1
        next_id += 2
        objects = []
        for line, y in placed:
            objects.append(_text(next_id, font_id, line.text, line.size, line.x, y, m))
            next_id += 1
            if line.value:
                value, vx = line.value
                objects.append(_text(next_id, font_id, value, line.size, vx, y, m))
                next_id += 1
        foot = page_number(n, len(pages))
        size = 9 * PT
        objects.append(_text(next_id, font_id, foot, size, (PAGE_W - sum(m.advances(foot, size))) / 2, PAGE_H - 10, m))
        next_id += 1
        if page_signing:
            objects.append(_text(next_id, font_id, STRIP + "＿" * 24, size, MARGIN, PAGE_H - 17, m))
            next_id += 1
        page_xml.append(f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
                        f'<ofd:Layer ID="{layer_id}">{"".join(objects)}</ofd:Layer></ofd:Content></ofd:Page>')
    ofd = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{NS}" Version="1.0" DocType="OFD">'
           f'<ofd:DocBody><ofd:DocInfo><ofd:DocID>{uuid.uuid4().hex}</ofd:DocID><ofd:Title>{escape(title)}</ofd:Title>'
           f'<ofd:Creator>courtscribe</ofd:Creator><ofd:CreationDate>{dt.date.today().isoformat()}</ofd:CreationDate>'
           f'</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>')
    document = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
                f'<ofd:MaxUnitID>{next_id}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 {PAGE_W:g} {PAGE_H:g}'
                f'</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>'
                f'<ofd:Pages>' + "".join(f'<ofd:Page ID="{pid}" BaseLoc="Pages/Page_{i}/Content.xml"/>'
                                         for i, pid in enumerate(page_ids)) + '</ofd:Pages></ofd:Document>')
    res = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:Fonts>'
           f'<ofd:Font ID="{font_id}" FontName={quoteattr(sub.name)} FamilyName={quoteattr(fonts.FAMILY)}>'
           f'<ofd:FontFile>font_{font_id}.ttf</ofd:FontFile></ofd:Font></ofd:Fonts></ofd:Res>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("OFD.xml", ofd)
        z.writestr("Doc_0/Document.xml", document)
        z.writestr("Doc_0/PublicRes.xml", res)
        z.writestr(f"Doc_0/Res/font_{font_id}.ttf", sub.data)
        for i, xml in enumerate(page_xml):
            z.writestr(f"Doc_0/Pages/Page_{i}/Content.xml", xml)
    return buf.getvalue()
