"""What Whisper's segments become before they are hypotheses: sentences a clerk can correct and
replay, and the tests that tell a failed or invented decode from speech (the engine's guards)."""
from __future__ import annotations

import re
from difflib import Match, SequenceMatcher
from itertools import accumulate

import numpy as np

from .base import Hypothesis
from .coverage import ECHO, EMPTY, FAILED, LOOP, NO_SPEECH
from ..audio import SAMPLE_RATE
from ..text import join_pieces, tidy, unlooped

# Hallucination guards. Whisper fills near-silence with invented text ("作词作曲", repeats of the
# previous sentence, "试试试…" loops). Such segments carry a high no-speech probability together
# with a low log-probability and words it is unsure of, a repetition-loop compression ratio, or a
# copy of the previous text. The no-speech probability is one estimate for a whole window, read
# before its first word: a voice talked over, a far talker or a noisy room raise it over clear words.
NO_SPEECH_PROB = 0.5
LOW_LOGPROB = -0.3
SURE_WORDS = 0.5  # median word probability at which the words outweigh the no-speech estimate…
CERTAIN_NO_SPEECH = 0.9  # … unless Whisper is all but certain nobody spoke
FAILED_LOGPROB = -1.0  # Whisper's own test of a failed decode: below it after its fallback, no reading
MAX_COMPRESSION = 2.4
PROMPT_ECHO = 0.75  # share of a segment's characters copied, in runs, from the prompt: an echo
ECHO_CHARS = 6  # when one run holds this many Chinese characters of the prompt itself


_SENTENCE_END = ("。", "？", "！", "?", "!", "；")


def split_sentences(hyp: Hypothesis, min_chars: int = 6, soft_max_ms: int = 8000) -> list[Hypothesis]:
    """One line per sentence: Whisper may return a 25 s window as one segment, which is no use to a
    clerk who must correct or replay a line. Cuts after sentence-final punctuation, and at a comma
    once a line runs past ``soft_max_ms`` (spoken Mandarin strings clauses with commas); times
    come from the word timestamps."""
    if not hyp.tokens:
        return [hyp]
    pieces, current = [], []
    for tok in hyp.tokens:
        current.append(tok)
        end = tok.text.rstrip()
        long_clause = end.endswith(("，", ",")) and tok.end_ms - current[0].start_ms >= soft_max_ms
        if (end.endswith(_SENTENCE_END) or long_clause) and len("".join(t.text for t in current).strip()) >= min_chars:
            pieces.append(current)
            current = []
    if current:
        if pieces and len("".join(t.text for t in current).strip()) < min_chars:
            pieces[-1] += current
        else:
            pieces.append(current)
    if len(pieces) == 1:
        return [hyp]
    return [Hypothesis(text=join_pieces([t.text for t in toks]), start_ms=toks[0].start_ms, end_ms=toks[-1].end_ms,
                       tokens=toks, language=hyp.language, is_final=hyp.is_final,
                       confidence=round(float(np.mean([t.prob for t in toks if t.prob is not None] or [0.0])), 4))
            for toks in pieces]


def before_loop(segments, lang: str, kw: dict, audio: np.ndarray, offset_ms: int) -> list[Hypothesis]:
    """A preview whose text fell into a loop, as far as it went before it (none where that is an
    echo of its conditioning, ``kw``'s prompt and hotwords)."""
    text = unlooped(tidy(join_pieces([seg.text for seg in segments])))
    if _echo(text, kw["initial_prompt"], kw["hotwords"], doubted=True):  # a preview: as discard_reason's
        return []
    end = offset_ms + audio.size * 1000 // SAMPLE_RATE
    return [Hypothesis(text=text, start_ms=offset_ms, end_ms=end, language=lang, is_final=False)] if text else []


def decode_failed(seg) -> bool:
    """Whisper's own test for a failed decode, which triggers its temperature fallback."""
    return seg.compression_ratio > MAX_COMPRESSION or seg.avg_logprob < FAILED_LOGPROB


