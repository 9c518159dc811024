"""Finding hearings and printing the 笔录: search latency over a court's hearings (SQLite, FTS5
index vs the scan it falls back to) and PDF/OFD/DOCX render time and size for a long record.

    .venv/bin/python bench/records_print.py [--hearings 200] [--lines 40]

Prints a table and writes bench/out/records_print.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench.common import save, table  # noqa: E402
from courtscribe.records import formats  # noqa: E402
from courtscribe.records.finder import HearingFilter  # noqa: E402
from courtscribe.records.model import Participant, Role, Utterance  # noqa: E402
from courtscribe.records.store import RecordStore  # noqa: E402

SAID = "原告请求被告归还借款本金十万元及利息，被告对借款事实无异议，但认为利息约定过高，请求法庭依法调整。"


def fill(store: RecordStore, hearings: int, lines: int) -> None:
    for h in range(hearings):
        hid = f"h{h:05d}"
        store.create_hearing(actor="bench", hearing_id=hid, court="甲院", case_number=f"（2026）京0105民初{h + 1}号",
                             participants=[Participant(role=Role.plaintiff, name=f"原告{h}")])
        for i in range(lines):
            store.machine_final(hid, Utterance(id=f"u{i}", start_ms=i * 5000, end_ms=i * 5000 + 4000, speaker="审判长",
                                               text=f"第{h}号庭审第{i}句。{SAID}"))


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hearings", type=int, default=200)
    ap.add_argument("--lines", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore(f"sqlite:///{tmp}/r.db")
        t = time.perf_counter()
        fill(store, args.hearings, args.lines)
        ingest = time.perf_counter() - t
        rows = []
        for label, q in (("case number", f"2026京0105民初{args.hearings // 2}号"), ("party", f"原告{args.hearings // 3}"),
                         ("words said (one hearing)", f"第{args.hearings // 4}号庭审第3句"),
                         ("words said (every hearing)", "利息约定过高"), ("nothing", "不存在的说法")):
            s, (total, _) = timed(lambda: store.find_hearings(HearingFilter(court="甲院", q=q), limit=20))
            rows.append({"query": label, "index": "FTS5", "total": total, "ms": s * 1000})
        with store.engine.begin() as conn:  # the scan an SQLite without FTS5 falls back to
            for name in ("insert", "delete", "update"):
                conn.execute(text(f"DROP TRIGGER utterances_fts_{name}"))
            conn.execute(text("DROP TABLE utterance_fts"))
        for label, q in (("words said (one hearing)", f"第{args.hearings // 4}号庭审第3句"), ("nothing", "不存在的说法")):
            s, (total, _) = timed(lambda: store.find_hearings(HearingFilter(court="甲院", q=q), limit=20))
            rows.append({"query": label, "index": "scan", "total": total, "ms": s * 1000})
        print(f"{args.hearings} hearings × {args.lines} lines stored in {ingest:.1f} s")
        print(table(rows, ["query", "index", "total", "ms"]))
        record = store.record("h00000")
        big = record.model_copy(update={"utterances": [u.model_copy(update={"id": f"x{k}-{u.id}"})
                                                       for k in range(10) for u in record.utterances]})
        printed = []
        for fmt in ("pdf", "ofd", "docx"):
            s, data = timed(lambda: formats.render(big, fmt), repeat=3)
            printed.append({"format": fmt, "lines": len(big.utterances), "s": s, "KiB": len(data) / 1024})
        print(table(printed, ["format", "lines", "s", "KiB"]))
        path = save("records_print", {"hearings": args.hearings, "lines": args.lines, "ingest_s": ingest,
                                      "search": rows, "print": printed})
        print(f"wrote {path}")
        store.close()


if __name__ == "__main__":
    main()
