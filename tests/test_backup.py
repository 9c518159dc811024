"""`courtscribe backup` as court IT runs it (a real subprocess) on a data folder a server is
writing: a live SQLite store whose latest finals are still in its WAL file."""
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from courtscribe.access.audit import AuditLog
from courtscribe.config import Settings
from courtscribe.records.model import Role, Token, Utterance
from courtscribe.records.service import Records
from courtscribe.records.store import RecordStore
from courtscribe.seal import load_key

pytestmark = pytest.mark.slow


def cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "courtscribe", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "COURTSCRIBE_DATA_DIR": str(data), **env})


def line(uid: str, text: str, start: int) -> Utterance:
    return Utterance(id=uid, start_ms=start, end_ms=start + 900, channel=0, speaker="说话人1",
                     text=text, confidence=0.9, language="zh",
                     tokens=[Token(text=text[:1], start_ms=start, end_ms=start + 200, prob=0.9)])


def open_store(data: Path) -> tuple[RecordStore, Records]:
    settings = Settings(data_dir=data)
    key = load_key(settings)
    store = RecordStore(settings.records_url, key)
    return store, Records(store, AuditLog(settings.audit_file, key), data / "archive")


def hearing(store: RecordStore, hid: str, *texts: str) -> None:
    store.create_hearing(actor="书记员", hearing_id=hid)
    store.open_hearing(hid, actor="书记员")
    for i, text in enumerate(texts):
        store.machine_final(hid, line(f"{hid}-{i}", text, i * 1000))


def texts(db: Path, hid: str) -> list[str]:
    """A hearing's lines in a database file, read as a plain copy of that file alone reads."""
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT text FROM utterances WHERE hearing_id = ? "
                                "ORDER BY start_ms", (hid,))
            return [r[0] for r in rows]
        except sqlite3.OperationalError:  # no tables at all: the schema itself is still in the WAL
            return []


@pytest.fixture
def live(tmp_path):
    """A data folder as a running server leaves it: a signed hearing checkpointed into the database
    file (and anchored in the audit log), then finals only in the WAL, the store still open."""
    data = tmp_path / "data"
    store, records = open_store(data)
    hearing(store, "h-signed", "开庭。")
    store.close_hearing("h-signed", actor="书记员")
    records.sign("h-signed", by="王法官", role=Role.presiding_judge)
    store.close()  # the last connection: SQLite checkpoints the WAL into the file
    store, _ = open_store(data)
    hearing(store, "h-wal", "原告陈述诉讼请求。", "被告答辩。")
    yield data
    store.close()


