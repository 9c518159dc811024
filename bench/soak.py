"""Soak: 1,000 idle sockets beside 4 live streams, for 10 minutes, on loopback, tokens on.

    .venv/bin/python bench/soak.py [--minutes 10] [--idle 1000] [--streams 4] [--alone-minutes 3]

One server, a 1-minute warm-up (not measured), then three phases side by side in one run:
1. *alone*: the 4 seat microphones of one hearing stream real-time audio with nothing else connected;
   the seats speak in turn (zh-smoke clips, 1 s apart), as in a courtroom, so the engine's load is
   one talker at a time while all 4 streams carry audio (VAD, archive, scheduling) throughout;
2. *soak*: 1,000 clerk/viewer screens subscribe to hearing event feeds (50 idle hearings) and stay
   connected doing nothing (the server pings them), while the same 4 recorders stream for 10 minutes;
3. *alone again* after the idle sockets have closed, so drift over the server's life (caches, a growing
   database) is not mistaken for the sockets' cost: "alone" below pools phases 1 and 3.
Reports final latency p50/p95 per phase (final arrival − VAD endpoint as sent, see stream_load.py),
the server's CPU per phase (what the idle sockets cost, free of latency noise) and, because a p95 of a
few dozen finals swings with which long sentences fall in it, the same sentences compared across
phases (median over sentences of soak/alone latency), server RSS sampled every 10 s (slope over the
soak's second half), error events, idle sockets lost, and the audit log's growth.
Targets: latency within 20 % of alone, 0 errors, memory flat.
Prints a table, writes bench/out/soak.json and bench/out/soak.png (RSS and latency over time).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, OUT, save, table  # noqa: E402
from stream_load import latencies, pct, rss_mb, start_server  # noqa: E402

from courtscribe.audio import decode  # noqa: E402
from courtscribe.clients.stream_client import SR, stream  # noqa: E402

CLIPS = ["justice.wav", "news_kfc.wav", "market_25s.wav", "news_foxconn.wav"]
SEATS = ["presiding_judge", "plaintiff", "defendant", "clerk", "plaintiff_agent", "defendant_agent", "witness", "juror"]


async def turns(clips: list[np.ndarray], me: int, seconds: float, chunk_ms: int = 200):
    """Recorder ``me``'s microphone in a hearing where the seats speak in turn: each round every seat
    says its clip (1 s apart); this seat carries its own turn and silence during the others'."""
    gap = np.zeros(SR, np.float32)
    audio = np.concatenate([np.concatenate([c if i == me else np.zeros_like(c), gap]) for i, c in enumerate(clips)])
    step, sent, total = SR * chunk_ms // 1000, 0, int(seconds * SR)
    while sent < total:
        for i in range(0, audio.size, step):
            yield audio[i:i + step]
            sent += step
            if sent >= total:
                return


async def recorders(url: str, token: str, clips: list[np.ndarray], seconds: float, phase: str) -> list:
    """One seat microphone per clip, all in one hearing, streaming in real time for ``seconds``."""
    return await asyncio.gather(*(stream(url + "/v1/stream", turns(clips, i, seconds), hearing_id=f"soak-{phase}",
                                         channel=i, role=SEATS[i % len(SEATS)], token=token)
                                  for i in range(len(clips))))


class IdleScreens:
    """Sockets subscribed to idle hearings' event feeds, doing nothing."""

    def __init__(self, url: str, token: str, n: int):
        self.url, self.token, self.n = url, token, n
        self.socks: list = []
        self.failed_connects = 0
        self.unexpected: list[str] = []

    async def open(self) -> None:
        sem = asyncio.Semaphore(50)

        async def one(i: int):
            async with sem:
                try:
                    ws = await websockets.connect(f"{self.url}/v1/hearings/soak-idle-{i % 50}/events",
                                                  subprotocols=["courtscribe.v1", f"bearer.{self.token}"],
                                                  open_timeout=60, max_queue=4)
                    first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if first.get("type") != "subscribed":
                        self.failed_connects += 1
                        self.unexpected.append(str(first)[:200])
                    else:
                        self.socks.append(ws)
                except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as err:
                    self.failed_connects += 1
                    self.unexpected.append(repr(err)[:200])
        await asyncio.gather(*(one(i) for i in range(self.n)))

    def lost(self) -> dict[str, int]:
        """How the sockets that did not stay open ended (close code and reason)."""
        out: dict[str, int] = {}
        for ws in self.socks:
            if ws.state is not websockets.protocol.State.OPEN:
                key = f"{ws.close_code} {ws.close_reason or ''}".strip()
                out[key] = out.get(key, 0) + 1
        return out

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.socks), return_exceptions=True)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, work) -> tuple[list, float]:
    """Run one phase's recorders; returns their results and the server's CPU use meanwhile (% of a core)."""
    c0, t0 = cpu_s(pid), time.monotonic()
    results = await work
    return results, 100 * (cpu_s(pid) - c0) / (time.monotonic() - t0)


