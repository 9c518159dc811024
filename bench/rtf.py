"""Wall-clock cost of `courtscribe transcribe` as a user runs it, start-up included, per VAD.

    .venv/bin/python bench/rtf.py [--clip market_25s.wav] [--runs 2]

Prints a table and writes bench/out/rtf.json. RTF = wall seconds / audio seconds (target ≤ 0.5
on 2 cores for market_25s.wav). A second column gives the processing RTF with models loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, save, table  # noqa: E402

from courtscribe.config import Settings  # noqa: E402
from courtscribe.components import load_components  # noqa: E402
from courtscribe.transcribe import transcribe_file  # noqa: E402


def cli_wall(clip: Path, vad: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "courtscribe", "transcribe", str(clip), "-f", "json", "-o", str(out),
                        "--quiet"], check=True, env={**os.environ, "COURTSCRIBE_VAD": vad}, capture_output=True)
        return time.perf_counter() - t, json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clip", default="market_25s.wav")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    clip = DATA / "zh-smoke" / args.clip
    rows = []
    for vad in ("silero", "fsmn-vad"):
        walls, record = [], None
        for _ in range(args.runs):
            wall, record = cli_wall(clip, vad)
            walls.append(wall)
        audio_s = record["source"]["duration_ms"] / 1000
        comp = load_components(Settings(vad=vad))
        transcribe_file(clip, comp)  # warm
        t = time.perf_counter()
        transcribe_file(clip, comp)
        proc = time.perf_counter() - t
        rows.append({"vad": vad, "clip": args.clip, "audio_s": audio_s, "wall_s": min(walls),
                     "RTF_wall": min(walls) / audio_s, "RTF_loaded": proc / audio_s,
                     "utterances": len(record["utterances"])})
    print(table(rows, ["vad", "clip", "audio_s", "wall_s", "RTF_wall", "RTF_loaded", "utterances"]))
    print(f"wrote {save('rtf', {'rows': rows})}")


if __name__ == "__main__":
    main()
