"""Is the record complete, in court language? The mock hearing of bench/court/ through every path.

    .venv/bin/python bench/court_speech.py [--paths file file-fsmn channels live] [--out NAME]

bench/court/hearing.flac (written by bench/court_tts.py: 38 lines, 4 synthetic Mandarin voices, a
witness's real English through an interpreter, 4 minutes) goes through:
- ``file``: ``courtscribe transcribe FILE`` with its defaults (silero VAD, voices clustered);
- ``file-fsmn``: the same with ``COURTSCRIBE_VAD=fsmn-vad``;
- ``channels``: four seat microphones (each speaker's seat at full level, every other seat's speech
  leaking in at −20 dB), ``--channels`` with a role per channel;
- ``live``: ``courtscribe stream`` into a hearing of a running server, at twice real time.

Per path: reference lines with no utterance at all (lost), lines whose only utterance is a flagged gap
(the clerk replays and types them), CER of the Mandarin lines, court-style numbers found of those
expected (exact strings: (2026)京0105民初4321号, 125000元, 3.65%, 第675条, …), and the English
witness's speech covered by utterances with text. The real zh-smoke clips are scored beside it
(synthetic speech is easier than a courtroom). Writes bench/out/court_speech.json (or ``--out``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cer, save, scored_clips, table  # noqa: E402

from courtscribe.config import Settings  # noqa: E402
from courtscribe.records.model import Hearing, Role  # noqa: E402
from courtscribe.cli import ProgressBars  # noqa: E402
from courtscribe.components import load_components  # noqa: E402
from courtscribe.transcribe import transcribe_file  # noqa: E402

HERE = Path(__file__).resolve().parent / "court"
# what the clerk scheduled before the hearing: the case's number, cause and parties
CASE = {"case_number": "(2026)京0105民初4321号", "cause": "民间借贷纠纷", "parties": ["张建国", "李明"]}
ROLES = {0: Role.presiding_judge, 1: Role.plaintiff_agent, 2: Role.defendant, 3: Role.clerk}
BLEED_DB = -20.0
LIVE_SPEED = 2.0  # the live path is fed at twice real time (a recorder replaying; a real one sends at 1×)


def reference() -> list[dict]:
    return json.loads((HERE / "hearing.json").read_text(encoding="utf-8"))["lines"]


def seat_mics(path: Path, lines: list[dict], seats: int = 4) -> Path:
    """Seat channels from the mono hearing: each line at full level on its seat, −20 dB elsewhere
    (seats past the four who speak hear only the others: a courtroom's silent seats)."""
    x, sr = sf.read(path, dtype="float32")
    mics = np.zeros((x.size, seats), np.float32) + x[:, None] * 10 ** (BLEED_DB / 20)
    for line in lines:
        a, b = line["start_ms"] * sr // 1000, line["end_ms"] * sr // 1000
        mics[a:b, line["channel"]] = x[a:b]
    out = Path(tempfile.mkdtemp(prefix="court-seats-")) / "seats.wav"
    sf.write(out, mics, sr)
    return out


def live(path: Path, **env: str) -> list[dict]:
    """The hearing streamed into a running server (``env``: its settings); the finals it announced."""
    from stream_load import start_server

    from courtscribe.clients import stream_file

    import httpx

    proc, url = start_server(max_streams=1, **env)
    try:
        hearing = f"court-{time.time_ns()}"
        httpx.post(url + "/v1/hearings", json={"id": hearing, **CASE}, timeout=30).raise_for_status()
        r = asyncio.run(stream_file(url.replace("http", "ws") + "/v1/stream", path, speed=LIVE_SPEED, hearing_id=hearing))
    finally:
        proc.terminate()
        proc.wait(30)
    return [f["utterance"] for f in r.finals]


def utterances(kind: str, comp_for) -> list[dict]:
    audio = HERE / "hearing.flac"
    hearing = Hearing(id="court-bench", **CASE)
    if kind == "live":
        return live(audio)
    if kind == "channels":
        rec = transcribe_file(seat_mics(audio, reference()), comp_for("silero"), split_channels=True, roles=ROLES,
                              hearing=hearing, on_progress=ProgressBars())
    else:
        rec = transcribe_file(audio, comp_for("fsmn-vad" if kind == "file-fsmn" else "silero"), hearing=hearing,
                              on_progress=ProgressBars())
    return [u.model_dump(mode="json") for u in rec.utterances]


def score(path: str, utts: list[dict], lines: list[dict], seconds: float) -> dict:
    """Each utterance belongs to the reference line it overlaps most; lines are scored on what they got."""
    got: dict[int, list[dict]] = {line["n"]: [] for line in lines}
    for u in sorted(utts, key=lambda u: u["start_ms"]):
        overlap = [(min(u["end_ms"], ln["end_ms"]) - max(u["start_ms"], ln["start_ms"]), ln["n"]) for ln in lines]
        best, n = max(overlap)
        if best > 0 or u["end_ms"] == u["start_ms"]:
            got[n].append(u)
    text_of = {n: "".join(u["text"] for u in us) for n, us in got.items()}
    zh = [ln for ln in lines if ln["language"] == "zh"]
    en = [ln for ln in lines if ln["language"] == "en"]
    whole = "".join(u["text"] for u in sorted(utts, key=lambda u: u["start_ms"]))
    expected = [x for ln in lines for x in ln["numbers"]]
    en_ms = sum(ln["end_ms"] - ln["start_ms"] for ln in en)
    en_covered = sum(max(0, min(u["end_ms"], ln["end_ms"]) - max(u["start_ms"], ln["start_ms"]))
                     for ln in en for u in utts if u["text"].strip())
    return {"path": path, "lines": len(lines), "utterances": len(utts),
            "lost": sum(1 for ln in lines if not any(min(u["end_ms"], ln["end_ms"]) > max(u["start_ms"], ln["start_ms"])
                                                    for u in utts)),
            "flagged only": sum(1 for ln in lines if got[ln["n"]] and not text_of[ln["n"]].strip()),
            "flagged lines": sum(1 for u in utts if "unrecognized" in (u.get("flags") or [])),
            "CER zh": cer([ln["text"] for ln in zh], [text_of[ln["n"]] for ln in zh]),
            "numbers": f"{sum(1 for x in expected if x in whole)}/{len(expected)}",
            "English covered": round(min(1.0, en_covered / max(1, en_ms)), 3),
            "English lines in en": sum(1 for ln in en if any(u.get("language") == "en" and u["text"] for u in got[ln["n"]])),
            "seconds": round(seconds, 1),
            "missing numbers": [x for x in expected if x not in whole],
            "detail": [{"n": ln["n"], "ref": ln["text"], "got": text_of[ln["n"]],
                       "flags": sorted({f for u in got[ln["n"]] for f in u.get("flags") or []})} for ln in lines]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", nargs="+", default=["file", "file-fsmn", "channels", "live"],
                    choices=["file", "file-fsmn", "channels", "live"])
    ap.add_argument("--out", default="court_speech")
    args = ap.parse_args()
    lines = reference()
    comps: dict[str, object] = {}

    def comp_for(vad: str):
        if vad not in comps:
            comps[vad] = load_components(Settings(vad=vad))
        return comps[vad]

    rows = []
    for kind in args.paths:
        t = time.perf_counter()
        utts = utterances(kind, comp_for)
        rows.append(score(kind, utts, lines, time.perf_counter() - t))
        print(f"{kind}: lost {rows[-1]['lost']}, CER {rows[-1]['CER zh']:.3f}, numbers {rows[-1]['numbers']}",
              file=sys.stderr)
    clips = scored_clips()
    comp = comp_for("silero")
    smoke = [("".join(u.text for u in transcribe_file(c["path"], comp, speakers=1).utterances)) for c in clips]
    smoke_cer = cer([c["text"] for c in clips], smoke)
    cols = ["path", "lines", "utterances", "lost", "flagged only", "CER zh", "numbers", "English covered", "seconds"]
    print(table(rows, cols))
    print(f"\nzh-smoke (real speech, 6 scored clips), file path: CER {smoke_cer:.3f}")
    for r in rows:
        print(f"\n{r['path']}: missing numbers {r['missing numbers']}")
        for ln in r["detail"]:
            if ln["flags"] or not ln["got"].strip() or cer([ln["ref"]], [ln["got"]]) > 0.3:
                print(f"  {ln['n']:2d} ref {ln['ref']}\n     got {ln['got'] or '—'} {ln['flags'] or ''}")
    path = save(args.out, {"rows": rows, "zh_smoke_cer": smoke_cer, "zh_smoke": dict(zip([c["audio"] for c in clips], smoke))})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    main()
