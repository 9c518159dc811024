"""`courtscribe copy-store` as court IT runs it (a real subprocess): one box's SQLite store into a
real PostgreSQL, row for row, every signed record still verifying there and the store going on; a
PostgreSQL store backed up into SQLite and restored from it."""
import sqlite3
from pathlib import Path

import pytest

from courtscribe.access.audit import AuditLog
from courtscribe.access.tokens import Tokens
from courtscribe.config import Settings
from courtscribe.db import make_engine
from courtscribe.records.model import Pipeline, Role
from courtscribe.records.store import RecordStore
from courtscribe.seal import load_key
from courtscribe.transfer import TransferError, copy_rows, copy_store
from test_backup import cli, hearing, line, open_store

pytestmark = pytest.mark.slow


def court(data: Path) -> tuple[str, str]:
    """A box's data folder: a scheduled case with named participants, signed (anchored in the audit
    log); a second hearing still open; a recorder's token. Returns its store URL and the token."""
    store, records = open_store(data)
    store.create_hearing(actor="书记员", hearing_id="h-case", case_number="（2026）京0105民初1234号",
                         cause="民间借贷纠纷", court="北京市朝阳区人民法院", parties=["张三", "李四"],
                         courtroom="第三法庭", channels={0: Role.presiding_judge})
    store.add_participant("h-case", actor="书记员", role=Role.presiding_judge, name="王法官", channel=0)
    store.add_participant("h-case", actor="书记员", role=Role.plaintiff, name="张三")
    store.open_hearing("h-case", actor="书记员")
    store.machine_final("h-case", line("u1", "现在开庭。", 0))
    store.machine_final("h-case", line("u2", "原告陈述诉讼请求。", 2000))
    store.edit("h-case", "u2", text="原告陈述诉讼请求：归还借款十万元。", actor="书记员")
    store.close_hearing("h-case", actor="书记员")
    records.sign("h-case", by="王法官", role=Role.presiding_judge)
    hearing(store, "h-open", "被告答辩。")
    token = Tokens(store.engine).issue("recorder", name="第三法庭", court="北京市朝阳区人民法院",
                                       room="第三法庭").token
    url = store.url
    store.close()
    return url, token


def key_and_anchors(data: Path) -> tuple[bytes, list[dict]]:
    settings = Settings(data_dir=data)
    key = load_key(settings)
    return key, AuditLog(settings.audit_file, key).entries()


def same_records(a: str, b: str, key: bytes) -> None:
    one, other = RecordStore(a, key), RecordStore(b, key)
    try:
        assert [h["id"] for h in one.hearings()] == [h["id"] for h in other.hearings()]
        for h in one.hearings():
            assert one.record(h["id"]) == other.record(h["id"])
            assert [e.hash for e in one.entries(h["id"])] == [e.hash for e in other.entries(h["id"])]
    finally:
        one.close()
        other.close()


def test_a_box_moves_into_postgresql_and_its_records_verify_and_go_on_there(tmp_path, postgres):
    data = tmp_path / "data"
    source, token = court(data)
    target = postgres.createdb("moved")
    out = cli(data, "copy-store", target)
    assert out.returncode == 0, out.stderr
    assert "hearings 2" in out.stdout and "access_tokens 1" in out.stdout
    assert "ok: h-case" in out.stdout and "the copy verifies: 2 hearings" in out.stdout
    assert f"COURTSCRIBE_DATABASE_URL='{target}'" in out.stdout
    key, anchors = key_and_anchors(data)
    same_records(source, target, key)
    # the server's own check, on the new store, with the box's audit log: the signature holds
    verify = cli(data, "records", "verify", "h-case", COURTSCRIBE_DATABASE_URL=target)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # and it goes on: the recorder's token, new rows after the copied ids, the same chain
    moved = RecordStore(target, key)
    try:
        assert Tokens(moved.engine).verify(token).room == "第三法庭"
        moved.add_participant("h-open", actor="书记员", role=Role.defendant, name="李四")
        moved.create_hearing(actor="书记员", hearing_id="h-new", case_number="（2026）京0105民初1235号",
                             court="北京市朝阳区人民法院")
        moved.machine_final("h-open", line("h-open-9", "被告补充答辩。", 9000))
        assert all(moved.verify(h["id"], anchors).ok for h in moved.hearings())
    finally:
        moved.close()


def test_a_postgresql_store_backs_up_into_sqlite_and_restores_into_a_new_one(tmp_path, postgres):
    data = tmp_path / "data"
    first = postgres.createdb("court")
    assert cli(data, "copy-store", first, "--from", court(tmp_path / "box")[0]).returncode == 0
    key, _ = key_and_anchors(tmp_path / "box")
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "seal.key").write_bytes((tmp_path / "box" / "keys" / "seal.key").read_bytes())
    backup = tmp_path / "backup"
    out = cli(data, "backup", str(backup), COURTSCRIBE_DATABASE_URL=first)
    assert out.returncode == 0, out.stderr
    assert "the backup verifies: 2 hearings" in out.stdout
    assert sorted(p.name for p in backup.iterdir() if "courtscribe.db" in p.name) == ["courtscribe.db"]
    with sqlite3.connect(backup / "courtscribe.db") as conn:  # one file: nothing beside it to forget
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    restored = postgres.createdb("restored")
    out = cli(data, "copy-store", restored, "--from", f"sqlite:///{backup / 'courtscribe.db'}")
    assert out.returncode == 0, out.stderr
    same_records(first, restored, key)