def test_a_backup_holds_the_finals_still_in_the_wal_and_restores(live, tmp_path):
    plain = tmp_path / "plain.db"
    shutil.copy(live / "courtscribe.db", plain)  # what `cp courtscribe.db` kept: no WAL finals
    assert texts(plain, "h-wal") == [] and texts(plain, "h-signed") == ["开庭。"]

    out = cli(live, "backup", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    copy = tmp_path / "b"
    assert texts(copy / "courtscribe.db", "h-wal") == ["原告陈述诉讼请求。", "被告答辩。"]
    assert "ok: h-signed, " in out.stdout
    assert "ok: h-wal, 4 ledger entries, chain intact" in out.stdout
    assert "the backup verifies: 2 hearings and the audit log" in out.stdout
    assert f"it is the file {live / 'keys' / 'seal.key'}; keep a copy of it apart" in out.stdout
    assert not (copy / "keys").exists()

    manifest = json.loads((copy / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    assert {"courtscribe.db", "audit/audit.jsonl", "audit/audit.jsonl.head"} <= set(listed)
    for rel, f in listed.items():
        body = (copy / rel).read_bytes()
        assert f["bytes"] == len(body) and f["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["verified"] == {"hearings": {"h-signed": "ok", "h-wal": "ok"},
                                    "audit_log": "ok"}
    assert manifest["created_at"]

    # restore on a new box: the backup copied back, the seal key from where it was kept apart
    restored = tmp_path / "restored"
    shutil.copytree(copy, restored, ignore=shutil.ignore_patterns("manifest.json"))
    (restored / "keys").mkdir()
    shutil.copy(live / "keys" / "seal.key", restored / "keys" / "seal.key")
    for hid in ("h-signed", "h-wal"):
        checked = cli(restored, "records", "verify", hid)
        assert checked.returncode == 0 and "chain intact" in checked.stdout, checked.stderr
    assert "被告答辩。" in cli(restored, "records", "export", "h-wal", "-f", "txt").stdout
    audit = cli(restored, "audit", "verify")
    assert audit.returncode == 0 and "chain intact" in audit.stdout, audit.stdout


def test_the_seal_key_only_with_with_key_and_owner_only(live, tmp_path):
    out = cli(live, "backup", str(tmp_path / "b"), "--with-key")
    assert out.returncode == 0, out.stderr
    key = tmp_path / "b" / "keys" / "seal.key"
    assert key.read_bytes() == (live / "keys" / "seal.key").read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600 and (tmp_path / "b").stat().st_mode & 0o777 == 0o700
    assert "keys/seal.key is in this backup" in out.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "keys/seal.key" in {f["path"] for f in manifest["files"]}


def test_files_being_written_are_copied_as_far_as_they_are_whole(live, tmp_path):
    ch0 = live / "archive" / "h-wal" / "ch0"
    ch0.mkdir(parents=True)
    (ch0 / "000000000000.flac").write_bytes(b"fLaC finished")
    (ch0 / "000000060000.flac.tmp").write_bytes(b"half encoded")
    (ch0 / "000000120000.part").write_bytes(b"\x00\x01" * 100)  # left by a crash: nobody holds it
    spool = live / "spool"
    spool.mkdir()
    (spool / "spool.lock").write_text("")
    (spool / "pending.jsonl").write_text('{"op": "final", "n": 1}\n{"op": "fin')  # being appended
    with open(ch0 / "000000180000.part", "ab") as recording:
        recording.write(b"\x00\x02" * 50)
        fcntl.flock(recording, fcntl.LOCK_EX)  # as archive.ChannelRecorder holds its open segment
        out = cli(live, "backup", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    copy = tmp_path / "b"
    assert (copy / "archive/h-wal/ch0/000000000000.flac").read_bytes() == b"fLaC finished"
    assert (copy / "archive/h-wal/ch0/000000120000.part").stat().st_size == 200
    assert not (copy / "archive/h-wal/ch0/000000060000.flac.tmp").exists()
    assert not (copy / "archive/h-wal/ch0/000000180000.part").exists()
    assert not (copy / "spool/spool.lock").exists()
    assert (copy / "spool/pending.jsonl").read_text() == '{"op": "final", "n": 1}\n'
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["left_out"] == {
        "archive/h-wal/ch0/000000180000.part": "being recorded: back up again after the hearing"}
    assert "left out archive/h-wal/ch0/000000180000.part" in out.stdout


def test_a_hearing_that_does_not_verify_fails_the_backup(live, tmp_path):
    with sqlite3.connect(live / "courtscribe.db") as conn:  # rewritten behind the ledger's back
        conn.execute("UPDATE utterances SET text = '被告认可。' WHERE id = 'h-wal-1'")
    out = cli(live, "backup", str(tmp_path / "b"))
    assert out.returncode == 1
    assert "BROKEN" in out.stderr
    assert "h-wal: utterance h-wal-1 differs from what the ledger records" in out.stderr
    assert "the backup does NOT verify: 1 of 2 hearings broken" in out.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    verified = manifest["verified"]["hearings"]
    assert verified["h-signed"] == "ok"
    assert verified["h-wal"].startswith("utterance h-wal-1 differs")


def test_a_postgresql_store_that_does_not_answer_is_said_before_anything_is_written(tmp_path):
    dest = tmp_path / "b"
    url = "postgresql+psycopg://cs:s3cret@127.0.0.1:1/courtscribe"
    out = cli(tmp_path / "data", "backup", str(dest), COURTSCRIBE_DATABASE_URL=url)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: the record store at postgresql+psycopg://cs:***@127.0.0.1:1/"
                                 "courtscribe does not answer")
    assert "s3cret" not in out.stderr and not dest.exists()


def test_refuses_a_folder_in_use_or_inside_the_data_folder(live, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("an older backup")
    for dest, said in ((tmp_path / "used", "is not an empty folder"),
                       (live / "backup", "is inside the data folder")):
        out = cli(live, "backup", str(dest))
        assert out.returncode == 2 and said in out.stderr, out.stderr
    assert not (live / "backup").exists()
