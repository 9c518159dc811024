"""Live streaming under load: N concurrent real-time streams of zh-smoke/justice.wav into one server.

    .venv/bin/python bench/stream_load.py [--streams 1 2 4 8] [--clip justice.wav]
    .venv/bin/python bench/stream_load.py --engine funasr --model-dir DIR --streams 4 --partial-batch 1 16

For each N it starts a fresh `courtscribe serve` (the embedded engine, or ``--engine funasr`` on the
models in ``--model-dir``: full-size random-weight ones from ``python -m courtscribe.models.random_init``
measure speed, not accuracy), streams N clients in real time (starts staggered by 250 ms) and
reports:
- partial latency: a partial's arrival − the moment the audio up to its end had been sent;
- final latency: a final's arrival − the VAD endpoint (utterance end + the 800 ms end-silence the
  VAD waits for, or the end of the stream); also from the end of speech itself;
- how many finals had a partial before the utterance ended (audio sent < its end);
- partials per stream (fewest, mean) beside the clip's 600 ms chunks: a server that falls behind
  merges chunks into fewer partials; ``--partial-batch 1 16`` compares one stream per online engine
  call with many (``COURTSCRIBE_PARTIAL_BATCH``) side by side;
- CER of each client's finals (complete finals at every N), server RSS per connection;
- per stretch of speech (an utterance and the pieces that go on from it): its first words on the
  screens after its first audio was sent (``first_words_s``), then the longest the screens went
  without a new partial or final while the speaker talked (``update_gap_max_s``); ``--lanes 1 2``
  compares one decode at a time with partials beside a final (``COURTSCRIBE_DECODE_LANES``).
Prints a table, writes bench/out/stream_load.json, and names the largest N with p95 final ≤ 2 s.

``--beside-job`` measures each N twice on the same server, side by side: the streams alone, then
the same streams while a long recording (the zh-smoke clips joined, ~200 s) is transcribed by a
``/v1/jobs`` upload; the ratio of live final p95 with the job to without (target ≤ 1.3×) is in
the table and the JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, cer, free_port, save, table  # noqa: E402

from courtscribe.audio import decode  # noqa: E402
from courtscribe.clients import stream_file  # noqa: E402

END_SILENCE_MS = 800


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(max_streams: int, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """A fresh `courtscribe serve` on a loopback port; token checks off unless ``env_extra`` turns them on."""
    port = free_port()
    env = {**os.environ, "COURTSCRIBE_MAX_STREAMS": str(max_streams), "COURTSCRIBE_LOG_LEVEL": "WARNING",
           "COURTSCRIBE_INSECURE_NO_AUTH": "1",
           "COURTSCRIBE_DATA_DIR": tempfile.mkdtemp(prefix="courtscribe-bench-"), **env_extra}  # hearings apart
    proc = subprocess.Popen([sys.executable, "-m", "courtscribe", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def latencies(r) -> dict:
    """One client's partial and final latencies (s), measured against when its audio was sent."""
    last_sent = r.sent_at[-1]
    stream_end = last_sent[1]
    offset = r.ready.get("offset_ms", 0)  # a stream joining a running hearing: event times are hearing times

    def sent_time(ms: int) -> float:
        ms -= offset
        for t, sent in r.sent_at:
            if sent >= ms:
                return t
        return last_sent[0]

    out = {"partial": [p["_received"] - sent_time(p["end_ms"]) for p in r.partials],
           "final": [], "final_after_speech": [], "early": 0,
           "update_gap": update_gaps(r, sent_time), "long_final": long_finals(r, sent_time)}
    for f in r.finals:
        end = f["utterance"]["end_ms"]
        mine = [p for p in r.partials if p["utterance_id"] == f["utterance_id"]]
        out["early"] += bool(mine and r.audio_time_sent_at(mine[0]["_received"]) + offset < end)
        out["final"].append(f["_received"] - sent_time(min(end + END_SILENCE_MS, stream_end + offset)))
        out["final_after_speech"].append(f["_received"] - sent_time(end))
    return out


def speaking(r) -> list[tuple[int, int, list[dict]]]:
    """Stretches of speech (hearing ms) and their finals: an utterance and the pieces that go on
    from it (a long utterance finalized while it was spoken is one stretch, however it was cut)."""
    out: list[tuple[int, int, list[dict]]] = []
    for f in sorted(r.finals, key=lambda f: f["utterance"]["start_ms"]):
        u = f["utterance"]
        if out and ("continues" in u["flags"] or u["start_ms"] < out[-1][1]):
            out[-1] = (out[-1][0], max(out[-1][1], u["end_ms"]), out[-1][2] + [f])
        else:
            out.append((u["start_ms"], u["end_ms"], [f]))
    return out


