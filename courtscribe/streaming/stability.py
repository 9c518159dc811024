"""A live partial's confirmed prefix: the words that later partials of the utterance keep.

Whisper previews re-read the whole utterance each time, and a preview may flip a reading back and
forth ("再去893条" / "再去8~913条", 富士康 / 故事康) while the speaker goes on. A screen that rewrites
what it showed is unreadable, so each partial says how much of it is settled (``stable``
characters): what the new preview agrees on with one of the two before it (local agreement, as in
whisper_streaming; marks need not match, a preview's "。" may become "，"). Once settled, a prefix is
never changed back: later previews are aligned after it and only their rest is new. The final,
the accurate pass, still decides the record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

MARKS = set("，。！？；：、,.!?;:")


def agreed(a: str, b: str) -> str:
    """What two readings agree on, from the start, in ``b``'s spelling. Marks do not have to match:
    words do; the agreement ends at a mark only where both have one."""
    i = j = n = 0  # n: where the agreement ends in b
    while True:
        ma, mb = i < len(a) and a[i] in MARKS, j < len(b) and b[j] in MARKS
        if ma and mb:
            i, j, n = i + 1, j + 1, j + 1
        elif ma or mb:
            i, j = i + ma, j + mb
        elif i < len(a) and j < len(b) and a[i] == b[j]:
            i, j, n = i + 1, j + 1, j + 1
        else:
            return b[:n]


def aligned_end(shown: str, text: str) -> int:
    """Where, in ``text``, what was already shown ends. A preview's closing mark is not a word said:
    "…解释的。" shown must not match a later "。" and swallow "一种感觉"."""
    shown = shown.rstrip("".join(MARKS) + " ")
    m = SequenceMatcher(None, shown, text, autojunk=False)
    blocks = [b for b in m.get_matching_blocks() if b.size]
    if not blocks:
        return 0
    a, b, size = blocks[-1]
    end = min(len(text), b + size + (len(shown) - a - size))
    while end < len(text) and (text[end] in MARKS or text[end].isspace()):
        end += 1  # the rest starts at a word, not at the mark after what was shown
    return end


def beyond(shown: str, text: str) -> str:
    """What ``text`` says after what was already shown of it (all of it when nothing was)."""
    return text[aligned_end(shown, text):]


def _wordish(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _settled(prefix: str, text: str) -> str:
    """``prefix`` without a number or Latin word that ``text`` carries on past it ("再去8" of
    "再去893条"): its digits may still be read otherwise."""
    n = len(prefix)
    if n < len(text) and _wordish(text[n]):
        while n and _wordish(prefix[n - 1]):
            n -= 1
    return prefix[:n]


@dataclass
class Stabilizer:
    """One utterance's partials: each preview in, the text to show and how much of it is settled."""

    confirmed: str = ""
    _seen: list[str] = field(default_factory=list)  # the two texts shown before, newest last

    def update(self, preview: str) -> tuple[str, int]:
        shown = self.confirmed + beyond(self.confirmed, preview)
        agree = max((agreed(old, shown) for old in self._seen), key=len, default="")
        agree = _settled(agree, shown)
        if len(agree) > len(self.confirmed):  # both start with what was confirmed: it only grows
            self.confirmed = agree
        self._seen = [*self._seen, shown][-2:]
        return shown, len(self.confirmed)
