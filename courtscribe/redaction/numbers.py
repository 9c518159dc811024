"""Numbers that identify a person in one line of text: 居民身份证号码, mobile and landline
numbers, bank-card numbers, and account handles.

Numbers are found on a digit view of the text, so a number reads the same whether the engine wrote
it in digits (13812345678), spoken digit by digit (一三八一二三四五六七八, 幺 for 1) or in groups
(138-1234-5678, 138 1234 5678, 一三八，呃，一二三四…五六七八: pauses and fillers between them), an
ID's check place said after a pause too (一二三，叉). What is a number is decided by its shape and
checksum (the ID's ISO 7064 check, Luhn for cards), or by a cue word before it (手机, 卡号 …) for a
number read only in part; numbers read one after another are each found by their shape. A court's
own numbers stay: amounts and dates (a unit follows), statutes (第 before), case numbers (too short,
between letters), lists of small numbers. An account's handle after its cue word (微信号是wxid_…)
is masked as a number is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..casenumbers import PROVINCES
from .find import LABELS, Find

_DIGIT = {**{str(i): str(i) for i in range(10)}, **{chr(0xFF10 + i): str(i) for i in range(10)},
          **dict(zip("零〇幺一二三四五六七八九", "001123456789"))}  # 幺: 1 as numbers are read out
# 2 and 0 as numbers are read out (一三八两…, 洞幺洞): digits only next to a digit (两万, 山洞 stay words)
_SPOKEN = {"两": "2", "洞": "0"}
_SEP = " -－—–·)）杠"  # inside a number read in groups (杠: a dash said aloud), after an area code
_COMMA = "，,、。"  # a pause the punctuation model wrote inside a number read aloud
_PAUSE = _COMMA + "…⋯"  # … and ……: the pause of a speaker who reads the next group after a breath
_GAP = 3  # separators between two digit groups at most ("138 - 1234"), each side of a filler
_FILLERS = ("那个", "就是", "嗯", "呃", "啊", "对")  # said between two groups while reading a number out
# an ID's 18th place said after its 17 digits: X (a Latin X only where no letter follows it: Xiao),
# 叉 (how X is said), or 艾克斯/埃克斯 (the English letter's name as the engine writes it)
_CHECK_WORD = re.compile(r"[Xx叉Ｘｘ](?![A-Za-z])|[艾埃]克斯")
# what a caption line may end in between a number's digits and more of it: a filler, whole or begun
# (那 of 那个), or a check word begun (艾克 of 艾克斯); separators are single characters
_OPEN_WORDS = tuple(sorted({*_FILLERS, "那", "就", "艾", "埃", "艾克", "埃克"}, key=len, reverse=True))
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
    "number": ("QQ", "qq", "微信号", "抖音号", "快手号", "护照", "驾驶证", "社保卡",
               "的号码", "个号码", "联系号码"),  # 他留的号码, 这个号码: a person's (发票号码 stays)
}
CUE_REACH = 10  # characters between a cue and its number
_SENTENCE_END = "。？！；?!;"  # a cue names nothing past these
_CLAUSE_COMMA = "，,"  # ... and past one of these at most (身份证号码是，一一零…)
# words before an account's handle (微信号zhangsan_1990, 抖音号是zs19900307): a handle of letters and
# digits after one of them is masked as a number is
_ACCOUNT_CUES = ("微信", "QQ", "qq", "抖音", "快手", "微博", "支付宝", "钉钉", "淘宝", "账号", "帐号", "用户名")
# an account's handle, from its first character to its last: letters, digits, _ and - with a letter
# in it (digits alone are read as a number, with the checks numbers get)
_HANDLE = re.compile(r"(?<![\w-])(?=[\w-]*[A-Za-z])[\w-]{5,}(?![\w-])", re.ASCII)
# any cue word, where each begins (a lookahead: 银行卡 and 卡号 overlap in 银行卡号), the longest there
_ALL_CUES = sorted({*(w for words in _CUES.values() for w in words), *_ACCOUNT_CUES}, key=len, reverse=True)
_ANY_CUE = re.compile("(?=({}))".format("|".join(map(re.escape, _ALL_CUES))))
# what may stand between a cue word and what it names when nothing else does: 号码, 是, a colon, a
# pause (微信号是，wxid_…); a handle of letters alone (zhangsan) counts only after such a link, as a
# word (excel) may follow 微信 in a sentence about it
_CUE_LINK = re.compile(r"[号码是为叫：:\s，,]*")
# digits a number named by a cue must have: a phone read in part, a card's or ID's first groups
_CUE_DIGITS = {"mobile": 7, "landline": 7, "id_card": 6, "bank_card": 6, "plate": 5, "number": 5}
# ... six, where the phone's cue word names it right before (手机号是158123: the rest misheard or
# unsaid); not a number that merely follows (手机卖了150000, 电话会议编号202603)
_PHONE_NAMED = re.compile(r"(?:手机|电话|座机|固话)(?:号码?|尾号|后\S?)?[是为：:，,\s]*$")
_MOBILE_HEADS = {f"1{d}" for d in "3456789"}  # a mainland mobile number's first two digits
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


@dataclass(frozen=True)
class _Group:
    """One group of a number as it was read out or written (138 of 138 1234 5678)."""

    start: int
    end: int
    digits: str
    paused: bool  # a pause or a filler word parts it from the group before: read aloud, not typed



@dataclass(frozen=True)
class _Run:
    """A stretch of digits in groups: one number, or several read one after another."""

    groups: tuple[_Group, ...]

    @property
    def start(self) -> int:
        return self.groups[0].start

    @property
    def end(self) -> int:
        return self.groups[-1].end

    @property
    def digits(self) -> str:
        return "".join(g.digits for g in self.groups)

    @property
    def commas(self) -> bool:
        """Read aloud with pauses: no landline or long number by its shape alone (2019、2020)."""
        return any(g.paused for g in self.groups[1:])

    @property
    def head(self) -> _Run | None:
        """The run up to its last group separator, if it has one."""
        return _Run(self.groups[:-1]) if len(self.groups) > 1 else None

    def part(self, first: int, end: int) -> _Run:
        """Its groups ``first`` up to ``end``."""
        return _Run(self.groups[first:end])


def finds(text: str) -> list[Find]:
    """Every number and account handle in ``text`` that identifies a person (they may overlap)."""
    return [*(f for run in _runs(text) for f in _number_finds(text, run)), *_accounts(text)]


def open_from(text: str) -> int:
    """Where a number, a Latin token or a cue word at the end of ``text`` may still become a find
    once more is said; ``len(text)`` when nothing is open."""
    return min(_open_token(text), _open_cue(text))


def _runs(text: str) -> list[_Run]:
    """Maximal stretches of digits (ASCII, full-width or Chinese read digit by digit), with what
    parts their groups inside them and an ID's check place after its 17th digit."""
    out = []
    i = 0
    while i < len(text):
        if _digit(text, i):
            out.append(_run(text, i, misheard=_cue(text, i) is not None))
            i = out[-1].end
        else:
            i += 1
    return out


