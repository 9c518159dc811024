"""Where an utterance changes language.

A witness answers in English and the interpreter repeats it in Mandarin, a party quotes an English
contract clause mid-sentence: one stretch of speech in two languages. Whisper decodes a window in
one language and either drops the other half or translates it, so the record would lose what was
said in the other language, unflagged. An engine reads its language on short windows of the
utterance; :func:`language_runs` turns those readings into stretches to decode apart, cut at the
quietest moment between two confidently different windows.
"""
from __future__ import annotations

import numpy as np

SWITCH = 0.6  # a window is in a language when the engine gives it this probability or more
FRAME_MS = 20  # the cut lands on the quietest frame of this length
MIN_RUN_MS = 1000  # a stretch shorter than this joins its neighbour: too short to decode on its own


def language_runs(audio: np.ndarray, windows: list[dict[str, float]], language: str | None, *,
                  sample_rate: int, window_s: float, hop_s: float) -> list[tuple[int, int, str | None]]:
    """(start_ms, end_ms, language) stretches covering ``audio`` end to end. ``windows`` are the
    language probabilities of windows ``window_s`` long every ``hop_s``; ``language`` is the whole
    utterance's. One stretch in ``language`` unless two windows are confidently in different
    languages; a window nobody is sure of goes with its neighbours."""
    total = audio.size * 1000 // sample_rate
    sure = []
    for i, probs in enumerate(windows):
        best = max(probs, key=probs.__getitem__) if probs else None
        if best is not None and probs[best] >= SWITCH:
            sure.append((i, best))
    if len({lang for _, lang in sure}) < 2:
        return [(0, total, language)]
    runs: list[tuple[int, int, str | None]] = []
    start = 0
    for (i, a), (j, b) in zip(sure, sure[1:]):
        if a == b:
            continue
        lo = int((i * hop_s + window_s / 2) * 1000)
        hi = int((j * hop_s + window_s / 2) * 1000)
        cut = quietest(audio, lo, hi, sample_rate)
        runs.append((start, cut, a))
        start = cut
    runs.append((start, total, sure[-1][1]))
    return _merged(runs)


def _merged(runs: list[tuple[int, int, str | None]]) -> list[tuple[int, int, str | None]]:
    """Stretches under ``MIN_RUN_MS`` joined to the one before (the first to the one after), and
    neighbours in the same language joined."""
    out: list[tuple[int, int, str | None]] = []
    for a, b, lang in runs:
        if out and (b - a < MIN_RUN_MS or out[-1][2] == lang):
            out[-1] = (out[-1][0], b, out[-1][2])
        elif out and out[-1][1] - out[-1][0] < MIN_RUN_MS:
            out[-1] = (out[-1][0], b, lang)
        else:
            out.append((a, b, lang))
    return out


def quietest(audio: np.ndarray, lo_ms: int, hi_ms: int, sample_rate: int) -> int:
    """The start (ms) of the quietest ``FRAME_MS`` frame between ``lo_ms`` and ``hi_ms``."""
    step = sample_rate * FRAME_MS // 1000
    a = lo_ms * sample_rate // 1000
    frames = [audio[s:s + step] for s in range(a, min(hi_ms * sample_rate // 1000, audio.size - step) + 1, step)]
    if not frames:
        return lo_ms
    energy = [float(np.mean(np.square(f, dtype=np.float64))) for f in frames]
    return lo_ms + int(np.argmin(energy)) * FRAME_MS
