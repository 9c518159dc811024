"""Word times in FunASR's reply shape (``timestamp``, ``stamp_sents``), as FunASR's clients read them.

Paraformer gives one ``[start, end]`` per character, and FunASR's HTML5 page relies on it: it cuts
the shown text at ``。？，、?.,`` and spaces and indexes the times by one per character (one per
word for a word of Latin letters), so a shorter list makes the page throw and never finish. Our
engines' tokens are words (Whisper), texts are rewritten after decoding (numbers), and a stretch
without text is shown as the record writes it: so the times are laid out over the text as shown.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ..records.model import Utterance
from ..text import joined

PUNCT = "，。？！、；：,.?!;:"
_CUT = re.compile(r"[。？，、?., ]")  # where FunASR's page cuts a text: its marks become "," and it splits on ","
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(rf"([^{PUNCT}]*)([{PUNCT}]?)")  # a sentence's body, then its mark
_UNIT = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*|\S")  # what ``text_seg`` spaces apart

Span = tuple[int, int]


def line_times(text: str, u: Utterance) -> list[Span]:
    """A time for each character of ``text`` (the line as shown), in order and none twice, as
    Paraformer gives them: a character its token spells (in order) takes its share of the token's
    time; the others share the time between the characters around them (or the line's ends)."""
    spelt: list[tuple[str, Span]] = []
    for t in u.tokens:
        chars = [ch for ch in t.text if not ch.isspace()]
        step = (t.end_ms - t.start_ms) / max(len(chars), 1)
        spelt += [(ch, (t.start_ms + round(j * step), t.start_ms + round((j + 1) * step)))
                  for j, ch in enumerate(chars)]
    known: list[Span | None] = []
    k = 0
    for ch in text:
        if k < len(spelt) and spelt[k][0] == ch:
            known.append(spelt[k][1])
            k += 1
        else:
            known.append(None)
    out: list[Span] = []
    i = 0
    while i < len(known):
        if (span := known[i]) is not None:
            out.append(span)
            i += 1
            continue
        j = next((n for n in range(i, len(known)) if known[n] is not None), len(known))
        lo = out[-1][1] if out else u.start_ms
        nxt = known[j] if j < len(known) else None
        hi = max(lo, nxt[0] if nxt is not None else u.end_ms)
        step = (hi - lo) / (j - i)
        out += [(lo + round(n * step), lo + round((n + 1) * step)) for n in range(j - i)]
        i = j
    return _ordered(text, out)


def _ordered(text: str, spans: list[Span]) -> list[Span]:
    """Each span from where the one before it ended, a character's a millisecond long at least (a
    space or a mark, which the page does not count, none): engines' word times overlap a little,
    and a word clipped to its segment's end has no length."""
    out: list[Span] = []
    for ch, (start, end) in zip(text, spans):
        start = max(start, out[-1][1]) if out else start
        out.append((start, max(start + (0 if ch.isspace() or ch in PUNCT else 1), end)))
    return out


def shown_times(lines: Sequence[Utterance]) -> tuple[str, list[Span]]:
    """The lines' text as one reply shows it, as every reader of the record joins lines (``joined``:
    as written), and a time for each of its characters (a space the join adds takes the time of the
    character before it)."""
    pieces = [u.shown_text for u in lines]
    text = joined(pieces)
    source = [(ch, span) for piece, u in zip(pieces, lines) for ch, span in zip(piece, line_times(piece, u))]
    out: list[Span] = []
    k = 0
    for ch in text:
        while k < len(source) and source[k][0] != ch and source[k][0].isspace():
            k += 1
        if k < len(source) and source[k][0] == ch:
            out.append(source[k][1])
            k += 1
        else:
            out.append(out[-1] if out else (lines[0].start_ms, lines[0].start_ms) if lines else (0, 0))
    return text, out


def timestamp(text: str, times: Sequence[Span]) -> str:
    """FunASR's ``timestamp`` (a JSON string) for ``text``: one span for each unit its page counts,
    a character (two for one outside the BMP: JavaScript counts UTF-16 units) or a Latin word."""
    units: list[Span] = []
    at = 0
    for word in _CUT.split(text):
        if word and _LATIN_WORD.fullmatch(word):
            units.append(times[at])
        else:
            for j, ch in enumerate(word):
                start, end = times[at + j]
                mid = (start + end) // 2  # two UTF-16 units outside the BMP: the span in halves
                units += [(start, mid), (mid, end)] if ord(ch) > 0xFFFF else [(start, end)]
        at += len(word) + 1
    return json.dumps([list(span) for span in units])


def line_timestamp(u: Utterance) -> str:
    return timestamp(u.text, line_times(u.text, u))


def stamp_sents(text: str, times: Sequence[Span]) -> list[dict]:
    """Sentences as FunASR reports them, cut at ``text``'s punctuation: ``text_seg`` its units
    space-separated (a character, or a word of Latin letters and digits) and ``ts_list`` one span
    for each of them, as FunASR's protocol says, from ``times`` (one per character of ``text``)."""
    out = []
    for sentence in _SENTENCE.finditer(text):
        at = sentence.start(1)
        units = [(m.group(), (times[at + m.start()][0], times[at + m.end() - 1][1]))
                 for m in _UNIT.finditer(sentence.group(1))]
        if units:
            out.append({"text_seg": " ".join(u for u, _ in units), "punc": sentence.group(2),
                        "start": units[0][1][0], "end": units[-1][1][1], "ts_list": [list(span) for _, span in units]})
    return out


def line_sents(u: Utterance, text: str | None = None) -> list[dict]:
    """``stamp_sents`` of one line (``text``: as shown, when not its text)."""
    text = u.text if text is None else text
    return stamp_sents(text, line_times(text, u))