def update_gaps(r, sent_time) -> list[tuple[float, float]]:
    """Per stretch of speech: when its first words reached the screen after its first audio was
    sent (s), and then the longest the screen went without a new partial or final while the speaker
    was talking (s), up to the moment its last audio was sent."""
    arrivals = sorted(e["_received"] for e in r.partials + r.finals)
    out = []
    for start, end, _ in speaking(r):
        a, b = sent_time(start), sent_time(end)
        points = [t for t in arrivals if a < t < b]
        if not points:  # nothing while it was spoken: all of it is the wait for the first words
            out.append((b - a, 0.0))
            continue
        points.append(b)
        out.append((points[0] - a, max(y - x for x, y in zip(points, points[1:]))))
    return out


def long_finals(r, sent_time, min_ms: int = 12_000) -> list[dict]:
    """Stretches of speech of at least ``min_ms``: how long they were, and when their last final came
    after the speaker stopped (s)."""
    return [{"speech_s": (end - start) / 1000, "pieces": len(fs),
             "final_after_speech_s": max(f["_received"] for f in fs) - sent_time(end)}
            for start, end, fs in speaking(r) if end - start >= min_ms]


async def run_n(url: str, clip: Path, n: int):
    async def one(i: int):
        await asyncio.sleep(0.25 * i)
        return await stream_file(url.replace("http", "ws") + "/v1/stream", clip, hearing_id=f"bench-{i}")
    return await asyncio.gather(*(one(i) for i in range(n)))


def long_recording(seconds: float = 200.0) -> bytes:
    """The zh-smoke clips joined (each once, then again) until ``seconds``: a file job's worth."""
    import io

    import soundfile as sf

    clips = [decode(p).channel(0) for p in sorted((DATA / "zh-smoke").glob("*.wav"))]
    out, total = [], 0
    while total < seconds * 16_000:
        for x in clips:
            out.append(x)
            total += x.size
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(out)[: int(seconds * 16_000)], 16_000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def beside_job(n: int, clip: Path, ref: str | None, job: bytes, **env: str) -> list[dict]:
    """The same N streams alone, then while a file job runs: one server, side by side."""
    proc, url = start_server(max_streams=max(n, 1), **env)
    try:
        asyncio.run(run_n(url, clip, 1))  # warm the engine
        alone = asyncio.run(run_n(url, clip, n))
        started = httpx.post(url + "/v1/jobs", files={"file": ("long.wav", job)}, timeout=120).json()
        time.sleep(2.0)  # the job is past its upload and decoding when the streams start
        with_job = asyncio.run(run_n(url, clip, n))
        state = httpx.get(f"{url}/v1/jobs/{started['id']}", timeout=30).json()
    finally:
        proc.terminate()
        proc.wait(30)
    rows = [summary(n, alone, ref) | {"file_job": "none"},
            summary(n, with_job, ref) | {"file_job": f"{state['status']} {state.get('progress', 0):.0%}"}]
    rows[1]["final_p95_ratio"] = rows[1]["final_p95_s"] / rows[0]["final_p95_s"]
    rows[0]["final_p95_ratio"] = 1.0
    return rows


def measure(n: int, clip: Path, ref: str | None, **env: str) -> dict:
    proc, url = start_server(max_streams=max(n, 1), **env)
    try:
        asyncio.run(run_n(url, clip, 1))  # warm the engine
        base = rss_mb(proc.pid)
        results = asyncio.run(run_n(url, clip, n))
        peak = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return summary(n, results, ref) | {"rss_per_stream_mb": (peak - base) / n, "server_rss_mb": peak}


