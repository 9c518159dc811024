"""What a printed 庭审笔录 says, in order, independent of the file type (DOCX and PDF both render it).

Header facts, then the turns in time order with interruption notes where they happened, lines a
person corrected marked "（已更正）", then the correction log, correction requests made after
sign-off, and the signature lines (with the signed digest once signed).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..text import joined
from .model import (ZH_TZ, CONTINUES, Correction, CorrectionRequest, Interruption, Record, Role, Utterance,
                    lineage)
from .signing import signers

CORRECTED = "（已更正）"


@dataclass
class Block:
    kind: str  # title | facts | turn | note | heading | item | signatures | footer
    text: str = ""
    who: str = ""
    stamp: str = ""
    rows: list[tuple[str, str]] | None = None


def minute(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(ZH_TZ).strftime("%Y年%m月%d日 %H:%M")


def hms(ms: int) -> str:
    h, rem = divmod(int(ms) // 1000, 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"


def _names(record: Record, *roles: Role) -> str | None:
    """A facts row's people: each with their role where the row holds several (审判长X、审判员Y);
    a row of one role names them only (书记员：林晓)."""
    names = [p.name if len(roles) == 1 and p.name else f"{p.role.label}{p.name or ''}"
             for p in record.participants if p.role in roles]
    return "、".join(names) or None


def _before(c: Correction, line: Utterance | None) -> str:
    """What a correction changed: a line corrected while it was still being spoken had no text
    yet; the machine's, which came after, is what the clerk's stands against."""
    if c.before:
        return c.before
    late = line.machine_text if line is not None and c.field == "text" else None
    return f"{late}〔识别稿，于更正后生成〕" if late else "（无）"


def facts(record: Record) -> list[tuple[str, str]]:
    h = record.hearing
    public = None if h.public is None else ("公开审理" if h.public else "不公开审理")
    rows = [("法院", h.court), ("案号", h.case_number), ("案由", h.cause), ("当事人", "、".join(h.parties) or None),
            ("法庭", h.courtroom),
            ("标题", h.title), ("开庭时间", minute(h.started_at)), ("闭庭时间", minute(h.closed_at)),
            ("审理方式", public), ("审判人员", _names(record, Role.presiding_judge, Role.judge, Role.juror)),
            ("书记员", _names(record, Role.clerk)),
            ("到庭人员", _names(record, Role.plaintiff, Role.plaintiff_agent, Role.defendant, Role.defendant_agent,
                             Role.prosecutor, Role.accused, Role.defender, Role.victim, Role.third_party,
                             Role.witness, Role.other)),
            ("录音时长", hms(record.source.duration_ms)),
            ("转写", f"{record.pipeline.engine}/{record.pipeline.model}")]
    return [(k, v) for k, v in rows if v]


FIELDS = {"text": "内容", "speaker": "发言人", "split": "拆分", "merge": "合并"}


def blocks(record: Record) -> list[Block]:
    signed = bool(record.signatures)
    out = [Block("title", "庭 审 笔 录" + _version(record)), Block("facts", rows=facts(record))]
    pending = sorted(record.interruptions, key=lambda i: i.at_ms)
    corrected = {c.utterance_id for c in record.corrections}
    split = {lineage(c.utterance_id) for c in record.corrections if c.field == "split"}
    halves = {u.id for u in record.utterances if u.id != lineage(u.id) and lineage(u.id) in split}
    corrected |= halves  # a split's second halves too
    last: tuple[Utterance, Block] | None = None  # the turn printed last, which a piece may go on
    for u in record.utterances:
        while pending and pending[0].at_ms <= u.start_ms:
            out.append(_interruption(pending.pop(0)))
            last = None
        text = u.printed_text + (CORRECTED if u.id in corrected else "")
        if last and _goes_on(last[0], u):
            last[1].text = joined([last[1].text, text])
        else:
            out.append(Block("turn", text=text, who=u.speaker_label, stamp=hms(u.start_ms)))
        last = (u, out[-1])
    out += [_interruption(i) for i in pending]
    if record.corrections:
        out.append(Block("heading", "更正记录"))
        lines = {u.id: u for u in record.utterances}  # each correction's line, looked up once
        out += [Block("item", f"{_when(lines.get(c.utterance_id))} {FIELDS.get(c.field, c.field)}："
                              f"“{_before(c, lines.get(c.utterance_id))}” 更正为 “{c.after}”（{c.by}，"
                              f"{minute(c.at)}{'，' + c.reason if c.reason else ''}）") for c in record.corrections]
    if record.correction_requests:
        out.append(Block("heading", "补正申请（签名后提出，附于原文之后）"))
        out += [Block("item", _request(record, r)) for r in record.correction_requests]
    out.append(Block("signatures", rows=_signature_rows(record)))
    footer = (f"本笔录已经宣读并签名。签名摘要 SHA-256：{record.signatures[0].digest}" if signed
              else "本稿由语音识别生成，经宣读、核对并签名后方为庭审笔录。")
    if record.public_version is not None:
        footer += f"本公开版依法隐去个人信息{len(record.public_version.redactions)}处，笔录原件未作改动。"
    out.append(Block("footer", footer))
    return out


def _version(record: Record) -> str:
    """What the title says besides 庭审笔录: a draft before signing, the public version."""
    if record.public_version is not None:
        return "（公开版）"
    return "" if record.signatures else "（待签名稿）"


def _goes_on(before: Utterance, u: Utterance) -> bool:
    """A piece of a long utterance, right after the piece before it, printed on the same turn."""
    return CONTINUES in u.flags and before.channel == u.channel and before.speaker_label == u.speaker_label


def _request(record: Record, r: CorrectionRequest) -> str:
    """A 补正申请 as printed: who asks (and which clerk noted it), the line it concerns, what and why."""
    who = f"{r.by}{'（' + r.role.label + '）' if r.role else ''}"
    noted = f"，{r.noted_by}记录" if r.noted_by else ""
    line = next((u for u in record.utterances if u.id == r.utterance_id), None)
    about = f"针对 {hms(line.start_ms)} {line.speaker_label}“{line.shown_text}”：" if line else ""
    return f"{who}，{minute(r.at)}{noted}：{about}{r.text}（理由：{r.reason}）"


def _when(line: Utterance | None) -> str:
    """Where a corrected line is in the hearing: its time, or that it was merged into another."""
    return "（后并入他行）" if line is None else hms(line.start_ms)


def _interruption(i: Interruption) -> Block:
    return Block("note", interruption_note(i))


def interruption_note(i: Interruption) -> str:
    word = "暂停录音" if i.kind == "paused" else "恢复录音"
    return f"【{word}　{hms(i.at_ms)}　原因：{i.reason}　记录人：{i.by}】"


def _signature_rows(record: Record) -> list[tuple[str, str]]:
    """A line for everyone who must sign (民事诉讼法: the record is signed or sealed by the parties
    and other participants; ``signing.py`` says who), filled in once they have signed, or with
    their refusal."""
    rows = []
    for s in signers(record, everyone=True):
        done = {"signed": f"{s.name}（{minute(s.at)}）", "refused": f"拒绝签名：{s.reason}（{minute(s.at)}）"}
        rows.append((f"{s.role.label}{s.name or ''}（签名）", done.get(s.state, BLANK)))
    return rows


BLANK = "＿＿＿＿＿＿＿＿"


def plain(record: Record) -> str:
    """The printed 笔录 as plain text: what is read back aloud (核对朗读) before signing, every
    block of the printed forms in their order."""
    lines = []
    for b in blocks(record):
        if b.kind in ("facts", "signatures"):
            lines += [f"{k}：{v}" for k, v in b.rows or []]
        elif b.kind == "turn":
            lines.append(f"[{b.stamp}] {b.who}：{b.text}")
        elif b.kind == "heading":
            lines += ["", b.text]
        else:
            lines.append(b.text)
    return "\n".join(lines) + "\n"


def characters(blocks: list[Block]) -> str:
    """Every character the blocks print (what a document's embedded font must hold)."""
    parts = [b.text + b.who + b.stamp + "".join(k + v for k, v in b.rows or []) for b in blocks]
    return "".join(sorted(set("".join(parts))))


SIGNING_STRIP = "本页签名："  # the per-page strip (COURTSCRIBE_PAGE_SIGNING): PDF, OFD and DOCX print it


def page_number(n: int, total: int) -> str:
    return f"第 {n} 页 共 {total} 页"
