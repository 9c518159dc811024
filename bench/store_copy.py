"""How long `courtscribe copy-store` takes a court's records: a store of N hearings of M lines each
(finals, a clerk's corrections, a signature: the ledger a real hearing leaves), copied SQLite →
SQLite, SQLite → PostgreSQL (a box moving into a cluster) and PostgreSQL → SQLite (a backup of a
cluster's store), each verified hearing by hearing as the command does.

    .venv/bin/python bench/store_copy.py [--hearings 20 --lines 300]

PostgreSQL: Debian's, started on loopback for the run (as the tests do). Writes
bench/out/store_copy.json.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import save, table  # noqa: E402

from courtscribe.access.audit import AuditLog  # noqa: E402
from courtscribe.config import Settings  # noqa: E402
from courtscribe.records.model import Role, Token, Utterance  # noqa: E402
from courtscribe.records.service import Records  # noqa: E402
from courtscribe.records.store import RecordStore  # noqa: E402
from courtscribe.seal import load_key  # noqa: E402
from courtscribe.transfer import copy_store  # noqa: E402


def court(data: Path, hearings: int, lines: int) -> tuple[str, bytes, list[dict]]:
    """A box's data folder with ``hearings`` signed hearings of ``lines`` lines, one in ten corrected."""
    settings = Settings(data_dir=data)
    key = load_key(settings)
    store = RecordStore(settings.records_url, key)
    records = Records(store, AuditLog(settings.audit_file, key), data / "archive")
    for h in tqdm(range(hearings), desc="building the store", unit="hearing"):
        hid = f"h{h:03d}"
        store.create_hearing(actor="书记员", hearing_id=hid, case_number=f"（2026）京0105民初{1000 + h}号",
                             court="北京市朝阳区人民法院", parties=["张三", "李四"])
        store.add_participant(hid, actor="书记员", role=Role.presiding_judge, name="王法官", channel=0)
        store.open_hearing(hid, actor="书记员")
        for i in range(lines):
            text = f"第{i}句：原告请求被告归还借款人民币十万元及利息。"
            store.machine_final(hid, Utterance(id=f"{hid}-{i}", start_ms=i * 4000, end_ms=i * 4000 + 3500,
                                               channel=0, speaker="说话人1", text=text, confidence=0.9,
                                               tokens=[Token(text=text[:2], start_ms=i * 4000,
                                                             end_ms=i * 4000 + 300, prob=0.9)]))
            if i % 10 == 0:
                store.edit(hid, f"{hid}-{i}", text=text + "（更正）", actor="书记员")
        store.close_hearing(hid, actor="书记员")
        records.sign(hid, by="王法官", role=Role.presiding_judge)
    url = store.url
    store.close()
    return url, key, AuditLog(settings.audit_file, key).entries()


def timed(way: str, source: str, target: str, key: bytes, anchors: list[dict]) -> dict:
    started = time.perf_counter()
    made = copy_store(source, target, seal_key=key, anchors=anchors)
    seconds = time.perf_counter() - started
    rows = sum(made.rows.values())
    return {"way": way, "hearings": len(made.hearings), "rows": rows, "verified": made.ok,
            "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hearings", type=int, default=20)
    ap.add_argument("--lines", type=int, default=300)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="store-copy-"))
    try:
        source, key, anchors = court(root / "data", args.hearings, args.lines)
        runs = [timed("SQLite → SQLite", source, f"sqlite:///{root / 'copy.db'}", key, anchors)]
        if (found := _postgres()) is not None:
            pg, pg_home = found
            try:
                moved = pg.createdb("moved")
                runs.append(timed("SQLite → PostgreSQL", source, moved, key, anchors))
                runs.append(timed("PostgreSQL → SQLite", moved, f"sqlite:///{root / 'backup.db'}", key, anchors))
            finally:
                pg.stop()
                shutil.rmtree(pg_home, ignore_errors=True)
        columns = ["way", "hearings", "rows", "verified", "seconds", "rows_per_s"]
        print(table(runs, columns))
        path = save("store_copy", {"hearings": args.hearings, "lines": args.lines, "runs": runs})
        print(f"wrote {path}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _postgres():
    """Debian's PostgreSQL on loopback (tests/conftest.py's) in a folder of its own that its account
    may enter, and that folder; None where it is not installed."""
    import glob
    import os

    from conftest import PgServer

    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if initdb is None:
        print("PostgreSQL is not installed: its rows are left out")
        return None
    home = Path(tempfile.mkdtemp(prefix="store-copy-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    return PgServer(Path(os.path.realpath(initdb)).parent, home), home


if __name__ == "__main__":
    main()
