"""Who-said-what scoring shared by bench/diarization.py and bench/diarization_before.py (which runs on an
older checkout: nothing here imports what that checkout lacks)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import soundfile as sf

from common import DATA, OUT, ROOT

Segs = list[tuple[int, int, str]]


def recordings() -> dict[str, tuple[Path, Segs]]:
    import mix

    out = {}
    rttm = [line.split() for line in (DATA / "diarization" / "sample.rttm").read_text().splitlines()]
    out["sample"] = (DATA / "diarization" / "sample.wav",
                     [(int(float(f[3]) * 1000), int((float(f[3]) + float(f[4])) * 1000), f[7]) for f in rttm])
    audio, turns = mix.build()
    OUT.mkdir(parents=True, exist_ok=True)
    sf.write(OUT / "zh_mix.wav", audio, 16_000)
    out["zh-mix"] = (OUT / "zh_mix.wav", turns)
    lines = json.loads((ROOT / "bench" / "court" / "hearing.json").read_text(encoding="utf-8"))["lines"]
    out["court"] = (ROOT / "bench" / "court" / "hearing.flac", [(ln["start_ms"], ln["end_ms"], ln["speaker"]) for ln in lines])
    return out


def scores(ref: Segs, hyp: Segs) -> dict:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    def annotation(segs: Segs) -> Annotation:
        a = Annotation()
        for i, (s, e, lab) in enumerate(segs):
            if e > s:
                a[Segment(s / 1000, e / 1000), i] = str(lab)
        return a

    r, h = annotation(ref), annotation(hyp)
    ordered = sorted(hyp)
    changes = sum(1 for x, y in zip(ordered, ordered[1:]) if x[2] != y[2])
    return {"DER": float(DiarizationErrorRate(collar=0.25, skip_overlap=False)(r, h)),
            "JER": float(JaccardErrorRate(collar=0.25, skip_overlap=False)(r, h)),
            "speakers": len({lab for _, _, lab in hyp}), "turns": changes + 1 if hyp else 0}


def lost(ref: Segs, lines: Segs) -> int:
    return sum(1 for s, e, _ in ref if e - s >= 300 and
               sum(max(0, min(e, b) - max(s, a)) for a, b, _ in lines) < (e - s) / 2)


def live_record(paths: dict[str, Path]) -> dict[str, tuple[Segs, list[float]]]:
    """Each recording streamed at real time into a fresh server: its finals' lines, and each final's
    delay after its own speech ended (s)."""
    from stream_load import start_server

    from courtscribe.clients import stream_file

    proc, url = start_server(max_streams=1)
    out = {}
    try:
        for name, path in paths.items():
            r = asyncio.run(stream_file(url.replace("http", "ws") + "/v1/stream", path, speed=1,
                                        hearing_id=f"diar-{name}-{time.time_ns()}"))
            lines = {f["utterance"]["id"]: f for f in r.finals}
            for e in r.events:
                if e["type"] == "speaker_update" and e["utterance_id"] in lines:
                    lines[e["utterance_id"]]["utterance"]["speaker"] = e["speaker"]

            def sent(ms: int) -> float:
                return next((t for t, done in r.sent_at if done >= ms), r.sent_at[-1][0])
            out[name] = ([(f["utterance"]["start_ms"], f["utterance"]["end_ms"], f["utterance"]["speaker"])
                          for f in lines.values()],
                         [f["_received"] - sent(f["utterance"]["end_ms"]) for f in lines.values()])
    finally:
        proc.terminate()
        proc.wait(30)
    return out
