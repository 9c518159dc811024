"""A rapid-turn Mandarin exchange of real voices, with its who-spoke-when reference; one voice
talked over (``interjections``); short answers to a questioner (``answers``).

    .venv/bin/python bench/mix.py      # writes bench/out/zh_mix.wav and zh_mix.rttm

Five different people from ``../shared/data/zh-smoke`` (CAM++ cosine below 0.35 between each pair;
news_foxconn is left out: it is news_kfc's speaker). Each clip is cut into its phrases at its
pauses (silero VAD, 150 ms silence), and the phrases are dealt out speaker after speaker, each
following the previous one after 0.2–0.3 s, as answers follow questions in court. The reference
turns are the phrases' speech as the VAD found it; every phrase is a sentence or part of one that
must reach the record.
"""
from __future__ import annotations

import random

import numpy as np
import soundfile as sf

from common import DATA, OUT
from courtscribe.asr.vad import SileroVad
from courtscribe.audio import decode

SR = 16_000
SPEAKERS = {"kfc": "news_kfc.wav", "welcome": "welcome.wav", "custody": "custody.wav", "justice": "justice.wav",
            "brexit": "brexit.wav"}


def voiced(x: np.ndarray, at_ms: int, name: str) -> list[tuple[int, int, str]]:
    """The reference turns of ``name`` saying ``x`` from ``at_ms``: its speech as the VAD finds it."""
    return [(at_ms + s, at_ms + e, name) for s, e in SileroVad(min_silence_ms=150).segments(x)]


def phrases(x: np.ndarray) -> list[np.ndarray]:
    spans = SileroVad(min_silence_ms=150).segments(x)
    merged: list[list[int]] = []
    for s, e in spans:  # pieces shorter than a second stay with the phrase before
        if merged and (e - s < 1000 or merged[-1][1] - merged[-1][0] < 1000):
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [x[s * 16:e * 16] for s, e in merged]


def build(seed: int = 7) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """The mixed audio and its reference turns (start_ms, end_ms, speaker)."""
    rng = random.Random(seed)
    queues = {name: phrases(decode(DATA / "zh-smoke" / f).channel(0)) for name, f in SPEAKERS.items()}
    out, turns, t = [np.zeros(SR // 2, np.float32)], [], SR // 2
    order = list(queues)
    while any(queues.values()):
        for name in order:
            if not queues[name]:
                continue
            piece = queues[name].pop(0)
            turns += voiced(piece, t * 1000 // SR, name)
            out.append(piece)
            t += piece.size
            gap = int(rng.uniform(0.2, 0.3) * SR)
            out.append(np.zeros(gap, np.float32))
            t += gap
    return np.concatenate(out), turns


def interjections() -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """market_25s's one speaker, talked over four times by other people (0.9–1.5 s each, their own
    level: 3–15 dB under hers), as a party cuts into a statement; never alone, so no voice of theirs
    is heard without hers. The reference: each voice's speech as the VAD finds it."""
    main = decode(DATA / "zh-smoke" / "market_25s.wav").channel(0)
    out, turns = main.copy(), voiced(main, 0, "market")
    for at_ms, name, (a, b) in ((6_200, "welcome", (850, 1_750)), (12_000, "custody", (950, 2_250)),
                                (16_300, "brexit", (500, 1_900)), (20_300, "justice", (300, 1_500))):
        piece = decode(DATA / "zh-smoke" / SPEAKERS[name]).channel(0)[a * 16:b * 16]
        fade = np.minimum(1, np.minimum(np.arange(piece.size), np.arange(piece.size)[::-1]) / 160)
        out[at_ms * 16:at_ms * 16 + piece.size] += piece * fade
        turns += voiced(piece, at_ms, name)
    return out / max(1.0, float(np.abs(out).max()) / 0.9), sorted(turns)


# (speaker's clip, its stretch in s, pause before it in s, gain in dB): 一问一答, the answers short
ANSWERS = (("justice", (0.3, 4.35), 0.5, 0), ("custody", (0.95, 2.25), 0.3, 0),
           ("justice", (5.2, 9.9), 0.3, 0), ("welcome", (0.85, 2.05), 0.3, 0),
           ("justice", (10.5, 12.95), 0.3, 0), ("custody", (3.55, 4.6), 0.3, 0),
           ("market_25s", (0.0, 3.95), 0.5, 0), ("custody", (0.95, 2.25), 0.3, -10),
           ("market_25s", (5.35, 8.6), 0.3, 0), ("brexit", (1.25, 2.1), 0.3, 0),
           ("market_25s", (8.8, 11.05), 0.3, 0), ("brexit", (3.55, 6.7), -0.4, 0))


def answers() -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """A judge and a party asking by turns, three people answering in 0.85–1.3 s (one 10 dB quiet),
    the last answer begun 0.4 s over the question's end: the answers a window's decode skips. The
    reference: each voice's speech as the VAD finds it."""
    laid, t = [], 0
    for name, (a, b), pause, gain in ANSWERS:
        f = SPEAKERS.get(name, f"{name}.wav")
        piece = decode(DATA / "zh-smoke" / f).channel(0)[int(a * SR):int(b * SR)]
        piece = piece * 10 ** (gain / 20)
        t = max(0, t + int(pause * SR))
        laid.append((t, name, piece))
        t += piece.size
    out = np.zeros(t + SR // 2, np.float32)
    turns = []
    for at, name, piece in laid:
        out[at:at + piece.size] += piece
        turns += voiced(piece, at * 1000 // SR, name)
    return out / max(1.0, float(np.abs(out).max()) / 0.9), sorted(turns)


def main() -> None:
    audio, turns = build()
    OUT.mkdir(parents=True, exist_ok=True)
    sf.write(OUT / "zh_mix.wav", audio, SR)
    (OUT / "zh_mix.rttm").write_text("".join(f"SPEAKER zh_mix 1 {a / 1000:.3f} {(b - a) / 1000:.3f} <NA> <NA> {who} "
                                             "<NA> <NA>\n" for a, b, who in turns))
    print(f"{audio.size / SR:.1f} s, {len(turns)} turns of {len(SPEAKERS)} speakers → {OUT / 'zh_mix.wav'}")


if __name__ == "__main__":
    main()
