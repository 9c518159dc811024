"""After a crash, audio past a channel's last line is a flagged line to replay (records/recovery.py)."""
import numpy as np

from courtscribe.records import archive, recovery
from courtscribe.records.model import SPEAKER_UNSURE, UNRECOGNIZED, Role, Utterance
from courtscribe.records.store import RecordStore


def _part(root, hearing_id: str, channel: int, start_ms: int, seconds: float) -> None:
    """A segment the recorder had synced when the server was killed."""
    folder = root / hearing_id / f"ch{channel}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{start_ms:012d}.part").write_bytes(np.full(int(seconds * 16000), 800, np.int16).tobytes())


def test_what_the_server_stopped_on_is_a_flagged_line_and_nothing_else_is(tmp_path):
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h")
    store.open_hearing("h", actor="书记员")
    store.machine_final("h", Utterance(id="c0-1", start_ms=0, end_ms=2000, channel=0, speaker="审判长",
                                       role=Role.presiding_judge, text="现在开庭。"))
    store.machine_final("h", Utterance(id="c1-1", start_ms=0, end_ms=4900, channel=1, speaker="原告",
                                       role=Role.plaintiff, text="我方请求判令被告还款。"))
    root = tmp_path / "archive"
    _part(root, "h", 0, 0, 5.0)  # the judge went on talking for 3 s when the server was killed
    _part(root, "h", 1, 0, 5.0)  # the plaintiff's line covers the channel's audio
    _part(root, "h", 2, 0, 4.0)  # a seat nobody's line is on: all of it, and still waiting in the spool:
    waiting = [("h", Utterance(id="c2-1", start_ms=0, end_ms=1000, channel=2, speaker="被告", text="嗯。"))]
    finished = archive.recover(root)
    written = recovery.unheard(store, root, finished, waiting)
    assert [(u.channel, u.start_ms, u.end_ms, u.speaker) for u in written] == [(0, 2000, 5000, "审判长"),
                                                                              (2, 1000, 4000, "被告")]
    line = store.utterance("h", "c0-recovered-2000")
    assert line.flags == [UNRECOGNIZED, recovery.INTERRUPTED, SPEAKER_UNSURE] and line.unrecognized
    assert "00:02–00:05 未能识别，请核听录音" in line.printed_text and store.verify("h").ok
    assert recovery.unheard(store, root, finished, []) == []  # once: the line now covers it