def _run(text: str, start: int, misheard: bool = False) -> _Run:
    """``misheard``: a cue word names the number, so one character between its digits (three or
    more before it) is a digit the engine misheard (手机号是158123孙5678), never the number's end."""
    groups: list[_Group] = []
    digits: list[str] = []
    begun, paused, count = start, False, 0  # the group's start, what parted it, digits before it
    j = start
    while j < len(text):
        ch = text[j]
        if digit := _digit(text, j):
            digits.append(digit)
        elif count + len(digits) == 17 and (end := _check_end(text, j)):
            digits.append("X")  # in its group, as 123X is read: a 6-8-4 ID stays one
            j = end
            break
        elif ch in _HEARD_AS and digits and text[j + 1:j + 2] in _DIGIT:
            digits.append(_HEARD_AS[ch])
        elif gap := _gap(text, j) or (_stray(text, j) if misheard and len(digits) >= 3 else 0):
            groups.append(_Group(begun, j, "".join(digits), paused))
            count += len(digits)
            digits, begun, paused = [], j + gap, any(c not in _SEP for c in text[j:j + gap])
            j += gap
            continue
        else:
            break
        j += 1
    groups.append(_Group(begun, j, "".join(digits), paused))
    return _Run(tuple(groups))


def _digit(text: str, at: int) -> str:
    """The digit ``text`` says at ``at`` ('' if none): 两 and 洞 only in a number, a digit beside them."""
    ch = text[at]
    if ch in _DIGIT:
        return _DIGIT[ch]
    if ch not in _SPOKEN:
        return ""
    first, end = at, at + 1  # the run of 两 and 洞 it is in (洞洞幺)
    while first > 0 and text[first - 1] in _SPOKEN:
        first -= 1
    while end < len(text) and text[end] in _SPOKEN:
        end += 1
    beside = text[first - 1:first] + text[end:end + 1]
    return _SPOKEN[ch] if any(c in _DIGIT for c in beside) else ""


