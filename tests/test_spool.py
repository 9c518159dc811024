"""Live writes that waited on disk (records/spool.py)."""
import json

from courtscribe.records.model import Role, Utterance
from courtscribe.records.spool import Spool


def test_a_waiting_line_the_store_refuses_for_good_is_told_not_only_logged(store, tmp_path):
    """The hearing was signed while a gateway still held a line on disk: the line goes to
    rejected.jsonl and the hearing's screens are told which line is not in the record."""
    store.create_hearing(actor="书记员甲", hearing_id="h-spool")
    store.close_hearing("h-spool", actor="书记员甲")
    store.sign("h-spool", by="书记员甲", role=Role.clerk)
    spool = Spool(tmp_path / "spool", store)
    late = Utterance(id="c0-late", start_ms=0, end_ms=1000, speaker="审判长", text="还有一句。")
    spool.path.write_text(json.dumps({"op": "final", "hearing_id": "h-spool", "utterance": late.model_dump(mode="json"),
                                      "voice": None}) + "\n")
    told = []
    spool.on_refused = lambda hid, uid, why: told.append((hid, uid, why))
    assert spool.flush() == 0 and spool.pending == 0
    [(hid, uid, why)] = told
    assert (hid, uid) == ("h-spool", "c0-late") and "signed" in why
    assert json.loads(spool.rejected.read_text())["utterance"]["text"] == "还有一句。"


def test_two_replicas_sharing_the_spool_lose_no_line_while_one_replays(store, tmp_path):
    """Both gateway replicas spool into one folder while the database is away; one replays as the other
    appends: the line appended meanwhile is neither replaced away nor stored twice."""
    import threading

    store.create_hearing(actor="书记员甲", hearing_id="h-two")
    said = [Utterance(id=f"c0-{i}", start_ms=i * 1000, end_ms=i * 1000 + 900, speaker="审判长", text=f"第{i}句。")
            for i in range(3)]
    a, b = Spool(tmp_path / "spool", store), Spool(tmp_path / "spool", store)
    a.path.write_text("".join(json.dumps({"op": "final", "hearing_id": "h-two", "utterance": u.model_dump(mode="json"),
                                          "voice": None}) + "\n" for u in said[:2]))
    replaying, go_on = threading.Event(), threading.Event()
    first = store.machine_final

    def slow(*args, **kw):  # b's replay is under way when a's next line comes
        replaying.set()
        go_on.wait(10)
        return first(*args, **kw)
    store.machine_final = slow
    replay = threading.Thread(target=b.flush)
    replay.start()
    assert replaying.wait(10)
    appended = threading.Thread(target=a.machine_final, args=("h-two", said[2]))
    appended.start()
    go_on.set()
    replay.join(10)
    appended.join(10)
    store.machine_final = first
    a.flush()
    assert [u.id for u in store.record("h-two").utterances] == ["c0-0", "c0-1", "c0-2"] and a.pending == 0


def test_a_live_line_the_store_refuses_at_once_is_kept_on_disk_too(store, tmp_path):
    """Not only a spooled line: one the store refuses as it comes (here the hearing was signed) is
    kept in rejected.jsonl beside the error the clerk is told, never only in memory."""
    import pytest

    from courtscribe.records.reading import Locked

    store.create_hearing(actor="书记员甲", hearing_id="h-now")
    store.close_hearing("h-now", actor="书记员甲")
    store.sign("h-now", by="书记员甲", role=Role.clerk)
    spool = Spool(tmp_path / "spool", store)
    with pytest.raises(Locked):
        spool.machine_final("h-now", Utterance(id="c0-1", start_ms=0, end_ms=900, speaker="审判长", text="补一句。"))
    kept = json.loads(spool.rejected.read_text())
    assert kept["utterance"]["text"] == "补一句。" and "signed" in kept["refused"] and spool.pending == 0


def test_a_line_the_disk_refuses_too_waits_in_memory_and_reaches_the_store_in_order(store, tmp_path, monkeypatch):
    """A full disk: the database cannot write and neither can the spool. The lines the clerk was
    told are not stored yet wait in memory, after what waits on disk, and reach the record in order."""
    import errno

    from sqlalchemy.exc import OperationalError

    store.create_hearing(actor="书记员甲", hearing_id="h-full")
    spool = Spool(tmp_path / "spool", store)
    said = [Utterance(id=f"c0-{i}", start_ms=i * 1000, end_ms=i * 1000 + 900, speaker="审判长", text=f"第{i}句。")
            for i in range(3)]
    real_final, real_append = store.machine_final, Spool._append

    def full(*args, **kw):
        raise OperationalError("INSERT", {}, Exception("database or disk is full"))

    def no_space(self, entry, path=None):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store, "machine_final", full)
    spool.machine_final("h-full", said[0])  # the disk still takes this one
    monkeypatch.setattr(Spool, "_append", no_space)
    assert spool.machine_final("h-full", said[1]) is False and spool.machine_final("h-full", said[2]) is False
    assert spool.pending == 3 and spool.flush() == 0  # still full: nothing lost, nothing out of order
    monkeypatch.setattr(store, "machine_final", real_final)
    monkeypatch.setattr(Spool, "_append", real_append)
    stored = []
    spool.on_flushed = lambda hid, n: stored.append(n)
    assert spool.flush() == 3 and spool.pending == 0 and sum(stored) == 3
    assert [u.id for u in store.record("h-full").utterances] == ["c0-0", "c0-1", "c0-2"]
