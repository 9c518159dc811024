"""Where a person can be found, in one line of text: licence plates, e-mail addresses (spelled
out too: 艾特, 点), and street addresses with their building and room."""

from __future__ import annotations

import re

from ..casenumbers import PROVINCES
from .find import Find

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
_HOUSE = rf"[甲乙丙丁]?[{_NUMERAL}]+\s*(?:号|组|栋|幢|座)[{_NUMERAL}号院楼栋幢座单元层室户之\-—]*"  # 甲88号
_ROAD = re.compile(rf"(?:{_PLACE}){_ROAD_PARTS}{_HOUSE}")
_ROAD_END = re.compile(rf"(?:{_PLACE}){_ROAD_PARTS}[{_NUMERAL}]*\s*$")  # its number may follow
_BLOCK = rf"(?:[{_NUMERAL}]+|[A-Za-z])\s*(?:号楼|栋|幢|座)"  # a building of an estate: 3号楼, 五栋, A栋
_ROOM_DIGITS = rf"[0-9０-９零〇幺一二三四五六七八九]{{3,4}}(?![{_NUMERAL}])"  # 302, 三零二: a room read out
_ROOM = "|".join([
    rf"[{_NUMERAL}单元层号\-—]{{0,8}}?[{_NUMERAL}]+\s*(?:室|号房)",  # its room, named so: 2单元301室
    rf"(?:[{_NUMERAL}]+\s*单元\s*)?{_ROOM_DIGITS}",  # or read as digits alone: 2单元301, 302
    rf"[{_NUMERAL}]+\s*单元",  # or its entrance: 2单元
])
# each pattern that opens with a run of characters starts only where its run starts (the lookbehind):
# tried at every character of a long run, it read the rest of the run each time (a 20,000-digit line
# took a minute to make public)
_BUILDING = re.compile(rf"(?<![{_NUMERAL}A-Za-z]){_BLOCK}(?:{_ROOM})")
# a house number with its floor or room (100号6楼, 88号501室, 100号楼6层) said near where someone lives
# (住在, 住址, 户籍地, 被告张三，住…): an address though its road was misheard past knowing (世纪大道 →
# 势级大到); a company's 注册地址 or an accident's 发生地址 is no one's home
_HOME = re.compile(rf"(?<![{_NUMERAL}])[{_NUMERAL}]+\s*号楼?[\s，,、]*[{_NUMERAL}]+\s*"
                   r"(?:楼|层|室|栋|幢|单元)")
_LIVES = re.compile(r"住在|家住|住址|住所地?|户籍(?:所在)?地?|居住地?|住于"
                    r"|(?:^|(?<=[，,：:\s]))住(?![院手口嘴])")
_LIVES_REACH = 24  # characters from the cue to the house number (a pause or two between)
_LINK = "地是为在于：: "  # between the cue and the address
_DIVISION = "省市区县"  # an address's part the public may read: its city and district
_ROAD_STOP = set("省市区县镇乡村旗州在住于是到从址为，。、；：,. ")
_ROAD_REACH = 6  # characters of a road's name before its 路/街
ADDRESS_TAIL = 16  # characters after a house number still taken as its building and room
_CLAUSE_END = re.compile(r"[，。；！？,;!?\s]")
_MORE_ADDRESS = re.compile(r"[0-9０-９零一二三四五六七八九十室楼栋单元层]")
_AT = r"(?:@|艾特|\s+at\s+)"
_DOT = r"(?:\.|点|\s+dot\s+)"
# an address's name part, from its first character: its digits may be read out (一二三四艾特qq点com)
_LOCAL = r"(?<![A-Za-z0-9._%+\-零〇一二三四五六七八九幺])[A-Za-z0-9._%+\-零〇一二三四五六七八九幺]+"
_EMAIL = re.compile(rf"{_LOCAL}\s*{_AT}\s*[A-Za-z0-9-]+(?:\s*{_DOT}\s*[A-Za-z0-9-]+)*\s*{_DOT}\s*"
                    r"[A-Za-z]{2,6}(?![A-Za-z])", re.IGNORECASE)
_EMAIL_OPEN = re.compile(rf"{_LOCAL}\s*{_AT}[\sA-Za-z0-9.点-]*$", re.IGNORECASE)  # being spelled
_PLATE_SIGN = r"(?:[A-HJ-NP-Za-hj-np-z0-9]|[零〇一二三四五六七八九幺])"  # one place of a plate's number
_PLATE_GAP = r"(?:\s?[，,·•.]?\s?)"  # between its places: a space, a dot (京AD·12345), a pause read out
_PLATE = re.compile(
    rf"[{PROVINCES}][\s，,]*[A-HJ-NP-Za-hj-np-z]{_PLATE_GAP}{_PLATE_SIGN}"
    rf"(?:(?:{_PLATE_GAP}{_PLATE_SIGN}){{4,5}}"  # five or six places, or four and a kind (沪A·1234学)
    rf"|(?:{_PLATE_GAP}{_PLATE_SIGN}){{3}}[学警挂领港澳使试超])"
    r"(?![A-Za-z0-9])"
)



def open_from(text: str) -> int:
    """Where the end of ``text`` may still become a plate, an e-mail address or an address once more
    is said (a province before a plate's letter, an address being spelled, a road before its number,
    an address whose building and room may follow); ``len(text)`` when nothing is open."""
    at = len(text) - 1 if text and text[-1] in PROVINCES else len(text)  # 京…: a plate may follow
    if mail := _EMAIL_OPEN.search(text):
        at = min(at, mail.start())
    if road := _ROAD_END.search(text):
        at = min(at, _road_start(text, road.start()))
    for f in finds(text):
        if f.category == "address" and f.end == len(text):
            at = min(at, f.start)  # its building and room may follow
    return at


def finds(text: str) -> list[Find]:
    """Every plate, e-mail address and street address in ``text``."""
    out = [Find("plate", m.start(), m.end(), _plate_mask(m.group(0))) for m in _PLATE.finditer(text)]
    out += [Find("email", m.start(), m.end(), "×××@×××") for m in _EMAIL.finditer(text)]
    for m in [*_ROAD.finditer(text), *_BUILDING.finditer(text)]:
        start = _road_start(text, m.start()) if _ROAD.match(text, m.start()) else m.start()
        out.append(Find("address", start, _clause_end(text, m.end()), "××"))
    out += [Find("address", start, _clause_end(text, m.end()), "××") for m in _HOME.finditer(text)
            if (start := _home_start(text, m.start())) is not None]
    return out


def _home_start(text: str, house: int) -> int | None:
    """Where the private part of a home address whose house number is at ``house`` begins: after
    its city and district, within ``_LIVES_REACH`` after a word that someone lives there, in the
    same sentence (None: no such word)."""
    lo = max(0, house - _LIVES_REACH)
    lo = max([lo] + [i + 1 for i in range(lo, house) if text[i] in "。；！？;!?"])
    cue = None
    for cue in _LIVES.finditer(text, lo, house):
        pass
    if cue is None:
        return None
    at = cue.end()
    while at < house and text[at] in _LINK:
        at += 1
    return max([at] + [i + 1 for i in range(at, house) if text[i] in _DIVISION])


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

