"""Whisper's encoder window: the fixed 30 s of the file pass against the fitted windows of live decodes.

    .venv/bin/python bench/window.py         # prints a table, writes bench/out/window.json

Each scored zh-smoke clip is decoded whole, as one live utterance would be, by the engine itself:
- ``file``: the 30 s window every Whisper decode normally pays for (``DecodeOptions(live=False)``);
- ``live``: the window fitted to the clip (8, 15 or 30 s: ``DecodeOptions(live=True)``);
each with beam 5 and word timestamps (what a final costs) and greedy without words (a partial).
Rows report CER and the p50/max seconds of one decode, all in one run on the same machine.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from common import cer, save, scored_clips, table  # noqa: E402

from courtscribe.asr.base import DecodeOptions  # noqa: E402
from courtscribe.config import Settings  # noqa: E402
from courtscribe.models import default_registry  # noqa: E402
from courtscribe.components import load_engine  # noqa: E402


def main() -> None:
    settings = Settings()
    engine = load_engine(settings, default_registry(settings))
    clips = scored_clips()
    audio = [sf.read(c["path"], dtype="float32")[0] for c in clips]
    engine.transcribe(audio[0])  # warm-up
    rows = []
    for window in ("file", "live"):
        for kind, beam, words in (("final", 5, True), ("partial", 1, False)):
            options = DecodeOptions(beam_size=beam, live=window == "live")
            hyps, secs = [], []
            for a in audio:
                t = time.perf_counter()
                out = engine._decode(a, 0, options, beam_size=beam, words=words, fallback=kind == "final")
                secs.append(time.perf_counter() - t)
                hyps.append("".join(h.text for h in out))
            rows.append({"window": window, "decode": f"{kind} (beam {beam})", "CER": cer([c["text"] for c in clips], hyps),
                         "p50 s": float(np.median(secs)), "max s": max(secs), "hyps": hyps})
    print(table(rows, ["window", "decode", "CER", "p50 s", "max s"]))
    path = save("window", {"clips": [c["audio"] for c in clips], "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