def test_a_store_written_while_it_is_copied_is_not_copied_half(tmp_path):
    data = tmp_path / "data"
    source, _ = court(data)
    target = f"sqlite:///{tmp_path / 'copy.db'}"

    def a_final_meanwhile(_snapshot) -> None:  # the server, still running, takes one more final
        live = RecordStore(source)
        live.machine_final("h-open", line("late", "审判长：请安静。", 5000))
        live.close()
    with pytest.raises(TransferError, match="was written while it was copied .*ledger 1[0-9] → "):
        copy_rows(source, target, quiet=True, check=a_final_meanwhile)

    def a_source_joins_meanwhile(_snapshot) -> None:  # its models recorded: no ledger entry
        live = RecordStore(source)
        live.set_pipeline("h-open", Pipeline(engine="whisper", model="base", vad="silero", diarizer="cam++"))
        live.close()
    with pytest.raises(TransferError, match="written while it was copied .*hearings' contents"):
        copy_rows(source, target, quiet=True, check=a_source_joins_meanwhile)
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (0,)
    key, anchors = key_and_anchors(data)
    made = copy_store(source, target, seal_key=key, anchors=anchors)  # stopped: now it copies
    assert made.ok and made.rows["utterances"] == 4


def test_refused_a_store_that_is_not_empty_the_same_store_and_an_older_schema(tmp_path):
    data = tmp_path / "data"
    source, _ = court(data)
    other = tmp_path / "other"
    taken, _ = court(other)
    out = cli(data, "copy-store", taken)
    assert out.returncode == 2 and "is not empty (" in out.stderr and "Traceback" not in out.stderr
    out = cli(data, "copy-store", source)
    assert out.returncode == 2 and "is the store being copied" in out.stderr
    old = tmp_path / "old.db"
    with sqlite3.connect(Path(source.split("///", 1)[1])) as live, sqlite3.connect(old) as copy:
        live.backup(copy)
        copy.execute("UPDATE alembic_version SET version_num = '0004'")
    out = cli(data, "copy-store", f"sqlite:///{tmp_path / 'new.db'}", "--from", f"sqlite:///{old}")
    assert out.returncode == 2 and "has schema revision 0004" in out.stderr
    out = cli(data, "copy-store", f"sqlite:///{tmp_path / 'new.db'}", "--from",
              f"sqlite:///{tmp_path / 'none.db'}")
    assert out.returncode == 2 and "there is no record store at" in out.stderr
    (tmp_path / "notes.txt").write_text("not a database")
    out = cli(data, "copy-store", f"sqlite:///{tmp_path / 'new.db'}", "--from",
              f"sqlite:///{tmp_path / 'notes.txt'}")
    assert out.returncode == 2 and "cannot be read" in out.stderr and "Traceback" not in out.stderr


def test_a_target_that_is_not_new_is_refused_untouched(tmp_path):
    """A backup given as the target by mistake, another application's database: refused before
    anything is made or changed in them (a backup's file still matches its manifest)."""
    data = tmp_path / "data"
    court(data)
    taken, _ = court(tmp_path / "other")
    backup = Path(taken.split("///", 1)[1])
    before = {p.name: p.read_bytes() for p in backup.parent.iterdir() if p.is_file()}
    out = cli(data, "copy-store", taken)
    assert out.returncode == 2 and "is not empty (" in out.stderr
    assert {p.name: p.read_bytes() for p in backup.parent.iterdir() if p.is_file()} == before
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    out = cli(data, "copy-store", f"sqlite:///{other}")
    assert out.returncode == 2 and "already holds tables (orders)" in out.stderr
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["orders"]


def test_without_the_seal_key_the_copy_says_its_seals_were_not_checked(tmp_path):
    source, _ = court(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"  # a shell without the server's settings
    out = cli(elsewhere, "copy-store", f"sqlite:///{tmp_path / 'copy.db'}", "--from", source)
    assert out.returncode == 0, out.stderr
    assert "seals NOT checked: no seal key here" in out.stderr
    assert not (elsewhere / "keys").exists()  # no key is made by a copy


def test_a_hearing_broken_in_the_source_is_said_so_in_the_copy(tmp_path):
    data = tmp_path / "data"
    source, _ = court(data)
    engine = make_engine(source)
    with engine.begin() as conn:  # a line rewritten behind the ledger's back
        conn.exec_driver_sql("UPDATE utterances SET text = '被告认可。' WHERE id = 'h-open-0'")
    engine.dispose()
    out = cli(data, "copy-store", f"sqlite:///{tmp_path / 'copy.db'}")
    assert out.returncode == 1
    assert "BROKEN: h-open: utterance h-open-0 differs" in out.stderr
    assert "(as in the source: copied as it is)" in out.stderr
    assert "ok: h-case" in out.stdout


def test_a_database_that_does_not_answer_is_one_line(tmp_path):
    source, _ = court(tmp_path / "data")
    out = cli(tmp_path / "data", "copy-store", "postgresql+psycopg://cs:s3cret@127.0.0.1:1/none")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "the copy into postgresql+psycopg://cs:***@127.0.0.1:1/none failed" in out.stderr
    assert "s3cret" not in out.stderr


def test_the_store_a_running_server_serves_is_not_copied_from_under_it(tmp_path):
    """Court IT forgot to stop the server: refused, said why; once it is stopped, copied."""
    from conftest import start_server

    proc, _ = start_server(tmp_path)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    try:
        out = cli(tmp_path / "data", "copy-store", target)
        assert out.returncode == 2 and "a courtscribe server is serving from" in out.stderr, out.stderr
        assert not (tmp_path / "copy.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = cli(tmp_path / "data", "copy-store", target)
    assert out.returncode == 0 and "the copy verifies" in out.stdout, out.stderr
