"""Same audio, same record, in every process? The zh-smoke clips through ``courtscribe transcribe``,
each in several fresh processes, as court IT would run it.

    .venv/bin/python bench/fresh.py [--runs 5] [--clips lamp.wav brexit.wav …] [--out NAME]

Per clip: CER of each run against the reference, whether every run wrote the same text, and the
languages of its lines (a mixed clip such as lamp.wav must keep its English and its Mandarin).
Corpus CER over the scored clips, scored per clip in fresh processes. Writes bench/out/fresh.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cer, save, scored_clips, table  # noqa: E402


def transcribe(path: Path) -> dict:
    """The CLI's JSON record of one clip, from a process of its own."""
    out = subprocess.run([sys.executable, "-m", "courtscribe", "transcribe", str(path), "--quiet"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "COURTSCRIBE_LOG_LEVEL": "WARNING"})
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clips", nargs="*", help="file names in zh-smoke (default: every scored clip)")
    ap.add_argument("--out", default="fresh")
    args = ap.parse_args()
    clips = [c for c in scored_clips() if not args.clips or c["audio"] in args.clips]
    rows, firsts = [], []
    for clip in clips:
        texts, languages = [], set()
        for k in range(args.runs):
            record = transcribe(clip["path"])
            texts.append("".join(u["text"] for u in record["utterances"]))
            languages |= {u["language"] for u in record["utterances"] if u["text"]}
            print(f"{clip['audio']} run {k + 1}: {texts[-1]}", file=sys.stderr, flush=True)
        scores = [cer([clip["text"]], [t]) for t in texts]
        firsts.append(texts[0])
        rows.append({"clip": clip["audio"], "runs": args.runs, "CER worst": max(scores), "CER best": min(scores),
                     "same text": len(set(texts)) == 1, "languages": ",".join(sorted(languages)),
                     "text": texts[0], "texts": sorted(set(texts))})
    corpus = cer([c["text"] for c in clips], firsts)
    print(table(rows, ["clip", "runs", "CER worst", "CER best", "same text", "languages", "text"]))
    print(f"\ncorpus CER over {len(clips)} clips (first run of each): {corpus:.3f}")
    print(f"wrote {save(args.out, {'rows': rows, 'corpus_cer': corpus})}")


if __name__ == "__main__":
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    main()
