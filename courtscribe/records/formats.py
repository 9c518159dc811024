"""Writers that turn a :class:`Record` into the files people read: JSON, TXT, SRT, WebVTT, DOCX, PDF, OFD.

JSON is canonical and lossless; the others are views for reading, captioning and printing.
"""
from __future__ import annotations

import datetime as dt
import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import srt
import webvtt
from docx import Document
from docx.document import Document as Docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

from . import layout
from .layout import interruption_note
from .model import Interruption, Record

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"



def clock(ms: int, sep: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``sep=','`` for SRT)."""
    h, rem = divmod(int(ms), 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{milli:03d}"


def to_json(record: Record) -> str:
    return record.model_dump_json(indent=2) + "\n"


def to_txt(record: Record) -> str:
    public = "（公开版）" if record.public_version is not None else ""
    lines = [f"# {record.hearing.title or record.hearing.id}{public}"]
    pending = sorted(record.interruptions, key=lambda i: i.at_ms)
    for u in record.utterances:
        while pending and pending[0].at_ms <= u.start_ms:  # where recording paused, as the 笔录 notes it
            lines.append(_paused(pending.pop(0)))
        lines.append(f"[{clock(u.start_ms)} - {clock(u.end_ms)}] {u.speaker_label}：{u.printed_text}")
    return "\n".join(lines + [_paused(i) for i in pending]) + "\n"


def _paused(i: Interruption) -> str:
    return f"[{clock(i.at_ms)}] {interruption_note(i)}"


def to_srt(record: Record) -> str:
    subs = [srt.Subtitle(index=i, start=dt.timedelta(milliseconds=u.start_ms),
                         end=dt.timedelta(milliseconds=max(u.end_ms, u.start_ms + 1)),
                         content=f"{u.speaker_label}：{u.printed_text}")
            for i, u in enumerate(record.utterances, 1)]
    return srt.compose(subs)


def to_vtt(record: Record) -> str:
    return vtt_cues([(u.start_ms, u.end_ms, u.printed_text, u.speaker_label) for u in record.utterances])


def _cue_text(text: str) -> str:
    """Text a player shows as said: markup escaped (a '-->' with it), no blank line (it ends the cue)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n".join(line for line in text.splitlines() if line.strip()) or " "


def vtt_cues(cues: list[tuple[int, int, str, str | None]]) -> str:
    """WebVTT of (start_ms, end_ms, text, voice) cues; the text may hold line breaks, and whatever it
    holds (a clerk's blank line, 'A&B', '<5万元>') is shown, never taken for markup or a cue's end."""
    doc = webvtt.WebVTT()
    for start, end, text, voice in cues:
        name = (voice or "").replace("<", "").replace(">", "").replace("&", "")  # labels never need them
        body = f"<v {name}>{_cue_text(text)}" if name else _cue_text(text)
        doc.captions.append(webvtt.Caption(clock(start), clock(max(end, start + 1)), body))
    buf = io.StringIO()
    doc.write(buf)
    return buf.getvalue()


def court_document() -> Docx:
    """An empty Word document in the court's type: 宋体 12 pt."""
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "SimSun"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    style.font.size = Pt(12)
    return doc


def title_paragraph(doc: Docx, text: str) -> None:
    p = doc.add_paragraph()
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run(text)
    run.bold, run.font.size = True, Pt(18)


def docx_bytes(doc: Docx) -> bytes:
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _page_footer(doc: Docx, page_signing: bool) -> None:
    """第 N 页 共 M 页 on every page (Word's PAGE and NUMPAGES fields), and the signing strip."""
    footer = doc.sections[0].footer
    p = footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for text, field in (("第 ", None), (None, "PAGE"), (" 页 共 ", None), (None, "NUMPAGES"), (" 页", None)):
        run = p.add_run(text or "")
        if field:
            for kind, extra in (("begin", None), ("instr", field), ("separate", None), ("end", None)):
                if kind == "instr":
                    el = OxmlElement("w:instrText")
                    el.set(qn("xml:space"), "preserve")
                    el.text = f" {extra} "
                else:
                    el = OxmlElement("w:fldChar")
                    el.set(qn("w:fldCharType"), kind)
                run._r.append(el)
    if page_signing:
        footer.add_paragraph(f"{layout.SIGNING_STRIP}{'＿' * 24}")


