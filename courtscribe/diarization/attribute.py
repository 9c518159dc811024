"""Every word in the mouth of who said it: the engine's sentences cut at speaker changes.

A VAD span, and so an engine's sentence, can hold a question and its answer ("是不是？" "是。").
:func:`split` puts each word on the side of the change its time falls on (a word that straddles it
goes to the speaker holding most of it) and cuts the sentence's text there, punctuation staying with
the word before it. A piece touched by overlapped speech carries the ``overlap`` flag; a piece said in
a turn whose voice nobody can be sure of (turns.py ``strays``) carries ``speaker_unsure``.
:func:`unheard` finds the turns the engine gave no word at all, or too few for their length,
which the caller decodes again on their own (then, if still nothing, they become flagged gaps:
nothing said vanishes), and :func:`reheard` puts what they gave in place of the first words.
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from ..asr.base import Hypothesis
from ..asr.coverage import EMPTY, ENGINE_ERROR, gap, usable
from ..records.model import OVERLAP, SPEAKER_UNSURE, UNRECOGNIZED, Token
from ..text import join_pieces
from .turns import Turn, overlaps

MIN_OVERLAP_MS = 200  # overlapped speech shorter than this is two turns' edges touching, not talking over
MS_PER_CHAR = 400  # no one says a character slower; a word's time past that is a stretched timestamp
MIN_UNHEARD_MS = 300  # a turn without words shorter than this is a breath or a click (coverage.MIN_SPAN_MS)
MIN_ANSWER_MS = 150  # … unless another voice speaks on both sides of it: "是", "对" between two turns
ECHO_MS = 500  # a turn decoded again whose words the neighbour's piece also holds this near: one of them is wrong
MIN_THIN_MS = 500  # a turn whose words leave this much of it unsaid, and ...
THIN_SHARE = 0.5  # ... fill less than this share of it, was mostly not heard: decoded again alone
SHORT_TURN_MS = 1_000  # a turn decoded alone, shorter, beside a voice nobody is sure of: words unsure


def speaker_at(start_ms: int, end_ms: int, turns: list[Turn]) -> str | None:
    """The speaker holding most of [start, end) (in overlapped speech, a tie goes to the turn that
    began last: its first words are said over the end of the turn before); else the nearest
    turn's; None without turns."""
    held: dict[str, tuple[int, int]] = {}
    for t in turns:
        if (o := min(t.end_ms, end_ms) - max(t.start_ms, start_ms)) > 0:
            ms, began = held.get(t.speaker, (0, t.start_ms))
            held[t.speaker] = (ms + o, max(began, t.start_ms))
    if held:
        return max(held, key=held.__getitem__)
    if not turns:
        return None
    mid = (start_ms + end_ms) / 2
    return min(turns, key=lambda t: max(t.start_ms - mid, mid - t.end_ms)).speaker


def split(hyps: list[Hypothesis], turns: list[Turn]) -> list[Hypothesis]:
    """``hyps`` cut at speaker changes, each piece with its ``speaker``; unchanged without turns."""
    if not turns:
        return hyps
    crossed = [(a, b) for a, b in overlaps(turns) if b - a >= MIN_OVERLAP_MS]
    out = []
    for h in hyps:
        for piece in _pieces(h, turns):
            if any(min(b, piece.end_ms) - max(a, piece.start_ms) > 0 for a, b in crossed):
                piece = _flag(piece, OVERLAP)
            # a voice nobody can be sure of, heard while it was said: its own or another's (the
            # engine's word times may put that voice's 没有。 in the question's line)
            if any(not t.sure and _meets(t, piece) for t in turns):
                piece = _flag(piece, SPEAKER_UNSURE)
            out.append(piece)
    return out


def _doubted(word: Token, turns: list[Turn]) -> bool:
    """Whether most of a word's time lies in turns nobody can be sure of."""
    unsure = sum(max(0, min(t.end_ms, word.end_ms) - max(t.start_ms, word.start_ms)) for t in turns if not t.sure)
    return 2 * unsure > word.end_ms - word.start_ms


def _flag(h: Hypothesis, flag: str) -> Hypothesis:
    return replace(h, flags=tuple(dict.fromkeys((*h.flags, flag))))


def _meets(t: Turn, h: Hypothesis) -> bool:
    return min(t.end_ms, h.end_ms) > max(t.start_ms, h.start_ms)


