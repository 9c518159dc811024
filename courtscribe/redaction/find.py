"""One find of personal data in a text, and the text with its finds masked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

LABELS = {"id_card": "身份证号码", "mobile": "手机号码", "landline": "电话号码", "bank_card": "银行卡号",
          "number": "号码", "plate": "车牌号", "email": "电子邮箱", "address": "住址", "name": "姓名",
          "clerk": "书记员标注"}


@dataclass(frozen=True)
class Find:
    """A stretch of a text that a public audience must not see, and what it shows instead."""

    category: str
    start: int
    end: int
    replacement: str


def apply(text: str, finds: Iterable[Find]) -> str:
    """``text`` with each find replaced (finds in order, not overlapping, as ``Finder.find`` gives)."""
    out, pos = [], 0
    for f in finds:
        out += [text[pos:f.start], f.replacement]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
