"""What every engine's text goes through before a screen or the record sees it, whichever engine
wrote it and whichever path (file, live stream, cluster) carried it:

1. sound-alike correction towards the hearing's names and the court vocabulary (asr/hotwords.py);
2. court-style numbers (asr/numbers.py);
3. for finals, completeness: loops dropped, and every stretch of the speech span without usable
   text becomes a flagged gap line (asr/coverage.py).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from .base import Hypothesis
from .coverage import complete
from .hotwords import PartialBiaser, corrector
from .itn import spoken
from .numbers import court_style, is_case_number
from ..text import looped


def warm() -> None:
    """Load what the first line would otherwise wait for (the word list, the number grammars: ~3 s)."""
    polish("原告于二零二五年三月一日", ("原告",))


@lru_cache(maxsize=64)
def _corrector(hotwords: tuple[str, ...]) -> PartialBiaser:
    return corrector(hotwords)


@lru_cache(maxsize=64)
def _cases(hotwords: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for w in hotwords if is_case_number(w))


def polish(text: str, hotwords: tuple[str, ...] = (), itn: bool = True) -> str:
    """Sound-alike correction, then court-style numbers (the hearing's case number among the
    hotwords), unless the client asked for numbers as spoken (``itn`` False)."""
    if not text:
        return text
    hotwords = tuple(hotwords)
    corrected = _corrector(hotwords)(text)
    return court_style(corrected, _cases(hotwords)) if itn else spoken(corrected)


def polish_partial(hyp: Hypothesis | None, hotwords: tuple[str, ...] = (), itn: bool = True) -> Hypothesis | None:
    """A partial as a screen may show it: polished, and never a loop (the final decodes properly)."""
    if hyp is None or not hyp.text or looped(hyp.text):
        return None
    return replace(hyp, text=polish(hyp.text, hotwords, itn))


def finish(hyps: list[Hypothesis], start_ms: int, end_ms: int, hotwords: tuple[str, ...] = (), *,
           reason: str | None = None, language: str | None = None, itn: bool = True) -> list[Hypothesis]:
    """The lines of one speech span: the engine's sentences polished, plus a flagged gap for every
    stretch of the span without usable text."""
    return complete(polish_all(hyps, hotwords, itn), start_ms, end_ms, reason=reason, language=language)


def polish_all(hyps: list[Hypothesis], hotwords: tuple[str, ...] = (), itn: bool = True) -> list[Hypothesis]:
    """Each Mandarin sentence polished; other languages as the engine wrote them."""
    return [replace(h, text=polish(h.text, hotwords, itn)) if h.text and h.language in (None, "zh") else h
            for h in hyps]