def summary(n: int, results: list, ref: str | None) -> dict:
    partial_lag, final_lag, final_after_speech, cers, early = [], [], [], [], 0
    gaps, firsts, long = [], [], []
    for r in results:
        lags = latencies(r)
        firsts += [first for first, _ in lags["update_gap"]]
        gaps += [gap for _, gap in lags["update_gap"]]
        long += lags["long_final"]
        partial_lag += lags["partial"]
        final_lag += lags["final"]
        final_after_speech += lags["final_after_speech"]
        early += lags["early"]
        if ref is not None:
            cers.append(cer([ref], [r.text]))
    per_stream = [len(r.partials) for r in results]
    return {"streams": n, "partials": len(partial_lag), "finals": len(final_lag),
            "partials_per_stream_min": min(per_stream), "partials_per_stream_mean": float(np.mean(per_stream)),
            "finals_with_early_partial": early, "partial_p50_s": pct(partial_lag, 50),
            "partial_p95_s": pct(partial_lag, 95), "final_p50_s": pct(final_lag, 50), "final_p95_s": pct(final_lag, 95),
            "final_after_speech_p95_s": pct(final_after_speech, 95), "cer_worst": max(cers) if cers else float("nan"),
            "cer_mean": float(np.mean(cers)) if cers else float("nan"),
            "first_words_max_s": max(firsts, default=float("nan")),
            "update_gap_max_s": max(gaps, default=float("nan")),
            "long_speech_s": max((x["speech_s"] for x in long), default=float("nan")),
            "long_final_after_speech_s": max((x["final_after_speech_s"] for x in long), default=float("nan")),
            "long_pieces": max((x["pieces"] for x in long), default=0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--clip", default="justice.wav")
    ap.add_argument("--engine", choices=["whisper", "funasr"], default="whisper")
    ap.add_argument("--model-dir", type=Path, help="--engine funasr: its models (COURTSCRIBE_MODEL_DIR)")
    ap.add_argument("--partial-batch", type=int, nargs="+", default=[16], help="COURTSCRIBE_PARTIAL_BATCH values to compare")
    ap.add_argument("--lanes", type=int, nargs="+", default=[2], help="COURTSCRIBE_DECODE_LANES values to compare")
    ap.add_argument("--beside-job", action="store_true", help="each N alone and beside a 200 s /v1/jobs upload")
    args = ap.parse_args()
    clip = DATA / "zh-smoke" / args.clip
    ref = next(json.loads(line)["text"] for line in (DATA / "zh-smoke" / "manifest.jsonl").read_text().splitlines()
               if json.loads(line)["audio"] == args.clip) if args.engine == "whisper" else None  # random weights: no CER
    env = {"COURTSCRIBE_ENGINE": args.engine, **({"COURTSCRIBE_MODEL_DIR": str(args.model_dir)} if args.model_dir else {})}
    chunks = int(decode(clip).channel(0).size // 9_600)
    if args.beside_job:
        job, rows = long_recording(), []
        for n in args.streams:
            rows += beside_job(n, clip, ref, job, **env)
            print(f"N={n} alone and beside a file job done", file=sys.stderr)
        print(table(rows, ["streams", "file_job", "finals", "partial_p95_s", "final_p50_s", "final_p95_s",
                           "final_p95_ratio", "cer_worst"]))
        print(f"wrote {save('stream_load_beside_job', {'clip': args.clip, 'engine': args.engine, 'rows': rows})}")
        return
    rows = []
    for n in args.streams:
        for batch in args.partial_batch:
            for lanes in args.lanes:
                rows.append({"partial_batch": batch, "lanes": lanes, "chunks": chunks,
                             **measure(n, clip, ref, **env, COURTSCRIBE_PARTIAL_BATCH=str(batch),
                                       COURTSCRIBE_DECODE_LANES=str(lanes))})
                print(f"N={n} partial batch {batch} lanes {lanes} done", file=sys.stderr)
    print(f"engine {args.engine}; {args.clip}: {chunks} chunks of 600 ms")
    print(table(rows, ["streams", "partial_batch", "lanes", "partials_per_stream_min", "partials_per_stream_mean", "finals",
                       "finals_with_early_partial", "partial_p50_s", "partial_p95_s", "final_p50_s", "final_p95_s",
                       "final_after_speech_p95_s", "first_words_max_s", "update_gap_max_s", "long_speech_s",
                       "long_pieces",
                       "long_final_after_speech_s", "cer_mean", "cer_worst", "rss_per_stream_mb"]))
    ok = [r["streams"] for r in rows if r["final_p95_s"] <= 2.0 and (ref is None or r["cer_worst"] <= 0.25)]
    print(f"largest N with p95 final ≤ 2 s and complete finals: {max(ok) if ok else 'none'}")
    name = "stream_load" + ("" if args.engine == "whisper" else "_funasr") + \
        ("" if args.clip == "justice.wav" else "_" + Path(args.clip).stem)
    print(f"wrote {save(name, {'clip': args.clip, 'engine': args.engine, 'rows': rows, 'largest_ok': max(ok) if ok else None})}")


if __name__ == "__main__":
    main()