def _pieces(h: Hypothesis, turns: list[Turn]) -> list[Hypothesis]:
    if not h.tokens:
        return [replace(h, speaker=speaker_at(h.start_ms, h.end_ms, turns))]
    words = [t.model_copy(update={"end_ms": _said(t)[1]}) for t in h.tokens]  # stretched timestamps undone
    end = min(h.end_ms, words[-1].end_ms)
    who = [speaker_at(t.start_ms, t.end_ms, turns) for t in words]
    # a stretch of a speaker's turn that is not sure (a short unit little like them) is cut apart too
    key = [(w, _doubted(t, turns)) for w, t in zip(who, words)]
    bounds = [0] + [i for i in range(1, len(key)) if key[i] != key[i - 1]] + [len(key)]
    if len(bounds) == 2:
        return [replace(h, speaker=who[0], tokens=words, end_ms=max(h.start_ms, end))]
    texts = cut_text(h.text, words, bounds[1:-1])
    out = []
    for (a, b), text in zip(zip(bounds, bounds[1:]), texts):
        toks = words[a:b]
        probs = [t.prob for t in toks if t.prob is not None]
        out.append(replace(h, text=text, tokens=toks, speaker=who[a],
                           start_ms=h.start_ms if a == 0 else toks[0].start_ms,
                           end_ms=end if b == len(who) else toks[-1].end_ms,
                           confidence=round(float(np.mean(probs)), 4) if probs else h.confidence))
    return out


def cut_across(h: Hypothesis, spans: list[tuple[int, int]], min_ms: int = 300) -> list[Hypothesis]:
    """``h`` cut at each pause between its words in which someone else spoke (``spans``: the other
    seats' speech) for ``min_ms`` or more: one seat's 3500元。 and 愿意。 decoded in one window are
    two answers with a question between them, and printed as one line they came before it."""
    said = [_said_among(t, spans) for t in h.tokens]
    cuts = [i for i in range(1, len(said)) if _covered(spans, said[i - 1][1], said[i][0]) >= min_ms]
    return [piece for _, piece in cut_at(h, cuts, said)] if cuts else [h]


def cut_at(h: Hypothesis, cuts: list[int],
           said: list[tuple[int, int]] | None = None) -> list[tuple[int, Hypothesis]]:
    """``h`` cut before tokens ``cuts``: each piece (with the index of its first token) timed by its
    words (``said``: when each was said, else its timestamps), the first and last by the line's."""
    tokens = list(h.tokens)
    said = said or [(t.start_ms, t.end_ms) for t in tokens]
    bounds = [0, *cuts, len(tokens)]
    return [(a, replace(h, text=text, tokens=tokens[a:b], start_ms=h.start_ms if not a else said[a][0],
                        end_ms=h.end_ms if b == len(tokens) else said[b - 1][1]))
            for (a, b), text in zip(zip(bounds, bounds[1:]), cut_text(h.text, tokens, cuts)) if text]


