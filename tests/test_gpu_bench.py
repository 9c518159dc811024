"""bench/gpu.py's dry run: the GPU measurement script works before a GPU is at hand (tiny
models on the CPU). What is checked is that every section ran and reported what it must, never
a speed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_script_runs_dry_on_the_cpu(tmp_path):
    env = {**os.environ, "COURTSCRIBE_BENCH_OUT": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--out", "dry"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "dry.json").read_text())
    assert result["info"]["dry_run"] and result["info"]["size"] == "tiny"

    online = result["online"]
    assert [(r["mode"], r["streams"]) for r in online] == [("one at a time", 2), ("batched", 1), ("batched", 4)]
    assert all(r["chunks/s"] > 0 and r["rounds"] == 3 and r["streams sustained"] >= 0 for r in online)

    precision = {r["precision"]: r for r in result["precision"]}
    assert set(precision) == {"fp32", "fp16", "bf16"}
    assert precision["fp32"]["tokens as fp32"] == 1.0  # fp32 against itself: the comparison is wired right
    for kind in ("fp16", "bf16"):  # a share of the chunks, or why this CPU could not run it
        share = precision[kind]["tokens as fp32"]
        assert (share is not None and 0.0 <= share <= 1.0) or precision[kind]["error"]

    assert "skipped" in result["compiled"]  # compiling is for the GPU
    finals = {r["batch"]: r for r in result["finals"]}
    assert set(finals) == {1, 4} and all(r["audio s / wall s"] > 0 for r in finals.values())
    assert finals[1]["× batch 1"] == 1.0


def test_the_gpu_wrapper_is_valid_shell():
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu.sh")]).returncode == 0
