"""The GPU half, measured in one run: the batched streaming step, its precision and launch
overhead, and batched finals, on full-size shape-true FunASR models.

    python3 bench/gpu.py [--dry-run] [--budget-s 420] [--out NAME]   # bench/gpu.sh runs it there

Builds streaming Paraformer-large, SeACo-Paraformer-large and CT-punc with the published shapes from
FunASR's own classes (random weights: models/random_init.py) on the machine it runs on, loads them
through the production loader (``FunasrEngine``) and measures, each comparison inside one run:

- **online**: N streams, each 600 ms chunk of each stream once per round, all N in one forward pass
  (``accept_many`` → ``asr/online_batch.step``) at 1, 16, 64, 256, 1024 streams; beside it one
  stream per forward pass at 8 streams (its rate does not grow with N). Per row: chunks/s, one
  round's p50/p95, whether a round keeps within 600 ms, real-time streams sustained (chunks/s ×
  0.6 s), GPU memory per stream (the caches a stream keeps, and the peak of a round).
- **precision**: fp16 and bf16 autocast against fp32 on the same chunks and the same caches, 64
  streams: the share of chunks whose tokens are identical and each one's chunks/s. Random weights
  make near-ties between tokens common, so the share is a floor of what trained weights give.
- **compiled**: ``torch.compile`` (inductor's fused kernels) of the step's encoder and decoder
  layers beside eager at 64 streams, last (compiling 66 graphs takes minutes); CUDA only, a failure
  is recorded, not fatal. CUDA graphs proper need the caches in static buffers per batch size (a
  rewrite of the step), not done.
- **finals**: SeACo-Paraformer + CT-punc over the same utterances in batches of 1, 16 and 64: audio
  seconds per wall second, and the ratio to batch 1.

``--dry-run``: tiny models on the CPU, 1 and 4 streams, batches 1 and 4 — the script proven before
a GPU is at hand (tests/test_gpu_bench.py). Each section stops where ``--budget-s`` runs out and
says so. Prints a table per section; writes bench/out/NAME.json (default gpu-YYYY-MM-DD). The text
these models write is noise: accuracy is not measured here.
"""
from __future__ import annotations

import argparse
import atexit
import copy
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, save, table  # noqa: E402

from funasr_engine import offline_throughput, online_streams  # noqa: E402

from courtscribe.asr import online_batch  # noqa: E402
from courtscribe.asr.funasr_engine import FunasrEngine  # noqa: E402
from courtscribe.audio import decode  # noqa: E402
from courtscribe.models.random_init import write_all  # noqa: E402

CHUNK_S = 0.6
CLIPS = ("market_25s.wav", "justice.wav", "news_kfc.wav")  # bench/gpu.sh carries these
PIECE_S = (3, 5, 7, 4, 6, 2, 8)  # finals: utterance lengths, in turn


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def online(engine: FunasrEngine, audio: np.ndarray, n: int, *, batched: bool, rounds: int,
           warm: int = 2) -> dict:
    """``n`` streams through one forward pass per round (batched), or one stream per pass."""
    engine.max_batch = n if batched else 1
    return online_streams(engine, audio, n, batched, rounds=rounds, warm=warm)


