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
