"""Nothing said may vanish: every stretch the VAD called speech ends up in the record.

Engines do not always give text for what they hear: an empty decode, a loop, a hallucination filter
that threw a segment away, a 30 s window whose middle sentence was skipped, an engine error. The
record must then show a flagged gap the clerk can replay and type (``〔00:17–00:28 未能识别，请核听
录音〕``), never a hole. :func:`complete` is the one place that decides it, for files and live
streams alike: what the engine returned for a speech span, plus a flagged hypothesis for each stretch
of it that no usable hypothesis covers.
"""
from __future__ import annotations

from dataclasses import replace

from ..records.model import UNRECOGNIZED  # the flag every gap line carries; the second flag says why
from .base import Hypothesis
from ..text import looped

EMPTY, LOOP, ENGINE_ERROR = "empty", "loop", "engine_error"
# an engine's guard threw a stretch's text away: why
ECHO = "echo"  # its conditioning written back
NO_SPEECH = "no_speech"  # words over what it heard as no speech
FAILED = "failed"  # a decode its own test calls failed
DISCARDED = "discarded"  # marks a stretch whose text the engine threw away (``discarded``)
MIN_GAP_MS = 1500  # an uncovered stretch inside a span with text: shorter ones are timestamp slack
MIN_SPAN_MS = 300  # a whole span without text: shorter is a click or breath, not speech
# discarded words the engine could not read: speech however short (一声"是")
HEARD_AS_WORDS = (FAILED,)
MIN_WORDS_MS = 100  # ... flagged where this much of them no other words' time (and slack) covers
SLACK_MS = 300  # word and segment times are approximate by about this much
MAX_WORD_MS = 1000  # no word or character takes longer to say: a longer one's start is an engine's guess


def gap(start_ms: int, end_ms: int, reason: str, language: str | None = None) -> Hypothesis:
    """A flagged line standing for speech nobody has text for yet."""
    return Hypothesis(text="", start_ms=start_ms, end_ms=max(start_ms, end_ms), language=language,
                      confidence=0.0, flags=(UNRECOGNIZED, reason))


def discarded(start_ms: int, end_ms: int, reason: str) -> Hypothesis:
    """What an engine answers for a stretch whose text its guard threw away (an echo of its prompt,
    an invention over noise): no line of its own, but the stretch is flagged unless other words
    cover it, however short its hole (``complete``)."""
    return Hypothesis(text="", start_ms=start_ms, end_ms=max(start_ms, end_ms), confidence=0.0,
                      flags=(DISCARDED, reason))


def usable(h: Hypothesis) -> bool:
    return bool(h.text.strip()) and not looped(h.text) and UNRECOGNIZED not in h.flags


def _heard(h: Hypothesis) -> list[tuple[int, int]]:
    """Where a hypothesis has words: its tokens' times when the engine aligned them (a Whisper segment
    can start at 0 s although its first words were skipped), else its own span. A word stretched
    over seconds covers only its last ``MAX_WORD_MS``: Whisper stretches the first word it writes
    back over speech it did not write (the English half of a mixed utterance it decoded in Mandarin)."""
    return [(max(t.start_ms, t.end_ms - MAX_WORD_MS), t.end_ms) for t in h.tokens] or [(h.start_ms, h.end_ms)]


