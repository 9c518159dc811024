"""CER and RTF of the embedded pipeline on ../shared/data/zh-smoke, beside plain faster-whisper.

    .venv/bin/python bench/cer.py            # prints a table, writes bench/out/cer.json

Rows, all in one run on the same machine:
- baseline: plain faster-whisper base (language zh, a Simplified prompt, beam 5), OpenCC t2s —
  the 0.238 reference point;
- courtscribe with each VAD (fsmn-vad, silero): the full ``transcribe_file`` path.
RTF = processing seconds / audio seconds, models already loaded.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soundfile as sf  # noqa: E402
from common import cer, save, scored_clips, table  # noqa: E402

from courtscribe.text import to_simplified  # noqa: E402
from courtscribe.config import Settings  # noqa: E402
from courtscribe.components import load_components  # noqa: E402
from courtscribe.transcribe import transcribe_file  # noqa: E402


def run_baseline(clips, model_dir) -> dict:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)
    hyps, secs, audio_s = [], 0.0, 0.0
    for c in clips:
        x, sr = sf.read(c["path"], dtype="float32")
        audio_s += len(x) / sr
        t = time.perf_counter()
        segs, _ = model.transcribe(x, language="zh", initial_prompt="以下是普通话的句子。", beam_size=5)
        hyps.append(to_simplified("".join(s.text for s in segs)))
        secs += time.perf_counter() - t
    return {"system": "faster-whisper base (plain)", "hyps": hyps, "rtf": secs / audio_s}


def run_pipeline(clips, vad: str) -> dict:
    comp = load_components(Settings(vad=vad))
    hyps, secs, audio_s = [], 0.0, 0.0
    for c in clips:
        t = time.perf_counter()
        rec = transcribe_file(c["path"], comp, speakers=1)
        secs += time.perf_counter() - t
        audio_s += rec.source.duration_ms / 1000
        hyps.append("".join(u.text for u in rec.utterances))
    return {"system": f"courtscribe whisper-base + {vad}", "hyps": hyps, "rtf": secs / audio_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vad", nargs="+", default=["fsmn-vad", "silero"])
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    clips = scored_clips()
    refs = [c["text"] for c in clips]
    runs = []
    if not args.no_baseline:
        comp_dir = load_components(Settings(vad="silero")).registry.resolve("whisper-base")
        runs.append(run_baseline(clips, comp_dir))
    runs += [run_pipeline(clips, v) for v in args.vad]
    rows = []
    for r in runs:
        per_clip = {c["audio"]: round(cer([c["text"]], [h]), 3) for c, h in zip(clips, r["hyps"])}
        rows.append({"system": r["system"], "CER": cer(refs, r["hyps"]), "RTF": r["rtf"], **per_clip})
    print(table(rows, ["system", "CER", "RTF"] + [c["audio"] for c in clips]))
    for r in runs:
        print(f"\n{r['system']}:")
        for c, h in zip(clips, r["hyps"]):
            print(f"  {c['audio']:26} {h}")
    path = save("cer", {"clips": [c["audio"] for c in clips], "audio_s": None, "rows": rows,
                        "hypotheses": {r["system"]: r["hyps"] for r in runs}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