async def sample_rss(pid: int, samples: list, stop: asyncio.Event, t0: float) -> None:
    while not stop.is_set():
        samples.append((time.monotonic() - t0, rss_mb(pid)))
        try:
            await asyncio.wait_for(stop.wait(), 10)
        except asyncio.TimeoutError:
            pass


def by_utterance(results: list, round_ms: int) -> dict[tuple[int, int], list[float]]:
    """Final latencies keyed by seat and place in the round: the same sentence in every round and
    phase, so the phases can be compared sentence by sentence (a long sentence's final is slow in any phase)."""
    out: dict[tuple[int, int], list[float]] = {}
    for seat, r in enumerate(results):
        offset = r.ready.get("offset_ms", 0)
        for f, lag in zip(r.finals, latencies(r)["final"]):
            place = (f["utterance"]["start_ms"] - offset) % round_ms // 500
            out.setdefault((seat, place), []).append(lag)
    return out


def paired_ratio(alone: dict, soak: dict) -> tuple[float, int]:
    """Median over sentences heard in both phases of (median latency in soak / median alone)."""
    ratios = [float(np.median(soak[k]) / np.median(alone[k])) for k in alone.keys() & soak.keys()
              if np.median(alone[k]) > 0]
    return (float(np.median(ratios)) if ratios else float("nan")), len(ratios)


def summarize(phase: str, results: list, seconds: float, cpu: float) -> dict:
    finals, errors = [], []
    for r in results:
        finals += latencies(r)["final"]
        errors += [e for e in r.events if e["type"] == "error"]
    return {"phase": phase, "seconds": seconds, "server_cpu_pct": cpu, "finals": len(finals), "final_p50_s": pct(finals, 50),
            "final_p95_s": pct(finals, 95), "final_max_s": max(finals) if finals else float("nan"),
            "error_events": len(errors), "error_codes": sorted({e["code"] for e in errors})}


async def soak(url: str, token: str, pid: int, args) -> tuple[list[dict], dict]:
    t0 = time.monotonic()
    samples: list = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, samples, stop, t0))
    clips = [decode(DATA / "zh-smoke" / CLIPS[i % len(CLIPS)]).channel(0) for i in range(args.streams)]
    round_ms = sum(c.size for c in clips) * 1000 // SR + 1000 * len(clips)  # one turn of every seat
    await recorders(url, token, clips, 60, "warm-up")  # first decodes of each length allocate: not measured
    alone, cpu_alone = await measured(pid, recorders(url, token, clips, args.alone_minutes * 60, "alone"))
    rss_before_idle = rss_mb(pid)
    screens = IdleScreens(url, token, args.idle)
    opened = time.monotonic()
    await screens.open()
    open_s = time.monotonic() - opened
    rss_with_idle = rss_mb(pid)
    soak_start = time.monotonic() - t0
    busy, cpu_busy = await measured(pid, recorders(url, token, clips, args.minutes * 60, "soak"))
    lost = screens.lost()
    still = len(screens.socks) - sum(lost.values())
    await screens.close()
    after, cpu_after = await measured(pid, recorders(url, token, clips, args.alone_minutes * 60, "after"))
    stop.set()
    await sampler
    rows = [summarize("alone", alone, args.alone_minutes * 60, cpu_alone),
            summarize("soak", busy, args.minutes * 60, cpu_busy),
            summarize("alone again", after, args.alone_minutes * 60, cpu_after),
            summarize("alone (both)", alone + after, args.alone_minutes * 120, (cpu_alone + cpu_after) / 2)]
    by_sentence = by_utterance(alone, round_ms)
    for key, lags in by_utterance(after, round_ms).items():
        by_sentence.setdefault(key, []).extend(lags)
    paired, sentences = paired_ratio(by_sentence, by_utterance(busy, round_ms))
    for row in rows:
        row["idle_sockets"] = len(screens.socks) if row["phase"] == "soak" else 0
    # memory flat: the slope over the soak's second half (the first half includes settling to a plateau)
    during = [(t, m) for t, m in samples if t >= soak_start + args.minutes * 30]
    slope = float(np.polyfit([t for t, _ in during], [m for _, m in during], 1)[0] * 60) if len(during) > 3 else float("nan")
    extra = {"paired_median_ratio": paired, "paired_sentences": sentences, "idle_requested": args.idle, "idle_connected": len(screens.socks), "idle_failed_connects": screens.failed_connects,
             "idle_still_open_at_end": still, "idle_lost": lost, "idle_unexpected": screens.unexpected[:10], "idle_open_s": open_s,
             "rss_before_idle_mb": rss_before_idle, "rss_with_idle_mb": rss_with_idle,
             "rss_per_idle_socket_kb": (rss_with_idle - rss_before_idle) * 1024 / max(1, len(screens.socks)),
             "rss_soak_first_mb": during[0][1] if during else None, "rss_soak_last_mb": during[-1][1] if during else None,
             "rss_slope_mb_per_min": slope, "rss_samples": samples,
             "final_latency_over_time": [(f["_received"], lag) for r in busy for f, lag in zip(r.finals, latencies(r)["final"])]}
    return rows, extra


