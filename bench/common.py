"""Helpers shared by the benchmarks: the test-data manifest, CER scoring, result tables and JSON."""
from __future__ import annotations

import json
import os
import platform
import socket
import time
from pathlib import Path

import jiwer

from courtscribe.text import for_scoring

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COURTSCRIBE_TEST_DATA", ROOT.parent / "shared" / "data"))
OUT = Path(os.environ.get("COURTSCRIBE_BENCH_OUT", ROOT / "bench" / "out"))  # tests write elsewhere


def scored_clips() -> list[dict]:
    rows = [json.loads(line) for line in (DATA / "zh-smoke" / "manifest.jsonl").read_text().splitlines() if line]
    return [r | {"path": DATA / "zh-smoke" / r["audio"]} for r in rows if r["scored"]]


def cer(refs: list[str], hyps: list[str]) -> float:
    """Corpus CER (total edits / total reference characters) on the scoring form of the text."""
    return float(jiwer.cer([for_scoring(r) for r in refs], [for_scoring(h) for h in hyps]))


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    line = " | ".join(c.ljust(widths[c]) for c in columns)
    out = [line, "-|-".join("-" * widths[c] for c in columns)]
    out += [" | ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(out)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def save(name: str, payload: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"bench": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": platform.platform(),
               "cpus": os.cpu_count(), **payload}
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2))
    return path


def free_port() -> int:
    """A loopback port nobody listens on now, for a server the benchmark starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
