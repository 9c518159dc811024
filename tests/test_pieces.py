"""Where a long utterance is cut while it is spoken (streaming/pieces.py)."""
from __future__ import annotations

import numpy as np

from courtscribe.audio import SAMPLE_RATE as SR
from courtscribe.streaming.pieces import HARD_MS, MIN_PIECE_MS, cut_point

SYLLABLE_MS, BETWEEN_MS = 220, 40


def speech(ms: int, *, pauses: dict[int, int] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Syllable-like bursts with short gaps between them and ``pauses`` {start ms: length ms} of room
    noise; also which samples are inside a syllable."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 0.002, ms * SR // 1000).astype(np.float32)  # the room
    voiced = np.zeros(audio.size, bool)
    at = 0
    while at < ms:
        if pauses and (length := next((n for s, n in pauses.items() if s <= at < s + n), 0)):
            at += length
            continue
        a, b = at * SR // 1000, min(ms, at + SYLLABLE_MS) * SR // 1000
        audio[a:b] += (rng.normal(0, 0.2, b - a) * np.hanning(b - a)).astype(np.float32)
        voiced[a + (b - a) // 10:b - (b - a) // 10] = True  # its loud middle
        at += SYLLABLE_MS + BETWEEN_MS
    return audio, voiced


def test_a_short_utterance_runs_on():
    audio, _ = speech(MIN_PIECE_MS - 200, pauses={2500: 300})
    assert cut_point(audio) is None


def test_a_long_one_is_cut_at_a_pause_as_soon_as_the_speaker_goes_on():
    audio, _ = speech(MIN_PIECE_MS + 1000, pauses={2000: 300, MIN_PIECE_MS + 300: 300})
    assert cut_point(audio[: (MIN_PIECE_MS + 500) * SR // 1000]) is None  # the pause may be the end
    at = cut_point(audio)
    assert at is not None and MIN_PIECE_MS + 300 <= at <= MIN_PIECE_MS + 600  # not the one too early


def test_a_pause_that_lasts_is_the_vads_to_end():
    audio, _ = speech(MIN_PIECE_MS + 1000, pauses={MIN_PIECE_MS + 700: 300, 1500: 400})
    assert cut_point(audio) is None


def test_without_a_pause_the_hard_limit_cuts_between_syllables():
    for seed in range(5):
        audio, voiced = speech(HARD_MS + 100, seed=seed)
        assert cut_point(audio[: (HARD_MS - 300) * SR // 1000]) is None  # no pause: it waits for the limit
        at = cut_point(audio)
        assert at is not None and MIN_PIECE_MS <= at < HARD_MS
        assert not voiced[at * SR // 1000]  # never inside a syllable


def test_the_same_audio_is_cut_the_same_however_it_arrives():
    audio, _ = speech(14_000, pauses={4200: 300, 9000: 250})
    cuts = []
    for chunk in (3200, 4800):  # a client's 200 ms or 300 ms frames
        start, found = 0, []
        for end in range(chunk, audio.size + chunk, chunk):
            at = cut_point(audio[start:min(end, audio.size)])
            if at is not None:
                start += at * SR // 1000
                found.append(start * 1000 // SR)
        cuts.append(found)
    assert cuts[0] and all(abs(a - b) <= 40 for a, b in zip(*cuts)) and len(cuts[0]) == len(cuts[1])


def test_the_cut_never_goes_before_what_the_pieces_partials_may_have_settled():
    audio, voiced = speech(HARD_MS + 200, pauses={4500: 300, 6100: 300})
    assert 6100 <= cut_point(audio) <= 6400  # the latest pause
    assert 6300 <= cut_point(audio, after_ms=6300) <= 6450  # in the pause, after what was read
    at = cut_point(audio, after_ms=6500)  # that pause was read past: the limit cuts later, between syllables
    assert at is not None and at >= 6500 and not voiced[at * SR // 1000]
    assert cut_point(audio, after_ms=HARD_MS + 150) is None  # nothing unread to cut in yet
