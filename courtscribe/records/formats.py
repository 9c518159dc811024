"""Writers that turn a :class:`Record` into the files people read: JSON, TXT, SRT, WebVTT, DOCX.

JSON is canonical and lossless; the others are views for reading, captioning and printing.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Callable

import srt
import webvtt
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt

from .model import Record, Utterance

FORMATS = ("json", "txt", "srt", "vtt", "docx")


def clock(ms: int, sep: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``sep=','`` for SRT)."""
    h, rem = divmod(int(ms), 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{milli:03d}"


def to_json(record: Record) -> str:
    return record.model_dump_json(indent=2) + "\n"


def to_txt(record: Record) -> str:
    lines = [f"# {record.hearing.title or record.hearing.id}"]
    for u in record.utterances:
        lines.append(f"[{clock(u.start_ms)} - {clock(u.end_ms)}] {u.speaker_label}：{u.text}")
    return "\n".join(lines) + "\n"


def to_srt(record: Record) -> str:
    subs = [srt.Subtitle(index=i, start=dt.timedelta(milliseconds=u.start_ms),
                         end=dt.timedelta(milliseconds=max(u.end_ms, u.start_ms + 1)),
                         content=f"{u.speaker_label}：{u.text}")
            for i, u in enumerate(record.utterances, 1)]
    return srt.compose(subs)


def _voice(u: Utterance) -> str:
    # '<' '>' '&' would break the cue; speaker labels never need them.
    name = u.speaker_label.replace("<", "").replace(">", "").replace("&", "")
    text = u.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<v {name}>{text}"


def to_vtt(record: Record) -> str:
    doc = webvtt.WebVTT()
    for u in record.utterances:
        doc.captions.append(webvtt.Caption(clock(u.start_ms), clock(max(u.end_ms, u.start_ms + 1)), _voice(u)))
    buf = io.StringIO()
    doc.write(buf)
    return buf.getvalue()


def to_docx(record: Record) -> bytes:
    """A draft 庭审笔录: header facts, then one paragraph per turn. Signing comes with the records store."""
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "SimSun"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    style.font.size = Pt(12)
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run("庭 审 笔 录（机器转写稿）")
    run.bold = True
    run.font.size = Pt(18)
    h = record.hearing
    facts = [("案号", h.case_number), ("法院", h.court), ("法庭", h.courtroom), ("标题", h.title or h.id),
             ("录音", record.source.path), ("时长", clock(record.source.duration_ms)),
             ("转写", f"{record.pipeline.engine}/{record.pipeline.model}，{record.pipeline.diarizer}")]
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for key, value in facts:
        if value:
            cells = table.add_row().cells
            cells[0].text, cells[1].text = key, str(value)
    doc.add_paragraph()
    for u in record.utterances:
        p = doc.add_paragraph()
        stamp = p.add_run(f"[{clock(u.start_ms)[:8]}] ")
        stamp.font.size = Pt(9)
        who = p.add_run(f"{u.speaker_label}：")
        who.bold = True
        p.add_run(u.text)
    doc.add_paragraph()
    doc.add_paragraph("本稿由语音识别生成，经审核签名后方可作为庭审笔录。")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


_WRITERS: dict[str, Callable[[Record], str | bytes]] = {
    "json": to_json, "txt": to_txt, "srt": to_srt, "vtt": to_vtt, "docx": to_docx,
}


def render(record: Record, fmt: str) -> str | bytes:
    try:
        return _WRITERS[fmt](record)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None


def write(record: Record, fmt: str, path: Path) -> None:
    data = render(record, fmt)
    if isinstance(data, bytes):
        Path(path).write_bytes(data)
    else:
        Path(path).write_text(data, encoding="utf-8")