def looped_text(text: str, min_period: int = 4) -> bool:
    """Whisper stuck repeating itself ("ABCDEABCDEABC…"): the text's tail repeats a stretch of at
    least ``min_period`` characters at least once over. A genuine repeat ("我不知道我不知道") also
    matches; it only costs a re-decode with the full window, which reads it the same."""
    t = "".join(ch for ch in text if ch.isalnum())
    n = len(t)
    for p in range(min_period, n // 2 + 1):
        k = 0
        while k < n - p and t[n - 1 - k] == t[n - 1 - k - p]:
            k += 1
        if k >= p:
            return True
    return False


def discard_reason(seg, prompt: str | None, hotwords: str | None, previous_text: str, *,
                   preview: bool = False) -> str | None:
    """Why a segment Whisper decoded is not to be written down (asr/coverage.py's reasons: no text,
    an echo of its conditioning, a loop, words over what it heard as no speech, a decode that failed
    even with Whisper's temperature fallback); None: it is speech.
    A ``preview`` (a partial: the final decides) that recites the hearing's words is not shown
    however sure Whisper is: on the first half second of a line it writes them more often than not."""
    if not _letters(seg.text):
        return EMPTY
    doubted = preview or seg.avg_logprob < LOW_LOGPROB or seg.no_speech_prob > NO_SPEECH_PROB
    if _echo(seg.text, prompt, hotwords, doubted=doubted):
        return ECHO
    if seg.compression_ratio > MAX_COMPRESSION:
        return LOOP
    if seg.avg_logprob < FAILED_LOGPROB:
        return FAILED
    if seg.no_speech_prob > NO_SPEECH_PROB:
        unsure = not _sure_words(seg) or seg.no_speech_prob > CERTAIN_NO_SPEECH
        if seg.text.strip() == previous_text or (seg.avg_logprob < LOW_LOGPROB and unsure):
            return NO_SPEECH
    return None


def _sure_words(seg) -> bool:
    """Whisper is sure of most of the segment's words (they are aligned: finals, not previews)."""
    probs = [w.probability for w in (getattr(seg, "words", None) or []) if w.word.strip()]
    return bool(probs) and float(np.median(probs)) >= SURE_WORDS


def echoes_prompt(text: str, prompt: str | None, hotwords: str | None = None) -> bool:
    """Whisper repeating its conditioning prompt, a piece of it word for word or a run of it with a
    word changed ("那是普通话的句子" for "以下是普通话的句子"), on audio too short or unclear for
    anything else: not speech. A preview that settled on it would keep it on the screen until the
    final. Runs copied from it are an echo only when one holds ``ECHO_CHARS`` Chinese characters of
    the prompt and together they make most of the text: a witness answering "这是普通话" or
    "我不会说English" is speech. ``hotwords`` come before the prompt in Whisper's context and are
    echoed with it ("张建国李明 2026号以下是普通话的句子…" in a noisy room); a run must still reach
    into the prompt itself: a party saying the names is speech."""
    core = _letters(text)
    if not core:
        return True
    if not prompt:
        return False
    lead = _letters(hotwords or "")
    source = lead + _letters(prompt)
    runs = _copied(core, source)
    # the most Chinese characters one run copies from the prompt itself
    echoed = max((_chinese(source[max(m.b, len(lead)):m.b + m.size]) for m in runs), default=0)
    if len(runs) == 1 and runs[0].size == len(core):  # word for word: a phrase, not a word ("以下是")
        return echoed >= 4 or (runs[0].b >= len(lead) and len(re.findall(r"[A-Za-z]+", text)) >= 2)
    return echoed >= ECHO_CHARS and sum(m.size for m in runs) >= PROMPT_ECHO * len(core)


def _echo(text: str, prompt: str | None, hotwords: str | None, *, doubted: bool) -> bool:
    """Whisper's conditioning written back: its prompt (with the hotwords before it), or, on a
    decode it doubts or a preview, the hearing's words recited alone."""
    return echoes_prompt(text, prompt, hotwords) or (doubted and recites(text, hotwords, prompt))


def recites(text: str, hotwords: str | None, prompt: str | None = None) -> bool:
    """``text`` is the hearing's words (``hotwords``: names, case number, 案由…) back to back in the
    order Whisper was given them, and little else: what it writes when it hears nothing it can read
    (a wrong sample rate, noise), "张三李四王法官赵书记员 2026", at times running on into the
    ``prompt`` that follows them ("…吴桂兰 2026号以下"). A clerk calling the roll clearly says the
    same names; the caller asks this only of a decode Whisper itself doubts."""
    core = _letters(text)
    words = [w for w in (_letters(w) for w in (hotwords or "").split()) if w]
    if not core or len(words) < 2:
        return False
    lead = "".join(words)
    # in the order given: a roll called otherwise is speech
    runs = _copied(core, lead + _letters(prompt or ""), again=False)
    if sum(m.size for m in runs) < PROMPT_ECHO * len(core):
        return False
    starts = accumulate(map(len, words), initial=0)  # where each word begins in ``lead``
    whole = sum(any(m.b <= at and at + len(w) <= m.b + m.size for m in runs) for at, w in zip(starts, words))
    return whole >= 2


def _copied(core: str, source: str, *, again: bool = True) -> list[Match]:
    """The runs (two characters or more) of ``core`` copied from ``source``, in ``core``'s order;
    ``again``: a run copied again after the first ("…其中可能夹杂English words,其中可能夹杂English
    words") counts too: Whisper writes its prompt back more than once over reversed or garbled speech."""
    runs: list[Match] = []
    pending = [(0, len(core))]
    while pending and (again or not runs):
        lo, hi = pending.pop()
        found = [m for m in SequenceMatcher(None, core[lo:hi], source, autojunk=False).get_matching_blocks()
                 if m.size > 1]
        runs += [Match(lo + m.a, m.b, m.size) for m in found]
        edges = [lo] + [x for m in found for x in (lo + m.a, lo + m.a + m.size)] + [hi]
        pending += [(a, b) for a, b in zip(edges[::2], edges[1::2]) if found and b - a > 1]
    return sorted(runs)


def _chinese(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def _letters(text: str) -> str:
    return re.sub(r"[\W_]+", "", tidy(text)).lower()
