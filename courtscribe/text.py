"""Text clean-up shared by engines: Simplified Chinese only, Chinese punctuation, tidy spacing.

Whisper writes Traditional characters for some Mandarin and ASCII punctuation; a 笔录 needs
Simplified characters and full-width punctuation between Chinese characters.
"""
from __future__ import annotations

import re
from functools import lru_cache

import opencc

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_FULLWIDTH = {",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；"}
_PUNCT_AFTER_CJK = re.compile(rf"(?<=[{_CJK}，。？！：；])\s*([,.?!:;])(?!\d)")
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}，。？！：；、])\s+(?=[{_CJK}])")
_REPEAT_PUNCT = re.compile(r"([，。？！：；、])[，。？！：；、]+")
_NON_CONTENT = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def tidy(text: str) -> str:
    """Simplified characters, full-width punctuation after Chinese, no stray spaces between Chinese."""
    text = to_simplified(text.strip())
    while (converted := _PUNCT_AFTER_CJK.sub(lambda m: _FULLWIDTH[m.group(1)], text)) != text:
        text = converted  # a run of ASCII marks after Chinese converts one mark per pass
    text = _SPACE_BETWEEN_CJK.sub("", text)
    text = _REPEAT_PUNCT.sub(r"\1", text)
    return text.strip()


def join_pieces(pieces: list[str]) -> str:
    """Concatenate an engine's sentence pieces: no space between Chinese, one space between Latin
    words, tidied (``tidy``)."""
    return tidy(joined(pieces))


# control characters, and the bidi overrides and isolates that make a line print in another order
# than it was written ("他欠我\u202e元万五" reads 他欠我五万元 on paper, 元万五 in the record)
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")


def printable(text: str) -> str:
    """Text a record can print (DOCX, PDF and OFD are XML and refuse control characters), in the
    order it was written: each such character an engine, a paste or an imported file brought becomes
    a visible 〔?〕, never silently nothing."""
    return _UNPRINTABLE.sub("〔?〕", text)


def joined(pieces: list[str]) -> str:
    """Concatenate a record's lines as they were written (a clerk's 於 stays 於, her ！？ stays):
    only a space goes between Latin words."""
    out = ""
    for p in pieces:
        p = p.strip()
        if not p:
            continue
        if out and re.match(r"[A-Za-z0-9]", p[0]) and re.match(r"[A-Za-z0-9,.?!]", out[-1]):
            out += " "
        out += p
    return out


def grown(before: str, now: str) -> str:
    """What ``now`` adds to ``before`` when it only grew ("" when it was revised or did not grow):
    the increment an append-only client (FunASR's, OpenAI's deltas) may be sent."""
    return now[len(before):] if now.startswith(before) else ""


def for_scoring(text: str) -> str:
    """The form CER is scored on: Simplified, no punctuation or spaces, English lower-cased."""
    return _NON_CONTENT.sub("", to_simplified(text).lower())



_SHORT_LOOP = re.compile(r"(.{1,3}?)\1{3,}")  # a unit of 1–3 characters, 4 times or more in a row
_LONG_LOOP = re.compile(r"(.{4,40}?)\1{2,}")  # a longer stretch, 3 times or more in a row
# one Chinese character five times or more, nothing between, most of its line, or this many times
# anywhere (a loop; 对，对，对 is speech)
_ONE_CHAR_LOOP = re.compile(r"([\u4e00-\u9fff])\1{4,}")
ONE_CHAR_LOOP = 7
# a number's digits repeat as no words do (13800000000, 100000000元, 一三八零零零零零零零零): never a loop
_DIGITS = frozenset("0123456789０１２３４５６７８９〇零一二三四五六七八九十百千万亿两幺")


def _loops(text: str) -> list[re.Match]:
    """Where ``text`` repeats itself as an engine in a loop does (a number's digits are not a loop)."""
    return [m for pattern in (_SHORT_LOOP, _LONG_LOOP) for m in pattern.finditer(text)
            if not _DIGITS.issuperset(m.group(1))]


def unlooped(text: str, *, min_period: int = 4) -> str:
    """``text`` up to where an engine's loop begins, its first round kept: a unit said over and over,
    a stretch three times back to back, or a tail that repeats the stretch before it."""
    for m in sorted((m for m in _loops(text) if len(m.group(0)) >= 2 * min_period), key=lambda m: m.start())[:1]:
        text = text[:m.start() + len(m.group(1))]
    marks = "，。！？；：、,.!?;: "
    t = text.rstrip(marks)
    period = min_period
    while period <= len(t) // 2:
        tail, before = t[-period:], t[:-period].rstrip(marks)
        if before.endswith(tail) and not _DIGITS.issuperset(tail):  # once more, with or without a mark between
            text = t = before
            period = min_period
        else:
            period += 1
    return text


def looped(text: str, *, min_chars: int = 8) -> bool:
    """An engine stuck in a loop anywhere in the text: a unit of 1–3 characters said over and over
    ("证证证证证证证证", "对不起对不起对不起对不起"), or a longer stretch three times back to back.
    People do repeat themselves ("对对对", "我不知道我不知道"); a unit has to come back far more often
    than speech does before a line counts as a loop. A short line that is mostly one Chinese
    character said on and on, unbroken, is one too ("证证证证证证": a turn's few words decoded alone),
    as is one said seven times anywhere, but not "对对对对", "对，对，对，对，对" or "对对对对对，
    我当时就在现场"."""
    t = _NON_CONTENT.sub("", text)
    runs = _ONE_CHAR_LOOP.finditer(re.sub(r"\s+", "", text))
    if any((2 * len(r.group(0)) > len(t) or len(r.group(0)) >= ONE_CHAR_LOOP)
           and r.group(1) not in _DIGITS for r in runs):
        return True
    if len(t) < min_chars:
        return False
    return any(len(m.group(0)) >= min_chars or m.re is _LONG_LOOP for m in _loops(t))
