"""Hotwords: the names and terms a hearing must get right, from every source, made safe for engines.

Sources, merged in this order: the session's own list, the hearing's list, the case's parties and
participants' names, the 案由, and a court-wide legal lexicon file. Engines receive plain words:
FunASR's SeACo-Paraformer treats a hotword string ending in ``.txt`` as a file to read and one
starting with ``http`` as a URL to download, so only word-shaped entries ever reach it.

Streaming Paraformer ignores hotwords, so partials go through :class:`PartialBiaser`: a stretch of
the partial that sounds the same as a hotword (same toneless pinyin, allowing the usual
Mandarin confusions zh/z, ch/c, sh/s, n/l, -ng/-n) is replaced by the hotword. Cheap enough for
every 600 ms chunk, and names show correctly while people speak.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

MAX_HOTWORDS = 200
_WORD = re.compile(r"^[\w\u3400-\u4dbf\u4e00-\u9fff·\-'.]{1,32}$")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_SEPARATED = re.compile(r"[\s,，、;；]+")


class HotwordError(ValueError):
    """A hotword list cannot be used as given; ``usable`` keeps the entries that were fine."""

    def __init__(self, message: str, usable: dict[str, float] | None = None):
        super().__init__(message)
        self.usable = usable or {}


def parse_weighted(value) -> dict[str, float]:
    """FunASR's hotword forms: a JSON object ``{"word": weight}`` (as a string or parsed), a JSON
    list, or words separated by spaces or commas (weight 1: FunASR's Python client joins a hotword
    file's words with commas). Weights must be numbers: FunASR's own C++ server
    silently drops a string weight such as ``"20"``; we say so instead."""
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {w: 1.0 for w in _SEPARATED.split(value) if w}
    if isinstance(value, list):
        value = {str(v): 1.0 for v in value}
    if not isinstance(value, dict):
        raise HotwordError("hotwords must be a JSON object {\"word\": weight}, a list, or space-separated words")
    out: dict[str, float] = {}
    bad = []
    for word, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            bad.append(f"{word!r}: {weight!r}")
        else:
            out[str(word)] = float(weight)
    if bad:
        raise HotwordError(f"hotword weights must be numbers, e.g. {{\"张三\": 20}}; not used: {', '.join(bad)} "
                           "(FunASR's own server drops these silently)", out)
    return out


def clean(words) -> tuple[str, ...]:
    """Word-shaped, de-duplicated, at most MAX_HOTWORDS, order kept. Anything else is dropped."""
    out: dict[str, None] = {}
    for w in words:
        w = str(w).strip()
        if not w or not _WORD.match(w) or w.lower().startswith("http") or w.lower().endswith(".txt"):
            continue
        out.setdefault(w)
        if len(out) >= MAX_HOTWORDS:
            break
    return tuple(out)


COURT_LEXICON = Path(__file__).parent / "lexicon" / "court.txt"


def _terms(path: Path) -> list[str]:
    terms = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            terms.append(line.split()[0])
    return terms


@lru_cache(maxsize=1)
def court_lexicon() -> tuple[str, ...]:
    """The court vocabulary shipped in the package (roles, procedure, 案由, 罪名, laws)."""
    return clean(_terms(COURT_LEXICON))


@lru_cache(maxsize=1)
def court_terms() -> frozenset[str]:
    """The shipped court vocabulary as a set, for the checks every decode makes."""
    return frozenset(court_lexicon())


def load_lexicon(path: Path | None) -> tuple[str, ...]:
    """A court's own legal lexicon (one term per line, an optional weight after it, ``#`` comments)
    first, then the shipped court vocabulary."""
    return merge(_terms(path) if path is not None else (), court_lexicon())


def merge(*sources) -> tuple[str, ...]:
    """Every source's words, earlier sources first (a session's own words win the size limit)."""
    return clean(w for src in sources for w in (src or ()))


# -- partials ---------------------------------------------------------------------------------
_FUZZY = [("zh", "z"), ("ch", "c"), ("sh", "s"), ("ang", "an"), ("eng", "en"), ("ing", "in")]


def _fold(syllable: str) -> str:
    s = syllable.replace("l", "n") if syllable.startswith("l") else syllable
    for a, b in _FUZZY:
        s = s.replace(a, b)
    return s


@lru_cache(maxsize=8192)
def _sound(ch: str) -> str:
    """Toneless, confusion-folded pinyin of one character (the character itself if not Chinese)."""
    if not _CJK.match(ch):
        return ch
    from pypinyin import Style, lazy_pinyin

    return _fold(lazy_pinyin(ch, style=Style.NORMAL)[0])


@lru_cache(maxsize=1024)
def readings(ch: str) -> frozenset[str]:
    """Every sound of one character, folded as ``sounds`` are (a surname is read its own way: 曾
    zeng, 解 xie, 单 shan, where the default reading is ceng, jie, dan)."""
    if not _CJK.match(ch):
        return frozenset({ch})
    from pypinyin import Style, pinyin

    return frozenset(_fold(r) for r in pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


@lru_cache(maxsize=4096)
def sounds(text: str) -> tuple[str, ...]:
    """The sound of each character of ``text`` (see ``_sound``): two texts that sound alike have equal sounds."""
    return tuple(_sound(c) for c in text)


@lru_cache(maxsize=1)
def _dictionary():
    """jieba's dictionary of Chinese words (with their frequencies), loaded once."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt


def word_bounds(text: str) -> set[int]:
    """Where the text's words begin and end (jieba's segmentation)."""
    at, out = 0, {0}
    for word in _dictionary().cut(text):
        at += len(word)
        out.add(at)
    return out


def is_word(text: str) -> bool:
    """A word of the language in its own right (意义, 调节), which no sound-alike rule may replace."""
    return bool(_dictionary().FREQ.get(text))


class PartialBiaser:
    """Replaces stretches of a text that sound like a hotword with the hotword itself.

    The hearing's own words (names, its hotwords) replace whatever sounds like them: 章三 → 张三.
    Words of the shared court vocabulary (``general``) are looser targets, since one lexicon serves
    every hearing: they replace only a stretch that is no word of its own (宿宋 → 诉讼, 修停 → 休庭,
    but 意义 stays 意义 and 调节 stays 调节).
    """

    def __init__(self, hotwords: tuple[str, ...], general: frozenset[str] = frozenset()):
        # Longest first, so 张三丰 wins over 张三. Only Chinese words of 2+ characters: a single
        # character matches far too often. Indexed by (length, first sound): a final is checked
        # against a few candidates per character, not the whole vocabulary.
        self.index: dict[tuple[int, str], list[tuple[str, tuple[str, ...], bool]]] = {}
        for w in hotwords:
            if len(w) >= 2 and all(_CJK.match(c) for c in w):
                sound = tuple(_sound(c) for c in w)
                self.index.setdefault((len(w), sound[0]), []).append((w, sound, w in general))
        self.lengths = sorted({n for n, _ in self.index}, reverse=True)

    @property
    def words(self) -> list[str]:
        return [w for entries in self.index.values() for w, _, _ in entries]

    def __call__(self, text: str) -> str:
        if not self.index or not text:
            return text
        chars = list(text)
        sounds = [_sound(c) for c in chars]
        fixed = [False] * len(chars)
        for n in self.lengths:
            for i in range(len(chars) - n + 1):
                for word, sound, general in self.index.get((n, sounds[i]), ()):
                    if any(fixed[i:i + n]) or tuple(sounds[i:i + n]) != sound:
                        continue
                    heard = "".join(chars[i:i + n])
                    if general and heard != word and is_word(heard):
                        continue
                    chars[i:i + n] = list(word)
                    fixed[i:i + n] = [True] * n
                    break
        return "".join(chars)


def corrector(hotwords: tuple[str, ...]) -> PartialBiaser:
    """The sound-alike pass for a stream's or a file's words: the shipped court vocabulary among them
    is matched the careful way (see :class:`PartialBiaser`)."""
    return PartialBiaser(hotwords, court_terms())
