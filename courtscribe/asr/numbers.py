"""Court-style numbers after any engine: 125000元, 2025年3月1日, 3.65%, 第44条, (2026)京0105民初4321号.

FunASR writes numbers as spoken Chinese (``itn`` turns them into digits); Whisper writes a mix of its
own ("12万5千元", "20 25年3月1日", "3. 65", "4,321", "百分之3.65"). One pass, :func:`court_style`,
brings either to the form a 笔录 uses. Case numbers follow the Supreme People's Court's rules on case
numbers (收案年度 in brackets, 法院代字, 类型代字, 案件编号, 号); an engine's sound-alike misreading of
the court or type characters (金 for 京, 名出 for 民初) is put right by sound, and only when both
parts are real codes, so ordinary text that happens to hold a year and a number is left alone.
"""
from __future__ import annotations

import re

from ..casenumbers import CASE_TYPES, PROVINCES
from .hotwords import sounds
from .itn import itn

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_NUM = r"[\d零〇一二两三四五六七八九十百千]"

_CASE = re.compile(
    rf"[（(〔\[]?\s*(?P<year>(?:19|20)\d\d|[一二][九零〇][零〇一二三四五六七八九]{{2}})\s*[)）〕\]]?\s*年?\s*"
    rf"(?P<court>最高法|[\u4e00-\u9fff])\s*(?P<code>(?:\d|[零〇一二三四五六七八九]){{0,4}})\s*"
    rf"(?P<kind>[\u4e00-\u9fff]{{1,3}}?)\s*第?\s*(?P<num>{_NUM}{{1,12}})\s*号")


def _cardinal(text: str) -> int | None:
    """A Chinese or Arabic number up to 9999 (the parts of a case number): 四千三百二十一, 零一零五, 4321."""
    if text.isdigit():
        return int(text)
    if all(c in _CN_DIGIT for c in text):  # read digit by digit
        return int("".join(str(_CN_DIGIT[c]) for c in text))
    total, digit = 0, None
    for c in text:
        if c in _CN_DIGIT:
            digit = _CN_DIGIT[c]
        elif c in _CN_UNIT:
            total += (1 if digit is None else digit) * _CN_UNIT[c]
            digit = None
        else:
            return None
    return total + (digit or 0)


def _digits(text: str) -> str | None:
    """Digit-by-digit reading (二零二六 → 2026, 零一零五 → 0105), keeping leading zeros."""
    if text.isdigit():
        return text
    if all(c in _CN_DIGIT for c in text):
        return "".join(str(_CN_DIGIT[c]) for c in text)
    return None


def _by_sound(heard: str, choices) -> str | None:
    """The one choice that is ``heard`` or sounds like it (toneless, usual confusions folded)."""
    if heard in choices:
        return heard
    matches = [c for c in choices if len(c) == len(heard) and sounds(c) == sounds(heard)]
    return matches[0] if len(matches) == 1 else None


def _parts(m: re.Match) -> tuple[str | None, int | None, int | None]:
    """Year, court code and number, as numbers: an engine may drop a leading zero (105 for 0105)."""
    code = _digits(m["code"]) if m["code"] else "0"
    return _digits(m["year"]), int(code) if code else None, _cardinal(m["num"])


def _case_number(m: re.Match, known: tuple[str, ...]) -> str:
    year, _, num = _parts(m)
    code = _digits(m["code"]) if m["code"] else ""
    for k in known:  # the hearing's own case: the same numbers, court and type sounding alike
        if (km := _CASE.fullmatch(k)) and _parts(km) == _parts(m) and \
                sounds(km["court"] + km["kind"]) == sounds(m["court"] + m["kind"]):
            return _case_number(km, ())
    court = "最高法" if m["court"] == "最高法" else _by_sound(m["court"], PROVINCES)
    kind = _by_sound(m["kind"], CASE_TYPES)
    if not (court and kind and year and code is not None and num):
        return m.group(0)
    return f"({year}){court}{code}{kind}{num}号"


_SEPARATED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")  # 125,000 → 125000
# ... and where an amount follows, with a space after the comma (Whisper: 罚金6, 437元)
_SEPARATED_AMOUNT = re.compile(r"(?<![\d.])\d{1,3}(?:, ?\d{3})+(?=\s*(?:元|块|万|亿))")
_THOUSANDS = re.compile(r"(?<![\d.])(?P<n>\d{1,3})千(?=元|块)")  # 21千元 → 21000元
_SPACED = re.compile(r"(?<=\d) +(?=\d)|(?<=\d)\s*\.\s+(?=\d)|(?<=\d)\s+\.\s*(?=\d)")  # "20 25", "3. 65"
_WAN = re.compile(r"(?P<wan>\d+(?:\.\d+)?)万(?:(?P<qian>\d)千)?(?:(?P<bai>\d)百)?(?:(?P<rest>\d{1,4}))?(?=元)")
_PERCENT = re.compile(r"百分之\s*(?P<n>\d+(?:\.\d+)?)")
# 员 sounds as 元 (yuan2): after an amount in digits it is the unit (10万员, 20000员: Whisper), never
# people, who are counted with 名/人 (员工, 员额 stay)
_YUAN_HEARD = re.compile(r"(?<=[\d万千])员(?![工额])")


def _wan(m: re.Match) -> str:
    value = float(m["wan"]) * 10_000 + int(m["qian"] or 0) * 1000 + int(m["bai"] or 0) * 100 + int(m["rest"] or 0)
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def is_case_number(text: str) -> bool:
    return bool(_CASE.fullmatch(text))


def court_style(text: str, known_cases: tuple[str, ...] = ()) -> str:
    """Numbers as a 笔录 writes them, whatever engine wrote the text; words that only look like
    numbers (一审, 第一, 三方, 一次, 下午两点) stay words. ``known_cases``: the hearing's own case
    numbers, which a misheard one that sounds the same becomes (金 for 京 could otherwise be 津)."""
    if not text:
        return text
    text = itn(text)
    text = _SPACED.sub(lambda m: "." if "." in m.group(0) else "", text)
    text = _SEPARATED_AMOUNT.sub(lambda m: re.sub(r", ?", "", m.group(0)), text)
    text = _SEPARATED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _YUAN_HEARD.sub("元", text)
    text = _THOUSANDS.sub(lambda m: m["n"] + "000", text)
    text = _WAN.sub(_wan, text)
    text = _PERCENT.sub(lambda m: m["n"] + "%", text)
    return _CASE.sub(lambda m: _case_number(m, known_cases), text)