def precision(engine: FunasrEngine, audio: np.ndarray, n: int, rounds: int) -> list[dict]:
    """fp16 and bf16 autocast beside fp32: each round's chunks from the same caches (deep copies),
    tokens compared chunk by chunk; the fp32 caches carry the streams on."""
    import torch

    model, kwargs = engine.online.auto.model, engine.online.auto.kwargs
    step = engine.streaming.chunk_samples
    caches = [online_batch.new_cache(model, kwargs, engine.streaming.batched()) for _ in range(n)]
    span = max(step, audio.size - rounds * step)
    starts = [(k * 7 * step) % span for k in range(n)]
    kinds = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    same = {k: 0 for k in kinds}
    spent = {k: 0.0 for k in kinds}
    errors: dict[str, str] = {}
    device = "cuda" if engine.device.startswith("cuda") else "cpu"
    for r in range(rounds):
        chunks = [audio[a + r * step:a + (r + 1) * step] for a in starts]
        before = copy.deepcopy(caches)
        reference = None
        for kind, dtype in kinds.items():
            if kind in errors:
                continue
            mine = caches if dtype is None else copy.deepcopy(before)
            context = torch.autocast(device_type=device, dtype=dtype) if dtype else torch.inference_mode()
            try:
                t = time.perf_counter()
                with context:  # the tokens are read on the host: the time is the GPU's too
                    tokens = online_batch.step(model, kwargs, list(zip(chunks, mine)))
            except Exception as err:  # noqa: BLE001 - a precision the device lacks is a row, not the end
                errors[kind] = repr(err)
                continue
            spent[kind] += time.perf_counter() - t
            if dtype is None:
                reference = tokens
            same[kind] += sum(a == b for a, b in zip(tokens, reference or tokens))
    return [{"precision": kind, "streams": n, "rounds": rounds,
             "chunks/s": n * rounds / spent[kind] if spent[kind] else None,
             "tokens as fp32": same[kind] / (n * rounds) if kind not in errors else None,
             "error": errors.get(kind, "")} for kind in kinds]


def compiled(engine: FunasrEngine, audio: np.ndarray, n: int, rounds: int) -> dict:
    """The step's encoder and decoder layers through ``torch.compile`` (inductor: fused kernels,
    fewer launches), beside eager. Each layer is its own module, hence its own graph (66 of them)."""
    import torch

    eager = (online_batch._encoder_layer, online_batch._decoder_layer)
    limit = torch._dynamo.config.cache_size_limit
    try:
        torch._dynamo.config.cache_size_limit = 512
        online_batch._encoder_layer = torch.compile(eager[0], dynamic=False)
        online_batch._decoder_layer = torch.compile(eager[1], dynamic=False)
        t = time.perf_counter()
        online(engine, audio, n, batched=True, rounds=2, warm=3)  # compiles the shapes a round meets
        row = online(engine, audio, n, batched=True, rounds=rounds)
        row |= {"mode": "batched, torch.compile", "compile s": time.perf_counter() - t}
    except Exception as err:  # noqa: BLE001 - recorded: the eager rows stand
        row = {"streams": n, "mode": "batched, torch.compile", "error": repr(err)[:500]}
        traceback.print_exc()
    finally:
        online_batch._encoder_layer, online_batch._decoder_layer = eager
        torch._dynamo.config.cache_size_limit = limit
    return row


