"""Personal data in one line of text, found and masked the way published judgments are
de-identified (姓 + 某, numbers masked): 居民身份证号码, mobile and landline numbers, bank-card
numbers, licence plates, e-mail addresses, street addresses, and protected participants' names.

Each kind has its module (``numbers``, ``places``, ``names``); a ``Finder`` asks them all and keeps
one find where several overlap.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from . import numbers, places
from .find import LABELS, Find, apply
from .names import Name

__all__ = ["LABELS", "Find", "Finder", "apply"]


class Finder:
    """The finds of a hearing's texts: its protected names (with their sound-alikes) and any
    words the clerk chose to hide, besides the personal data every text is searched for."""

    def __init__(self, protected: Iterable[str] = (), hidden: Iterable[str] = ()):
        self.names = [Name(n.strip()) for n in protected if n and n.strip()]
        self.hidden = sorted({w for w in hidden if w}, key=len, reverse=True)

    def find(self, text: str, shown: frozenset[str] = frozenset()) -> list[Find]:
        """Every find in ``text``, in order, none overlapping (the longest wins where two do, the
        clerk's own where they tie); found words in ``shown`` (the clerk lifted them) stay."""
        found = [*numbers.finds(text), *places.finds(text), *_unspaced(text, self._names)]
        found = [f for f in found if text[f.start:f.end] not in shown] + _unspaced(text, self._hidden)
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
        return min([numbers.open_from(text), places.open_from(text),
                    *(name.open_from(text) for name in self.names),
                    *(_open_words(text, words) for words in self.hidden)])

    def _names(self, text: str) -> list[Find]:
        return [f for name in self.names for f in name.finds(text)]

    def _hidden(self, text: str) -> list[Find]:
        out = []
        for word in self.hidden:
            for m in re.finditer(re.escape(word), text):
                out.append(Find("clerk", m.start(), m.end(), "×××"))
        return out


_SPACED = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")  # 王 小 红: spaces between characters


def _unspaced(text: str, search: Callable[[str], list[Find]]) -> list[Find]:
    """What ``search`` finds in ``text``, and in ``text`` without the spaces an engine or a typist
    put between Chinese characters (王 小 红, 红 星 幼儿园), placed back in ``text``."""
    found = search(text)
    gaps = [range(m.start(), m.end()) for m in _SPACED.finditer(text)]
    if not gaps:
        return found
    dropped = {i for gap in gaps for i in gap}
    kept = [i for i in range(len(text)) if i not in dropped]
    squeezed = "".join(text[i] for i in kept)
    return found + [Find(f.category, kept[f.start], kept[f.end - 1] + 1, f.replacement)
                    for f in search(squeezed)]


def _open_words(text: str, words: str) -> int:
    """The start of a tail of ``text`` (two characters or more) that begins ``words``."""
    for k in range(min(len(words) - 1, len(text)), 1, -1):
        if text.endswith(words[:k]):
            return len(text) - k
    return len(text)

