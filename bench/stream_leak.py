"""Memory per connection is freed on close: N connect/stream/close cycles against one server.

    .venv/bin/python bench/stream_leak.py [--cycles 200] [--clip news_kfc.wav] [--seconds 2]

Each cycle opens a native stream, sends the first ``--seconds`` of the clip as fast as accepted,
stops, waits for the end event and closes. Server RSS is sampled after a 10-cycle warm-up and at
the end; the target is ≤ 10% growth (FunASR's runtime leaks ~100 MB per connection).
Prints a table, writes bench/out/stream_leak.json and a plot bench/out/stream_leak.png.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, OUT, save, table  # noqa: E402
from stream_load import rss_mb, start_server  # noqa: E402

from courtscribe.audio import decode  # noqa: E402
from courtscribe.clients import stream  # noqa: E402


async def cycle(url: str, audio) -> int:
    async def chunks():
        for i in range(0, audio.size, 3200):
            yield audio[i:i + 3200]
    result = await stream(url, chunks(), speed=0)
    return len(result.finals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--clip", default="news_kfc.wav")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    audio = decode(DATA / "zh-smoke" / args.clip).channel(0)[: int(args.seconds * 16000)]
    proc, url = start_server(max_streams=2)
    ws = url.replace("http", "ws") + "/v1/stream"
    samples = []
    try:
        for i in range(args.cycles):
            asyncio.run(cycle(ws, audio))
            samples.append(rss_mb(proc.pid))
            if (i + 1) % 20 == 0:
                print(f"cycle {i + 1}: server RSS {samples[-1]:.1f} MB", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(30)
    warm = samples[min(9, len(samples) - 1)]
    growth = (samples[-1] - warm) / warm
    row = {"cycles": args.cycles, "rss_after_warmup_mb": warm, "rss_end_mb": samples[-1],
           "rss_max_mb": max(samples), "growth": growth, "ok": growth <= 0.10}
    print(table([row], list(row)))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(range(1, len(samples) + 1), samples)
    ax.axhline(warm * 1.1, linestyle="--", color="grey", label="+10% of warm RSS")
    ax.set_xlabel("connect/stream/close cycle")
    ax.set_ylabel("server RSS (MB)")
    ax.legend()
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "stream_leak.png", dpi=100)
    print(f"wrote {save('stream_leak', {'row': row, 'rss_mb': samples})}")


if __name__ == "__main__":
    main()
