"""Are first words clipped? Speech at the very start of a recording, and right after a long silence.

    .venv/bin/python bench/onsets.py [--silence-s 20] [--out onsets]

Each zh-smoke clip three ways: as recorded; cut so that its speech starts at 0 s (at its first 10 ms
frame within 20 dB of the clip's loud frames); and that cut after ``--silence-s`` of a quiet room
(pink room tone at -60 dBFS). Per VAD (silero, files' default; fsmn-vad, the live streams' VAD,
here in its file form): where its first span starts against the speech onset (negative: before it,
the VAD's padding), and through ``transcribe_file`` (front end as configured): how many of the
reference's first three characters the record lacks, and the clip's CER. Writes bench/out/onsets.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, cer, save, table  # noqa: E402

from courtscribe.audio import SAMPLE_RATE as SR  # noqa: E402
from courtscribe.audio import decode  # noqa: E402
from courtscribe.components import load_components  # noqa: E402
from courtscribe.config import Settings  # noqa: E402
from courtscribe.text import for_scoring  # noqa: E402
from courtscribe.transcribe import transcribe_file  # noqa: E402

HEAD = 3  # reference characters that make "the first words"


def onset_ms(x: np.ndarray) -> int:
    frames = x[: x.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    db = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + 1e-9)
    return int(np.argmax(db > np.percentile(db, 90) - 20)) * 10


def room_tone(seconds: float, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(int(seconds * SR)))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1))  # pink
    tone = np.fft.irfft(spec, int(seconds * SR))
    return (tone / np.std(tone) * 10 ** (-60 / 20)).astype(np.float32)


def variants(x: np.ndarray, silence_s: float) -> dict[str, tuple[np.ndarray, int]]:
    """Audio and where its speech starts (ms)."""
    on = onset_ms(x)
    cut = x[on * SR // 1000:]
    quiet = room_tone(silence_s, np.random.default_rng(7))
    return {"as recorded": (x, on), "speech at 0 s": (cut, 0),
            f"after {silence_s:g} s quiet": (np.concatenate([quiet, cut]), int(silence_s * 1000))}


def head_lost(ref: str, hyp: str) -> int:
    """How many of the reference's first ``HEAD`` characters the hypothesis lacks (deleted or changed)."""
    ref, hyp = for_scoring(ref), for_scoring(hyp)
    if not hyp:
        return min(HEAD, len(ref))
    out = jiwer.process_characters(ref, hyp)
    return sum(min(HEAD, c.ref_end_idx) - c.ref_start_idx for c in out.alignments[0]
               if c.type != "equal" and c.ref_start_idx < HEAD and c.type != "insert")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--silence-s", type=float, default=20.0)
    ap.add_argument("--out", default="onsets")
    args = ap.parse_args()
    clips = [line for line in (DATA / "zh-smoke" / "manifest.jsonl").read_text().splitlines() if line]
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="courtscribe-onsets-"))
    for vad in ("silero", "fsmn-vad"):
        comp = load_components(Settings(vad=vad))
        for clip in map(json.loads, clips):
            x = decode(DATA / "zh-smoke" / clip["audio"]).channel(0)
            for kind, (audio, on) in variants(x, args.silence_s).items():
                spans = comp.vad.segments(audio)
                row = {"clip": clip["audio"], "audio": kind, "vad": vad,
                       "VAD start − onset ms": spans[0][0] - on if spans else None}
                if clip["scored"]:
                    path = tmp / f"{Path(clip['audio']).stem}.flac"
                    sf.write(path, audio, SR, subtype="PCM_16")
                    text = "".join(u.text for u in transcribe_file(path, comp).utterances)
                    row |= {"first chars lost": head_lost(clip["text"], text),
                            "CER": cer([clip["text"]], [text]), "text": text}
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
    cols = ["clip", "audio", "vad", "VAD start − onset ms", "first chars lost", "CER"]
    print(table(rows, cols))
    summary = []
    for vad in ("silero", "fsmn-vad"):
        for kind in dict.fromkeys(r["audio"] for r in rows):
            sel = [r for r in rows if r["vad"] == vad and r["audio"] == kind and "CER" in r]
            summary.append({"vad": vad, "audio": kind, "clips": len(sel),
                            "first chars lost": sum(r["first chars lost"] for r in sel),
                            "of": HEAD * len(sel), "mean CER": float(np.mean([r["CER"] for r in sel]))})
    print()
    print(table(summary, ["vad", "audio", "clips", "first chars lost", "of", "mean CER"]))
    print(f"\nwrote {save(args.out, {'rows': rows, 'summary': summary, 'silence_s': args.silence_s})}")


if __name__ == "__main__":
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    main()
