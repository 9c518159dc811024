"""A protected participant's name in one line of text, as said or as the engine heard it."""

from __future__ import annotations

import re

from ..asr.hotwords import is_word, readings, sounds
from .find import Find

_NAME_PARTS = re.compile(r"[·・•‧.\-\s]+")  # what parts a name: 阿依古丽·买买提, John Smith
_NAME_GAP = r"[·・•‧.\-\s]*"
# between a surname and its given name: what parts a name, or a pause (李 明, 李，明)
_NAME_SPLIT = re.compile(rf"{_NAME_GAP}(?:[，,]{_NAME_GAP})?")
_NAME_SPLIT_REACH = 4  # characters of such a gap a live caption's end is searched back over
_COMPOUND_SURNAMES = tuple("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕 端木 "
                           "西门 南宫 独孤 呼延".split())
_CLAUSE_COMMA = "，,"  # a pause the punctuation model wrote between surname and given name


class Name:
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
        # the sounds each form is heard as: a surname in each of its readings (曾伟 as 增伟 and 层伟)
        self.heard_as = {form: self._sounded(form) for form, _ in self.forms}
        alone = [rf"\b{re.escape(p)}\b" for p in parts if len(p) >= 2] if len(parts) > 1 else []
        self.latin = re.compile("|".join([_NAME_GAP.join(map(re.escape, parts)), *alone]), re.IGNORECASE)

    def finds(self, text: str) -> list[Find]:
        if not self.cjk:
            return [Find("name", m.start(), m.end(), "某") for m in self.latin.finditer(text)]
        out = []
        heard = sounds(text)
        for form, replacement in self.forms:
            wants = self.heard_as[form]
            n = len(form)
            for i in range(len(text) - n + 1):
                written = text[i:i + n]
                if written == form or heard[i:i + n] in wants and self._sound_alike(form, written):
                    out.append(Find("name", i, i + n, replacement))
        return out + self._split_finds(text, heard)

    def _sounded(self, form: str) -> set[tuple[str, ...]]:
        said = sounds(form)
        if not self.surname or not form.startswith(self.surname):
            return {said}
        s = len(self.surname)
        heads: list[tuple[str, ...]] = [()]
        for ch in self.surname:
            heads = [(*h, r) for h in heads for r in readings(ch)]
        return {said, *((*h, *said[s:]) for h in heads)}

    def _sound_alike(self, form: str, written: str) -> bool:
        """Whether ``written``, heard as ``form`` sounds, is taken for it: not where the form is a
        word (建国), nor where what was written is a word of its own (陈述 for 陈舒, 原告 for 袁高)."""
        return form not in self.exact_only and not is_word(written)

    def _split_finds(self, text: str, heard: tuple[str, ...]) -> list[Find]:
        """The name with a gap between surname and given name: heard alike as the whole name is,
        but across a pause only as written (离，明天 is two clauses, not 李明)."""
        if not self.surname or not self.given:
            return []
        out = []
        s, g = len(self.surname), len(self.given)
        want_surname = {w[:s] for w in self.heard_as[self.forms[0][0]]}
        want_given = sounds(self.given)
        for i in range(len(text) - s):
            if heard[i:i + s] not in want_surname:
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
