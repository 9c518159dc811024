"""A 3-hour, 4-channel hearing through the record store: bounded memory while it ingests, and the
time to export its 笔录.

    .venv/bin/python bench/hearing_3h.py [--hours 3] [--channels 4] [--db sqlite|URL]

The audio is a real clip (zh-smoke/market_25s.wav) looped on every channel and archived exactly as
live streams archive it (ChannelRecorder: PCM16 parts fsync'd every 2 s, FLAC per minute). The
lines are the clip's real transcription (the embedded engine, once), repeated at their times on
each channel and stored through the same ``machine_final`` the live path uses; every 20th line gets
a clerk's correction. Speech recognition itself is not re-run: at RTF ~0.2 on 2 cores, 12 hours of
audio would take hours (its speed is bench/rtf.py's and bench/stream_load.py's subject). Prints a
table and writes bench/out/hearing_3h.json and an RSS plot (bench/out/hearing_3h.png).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import DATA, OUT, save, table  # noqa: E402
from tqdm import tqdm  # noqa: E402

from courtscribe.audio import decode  # noqa: E402
from courtscribe.records import archive, formats  # noqa: E402
from courtscribe.records.model import Role  # noqa: E402
from courtscribe.records.store import RecordStore  # noqa: E402
from courtscribe.components import load_components  # noqa: E402
from courtscribe.transcribe import transcribe_audio  # noqa: E402

ROLES = [Role.presiding_judge, Role.plaintiff_agent, Role.defendant_agent, Role.witness]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--db", default="sqlite")
    args = ap.parse_args()
    clip_path = DATA / "zh-smoke" / "market_25s.wav"
    clip = decode(clip_path).channel(0)
    lines = transcribe_audio(decode(clip_path), load_components(), speakers=1).utterances
    work = Path(tempfile.mkdtemp(prefix="courtscribe-3h-"))
    store = RecordStore(f"sqlite:///{work / 'records.db'}" if args.db == "sqlite" else args.db)
    hid = "bench-3h"
    store.create_hearing(actor="bench", hearing_id=hid, case_number="(2026)测0001号", title="三小时庭审",
                         channels=dict(enumerate(ROLES[:args.channels])))
    store.open_hearing(hid, actor="bench")
    clip_ms, total_ms = len(clip) * 1000 // 16000, int(args.hours * 3600 * 1000)
    recorders = [archive.ChannelRecorder(work / "archive", hid, ch, 0) for ch in range(args.channels)]
    samples, n_lines, t0 = [], 0, time.perf_counter()
    loops = total_ms // clip_ms
    for k in tqdm(range(loops), desc="ingest", unit="clip"):
        base = k * clip_ms
        for ch, rec in enumerate(recorders):
            for i in range(0, clip.size, 3200):  # 200 ms frames, as streams send them
                rec.write(clip[i:i + 3200])
            for j, u in enumerate(lines):
                uid = f"c{ch}-{k:05d}-{j:03d}"
                store.machine_final(hid, u.model_copy(update={
                    "id": uid, "channel": ch, "start_ms": base + u.start_ms, "end_ms": base + u.end_ms,
                    "role": ROLES[ch], "speaker": ROLES[ch].label,
                    "tokens": [t.model_copy(update={"start_ms": base + t.start_ms, "end_ms": base + t.end_ms})
                               for t in u.tokens]}))
                n_lines += 1
                if n_lines % 20 == 0:
                    store.edit(hid, uid, u.text + "（核对）", actor="书记员", reason="bench")
        if k % max(1, loops // 60) == 0:
            samples.append(((time.perf_counter() - t0), base / 3_600_000, rss_mb()))
    for rec in recorders:
        rec.close()
    ingest_s = time.perf_counter() - t0
    store.close_hearing(hid, actor="bench")
    t = time.perf_counter()
    record = store.record(hid)
    load_s = time.perf_counter() - t
    timings = {}
    for fmt in ("docx", "pdf"):
        t = time.perf_counter()
        data = formats.render(record, fmt)
        timings[fmt] = (time.perf_counter() - t, len(data) / 1e6)
    t = time.perf_counter()
    ok = store.verify(hid).ok
    verify_s = time.perf_counter() - t
    rss_values = [r for _, _, r in samples]
    row = {"hearing_h": args.hours, "channels": args.channels, "lines": n_lines, "ingest_s": ingest_s,
           "rss_start_mb": rss_values[0], "rss_end_mb": rss_values[-1], "rss_max_mb": max(rss_values),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "record_load_s": load_s,
           "docx_s": timings["docx"][0], "docx_mb": timings["docx"][1], "pdf_s": timings["pdf"][0],
           "pdf_mb": timings["pdf"][1], "verify_s": verify_s, "verify_ok": ok,
           "archive_mb": sum(p.stat().st_size for p in (work / "archive").rglob("*.flac")) / 1e6}
    print(table([row], list(row)))
    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([h for _, h, _ in samples], rss_values)
    ax.set_xlabel("hearing hours ingested")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(0, max(rss_values) * 1.2)
    ax.set_title(f"{args.hours:g} h × {args.channels} channels into the record store")
    fig.tight_layout()
    fig.savefig(OUT / "hearing_3h.png", dpi=100)
    print(f"wrote {save('hearing_3h', {'rows': [row], 'rss': samples})} and {OUT / 'hearing_3h.png'}")


if __name__ == "__main__":
    main()
