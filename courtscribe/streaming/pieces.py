"""Where a long utterance is cut while it is still being spoken, so the screens never freeze.

The VAD ends an utterance only at a long pause (800 ms). A speaker who goes on for 20 s would
otherwise get one final 20 s after they began, every preview of it re-reading the whole utterance
(slower each time), and the caption overlay would wait on it. So once an utterance has run
``MIN_PIECE_MS`` it is finalized at its next short pause (≥ ``PAUSE_MS`` quieter than its speech,
with speech going on after it: a pause that lasts is the VAD's to end), as soon as the speaker goes
on; and by ``HARD_MS`` at its quietest moment, between syllables, never inside one (a pause is the
better cut: Whisper reads a piece that begins mid-phrase less well). The next piece begins there;
the record marks it as going on (records/model.py ``CONTINUES``) and prints the pieces as one turn.

A cut never goes before ``after_ms``, as far as the piece's partials may have settled words
(stability.py): settled words are then always inside their own piece, and the captions and the
append-only clients, which never take words back, never get a word twice.
"""
from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE as SR

FRAME_MS = 20
MIN_PIECE_MS = 4000  # from here a pause ends the piece: no line shorter, one to read and replay
HARD_MS = 9000  # by here the quietest moment does (Whisper's live window stays small, finals quick)
PAUSE_MS = 200
RESUMED_MS = 100  # speech after a pause or dip before it counts: the next piece starts with words
DIP_MS = 100
QUIET = 0.3  # a frame this far from the piece's quiet floor (10th percentile) to its speech (90th)


def levels(audio: np.ndarray) -> np.ndarray:
    """Energy (dB) of each ``FRAME_MS`` frame."""
    frame = SR * FRAME_MS // 1000
    n = audio.size // frame
    frames = audio[: n * frame].reshape(n, frame).astype(np.float64)
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-10)


def cut_point(audio: np.ndarray, *, after_ms: int = 0, hard_ms: int = HARD_MS) -> int | None:
    """Where (ms into ``audio``, a piece so far) to end the piece now, or None to let it run."""
    if audio.size * 1000 < MIN_PIECE_MS * SR:
        return None
    db = levels(audio)
    floor, speech = np.percentile(db, [10, 90])
    quiet = db < floor + QUIET * (speech - floor)
    first = -(-max(MIN_PIECE_MS, after_ms) // FRAME_MS)
    resumed = RESUMED_MS // FRAME_MS
    last = db.size - resumed
    if first >= last:
        return None
    if (pause := _pause(quiet, first, resumed)) is not None:
        return pause * FRAME_MS
    if audio.size * 1000 < hard_ms * SR:
        return None
    return _quietest(db, first, last) * FRAME_MS


def _pause(quiet: np.ndarray, first: int, resumed: int) -> int | None:
    """The latest run of quiet frames at least ``PAUSE_MS`` long with ``resumed`` frames of speech
    after it, that reaches past ``first``: where to cut in it (its middle, or ``first`` if later)."""
    need = PAUSE_MS // FRAME_MS
    end = quiet.size
    while end > first:
        loud = end
        while end > first and not quiet[end - 1]:
            end -= 1
        start = end
        while start > 0 and quiet[start - 1]:
            start -= 1
        cut = max((start + end) // 2, first)
        if end - start >= need and loud - end >= resumed and cut < end:
            return cut
        end = start
    return None


def _quietest(db: np.ndarray, first: int, last: int) -> int:
    """The middle frame of the quietest ``DIP_MS`` stretch whose middle lies in [first, last)."""
    width = DIP_MS // FRAME_MS
    energy = np.convolve(10 ** (db / 10), np.ones(width), mode="valid")  # sums over width frames
    lo = max(0, first - width // 2)
    hi = max(lo + 1, last - width // 2)
    return lo + int(np.argmin(energy[lo:hi])) + width // 2
