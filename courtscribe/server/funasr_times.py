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
    """A time for each character of ``text`` (the line as shown): its token's where the tokens
    spell it in order, else its share of the line's span."""
    spelt = [(ch, (t.start_ms, t.end_ms)) for t in u.tokens for ch in t.text if not ch.isspace()]
    out: list[Span] = []
    k = 0
    for i, ch in enumerate(text):
        if k < len(spelt) and spelt[k][0] == ch:
            out.append(spelt[k][1])
            k += 1
            continue
        share = (u.end_ms - u.start_ms) / max(len(text), 1)
        out.append((u.start_ms + round(i * share), u.start_ms + round((i + 1) * share)))
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
                units += [times[at + j]] * (2 if ord(ch) > 0xFFFF else 1)
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