def complete(hyps: list[Hypothesis], start_ms: int, end_ms: int, *, reason: str | None = None,
             language: str | None = None) -> list[Hypothesis]:
    """``hyps`` (the engine's answer for the speech span ``start_ms``–``end_ms``) without loops, plus
    a flagged gap for each stretch of the span that no usable hypothesis covers. ``reason`` says
    why a span has nothing at all (e.g. the engine failed); by default it is read off the hypotheses.
    A stretch the engine ``discarded`` is flagged when ``MIN_SPAN_MS`` of it is not covered; one
    whose words it could not read (``HEARD_AS_WORDS``), when ``MIN_WORDS_MS`` of it is not."""
    # what the engine threw away, and what it looped on: flagged where no other words cover it
    marks = [h for h in hyps if DISCARDED in h.flags] + [discarded(h.start_ms, h.end_ms, LOOP) for h in hyps
                                                         if h.text.strip() and looped(h.text)]
    kept = [h for h in hyps if usable(h)]
    flagged = [h for h in hyps if UNRECOGNIZED in h.flags]
    why = LOOP if any(looped(h.text) for h in hyps) else EMPTY
    if not kept:
        if end_ms - start_ms < MIN_SPAN_MS and not flagged and reason is None and not _words(marks):
            return []
        if why == EMPTY and marks:  # only what the engine threw away: why (words it heard first)
            why = next((m.flags[1] for m in marks if _words([m])), marks[0].flags[1])
        return flagged or [gap(start_ms, end_ms, reason or why, language)]
    covered = sorted((lo, hi) for h in kept + flagged for a, b in _heard(h)
                     if (lo := max(start_ms, a - SLACK_MS)) < (hi := min(end_ms, b + SLACK_MS)))
    holes = [(s, e) for s, e in _uncovered(start_ms, end_ms, covered) if e - s >= MIN_GAP_MS]
    lang = language or kept[0].language
    gaps = [gap(s, e, _why(s, e, marks, why), lang) for s, e in holes]
    taken = covered + holes
    for m in marks:  # what the engine threw away, where no other words and no gap cover it yet
        lo, hi = max(start_ms, m.start_ms), min(end_ms, m.end_ms)
        least = MIN_WORDS_MS if _words([m]) else MIN_SPAN_MS
        for s, e in _uncovered(lo, hi, taken):
            if e - s >= least or (_words([m]) and (s, e) == (lo, hi)):  # words nothing else covers
                gaps.append(gap(s, e, m.flags[1], lang))
                taken.append((s, e))
    return sorted(kept + flagged + gaps, key=lambda h: h.start_ms)


def filled(lines: list[Hypothesis], heard: list[Hypothesis]) -> list[Hypothesis]:
    """``lines`` (a span's, from :func:`complete`) with each gap cut to what ``heard`` (stretches of
    the span decoded again on their own, whose lines go beside these) leaves without a line: a gap
    is where nobody has text yet, not where a turn's own decode found the words (or flagged that
    turn itself: one gap line for one stretch)."""
    lines_of = [h for h in heard if usable(h) or UNRECOGNIZED in h.flags]
    covered = sorted((a - SLACK_MS, b + SLACK_MS) for h in lines_of for a, b in _heard(h))
    out = []
    for h in lines:
        rest = _uncovered(h.start_ms, h.end_ms, covered)
        whole = rest == [(h.start_ms, h.end_ms)]
        if UNRECOGNIZED not in h.flags or h.end_ms <= h.start_ms or whole:
            out.append(h)
        else:
            out += [replace(h, start_ms=s, end_ms=e) for s, e in rest if e - s >= MIN_SPAN_MS]
    return out


def _words(marks: list[Hypothesis]) -> bool:
    """Did the engine throw away words it heard but could not read (not noise it wrote over)?"""
    return any(m.flags[1] in HEARD_AS_WORDS for m in marks)


def _why(start_ms: int, end_ms: int, marks: list[Hypothesis], otherwise: str) -> str:
    """A hole's reason: that of a stretch the engine threw away there, if any."""
    return next((m.flags[1] for m in marks if min(end_ms, m.end_ms) > max(start_ms, m.start_ms)), otherwise)


def _uncovered(start_ms: int, end_ms: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The stretches of ``start_ms``–``end_ms`` outside every interval of ``covered``."""
    out, pos = [], start_ms
    for s, e in sorted(covered):
        if s > pos:
            out.append((pos, min(s, end_ms)))
        pos = max(pos, e)
        if pos >= end_ms:
            break
    if pos < end_ms:
        out.append((pos, end_ms))
    return [(s, e) for s, e in out if e > s]