def _parting(text: str, at: int) -> int:
    """Where what may part two groups of a number read out, from ``at``, ends: separators and
    pauses (138 - 1234, 一三八……一二三四), one filler word among them (一三八，呃，一二三四)."""
    k = _separators(text, at)
    filler = next((w for w in _FILLERS if text.startswith(w, k)), "")
    return _separators(text, k + len(filler)) if filler else k


def _separators(text: str, at: int) -> int:
    k = at
    while k < len(text) and k - at < _GAP and text[k] in _SEP + _PAUSE:
        k += 1
    return k


def _gap(text: str, at: int) -> int:
    """The length of what parts two groups at ``at`` when a digit follows it (0 otherwise)."""
    k = _parting(text, at)
    return k - at if k > at and k < len(text) and _digit(text, k) else 0


def _stray(text: str, at: int) -> int:
    """1 where ``text[at]`` is one Chinese character between digits, no unit or word of its own."""
    ch, after = text[at], at + 1
    chinese = "\u4e00" <= ch <= "\u9fff" and ch not in _UNITS
    return int(chinese and after < len(text) and bool(_digit(text, after)))


def _check_end(text: str, at: int) -> int:
    """Where an ID's check place said at ``at``, after a pause or not (一二三，叉), ends; 0 if none."""
    m = _CHECK_WORD.match(text, _parting(text, at))
    return m.end() if m else 0


def _number_finds(text: str, run: _Run) -> list[Find]:
    """The finds of one run: the number it is, or the numbers read one after another in it."""
    cue = _cue(text, run.start)
    category = _category(text, run, cue)
    if not category and run.head and text[run.end:run.end + 1] in _UNITS:
        run = run.head  # its last group is an amount or a date: another number before it?
        category = _category(text, run, cue)
    found = [(run, category)] if category else _pieces(text, run)
    # ××××, after the category's name unless a cue word already says it
    return [Find(c, p.start, p.end, "××××" if cue else LABELS[c] + "××××") for p, c in found]


def _pieces(text: str, run: _Run) -> list[tuple[_Run, str]]:
    """The IDs and mobile numbers by their shape in a run that is none as a whole: numbers read one
    after another (一三八，一二三四，五六七八，一三九…), each the longest that starts at a group
    and is read in groups (``_read_in_groups``)."""
    out = []
    first = 0
    while first < len(run.groups):
        best: tuple[_Run, str] | None = None
        for end in range(first + 1, len(run.groups) + 1):
            piece = run.part(first, end)
            if len(piece.digits) > 18 or not _read_in_groups(piece):
                break
            category = _category(text, piece, None) if end - first < len(run.groups) else None
            if category in ("id_card", "mobile"):
                best = (piece, category)
        out += [best] if best else []
        first += len(best[0].groups) if best else 1
    return out


def _open_token(text: str) -> int:
    """Where a trailing number (what parts its groups too) or Latin token (a plate's letters, an
    e-mail or a handle being spelled) begins, with the province before a plate's letter;
    ``len(text)`` if none."""
    i = len(text)
    while i > 0 and text[i - 1].isascii() and (text[i - 1].isalnum() or text[i - 1] in "@._%+-"):
        i -= 1
    at = min(i, _open_number(text))
    return at - 1 if 0 < at < len(text) and text[at - 1] in PROVINCES else at


def _open_number(text: str) -> int:
    """Where a number at the end of ``text`` begins: its digits, and after them what may go on
    to more of it (a separator, a pause, a filler or a check word, whole or begun: 一三八，呃,
    一二三艾克); ``len(text)`` if none."""
    k = len(text)
    while k > 0:
        if text[k - 1] in _DIGIT or text[k - 1] in _SPOKEN:
            k -= 1
            continue
        tail = k
        while tail > 0 and k - tail < 2 * _GAP + 3:  # what parts two groups, read backwards
            word = next((w for w in _OPEN_WORDS if text.endswith(w, 0, tail)), "")
            step = len(word) or (1 if text[tail - 1] in _SEP + _PAUSE else 0)
            if not step:
                break
            tail -= step
        if tail == k or tail == 0 or text[tail - 1] not in _DIGIT and text[tail - 1] not in _SPOKEN:
            break
        k = tail
    return k


