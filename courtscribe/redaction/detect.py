"""Personal data in one line of text, found and masked the way published judgments are
de-identified (姓 + 某, numbers masked): 居民身份证号码, mobile and landline numbers, bank-card
numbers, licence plates, e-mail addresses, street addresses, and protected participants' names.

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
from typing import Iterable

from ..asr.hotwords import is_word, sounds
from ..casenumbers import PROVINCES

_DIGIT = {**{str(i): str(i) for i in range(10)}, **{chr(0xFF10 + i): str(i) for i in range(10)},
          **dict(zip("零〇幺一二三四五六七八九", "001123456789"))}  # 幺: 1 as numbers are read out
_SEP = " -－—–·)）杠"  # inside a number read in groups (杠: a dash said aloud), after an area code
_COMMA = "，,、。"  # a pause the punctuation model wrote inside a number read aloud
_PAUSE = _COMMA + "…⋯"  # … and ……: the pause of a speaker who reads the next group after a breath
_GAP = 3  # separators between two digit groups at most ("138 - 1234"), each side of a filler
_FILLERS = ("那个", "就是", "嗯", "呃", "啊")  # said between two groups while reading a number out
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
    "number": ("QQ", "qq", "微信号", "抖音号", "快手号", "护照", "驾驶证", "社保卡"),
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
LABELS = {"id_card": "身份证号码", "mobile": "手机号码", "landline": "电话号码", "bank_card": "银行卡号",
          "number": "号码", "plate": "车牌号", "email": "电子邮箱", "address": "住址", "name": "姓名",
          "clerk": "书记员标注"}
_MOBILE_HEADS = {f"1{d}" for d in "3456789"}  # a mainland mobile number's first two digits
_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_NAME_PARTS = re.compile(r"[·・•‧.\-\s]+")  # what parts a name: 阿依古丽·买买提, John Smith
_NAME_GAP = r"[·・•‧.\-\s]*"
# between a surname and its given name: what parts a name, or a pause (李 明, 李，明)
_NAME_SPLIT = re.compile(rf"{_NAME_GAP}(?:[，,]{_NAME_GAP})?")
_NAME_SPLIT_REACH = 4  # characters of such a gap a live caption's end is searched back over
_COMPOUND_SURNAMES = tuple("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕 端木 "
                           "西门 南宫 独孤 呼延".split())
_NUMERAL = "0-9０-９零〇一二三四五六七八九十百千幺两"  # a house or room number, read or written
_STREETS = "大街|大道|路|街|巷|胡同|弄|村|屯|小区|社区|花园|公寓|大厦|苑"  # what a house number follows
# ... and endings of roads and estates (睦南道, 幸福里, 望京西园, 田子坊) that also end everyday words
# (知道, 这里, 公园, 作坊): a place only where the character before them is not such a word's
_WEAK_STREETS = {"道": "知难报说问写答通频轨渠管味车赛跑人一二两三几这那",
                 "里": "这那哪家心手夜公英嘴眼城村县区市省院店厂所局队组班屋梦话"
                       "千万百十几一二两三四五六七八九",  # 三里, 十里: a distance
                 "园": "公校乐物果菜茶陵儿", "坊": "作磨染油酒"}
_PLACE = "|".join([_STREETS, *(f"(?<![{before}]){end}" for end, before in _WEAK_STREETS.items())])
# a road's side (中山大道西), then its numbered parts before the house number: an estate's area or
# phase, a lane, a section (望京西园四区, 愚园路1088弄, 人民南路三段)
_ROAD_PARTS = rf"[东南西北]?[\s，,]*(?:[{_NUMERAL}]+\s*(?:区|期|弄|巷|段)[\s，,]*)*"
# a house number and what follows it of the building and the home: 88号院3号楼2单元501室, 5栋302
_HOUSE = rf"[{_NUMERAL}]+\s*(?:号|组|栋|幢|座)[{_NUMERAL}号院楼栋幢座单元层室户之\-—]*"
_ROAD = re.compile(rf"(?:{_PLACE}){_ROAD_PARTS}{_HOUSE}")
_ROAD_END = re.compile(rf"(?:{_PLACE}){_ROAD_PARTS}[{_NUMERAL}]*\s*$")  # its number may follow
_BLOCK = rf"[{_NUMERAL}]+\s*(?:号楼|栋|幢|座)"  # a building of an estate: 3号楼, 五栋
_ROOM_DIGITS = rf"[0-9０-９零〇幺一二三四五六七八九]{{3,4}}(?![{_NUMERAL}])"  # 302, 三零二: a room read out
_ROOM = "|".join([
    rf"[{_NUMERAL}单元层号\-—]{{0,8}}?[{_NUMERAL}]+\s*(?:室|号房)",  # its room, named so: 2单元301室
    rf"(?:[{_NUMERAL}]+\s*单元\s*)?{_ROOM_DIGITS}",  # or read as digits alone: 2单元301, 302
    rf"[{_NUMERAL}]+\s*单元",  # or its entrance: 2单元
])
# each pattern that opens with a run of characters starts only where its run starts (the lookbehind):
# tried at every character of a long run, it read the rest of the run each time (a 20,000-digit line
# took a minute to make public)
_BUILDING = re.compile(rf"(?<![{_NUMERAL}]){_BLOCK}(?:{_ROOM})")
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
class _Group:
    """One group of a number as it was read out or written (138 of 138 1234 5678)."""

    start: int
    end: int
    digits: str
    paused: bool  # a pause or a filler word parts it from the group before: read aloud, not typed


def _open_words(text: str, words: str) -> int:
    """The start of a tail of ``text`` (two characters or more) that begins ``words``."""
    for k in range(min(len(words) - 1, len(text)), 1, -1):
        if text.endswith(words[:k]):
            return len(text) - k
    return len(text)


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


class Finder:
    """The finds of a hearing's texts: its protected names (with their sound-alikes) and any
    words the clerk chose to hide, besides the personal data every text is searched for."""

    def __init__(self, protected: Iterable[str] = (), hidden: Iterable[str] = ()):
        self.names = [_Name(n.strip()) for n in protected if n and n.strip()]
        self.hidden = sorted({w for w in hidden if w}, key=len, reverse=True)

    def find(self, text: str, shown: frozenset[str] = frozenset()) -> list[Find]:
        """Every find in ``text``, in order, none overlapping (the longest wins where two do, the
        clerk's own where they tie); found words in ``shown`` (the clerk lifted them) stay."""
        found = [*self._numbers(text), *_accounts(text), *_patterns(text), *self._names(text)]
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
        part, a cue word whose number is still to come, a plate's first letters, a road before its
        number, the start of a protected name or of words the clerk hid): a live caption holds it
        back until the speaker goes on, and a piece of a long utterance carries it into the next
        piece's search. ``len(text)`` when nothing is open."""
        at = min(_open_token(text), _open_cue(text))
        if text and text[-1] in PROVINCES:  # 京…: a plate may follow
            at = min(at, len(text) - 1)
        if mail := _EMAIL_OPEN.search(text):
            at = min(at, mail.start())
        if road := _ROAD_END.search(text):
            at = min(at, _road_start(text, road.start()))
        for f in _patterns(text):
            if f.category == "address" and f.end == len(text):
                at = min(at, f.start)  # its building and room may follow
        return min([at, *(name.open_from(text) for name in self.names),
                    *(_open_words(text, words) for words in self.hidden)])

    def _numbers(self, text: str) -> list[Find]:
        return [f for run in _runs(text) for f in _number_finds(text, run)]

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
    """Maximal stretches of digits (ASCII, full-width or Chinese read digit by digit), with what
    parts their groups inside them and an ID's check place after its 17th digit."""
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
    groups: list[_Group] = []
    digits: list[str] = []
    begun, paused, count = start, False, 0  # the group's start, what parted it, digits before it
    j = start
    while j < len(text):
        ch = text[j]
        if ch in _DIGIT:
            digits.append(_DIGIT[ch])
        elif count + len(digits) == 17 and (end := _check_end(text, j)):
            digits.append("X")  # in its group, as 123X is read: a 6-8-4 ID stays one
            j = end
            break
        elif ch in _HEARD_AS and digits and text[j + 1:j + 2] in _DIGIT:
            digits.append(_HEARD_AS[ch])
        elif gap := _gap(text, j):
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
    return k - at if k > at and text[k:k + 1] in _DIGIT else 0


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
        if text[k - 1] in _DIGIT:
            k -= 1
            continue
        tail = k
        while tail > 0 and k - tail < 2 * _GAP + 3:  # what parts two groups, read backwards
            word = next((w for w in _OPEN_WORDS if text.endswith(w, 0, tail)), "")
            step = len(word) or (1 if text[tail - 1] in _SEP + _PAUSE else 0)
            if not step:
                break
            tail -= step
        if tail == k or tail == 0 or text[tail - 1] not in _DIGIT:
            break
        k = tail
    return k