def utterances(clips: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` utterances cut from the clips in turn, PIECE_S long each in turn."""
    audio = np.concatenate(clips)
    out, at = [], 0
    for k in range(count):
        n = PIECE_S[k % len(PIECE_S)] * 16_000
        if at + n > audio.size:
            at = 0
        out.append(audio[at:at + n])
        at += n
    return out


def finals(engine: FunasrEngine, pieces: list[np.ndarray], batches: list[int], budget: Budget) -> list[dict]:
    rows: list[dict] = []
    for b in batches:
        if budget.left() < 20:
            rows.append({"batch": b, "skipped": "budget"})
            continue
        rate = offline_throughput(engine, pieces, b)
        rows.append({"batch": b, "utterances": len(pieces), "audio s / wall s": rate})
    measured = [r for r in rows if "audio s / wall s" in r]
    alone = next((r["audio s / wall s"] for r in measured if r["batch"] == 1), None)
    for r in measured if alone else []:
        r["× batch 1"] = r["audio s / wall s"] / alone
    return rows


def _section(name: str, results: dict, budget: Budget, run) -> None:
    """One section: its rows, or its error (the run goes on to the next)."""
    if budget.left() < 15:
        results[name] = {"skipped": "budget"}
        return
    t = time.perf_counter()
    try:
        results[name] = run()
    except Exception as err:  # noqa: BLE001 - a section's failure is reported with the others' rows
        traceback.print_exc()
        results[name] = {"error": repr(err)[:1000]}
    print(f"[{name}: {time.perf_counter() - t:.0f} s, {budget.left():.0f} s of the budget left]", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true",
                    help="tiny models on the CPU, few streams: the script itself")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new measurements after this")
    ap.add_argument("--out", default=time.strftime("gpu-%Y-%m-%d"))
    ap.add_argument("--streams", type=int, nargs="+", help="online batched N (default 1 16 64 256 1024)")
    args = ap.parse_args()
    budget = Budget(args.budget_s)

    import torch

    device = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    size = "tiny" if args.dry_run else "full"
    streams = args.streams or ([1, 4] if args.dry_run else [1, 16, 64, 256, 1024])
    side = 4 if args.dry_run else 64  # the size of the side-by-side comparisons
    rounds = 3 if args.dry_run else 20
    info = {"device": torch.cuda.get_device_name() if device == "cuda" else "CPU", "torch": torch.__version__,
            "size": size, "dry_run": args.dry_run}
    print(f"device {info['device']}, torch {info['torch']}, {size} models", flush=True)

    root = Path(tempfile.mkdtemp(prefix="courtscribe-gpu-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # random weights: nothing to keep
    t = time.perf_counter()
    write_all(root, size=size)
    engine = FunasrEngine(root / "paraformer-zh-streaming", root / "paraformer-zh", root / "ct-punc",
                          device=device)
    info["models_s"] = time.perf_counter() - t
    info["params_m"] = {name: sum(p.numel() for p in m.auto.model.parameters()) / 1e6
                        for name, m in (("online", engine.online), ("offline", engine.offline))}
    clips = [decode(DATA / "zh-smoke" / name).channel(0) for name in CLIPS]
    audio = clips[0]
    results: dict = {"info": info}

    def sweep() -> list[dict]:
        rows = [online(engine, audio, 8 if not args.dry_run else 2, batched=False, rounds=rounds)]
        for n in streams:
            if budget.left() < 30:
                rows.append({"streams": n, "mode": "batched", "skipped": "budget"})
                continue
            few = rounds if n <= 64 else max(3, rounds // 4)  # a round of 1024 streams takes seconds
            rows.append(online(engine, audio, n, batched=True, rounds=few))
        alone = rows[0]["chunks/s"]
        for r in rows:
            if "chunks/s" in r:
                r["× one at a time"] = r["chunks/s"] / alone
        return rows

    _section("online", results, budget, sweep)
    _section("precision", results, budget, lambda: precision(engine, audio, side, max(3, rounds // 2)))
    pieces = utterances(clips, 16 if args.dry_run else 128)
    engine.transcribe_many([(pieces[0], 0)])  # the offline model's first call pays its allocations
    batches = [1, 4] if args.dry_run else [1, 16, 64]
    _section("finals", results, budget, lambda: finals(engine, pieces, batches, budget))
    if device == "cuda":
        _section("compiled", results, budget, lambda: [
            online(engine, audio, side, batched=True, rounds=rounds), compiled(engine, audio, side, rounds)])
    else:
        results["compiled"] = {"skipped": "compiled on a GPU only (minutes of compiling on a CPU)"}

    columns = {"online": ["streams", "mode", "rounds", "round p50 s", "round p95 s", "chunks/s",
                          "× one at a time", "real-time", "streams sustained", "MB kept / stream",
                          "MB peak / stream", "skipped"],
               "precision": ["precision", "streams", "rounds", "chunks/s", "tokens as fp32", "error"],
               "finals": ["batch", "utterances", "audio s / wall s", "× batch 1", "skipped"],
               "compiled": ["streams", "mode", "round p50 s", "round p95 s", "chunks/s", "compile s",
                            "error"]}
    for name, cols in columns.items():
        rows = results.get(name)
        print(f"\n{name}")
        print(table([{c: "" if r.get(c) is None else r[c] for c in cols} for r in rows], cols)
              if isinstance(rows, list) else rows)
    print(f"\nwrote {save(args.out, results)}")
    print("random weights: speed only, accuracy not measured")


if __name__ == "__main__":
    main()
