"""Inverse text normalization for the record: 二零二四年三月五日 → 2024年3月5日, 第一百零三条 → 第103条.

FunASR's models write numbers as spoken Chinese. WeNet's WeTextProcessing FSTs (the ``wetext``
runtime, grammars inside its wheel) do the context-aware part (一下, 第一被告 stay as they are);
their written forms are a web style (2024/03/05, ¥125000, 03:15:00p.m., 123.5m) that a 笔录 does
not use, so each span is re-written in court style by its type, or left as spoken where a court
record keeps words (times of day, fractions, units).
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

_DIGITS = re.compile(r"\d+")
_N = "零〇一二两三四五六七八九十百千万亿"
# where a spoken number can be: a run of numerals, an ordinal, a numeral with a unit the record
# writes in digits, a percentage. One numeral alone (一下, 三方, 一审) never is, and the FSTs cost
# ~0.1 s a sentence: most sentences skip them.
_SPOKEN_NUMBER = re.compile(rf"[{_N}]{{2,}}|第[{_N}]|[{_N}][年月日号条款项元角分%]|百分之")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _normalizer():
    from wetext import Normalizer

    return Normalizer(lang="zh", operator="itn")


def _date(spoken: str, written: str) -> str:
    parts = [str(int(p)) for p in _DIGITS.findall(written)]
    units = [u for u in "年月日" if u in spoken]
    if len(parts) != len(units):
        return spoken
    return "".join(p + u for p, u in zip(parts, units))


def _money(spoken: str, written: str) -> str:
    amount = written.lstrip("¥$€£")
    if not spoken.endswith("元"):
        return spoken
    if m := re.fullmatch(r"(\d+)万(\d+)", amount):  # 三百二十一万零五百元: ¥321万500
        return f"{int(m[1]) * 10_000 + int(m[2])}元"
    if not re.fullmatch(r"\d+(\.\d+)?万?", amount):
        return spoken
    return amount + "元"


_SPELLED = dict(zip("零〇幺一二三四五六七八九", "001123456789"))


def _spelled(spoken: str) -> str | None:
    """A number read digit by digit (一二三四, a case's or a phone's): its digits; None otherwise."""
    if len(spoken) >= 3 and all(c in _SPELLED for c in spoken):
        return "".join(_SPELLED[c] for c in spoken)
    return None


def _span(kind: str, spoken: str, written: str, before: str) -> str:
    if "~" in written or " " in written:  # ranges (三四天: words) or groups (一二三四五六七: a spelled number)
        return _spelled(spoken) or spoken
    if kind == "licenseplate" or (kind == "cardinal" and re.fullmatch(r"\d{14,17}[Xx]", written)):
        return written.upper()  # 京A12345; an ID number ending in X
    if kind == "measure" and before.endswith(("时", "点")):
        return spoken  # 九时三十分: a time of day, which the record keeps in words
    if kind == "date":
        return _date(spoken, written)
    if kind == "money":
        return _money(spoken, written)
    if kind in ("time", "fraction") or re.search(r"[A-Za-z]", written):
        return spoken  # 下午三点十五分, 四分之三, 米/公斤: a record keeps the words
    return written


@lru_cache(maxsize=1)
def _speaker():
    from wetext import Normalizer

    return Normalizer(lang="zh", operator="tn")


def spoken(text: str) -> str:
    """Numbers as spoken, for a client that asked so (FunASR's ``itn: false``): an engine that writes
    digits itself (Whisper: 超50%) reads as one that does not (超百分之五十)."""
    if not text or not _DIGITS.search(text):
        return text
    with _lock:
        return _speaker().normalize(text)


def itn(text: str) -> str:
    """Court-style written form of a spoken-form sentence (unchanged when nothing applies)."""
    if not text or not _SPOKEN_NUMBER.search(text):
        return text
    with _lock:  # the FST runtime is not documented as thread-safe; 〇 is 零 to it (one for one: spans keep)
        result = _normalizer().normalize_with_mapping(text.replace("〇", "零"))
    out, pos = [], 0
    for m in result.mappings:
        if m.kind != "replace":
            continue
        out.append(text[pos:m.input_start])
        out.append(_span(m.token_type, m.input_text, m.output_text, text[:m.input_start]))
        pos = m.input_end
    out.append(text[pos:])
    return "".join(out)
