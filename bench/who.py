"""Who-said-what scoring shared by bench/diarization.py and bench/diarization_before.py (which runs on an
older checkout: nothing here imports what that checkout lacks)."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from common import DATA, OUT, ROOT

Segs = list[tuple[int, int, str]]
Flagged = list[tuple[int, int, str, bool]]  # a line: start, end, speaker, whether the clerk must listen
ASK_WHO = {"speaker_unsure", "overlap"}  # flags that send the clerk to the audio: 发言人待核, 同时发言


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
    audio, turns = mix.interjections()
    sf.write(OUT / "zh_over.wav", audio, 16_000)
    out["zh-over"] = (OUT / "zh_over.wav", turns)
    audio, turns = mix.answers()
    sf.write(OUT / "zh_qa.wav", audio, 16_000)
    out["zh-qa"] = (OUT / "zh_qa.wav", turns)
    lines = json.loads((ROOT / "bench" / "court" / "hearing.json").read_text(encoding="utf-8"))["lines"]
    out["court"] = (ROOT / "bench" / "court" / "hearing.flac", [(ln["start_ms"], ln["end_ms"], ln["speaker"]) for ln in lines])
    return out


def _annotation(segs: Segs | Flagged):
    from pyannote.core import Annotation, Segment

    a = Annotation()
    for i, (s, e, lab, *_) in enumerate(segs):
        if e > s:
            a[Segment(s / 1000, e / 1000), i] = str(lab)
    return a


def scores(ref: Segs, hyp: Segs | Flagged) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    r, h = _annotation(ref), _annotation(hyp)
    ordered = sorted(hyp)
    changes = sum(1 for x, y in zip(ordered, ordered[1:]) if x[2] != y[2])
    return {"DER": float(DiarizationErrorRate(collar=0.25, skip_overlap=False)(r, h)),
            "JER": float(JaccardErrorRate(collar=0.25, skip_overlap=False)(r, h)),
            "speakers": len({lab for _, _, lab, *_ in hyp}), "turns": changes + 1 if hyp else 0}


def lost(ref: Segs, lines: Segs | Flagged) -> int:
    return sum(1 for s, e, _ in ref if e - s >= 300 and
               sum(max(0, min(e, b) - max(s, a)) for a, b, *_ in lines) < (e - s) / 2)


def live_record(paths: dict[str, Path]) -> dict[str, tuple[Flagged, list[float]]]:
    """Each recording streamed at real time into a fresh server: its finals' lines (flagged for who
    spoke or not), and each final's delay after its own speech ended (s)."""
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

            said = [f["utterance"] for f in lines.values()]
            out[name] = ([(u["start_ms"], u["end_ms"], u["speaker"], bool(ASK_WHO & set(u.get("flags", []))))
                          for u in said],
                         [f["_received"] - sent(f["utterance"]["end_ms"]) for f in lines.values()])
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def wrong_mouth(ref: Segs, hyp: Flagged, step_ms: int = 10) -> dict:
    """Where each person's speech went, frame by frame (labels matched by the DER's best mapping):
    into a line of theirs, else into a line flagged for the clerk (``ASK_WHO``), else only into
    lines of other speakers, unflagged (``wrong mouth``: what a clerk would sign as someone else's
    words), else into no line. ``own lines flagged``: the share of a person's speech in their own
    lines that is flagged all the same (a replay the clerk did not need)."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    mapping = DiarizationErrorRate().optimal_mapping(_annotation(ref), _annotation(hyp))
    end = max([e for _, e, _ in ref] + [e for _, e, *_ in hyp] + [0]) // step_ms + 1

    def frames(spans) -> np.ndarray:
        on = np.zeros(end, bool)
        for s, e, *_ in spans:
            on[s // step_ms:e // step_ms] = True
        return on

    flagged, unflagged = frames(h for h in hyp if h[3]), frames(h for h in hyp if not h[3])
    ms = dict.fromkeys(("said", "own", "own flagged", "flagged", "wrong", "none"), 0)
    for who in {str(lab) for _, _, lab in ref}:
        said = frames(r for r in ref if str(r[2]) == who)
        mine = [h for h in hyp if mapping.get(str(h[2])) == who]
        own = said & frames(mine)
        rest = said & ~own
        ms["said"] += int(said.sum())
        ms["own"] += int(own.sum())
        ms["own flagged"] += int((own & frames(h for h in mine if h[3])).sum())
        ms["flagged"] += int((rest & flagged).sum())
        ms["wrong"] += int((rest & ~flagged & unflagged).sum())
        ms["none"] += int((rest & ~flagged & ~unflagged).sum())
    return {"said s": ms["said"] * step_ms / 1000, "own mouth": ms["own"] / max(1, ms["said"]),
            "else flagged s": ms["flagged"] * step_ms / 1000,
            "wrong mouth s": ms["wrong"] * step_ms / 1000,
            "no line s": ms["none"] * step_ms / 1000,
            "own lines flagged": ms["own flagged"] / max(1, ms["own"])}
