"""Uploads (server/transcriptions.py): what a recording is heard with."""
import asyncio
from types import SimpleNamespace

from courtscribe.access.scopes import AccessRole, Principal
from courtscribe.server.transcriptions import _heard_as


def test_a_hearings_recording_is_heard_with_its_vocabulary_in_its_courtroom(store):
    """As the hearing's live lines are: its parties, 案由 and hotwords bias the engine and its
    courtroom's front ends clean the audio, whoever uploads it (a court-wide clerk has no room)."""
    store.create_hearing(actor="书记员甲", hearing_id="h-upload", court="北京市朝阳区人民法院", courtroom="第三法庭",
                         case_number="(2026)京0105民初88号", cause="民间借贷纠纷", parties=["张三", "李四"])
    store.set_hotwords("h-upload", ["借条"], actor="书记员甲")
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(records=store))))
    court_clerk = Principal(token_id="t1", role=AccessRole.clerk, name="赵书记员", court="北京市朝阳区人民法院")
    words, room = asyncio.run(_heard_as(request, "h-upload", court_clerk))
    assert {"张三", "李四", "民间借贷纠纷", "借条"} <= set(words) and room == "第三法庭"
    room_clerk = Principal(token_id="t2", role=AccessRole.clerk, name="钱书记员", court="北京市朝阳区人民法院",
                           room="第一法庭")
    assert asyncio.run(_heard_as(request, "h-new", room_clerk)) == ([], "第一法庭")  # a hearing the job makes
    assert asyncio.run(_heard_as(request, None, None)) == ([], None)


def test_every_openai_answer_shows_a_stretch_that_was_not_recognized():
    """json, text and verbose_json say what the record says: a gap to replay, never a silent hole."""
    import json

    from courtscribe.records import Hearing, Pipeline, Record, Source, Utterance
    from courtscribe.records.model import UNRECOGNIZED
    from courtscribe.server.transcriptions import respond

    record = Record(hearing=Hearing(id="x", language="zh"), source=Source(path="a.wav", duration_ms=20_000,
                                                                         sample_rate=16000, channels=1),
                    pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="none"),
                    utterances=[Utterance(id="u1", start_ms=0, end_ms=2000, speaker="说话人1", text="现在开庭。"),
                                Utterance(id="u2", start_ms=2000, end_ms=13000, speaker="说话人1", text="",
                                          flags=[UNRECOGNIZED]),
                                Utterance(id="u3", start_ms=13000, end_ms=15000, speaker="说话人1", text="Objection."),
                                Utterance(id="u4", start_ms=15000, end_ms=16000, speaker="说话人1", text="Sustained.")])
    plain = json.loads(respond(record, "json").body)["text"]
    assert plain == "现在开庭。〔00:02–00:13 未能识别，请核听录音〕Objection. Sustained."
    assert respond(record, "text").body.decode() == plain + "\n"
    verbose = json.loads(respond(record, "verbose_json").body)
    assert verbose["text"] == plain and "未能识别" in verbose["segments"][1]["text"]
    assert verbose["segments"][1]["flags"] == [UNRECOGNIZED]