def _category(text: str, run: _Run, cue: str | None) -> str | None:
    """What the number ``run`` is, by its shape, or by ``cue`` (the cue word before it) when read in part."""
    d = run.digits
    n = len(d)
    if n == 18 and _id_like(d) or n == 15 and _date_like("19" + d[6:12]) or _id_read_out(run):
        return "id_card"
    mobile = n == 11 and d[:2] in _MOBILE_HEADS or n == 13 and d.startswith("861")
    if mobile and _read_in_groups(run):
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
    reach, in the same sentence, across one comma at most (身份证号码是，一一零…); with where it begins."""
    lo = max(0, start - CUE_REACH - 4)
    before = text[lo:start]
    cut = max(before.rfind(c) for c in _SENTENCE_END) + 1
    commas = [i for i, c in enumerate(before) if c in _CLAUSE_COMMA]
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
    return category


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
    (章小明 for 张小明); with a space, a dot or a pause between surname and given name (李 明,
    李，明); the given name alone too when it has two characters or more. A name of parts
    (阿依古丽·买买提, John Smith) is found whole with or without what parts it, and each part of
    two characters or more alone."""

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
        return out + self._split_finds(text, heard)

    def _split_finds(self, text: str, heard: tuple[str, ...]) -> list[Find]:
        """The name with a gap between surname and given name: heard alike as the whole name is,
        but across a pause only as written (离，明天 is two clauses, not 李明)."""
        if not self.surname or not self.given:
            return []
        out = []
        s, g = len(self.surname), len(self.given)
        want_surname, want_given = sounds(self.surname), sounds(self.given)
        for i in range(len(text) - s):
            if heard[i:i + s] != want_surname:
                continue
            j = _split_end(text, i + s)
            if j == i + s or heard[j:j + g] != want_given:
                continue  # no gap (the whole form finds it), or another given name
            paused = any(c in _CLAUSE_COMMA for c in text[i + s:j])
            if not paused or self._written_after_pause(text, i, j):
                out.append(Find("name", i, j + g, self.forms[0][1]))
        return out

    def _written_after_pause(self, text: str, i: int, j: int) -> bool:
        """The surname at ``i`` and the given name at ``j`` as written, the given name no start of
        a longer word (我姓李，明天再说: 明天)."""
        s, g = len(self.surname), len(self.given)
        whole = text[i:i + s] + text[j:j + g] == self.name
        return whole and (j + g == len(text) or not is_word(text[j:j + g + 1]))

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
                    return min(len(text) - k, self._open_split(text))
        return self._open_split(text)

    def _open_split(self, text: str) -> int:
        """The start of a tail of ``text`` that is this name's surname, a gap, and less than its
        given name (李 , 李，, 王 小 of 王 小红), as its whole form sounds; ``len(text)`` if none."""
        if not self.surname or not self.given:
            return len(text)
        s, g = len(self.surname), len(self.given)
        lo = max(0, len(text) - s - _NAME_SPLIT_REACH - g)
        heard = sounds(text[lo:])
        want_surname, want_given = sounds(self.surname), sounds(self.given)
        for i in range(len(heard) - s):
            j = _split_end(text, lo + i + s) - lo
            said = heard[j:]
            begun = said == want_given[:len(said)] != want_given  # nothing, or less than the given name
            if heard[i:i + s] == want_surname and j > i + s and begun:
                return lo + i
        return len(text)


def _split_end(text: str, at: int) -> int:
    """Where a gap between a surname and its given name that starts at ``at`` ends."""
    m = _NAME_SPLIT.match(text, at)
    return m.end() if m else at
