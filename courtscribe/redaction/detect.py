"""Personal data in one line of text, found and masked the way published judgments are
de-identified (姓 + 某, numbers masked): 居民身份证号码, mobile and landline numbers, bank-card
numbers, licence plates, e-mail addresses, street addresses, and protected participants' names.

Numbers are found on a digit view of the text, so a number reads the same whether the engine wrote
it in digits (13812345678), spoken digit by digit (一三八一二三四五六七八, 幺 for 1) or in groups
(138-1234-5678, 138 1234 5678). What is a number is decided by its shape and checksum (the ID's
ISO 7064 check, Luhn for cards), or by a cue word before it (手机, 卡号 …) for a number read only
in part. A court's own numbers stay: amounts and dates (a unit follows), statutes (第 before),
case numbers (too short, between letters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..asr.hotwords import is_word, sounds
from ..casenumbers import PROVINCES

_DIGIT = {**{str(i): str(i) for i in range(10)}, **{chr(0xFF10 + i): str(i) for i in range(10)},
          **dict(zip("零〇幺一二三四五六七八九", "001123456789"))}  # 幺: 1 as numbers are read out
_CHECK = "Xx叉Ｘ"  # an ID number's last place
_SEP = " -－—–·)）杠"  # inside a number read in groups (杠: a dash said aloud), after an area code
_COMMA = "，,、。"  # a pause the punctuation model wrote inside a number read aloud
_GAP = 3  # separator characters between two digit groups at most ("138 - 1234")
_UNITS = set("元块万亿年月日时点分秒条款项号%％个次天岁名人件份页米克倍周")
# a digit misheard as a character that sounds like it, counted only between two digits
_HEARD_AS = {**dict.fromkeys("依衣伊医", "1"), **dict.fromkeys("而儿", "2"), **dict.fromkeys("伞散", "3"),
             "死": "4", **dict.fromkeys("舞午武", "5"), **dict.fromkeys("溜留流", "6"),
             **dict.fromkeys("期妻齐", "7"), **dict.fromkeys("吧巴扒", "8"), **dict.fromkeys("久酒", "9")}
_DECIMAL = re.compile(r"[.．][0-9]")  # 1250000.50: a quantity, never an identifier
_MONEY = re.compile(r"转账|借款|还款|一共|共计|合计|金额|余额|利息|本金|价款|赔偿|欠款|货款")
_CUES = {  # a word before a number that says what it is: the nearest one counts
    "id_card": ("身份证", "证件号", "身份号码"),
    "mobile": ("手机", "电话", "联系方式", "微信号"),
    "landline": ("座机", "固话"),
    "bank_card": ("卡号", "银行卡", "账号", "帐号", "账户", "帐户", "银行账"),
    "plate": ("车牌", "牌照", "号牌", "车排"),  # 车排: the engine's sound-alike of 车牌
    "number": ("QQ", "qq", "微信号", "护照", "驾驶证", "社保卡"),
}
CUE_REACH = 10  # characters between a cue and its number
# digits a number named by a cue must have: a phone read in part, a card's or ID's first groups
_CUE_DIGITS = {"mobile": 7, "landline": 7, "id_card": 6, "bank_card": 6, "plate": 5, "number": 5}
LABELS = {"id_card": "身份证号码", "mobile": "手机号码", "landline": "电话号码", "bank_card": "银行卡号",
          "number": "号码", "plate": "车牌号", "email": "电子邮箱", "address": "住址", "name": "姓名",
          "clerk": "书记员标注"}
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_NAME_PARTS = re.compile(r"[·・•‧.\-\s]+")  # what parts a name: 阿依古丽·买买提, John Smith
_NAME_GAP = r"[·・•‧.\-\s]*"
_COMPOUND_SURNAMES = tuple("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕 端木 "
                           "西门 南宫 独孤 呼延".split())
_NUMERAL = "0-9０-９零〇一二三四五六七八九十百千幺两"  # a house or room number, read or written
_PLACE = "大街|大道|路|街|巷|胡同|弄|村|屯|小区|社区|花园|公寓|大厦"  # what a house number follows
_ROAD = re.compile(rf"({_PLACE})[\s，,]*[{_NUMERAL}]+\s*(?:号|组|栋|幢|座)[{_NUMERAL}号院楼栋幢座单元层室户之\-—]*")
_ROAD_END = re.compile(rf"({_PLACE})[\s，,]*[{_NUMERAL}]*\s*$")  # its number may follow
# each pattern that opens with a run of characters starts only where its run starts (the lookbehind):
# tried at every character of a long run, it read the rest of the run each time (a 20,000-digit line
# took a minute to make public)
_BUILDING = re.compile(rf"(?<![{_NUMERAL}])[{_NUMERAL}]+\s*(?:号楼|栋|幢|座)[{_NUMERAL}单元层号\-—]{{0,8}}?"
                       rf"[{_NUMERAL}]+\s*(?:室|号房)")
_ROAD_STOP = set("省市区县镇乡村旗州在住于是到从址为，。、；：,. ")
_ROAD_REACH = 6  # characters of a road's name before its 路/街
ADDRESS_TAIL = 16  # characters after a house number still taken as its building and room
_CLAUSE_END = re.compile(r"[，。；！？,;!?\s]")
_MORE_ADDRESS = re.compile(r"[0-9０-９零一二三四五六七八九十室楼栋单元层]")
_AT = r"(?:@|艾特|\s+at\s+)"
_DOT = r"(?:\.|点|\s+dot\s+)"
_LOCAL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+"  # an address's name part, from its first character
_EMAIL = re.compile(rf"{_LOCAL}\s*{_AT}\s*[A-Za-z0-9-]+(?:\s*{_DOT}\s*[A-Za-z0-9-]+)*\s*{_DOT}\s*"
                    r"[A-Za-z]{2,6}(?![A-Za-z])", re.IGNORECASE)
_EMAIL_OPEN = re.compile(rf"{_LOCAL}\s*{_AT}[\sA-Za-z0-9.点-]*$", re.IGNORECASE)  # being spelled
_PLATE = re.compile(
    rf"[{PROVINCES}]\s*[A-HJ-NP-Za-hj-np-z]\s*[·•.]?\s*"
    r"(?:[A-HJ-NP-Za-hj-np-z0-9]|[零〇一二三四五六七八九幺])(?:\s?(?:[A-HJ-NP-Za-hj-np-z0-9]|[零〇一二三四五六七八九幺])){4,5}"
    r"(?![A-Za-z0-9])"
)


@dataclass(frozen=True)
class Find:
    """A stretch of a text that a public audience must not see, and what it shows instead."""

    category: str
    start: int
    end: int
    replacement: str


@dataclass(frozen=True)
class _Run:
    start: int
    end: int
    digits: str
    commas: bool
    head: _Run | None = None  # the run up to its last group separator


class Finder:
    """The finds of a hearing's texts: its protected names (with their sound-alikes) and any
    words the clerk chose to hide, besides the personal data every text is searched for."""

    def __init__(self, protected: Iterable[str] = (), hidden: Iterable[str] = ()):
        self.names = [_Name(n.strip()) for n in protected if n and n.strip()]
        self.hidden = sorted({w for w in hidden if w}, key=len, reverse=True)

    def find(self, text: str, shown: frozenset[str] = frozenset()) -> list[Find]:
        """Every find in ``text``, in order, none overlapping (the longest wins where two do, the
        clerk's own where they tie); found words in ``shown`` (the clerk lifted them) stay."""
        found = [*self._numbers(text), *_patterns(text), *self._names(text)]
        found = [f for f in found if text[f.start:f.end] not in shown] + self._hidden(text)
        found.sort(key=lambda f: (f.start, -(f.end - f.start), f.category != "clerk"))
        out: list[Find] = []
        for f in found:
            if out and f.start < out[-1].end:
                continue
            out.append(f)
        return out

    def open_from(self, text: str) -> int:
        """Where the end of ``text`` may still become a find once more is said (a number read in
        part, a plate's first letters, a road before its number, the start of a protected name):
        a live caption holds it back until the speaker goes on. ``len(text)`` when nothing is open."""
        at = _open_token(text)
        if text and text[-1] in PROVINCES:  # 京…: a plate may follow
            at = min(at, len(text) - 1)
        if mail := _EMAIL_OPEN.search(text):
            at = min(at, mail.start())
        if road := _ROAD_END.search(text):
            at = min(at, _road_start(text, road.start()))
        for f in _patterns(text):
            if f.category == "address" and f.end == len(text):
                at = min(at, f.start)  # its building and room may follow
        return min([at, *(name.open_from(text) for name in self.names)])

    def _numbers(self, text: str) -> list[Find]:
        out = []
        for run in _runs(text):
            cue = _cue(text, run.start)
            category = _category(text, run, cue)
            if not category and run.head and text[run.end:run.end + 1] in _UNITS:
                run = run.head  # its last group is an amount or a date: another number before it?
                category = _category(text, run, cue)
            if category:  # ××××, after the category's name unless a cue word already says it
                out.append(Find(category, run.start, run.end, "××××" if cue else LABELS[category] + "××××"))
        return out

    def _names(self, text: str) -> list[Find]:
        return [f for name in self.names for f in name.finds(text)]

    def _hidden(self, text: str) -> list[Find]:
        out = []
        for word in self.hidden:
            for m in re.finditer(re.escape(word), text):
                out.append(Find("clerk", m.start(), m.end(), "×××"))
        return out


def apply(text: str, finds: Iterable[Find]) -> str:
    """``text`` with each find replaced (finds in order, not overlapping, as ``Finder.find`` gives)."""
    out, pos = [], 0
    for f in finds:
        out += [text[pos:f.start], f.replacement]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


# -- numbers -------------------------------------------------------------------------------------
def _runs(text: str) -> list[_Run]:
    """Maximal stretches of digits (ASCII, full-width or Chinese read digit by digit), with single
    group separators inside them and an ID's X at its 18th place."""
    out = []
    i = 0
    while i < len(text):
        if text[i] in _DIGIT:
            out.append(_run(text, i))
            i = out[-1].end
        else:
            i += 1
    return out


def _run(text: str, start: int) -> _Run:
    digits: list[str] = []
    commas = False
    head = None
    j = start
    while j < len(text):
        ch = text[j]
        if ch in _DIGIT:
            digits.append(_DIGIT[ch])
        elif ch in _CHECK and len(digits) == 17:
            digits.append("X")
            j += 1
            break
        elif ch in _HEARD_AS and digits and text[j + 1:j + 2] in _DIGIT:
            digits.append(_HEARD_AS[ch])
        elif (gap := _gap(text, j)) and digits:
            head = _Run(start, j, "".join(digits), commas, head)
            commas = commas or any(c in _COMMA for c in text[j:j + gap])
            j += gap
            continue
        else:
            break
        j += 1
    return _Run(start, j, "".join(digits), commas, head)


def _gap(text: str, at: int) -> int:
    """The length of the separators at ``at`` when a digit follows them (0 otherwise)."""
    k = at
    while k < len(text) and k - at < _GAP and text[k] in _SEP + _COMMA:
        k += 1
    return k - at if k > at and text[k:k + 1] in _DIGIT else 0


def _open_token(text: str) -> int:
    """Where a trailing number (its separators too) or Latin token (a plate's letters, an e-mail
    being spelled) begins, with the province before a plate's letter; ``len(text)`` if none."""
    i = len(text)
    while i > 0 and text[i - 1].isascii() and (text[i - 1].isalnum() or text[i - 1] in "@._%+-"):
        i -= 1
    k = len(text)
    while k > 0 and (text[k - 1] in _DIGIT or k > 1 and text[k - 1] in _SEP + _COMMA + _CHECK
                     and text[k - 2] in _DIGIT):
        k -= 1
    at = min(i, k)
    return at - 1 if 0 < at < len(text) and text[at - 1] in PROVINCES else at


def _category(text: str, run: _Run, cue: str | None) -> str | None:
    """What the number ``run`` is, by its shape, or by ``cue`` (the cue word before it) when read in part."""
    d = run.digits
    n = len(d)
    if n == 18 and _id_like(d) or n == 15 and _date_like("19" + d[6:12]):
        return "id_card"
    if n == 11 and d[0] == "1" and d[1] in "3456789" or n == 13 and d.startswith("861"):
        return "mobile"
    if d[0] == "0" and 10 <= n <= 12 and not run.commas:
        return "landline"
    if 16 <= n <= 19 and _luhn(d):
        return "bank_card"
    after = text[run.end:run.end + 2]
    counted = after[:1] in _UNITS or text[max(0, run.start - 1):run.start] == "第" or _DECIMAL.match(after)
    if counted or n == 8 and _date_like(d):  # an amount, an ordinal, a date written 2026-03-07
        return None
    if cue and n >= _CUE_DIGITS[cue]:
        return cue
    if n >= 10 and not run.commas:  # as long as a phone number: one misheard, or another's
        return "number"
    return None


def _cue(text: str, start: int) -> str | None:
    """The category named by the nearest cue word before a number, in the same clause and with no
    money word between them (转账20000 after 微信 is an amount)."""
    before = re.split(r"[。？！；?!;，,]", text[max(0, start - CUE_REACH - 4):start])[-1]
    found = [(before.rfind(w), w, category) for category, words in _CUES.items() for w in words]
    where, word, category = max(found)
    if where < 0 or _MONEY.search(before[where + len(word):]):
        return None
    return category


def _id_like(d: str) -> bool:
    """An 18-place 居民身份证号码: its check digit agrees, or it holds a birth date (a misheard
    digit breaks the check, and the number must still not go out)."""
    if not d[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(d[:17], _ID_WEIGHTS))
    return "10X98765432"[total % 11] == d[17] or d[0] in "12345678" and _date_like(d[6:14])


def _date_like(yyyymmdd: str) -> bool:
    if not yyyymmdd.isdigit():
        return False
    return 1900 <= int(yyyymmdd[:4]) <= 2099 and 1 <= int(yyyymmdd[4:6]) <= 12 and 1 <= int(yyyymmdd[6:8]) <= 31


def _luhn(d: str) -> bool:
    if not d.isdigit():
        return False
    total = 0
    for k, c in enumerate(reversed(d)):
        v = int(c) * (2 if k % 2 else 1)
        total += v - 9 if v > 9 else v
    return total % 10 == 0


# -- plates, e-mail, addresses ---------------------------------------------------------------------
def _patterns(text: str) -> list[Find]:
    out = [Find("plate", m.start(), m.end(), _plate_mask(m.group(0))) for m in _PLATE.finditer(text)]
    out += [Find("email", m.start(), m.end(), "×××@×××") for m in _EMAIL.finditer(text)]
    for m in [*_ROAD.finditer(text), *_BUILDING.finditer(text)]:
        start = _road_start(text, m.start()) if _ROAD.match(text, m.start()) else m.start()
        out.append(Find("address", start, _clause_end(text, m.end()), "××"))
    return out


def _clause_end(text: str, end: int) -> int:
    """An address goes on to the end of its clause when more of it follows (楼, 单元, 室, misheard or
    not): a house number's building and room are as private as the street."""
    m = _CLAUSE_END.search(text, end)
    tail = text[end:m.start() if m else len(text)]
    return end + len(tail) if len(tail) <= ADDRESS_TAIL and _MORE_ADDRESS.search(tail) else end


def _plate_mask(plate: str) -> str:
    """京A·12345 → 京A×××××: the issuing office stays, the number goes."""
    letter = next(c for c in plate[1:] if c.isascii() and c.isalpha())
    return f"{plate[0]}{letter.upper()}×××××"


def _road_start(text: str, suffix: int) -> int:
    """Where the name of the road whose 路/街 is at ``suffix`` begins (after 区, 市, 住在 …)."""
    i = suffix
    while i > 0 and suffix - i < _ROAD_REACH and text[i - 1] not in _ROAD_STOP and "\u4e00" <= text[i - 1] <= "\u9fff":
        i -= 1
    return i


# -- names ---------------------------------------------------------------------------------------
class _Name:
    """A protected participant's name: found as said, or as a sound-alike the engine wrote
    (章小明 for 张小明); the given name alone too when it has two characters or more. A name of
    parts (阿依古丽·买买提, John Smith) is found whole with or without what parts it, and each part
    of two characters or more alone."""

    def __init__(self, name: str):
        parts = [p for p in _NAME_PARTS.split(name) if p]
        self.name = "".join(parts) if len(parts) > 1 else name
        self.cjk = all("\u3400" <= c <= "\u9fff" for c in self.name)
        cut = 2 if name[:2] in _COMPOUND_SURNAMES else 1
        self.surname = name[:cut] if len(parts) == 1 else ""
        self.given = name[cut:] if len(parts) == 1 else ""
        self.forms = [(self.name, f"{self.surname}某" if self.cjk and self.surname else "某")]
        self.forms += [(form, "某") for form in (parts if len(parts) > 1 else [self.given])
                       if self.cjk and len(form) >= 2]
        # a given name that is also a word (建国, 国庆) is found as written, never by its sound
        self.exact_only = {form for form, _ in self.forms[1:] if is_word(form)}
        alone = [rf"\b{re.escape(p)}\b" for p in parts if len(p) >= 2] if len(parts) > 1 else []
        self.latin = re.compile("|".join([_NAME_GAP.join(map(re.escape, parts)), *alone]), re.IGNORECASE)

    def finds(self, text: str) -> list[Find]:
        if not self.cjk:
            return [Find("name", m.start(), m.end(), "某") for m in self.latin.finditer(text)]
        out = []
        heard = sounds(text)
        for form, replacement in self.forms:
            want = sounds(form)
            n = len(form)
            for i in range(len(text) - n + 1):
                if text[i:i + n] == form or heard[i:i + n] == want and form not in self.exact_only:
                    out.append(Find("name", i, i + n, replacement))
        return out

    def open_from(self, text: str) -> int:
        """The start of a tail of ``text`` that begins this name (or sounds like its beginning)."""
        if not self.cjk:
            low, name = text.lower(), self.name.lower()
            for k in range(min(len(name) - 1, len(text)), 0, -1):
                if name.startswith(low[-k:]):
                    return len(text) - k
            return len(text)
        heard = sounds(text[-len(self.name) :])
        for form, _ in self.forms:
            want = sounds(form)
            for k in range(min(len(form) - 1, len(heard)), 0, -1):
                if heard[-k:] == want[:k]:
                    return len(text) - k
        return len(text)
