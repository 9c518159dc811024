"""The 案号 as courts write it (最高人民法院《关于人民法院案件案号的若干规定》): （收案年度）法院代字
类型代字 案件编号 号, e.g. （2026）京0105民初1234号.

Checked where a person types one (the scheduling form and API): a wrong 案号 would split one case in
two and never be found by its number. Records imported from elsewhere are stored as they come.
"""
from __future__ import annotations

import re
import unicodedata

from ..casenumbers import PROVINCES

EXAMPLE = "（2026）京0105民初1234号"
_YEAR = re.compile(r"[（(](\d{4})[)）]")
_COURT = re.compile(rf"最高法|[{PROVINCES}]\d{{0,4}}")
_KIND = re.compile(r"[\u4e00-\u9fff]{1,4}?")
_REST = re.compile(r"(\d{1,7})号")


def ascii_digits(case_number: str) -> str:
    """A typed 案号 with digits of any script (全角 ２０２６, Arabic-Indic …) as the ASCII digits
    courts print: two spellings of one number are one case, found by either (bracket widths are
    already one: ``finder``)."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in case_number.strip())


def problem(case_number: str) -> str | None:
    """Why ``case_number`` is not a 案号, in words a clerk acts on; None when it is one."""
    text = case_number.strip()
    year = _YEAR.match(text)
    if year is None:
        return f"案号应以括号中的收案年度开头，如 {EXAMPLE}"
    if not 1949 <= int(year.group(1)) <= 2100:
        return f"收案年度 {year.group(1)} 不对"
    court = _COURT.match(text, year.end())
    if court is None:
        return f"年度之后应是法院代字（省份简称加数字，如 京0105），不是“{text[year.end():year.end() + 1] or '（空）'}”"
    for kind in _kinds(text, court.end()):
        if _REST.fullmatch(text, kind):
            return None
    tail = text[court.end():]
    if not tail.endswith("号"):
        return "案号应以“号”结尾"
    if not re.search(r"\d", tail):
        return "案号缺少案件编号（阿拉伯数字）"
    return f"法院代字之后应是类型代字（如 民初、刑终、执）再接案件编号，如 {EXAMPLE}"


def _kinds(text: str, at: int):
    """Where a 1–4 character 类型代字 starting at ``at`` could end."""
    for n in range(1, 5):
        kind = _KIND.fullmatch(text, at, at + n)
        if kind is None:
            return
        yield at + n