def plot(extra: dict, soak_rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=False)
    t, m = zip(*extra["rss_samples"])
    a.plot(np.array(t) / 60, m)
    a.set(ylabel="server RSS (MB)", xlabel="minutes", title="soak: memory (1,000 idle sockets join after the alone phase)")
    pts = sorted(extra["final_latency_over_time"])
    if pts:
        x0 = pts[0][0]
        b.plot([(x - x0) / 60 for x, _ in pts], [y for _, y in pts], ".", ms=3)
    b.axhline(soak_rows[-1]["final_p95_s"], color="grey", ls="--", label="p95 alone (before and after)")
    b.set(ylabel="final latency (s)", xlabel="minutes into the soak phase")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--alone-minutes", type=float, default=3)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # both sides hold > 1,000 sockets (the server inherits it)
    home = Path(tempfile.mkdtemp(prefix="courtscribe-soak-"))
    env = {"COURTSCRIBE_DATA_DIR": str(home), "COURTSCRIBE_INSECURE_NO_AUTH": "0",
           "COURTSCRIBE_RATE_LIMIT": "100000/minute", "COURTSCRIBE_IDLE_TIMEOUT_S": "60"}
    issued = subprocess.run([sys.executable, "-m", "courtscribe", "tokens", "issue", "--role", "admin", "--name", "soak",
                             "--json"], env={**os.environ, **env}, capture_output=True, text=True, check=True)
    token = json.loads(issued.stdout)["token"]
    proc, http = start_server(args.streams, **env)
    url = http.replace("http", "ws")
    for i in range(50):  # the idle screens' hearings: scheduled, nothing said yet
        r = httpx.post(f"{http}/v1/hearings", headers={"Authorization": f"Bearer {token}"},
                       json={"id": f"soak-idle-{i}", "court": "soak", "courtroom": f"room {i}"})
        r.raise_for_status()
    try:
        rows, extra = asyncio.run(soak(url, token, proc.pid, args))
    finally:
        proc.terminate()
        proc.wait(60)
    audit = home / "audit" / "audit.jsonl"
    extra["audit_entries"] = sum(1 for _ in audit.open()) if audit.exists() else 0
    alone, busy = rows[-1], rows[1]
    ratio = busy["final_p95_s"] / alone["final_p95_s"]
    print(table(rows, ["phase", "seconds", "idle_sockets", "server_cpu_pct", "finals", "final_p50_s", "final_p95_s",
                       "final_max_s", "error_events"]))
    print(table([{k: v for k, v in extra.items() if not isinstance(v, list)}],
                ["idle_connected", "idle_failed_connects", "idle_still_open_at_end", "idle_open_s",
                 "rss_per_idle_socket_kb", "rss_soak_first_mb", "rss_soak_last_mb", "rss_slope_mb_per_min",
                 "audit_entries"]))
    verdict = {"p95_ratio_soak_vs_alone": ratio, "p95_within_20pct": ratio <= 1.2,
               "same_sentence_median_ratio": extra["paired_median_ratio"],
               "same_sentence_within_20pct": extra["paired_median_ratio"] <= 1.2,
               "server_cpu_ratio_soak_vs_alone": busy["server_cpu_pct"] / alone["server_cpu_pct"],
               "zero_errors": all(r["error_events"] == 0 for r in rows) and extra["idle_failed_connects"] == 0
               and extra["idle_still_open_at_end"] == extra["idle_connected"],
               "memory_flat": abs(extra["rss_slope_mb_per_min"]) < 2.0}
    print(" · ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in verdict.items()))
    OUT.mkdir(parents=True, exist_ok=True)
    plot(extra, rows, OUT / "soak.png")
    print(f"wrote {save('soak', {'args': vars(args), 'rows': rows, **extra, **verdict})} and {OUT / 'soak.png'}")


if __name__ == "__main__":
    main()