def _category(text: str, run: _Run, cue: str | None) -> str | None:
    """What the number ``run`` is, by its shape, or by ``cue`` (the cue word before it) when read in part."""
    d = run.digits
    n = len(d)
    if n == 18 and _id_like(d) or n == 15 and _date_like("19" + d[6:12]) or _id_read_out(run):
        return "id_card"
    after = text[run.end:run.end + 2]
    ordinal = text[max(0, run.start - 1):run.start] == "第"
    counted = after[:1] in _UNITS or ordinal or _DECIMAL.match(after)
    if counted or n == 8 and _date_like(d):  # an amount (13800138000元), an ordinal, a date 2026-03-07
        return None
    mobile = n == 11 and d[:2] in _MOBILE_HEADS or n == 13 and d.startswith("861")
    if mobile and _read_in_groups(run):
        return "mobile"
    if d[0] == "0" and 10 <= n <= 12 and not run.commas:
        return "landline"
    if 16 <= n <= 19 and _luhn(d):
        return "bank_card"
    named = n == 6 and _PHONE_NAMED.search(text, max(0, run.start - 12), run.start)
    if cue and (n >= _CUE_DIGITS[cue] or named):
        return cue
    if n >= 10 and not run.commas:  # as long as a phone number: one misheard, or another's
        return "number"
    return None


def _read_in_groups(run: _Run) -> bool:
    """Written, or read out in groups of three digits or more as a phone or an ID is (一三八，
    一二三四，…): a list of small numbers (证据1、3、5、6、7…) is none, however many digits it has."""
    return not run.commas or all(len(g.digits) >= 3 for g in run.groups)


def _id_read_out(run: _Run) -> bool:
    """An ID read out without its check place (17 digits that hold a birth date), or in the groups
    it is read in, 6-8-3 or 6-8-4 (a misheard digit of its date notwithstanding)."""
    d = run.digits
    shape = [len(g.digits) for g in run.groups]
    return (len(d) == 17 and d.isdigit() and d[0] in "12345678" and _date_like(d[6:14])
            or shape in ([6, 8, 3], [6, 8, 4]))


def _reach(text: str, start: int) -> tuple[int, str]:
    """The text before ``start`` that a cue word naming what is at ``start`` may stand in: the cue's
    reach, in the same sentence, across one comma at most (身份证号码是，一一零…), a filler between
    two commas one pause; with where it begins."""
    lo = max(0, start - CUE_REACH - 4)
    before = text[lo:start]
    cut = max(before.rfind(c) for c in _SENTENCE_END) + 1
    commas = [i for i, c in enumerate(before) if c in _CLAUSE_COMMA]
    # a filler between two commas is one pause (座机号是，呃，六五四三…)
    commas = [c for k, c in enumerate(commas) if not k or before[commas[k - 1] + 1:c] not in _FILLERS]
    if len(commas) > 1:
        cut = max(cut, commas[-2] + 1)
    return lo + cut, before[cut:]


def _cue(text: str, start: int) -> str | None:
    """The category named by the nearest cue word before a number, in its reach and with no money
    word between them (转账20000 after 微信 is an amount)."""
    _, before = _reach(text, start)
    found = [(before.rfind(w), w, category) for category, words in _CUES.items() for w in words]
    where, word, category = max(found)
    if where < 0 or _MONEY.search(before[where + len(word):]):
        return None
    # a cue word that says more just before it (手机号码, 身份证号码: not a mere 号码)
    joined = [(w, c) for at, w, c in found if at >= 0 and at < where <= at + len(w)]
    return max(joined, key=lambda wc: len(wc[0]))[1] if joined else category


def _open_cue(text: str) -> int:
    """Where a cue word at the end of ``text`` begins when nothing it names is said yet (手机号是，),
    with a cue word it overlaps (银行卡号: 银行卡, 卡号): held, a piece of a long utterance takes it
    into the next piece's search, where its number is."""
    lo, before = _reach(text, len(text))
    spans = [(m.start(), m.start() + len(m.group(1))) for m in _ANY_CUE.finditer(before)]
    if not spans or not _CUE_LINK.fullmatch(before, spans[-1][1]):
        return len(text)  # no cue word, or the nearest already names what follows it
    at = spans[-1][0]
    for start, end in reversed(spans):
        at = start if start < at < end else at
    return lo + at


def _accounts(text: str) -> list[Find]:
    """Account handles after an account's cue word in its reach (微信号是wxid_abc123): masked as a
    number is, unless money is what the words between speak of (微信转账)."""
    out = []
    for m in _HANDLE.finditer(text):
        _, before = _reach(text, m.start())
        where, cue = max((before.rfind(w), w) for w in _ACCOUNT_CUES)
        if where < 0:
            continue
        between = before[where + len(cue):]
        if _MONEY.search(between):
            continue
        if m.group().isalpha() and not _CUE_LINK.fullmatch(between):
            continue  # letters alone, not right after the cue: a word (微信发了一个excel)
        out.append(Find("number", m.start(), m.end(), "××××"))
    return out


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