def to_docx(record: Record) -> bytes:
    """The 庭审笔录 a clerk prints, reads back and has signed (content: layout.blocks)."""
    from ..config import get_settings

    doc = court_document()
    _page_footer(doc, get_settings().page_signing)
    for block in layout.blocks(record):
        if block.kind == "title":
            title_paragraph(doc, block.text)
        elif block.kind in ("facts", "signatures"):
            table = doc.add_table(rows=0, cols=2)
            table.style = "Table Grid"
            for key, value in block.rows or []:
                cells = table.add_row().cells
                cells[0].text, cells[1].text = key, value
            doc.add_paragraph()
        elif block.kind == "turn":
            p = doc.add_paragraph()
            p.add_run(f"[{block.stamp}] ").font.size = Pt(9)
            p.add_run(f"{block.who}：").bold = True
            p.add_run(block.text)
        elif block.kind == "heading":
            doc.add_paragraph().add_run(block.text).bold = True
        else:  # note, item, footer
            doc.add_paragraph(block.text)
    return docx_bytes(doc)


def to_pdf(record: Record) -> bytes:
    from ..config import get_settings
    from .pdf import render_pdf

    return render_pdf(layout.blocks(record), page_signing=get_settings().page_signing)


def to_ofd(record: Record) -> bytes:
    from ..config import get_settings
    from .ofd import render_ofd

    return render_ofd(layout.blocks(record), page_signing=get_settings().page_signing,
                      title=f"庭审笔录 {record.hearing.case_number or record.hearing.title or record.hearing.id}")


@dataclass(frozen=True)
class Writer:
    """One export format: what the CLI's choices, the API's ``format``, the clerk page's buttons and
    the 电子卷宗 package each need of it. A new format is a module of its own with a ``to_…``
    function, named here by "module:function" (imported when first used), and one entry below."""
    render: Callable[[Record], str | bytes] | str
    media_type: str
    extension: str
    label: str  # the clerk page's button
    packaged_as: str | None = None  # its file inside the package (None: left out)
    binary: bool = False  # written to a file, never to a terminal
    on_page: bool = False  # offered on the clerk page (the printed forms)


WRITERS: dict[str, Writer] = {
    "docx": Writer(to_docx, DOCX, "docx", "导出 DOCX", "笔录.docx", binary=True, on_page=True),
    "pdf": Writer(to_pdf, "application/pdf", "pdf", "导出 PDF", "笔录.pdf", binary=True, on_page=True),
    # GB/T 33190, what 电子卷宗 systems file
    "ofd": Writer(to_ofd, "application/ofd", "ofd", "导出 OFD", "笔录.ofd", binary=True, on_page=True),
    "json": Writer(to_json, "application/json", "json", "JSON", "record.json"),
    # the printed 笔录 as text, what is read back and signed (layout.plain); record.txt: the transcript
    "plain": Writer(layout.plain, "text/plain; charset=utf-8", "txt", "笔录 TXT", "笔录.txt"),
    "txt": Writer(to_txt, "text/plain; charset=utf-8", "txt", "TXT", "record.txt"),
    "srt": Writer(to_srt, "text/plain; charset=utf-8", "srt", "SRT", "record.srt"),
    "vtt": Writer(to_vtt, "text/vtt; charset=utf-8", "vtt", "WebVTT", "record.vtt"),
}
FORMATS = tuple(WRITERS)


def writer(fmt: str) -> Writer:
    try:
        return WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None


def render(record: Record, fmt: str) -> str | bytes:
    how = writer(fmt).render
    if isinstance(how, str):  # "module:function" in this package
        module, name = how.split(":")
        how = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return how(record)


def render_bytes(record: Record, fmt: str) -> bytes:
    """The file as it is written or packaged (text formats in UTF-8)."""
    data = render(record, fmt)
    return data if isinstance(data, bytes) else data.encode("utf-8")


def write(record: Record, fmt: str, path: Path) -> None:
    Path(path).write_bytes(render_bytes(record, fmt))
