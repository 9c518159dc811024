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