def _said_among(t: Token, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """When a word was said (``_said``), where its timestamp is stretched over others' speech
    (``spans``) at its start rather than its end: then at the end (没有 stretched back over the
    question it answers)."""
    longest = MS_PER_CHAR * max(1, len("".join(t.text.split())))
    if t.end_ms - t.start_ms <= longest:
        return t.start_ms, t.end_ms
    early = _covered(spans, t.start_ms, t.end_ms - longest)
    late = _covered(spans, t.start_ms + longest, t.end_ms)
    return (t.end_ms - longest, t.end_ms) if early > late else _said(t)


def _covered(spans: list[tuple[int, int]], a: int, b: int) -> int:
    """How much of [a, b) the spans cover (they may overlap one another: the most any one covers)."""
    return max((min(e, b) - max(s, a) for s, e in spans), default=0)


def cut_text(text: str, tokens: list[Token], cuts: list[int]) -> list[str]:
    """``text`` cut before tokens ``cuts`` (indices), found by walking the text along the tokens'
    characters (the text may add punctuation and spaces the tokens lack). Where the text does not
    follow the tokens (an engine that rewrote it), each piece is its tokens' own text."""
    pos, found = 0, []
    folded = text.casefold()
    for i, tok in enumerate(tokens):
        for ch in "".join(tok.text.split()).casefold():
            at = folded.find(ch, pos)
            if at < 0 or (at - pos > 3 and i):  # skipping more than punctuation: not the same text
                return [join_pieces([t.text for t in tokens[a:b]]).strip()
                        for a, b in zip([0, *cuts], [*cuts, len(tokens)])]
            pos = at + 1
        found.append(pos)
    ends = [_after_punctuation(text, found[c - 1]) for c in cuts]
    return [text[a:b].strip() for a, b in zip([0, *ends], [*ends, len(text)])]


def _after_punctuation(text: str, pos: int) -> int:
    while pos < len(text) and not text[pos].isalnum():
        pos += 1
    return pos


def by_turn(pieces: list[Hypothesis], turns: list[Turn]) -> list[list[Hypothesis]]:
    """Time-ordered pieces (sentences and gap lines) grouped into runs of one speaker each; a piece
    not yet given a speaker (a gap line) takes who holds its time. Words nobody can be sure of
    (``speaker_unsure``) are a line of their own: the answer a voice alike said after a question is
    not printed as the questioner's line, only flagged. One group without turns."""
    if not turns:
        return [pieces]
    groups: list[list[Hypothesis]] = []
    for h in pieces:
        h = h if h.speaker else replace(h, speaker=speaker_at(h.start_ms, h.end_ms, turns))
        if groups and _voice(groups[-1][-1]) == _voice(h):
            groups[-1].append(h)
        else:
            groups.append([h])
    return groups


def reaches(groups: list[list[Hypothesis]], turns: list[Turn], start_ms: int,
            end_ms: int) -> list[tuple[int, int, bool]]:
    """Each group's line time (``by_turn``'s groups of one utterance, [start, end)): from its first
    piece (the first group: the utterance's start) to the next group's first piece (the last group:
    the utterance's end), so no stretch of the utterance is outside a line; and whether it holds a
    turn nobody can be sure of that got no word (a short answer the engine did not hear, or a
    cough: the line is flagged, and its replay holds it)."""
    starts = [start_ms] + [min(h.start_ms for h in g) for g in groups[1:]]
    out = []
    for g, a, b in zip(groups, starts, [*starts[1:], end_ms]):
        b = max(b, *(h.end_ms for h in g))  # overlapped speech: a line ends after its own words
        words = [(h.start_ms, h.end_ms) for h in g if usable(h)]
        unheard = any(not t.sure and _alone(max(a, t.start_ms), min(b, t.end_ms), words) >= MIN_UNHEARD_MS
                      for t in turns)
        out.append((a, b, unheard))
    return out


def _alone(a: int, b: int, spans: list[tuple[int, int]]) -> int:
    """How much of [a, b) none of ``spans`` covers."""
    cut = sorted((max(a, x), min(b, y)) for x, y in spans if min(b, y) > max(a, x))
    free, at = 0, a
    for x, y in cut:
        free += max(0, x - at)
        at = max(at, y)
    return free + max(0, b - at)


def _voice(h: Hypothesis) -> tuple[str | None, bool]:
    return h.speaker, SPEAKER_UNSURE in h.flags


def unheard(turns: list[Turn], hyps: list[Hypothesis], start_ms: int, end_ms: int) -> list[Turn]:
    """Turns inside [start, end) of at least ``MIN_UNHEARD_MS`` to which no word of ``hyps`` went,
    and thin ones: turns whose words leave ``MIN_THIN_MS`` and most of them unsaid (a short answer
    the window's decode skipped, the neighbour's next word or an invented one put in its place)."""
    out = []
    for i, t in enumerate(turns):
        a, b = max(t.start_ms, start_ms), min(t.end_ms, end_ms)
        if b - a < (MIN_ANSWER_MS if _between_others(turns, i) else MIN_UNHEARD_MS):
            continue
        said = [_said(w) for h in _first_words(hyps, t, a, b) for w in h.tokens or [_span(h)]]
        if not said or _alone(a, b, said) >= max(MIN_THIN_MS, THIN_SHARE * (b - a)):
            out.append(Turn(a, b, t.speaker, t.sure))
    return out


def thin(turns: list[Turn], hyps: list[Hypothesis], start_ms: int, end_ms: int) -> list[Turn]:
    """The turns ``unheard`` finds that have words, too few for their length."""
    found = unheard(turns, hyps, start_ms, end_ms)
    return [t for t in found if _first_words(hyps, t, t.start_ms, t.end_ms)]


def reheard(said: list[Hypothesis], turn: Turn,
            again: list[Hypothesis]) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """``said`` (the pieces the turn was ``unheard`` among) and ``again`` (the turn decoded on its
    own, ``turn_pieces``) as they go into the record. A turn that had words keeps them unless its
    own decode holds more letters; then that takes their place, and a first word it did not hear
    again stays, flagged ``speaker_unsure`` (the neighbour's, put in the wrong turn, or invented:
    the clerk replays it). Nothing is dropped that was not heard again, word for word. Where it
    holds no more, the words stay and the turn, most of it still unsaid, is a flagged gap to
    replay beside them (a voice nobody is sure of: none, as ``turn_pieces`` gives none for a
    noise, unless its decode failed)."""
    first = _first_words(said, turn, turn.start_ms, turn.end_ms)
    if not first:
        return said, again
    heard = " ".join(h.text for h in again if usable(h))
    if len(_letters(heard)) <= len(_letters("".join(h.text for h in first))):
        gaps = [h for h in again if UNRECOGNIZED in h.flags]  # why it heard nothing, if it failed
        unsaid = replace(gap(turn.start_ms, turn.end_ms, EMPTY), speaker=turn.speaker)
        return said, gaps or ([unsaid] if turn.sure else [])
    mine = {id(h) for h in first}
    out = []
    for h in said:
        if id(h) not in mine:
            out.append(h)
        elif not _heard_again(h.text, heard):
            out.append(_flag(h, SPEAKER_UNSURE))
    return out, again


def _first_words(hyps: list[Hypothesis], t: Turn, a: int, b: int) -> list[Hypothesis]:
    """The pieces of ``hyps`` in ``t``'s speaker's mouth with a word said in [a, b)."""
    return [h for h in hyps if h.speaker == t.speaker and usable(h) and _words_in(h, a, b)]


def _heard_again(text: str, heard: str) -> bool:
    """``text``'s words, in order and together, are among ``heard``'s (a Mandarin character counts
    as a word): 我想 in 我想问, never 不是 in 是的 nor "No" in "on Monday"."""
    words, pool = _words(text), _words(heard)
    n = len(words)
    return bool(words) and any(pool[i:i + n] == words for i in range(len(pool) - n + 1))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+|[^\W_]", text.casefold())


def turn_pieces(turn: Turn, pieces: list[Hypothesis], turns: list[Turn]) -> list[Hypothesis]:
    """A turn's own decode (``pieces``, finished) in its speaker's mouth. A stray voice's turn, a
    cough as often as a word, keeps only the words said in it, flagged ``speaker_unsure``: never
    a gap line to replay for a noise, never a word lost either. A speaker's turn under
    ``SHORT_TURN_MS`` right beside a voice nobody is sure of (``turns``) keeps its gap lines, but
    its words are flagged: decoded alone, it holds that voice's tail as often as its own words
    (an interjection's last syllables read "What?")."""
    if turn.sure:
        doubted = _beside_unsure(turn, turns)
        return [_flag(replace(h, speaker=turn.speaker), SPEAKER_UNSURE) if doubted and usable(h)
                else replace(h, speaker=turn.speaker) for h in pieces]
    return [_flag(replace(h, speaker=turn.speaker), SPEAKER_UNSURE) for h in pieces
            if usable(h) or ENGINE_ERROR in h.flags]


def _beside_unsure(t: Turn, turns: list[Turn]) -> bool:
    """``t`` is short and touches a turn nobody is sure of (within ``MIN_OVERLAP_MS``)."""
    return t.end_ms - t.start_ms < SHORT_TURN_MS and any(
        not u.sure and u.start_ms <= t.end_ms + MIN_OVERLAP_MS
        and u.end_ms >= t.start_ms - MIN_OVERLAP_MS for u in turns)


def _between_others(turns: list[Turn], i: int) -> bool:
    """Turn ``i`` has another speaker's turn right before it and right after it."""
    t = turns[i]
    before = [u for u in turns[:i] if u.end_ms <= t.start_ms + MIN_OVERLAP_MS]
    after = [u for u in turns[i + 1:] if u.start_ms >= t.end_ms - MIN_OVERLAP_MS]
    return bool(before and after) and before[-1].speaker != t.speaker and after[0].speaker != t.speaker


def echoes(said: list[Hypothesis], redone: list[Hypothesis]) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """``said`` and ``redone`` (turns decoded again, each under its turn's speaker), both pieces of
    an echo flagged ``speaker_unsure``: a redone turn's words that another speaker's piece also
    holds within ``ECHO_MS`` of it (the window's timestamps put them on the wrong side of the
    change, so they were heard twice; which mouth is right is for the clerk's ear)."""
    said, redone = list(said), list(redone)
    for j, r in enumerate(redone):
        words = _letters(r.text)
        for i, h in enumerate(said):
            near = "".join(_letters(t.text) for t in h.tokens
                           if t.end_ms > r.start_ms - ECHO_MS and t.start_ms < r.end_ms + ECHO_MS)
            if not words or h.speaker == r.speaker or words not in near:  # the whole of it, heard there too
                continue
            said[i] = _flag(said[i], SPEAKER_UNSURE)
            redone[j] = _flag(redone[j], SPEAKER_UNSURE)
    return said, redone


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _words_in(h: Hypothesis, a: int, b: int) -> bool:
    return any(min(b, e) > max(a, s) for s, e in map(_said, h.tokens or [_span(h)]))


def _said(t: Token) -> tuple[int, int]:
    """When a word was said: its time, but no longer than its characters take. Whisper stretches the
    last word of a window over speech it skipped (another speaker's sentence); that stretch is not
    the word, and must neither carry it to the other speaker nor count as their turn heard."""
    longest = MS_PER_CHAR * max(1, len("".join(t.text.split())))
    return t.start_ms, max(t.start_ms + 1, min(t.end_ms, t.start_ms + longest))


def _span(h: Hypothesis) -> Token:
    return Token(text=h.text, start_ms=h.start_ms, end_ms=h.end_ms)
