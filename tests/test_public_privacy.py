"""What the court ordered off the air stays out of the public version, and an overlay that connects
as the court blanks the captions is dark from its first message."""
from __future__ import annotations

import types
from contextlib import asynccontextmanager, contextmanager

from courtscribe.access.audit import AuditLog
from courtscribe.records.model import Role, Utterance
from courtscribe.records.service import Records
from courtscribe.records.store import RecordStore
from courtscribe.redaction.public import WITHHELD

SAID = [("u1", 0, 3000, "下面核对当事人身份。"), ("u2", 4000, 9000, "被告人在看守所内与他人合谋的细节涉及国家秘密。"),
        ("u3", 12000, 15000, "继续法庭调查。")]


def _hearing(tmp_path) -> RecordStore:
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h", public=True, title="公开庭审")
    store.open_hearing("h", actor="书记员")
    for uid, a, b, text in SAID:
        store.machine_final("h", Utterance(id=uid, start_ms=a, end_ms=b, speaker="审判长", role=Role.presiding_judge,
                                           text=text))
    return store


def test_what_was_said_while_captions_were_ordered_off_is_left_out_of_the_public_version(tmp_path):
    store = _hearing(tmp_path)
    store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 3500, "reason": "不公开内容"})
    store.note("h", actor="审判长", kind="captions", payload={"blanked": False, "at_ms": 11000, "reason": None})
    records = Records(store, AuditLog(tmp_path / "audit.log"), tmp_path)
    for fmt in ("txt", "srt", "vtt", "json"):
        public = records.export("h", fmt, public=True).data.decode()
        assert "国家秘密" not in public and WITHHELD in public, fmt
        assert "下面核对当事人身份" in public and "继续法庭调查" in public, fmt
    record, log = records.public_version("h")
    assert [u.text for u in record.utterances] == [SAID[0][3], WITHHELD, SAID[2][3]]
    assert [(r.category, r.utterance_id, r.words) for r in log] == [("withheld", "u2", SAID[1][3])]
    assert "国家秘密" in records.export("h", "txt").data.decode()  # the record itself keeps every word


def test_a_correction_of_a_withheld_line_is_withheld_too(tmp_path):
    """The clerk corrects a line said while the captions were off: the correction log of the public
    version (and its 补正申请 after signing) must not print what was said there."""
    store = _hearing(tmp_path)
    store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 3500, "reason": "不公开内容"})
    store.note("h", actor="审判长", kind="captions", payload={"blanked": False, "at_ms": 11000, "reason": None})
    store.edit("h", "u2", "被告人在看守所内与他人合谋的细节涉及国家机密。", actor="书记员", reason="听错")
    store.edit("h", "u3", "继续进行法庭调查。", actor="书记员")
    store.close_hearing("h", actor="书记员")
    store.sign("h", by="审判长", role=Role.presiding_judge)
    store.request_correction("h", by="被告人", text="看守所内没有合谋", reason="记错", utterance_id="u2")
    records = Records(store, AuditLog(tmp_path / "audit.log"), tmp_path)
    for fmt in ("txt", "json", "docx"):
        public = records.export("h", fmt, public=True).data
        text = public.decode() if fmt != "docx" else _docx_text(public)
        assert "看守所" not in text and "国家" not in text and "听错" not in text, fmt
        assert "继续进行法庭调查" in text, fmt  # a correction of a line on the air stays
    _, log = records.public_version("h")
    assert {r.utterance_id for r in log if r.category == "withheld"} == {"u2"}


def _docx_text(data: bytes) -> str:
    import io

    import docx

    doc = docx.Document(io.BytesIO(data))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def _captions_app(tmp_path, store):
    """The caption router alone, on ``store``, with a hub of its own (``services.live.hub``)."""
    from fastapi import FastAPI

    from courtscribe.access.guard import Access
    from courtscribe.config import Settings
    from courtscribe.server import captions
    from courtscribe.streaming.hub import Hub

    services = types.SimpleNamespace(records=store, settings=Settings(caption_delay_ms=0), archive=tmp_path, live=None)

    @asynccontextmanager
    async def life(app):
        hub = Hub()
        services.live = types.SimpleNamespace(hub=hub, publish=hub.publish)
        yield
    app = FastAPI(lifespan=life)
    app.state.access = Access(tokens=None, audit=AuditLog(tmp_path / "audit.log"))
    app.state.access.attach(store)
    app.state.services = services
    app.include_router(captions.router)
    return app, services


@contextmanager
def _overlay(tmp_path, store):
    """An overlay's socket on the caption router, and how to publish a hearing event to it."""
    from starlette.testclient import TestClient

    app, services = _captions_app(tmp_path, store)
    with TestClient(app) as client, client.websocket_connect("/v1/hearings/h/captions") as ws:
        assert ws.receive_json()["blanked"] is False
        hub = services.live.hub
        yield ws, lambda event: client.portal.call(lambda: hub.publish("h", event))


def test_an_overlay_connecting_as_the_court_blanks_is_dark_from_its_first_message(tmp_path, monkeypatch):
    """The switch lands between the socket's access checks and its subscription: its hello says
    blanked, and a line said then is never sent."""
    from starlette.testclient import TestClient

    from courtscribe.server import captions
    from courtscribe.streaming.events import CaptionsSwitched, Endpoint, Final

    store = _hearing(tmp_path)
    app, services = _captions_app(tmp_path, store)
    real = captions.blanks
    calls = []

    def blanks_then_switch(store_, hid, held_ms=0):
        found = real(store_, hid, held_ms)
        if not calls:  # the clerk's POST /captions/switch lands right after the first read
            at = store_.now_ms(hid)
            store_.note(hid, actor="审判长", kind="captions", payload={"blanked": True, "at_ms": at, "reason": "不公开"})
            services.live.hub.publish(hid, CaptionsSwitched(hearing_id=hid, blanked=True, at_ms=at, reason="不公开"))
        calls.append(hid)
        return found
    monkeypatch.setattr(captions, "blanks", blanks_then_switch)
    with TestClient(app) as client, client.websocket_connect("/v1/hearings/h/captions") as ws:
        assert ws.receive_json() == {"type": "subscribed", "hearing_id": "h", "blanked": True}
        at = store.now_ms("h") + 1000
        said = Utterance(id="u9", start_ms=at, end_ms=at + 2000, speaker="证人", role=Role.witness,
                         text="我在证人保护期间搬到了新的城市。")
        hub = services.live.hub
        client.portal.call(lambda: hub.publish("h", Endpoint(hearing_id="h", utterance_id="u9", channel=0,
                                                             end_ms=at + 2000)))
        client.portal.call(lambda: hub.publish("h", Final(hearing_id="h", utterance_id="u9", utterance=said)))
        client.portal.call(lambda: hub.publish("h", CaptionsSwitched(hearing_id="h", blanked=False, at_ms=at + 3000,
                                                                     reason=None)))
        message = ws.receive_json()
        assert message["type"] == "blank" and message["blanked"] is False  # nothing of u9 came before it


def test_an_overlay_goes_dark_when_the_switch_is_in_the_record_though_its_event_never_came(tmp_path, monkeypatch):
    """A switch made on another gateway whose event the bus lost: the overlay reads the record."""
    from starlette.testclient import TestClient

    from courtscribe.server import captions

    monkeypatch.setattr(captions, "SWITCH_CHECK_S", 0.05)
    store = _hearing(tmp_path)
    app, _ = _captions_app(tmp_path, store)
    with TestClient(app) as client, client.websocket_connect("/v1/hearings/h/captions") as ws:
        assert ws.receive_json()["blanked"] is False
        store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 100, "reason": "不公开"})
        assert ws.receive_json() == {"type": "blank", "blanked": True}


PARTS = [("n1", 0, 2500, "我的手机号是一三八。"), ("n2", 3200, 4500, "一二三四，"), ("n3", 5100, 6400, "五六七八。")]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch in "零一二三四五六七八九幺0123456789")


def test_a_number_read_out_with_pauses_between_its_parts_is_masked_in_the_public_version(tmp_path):
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="p", public=True)
    store.open_hearing("p", actor="书记员")
    for uid, a, b, text in PARTS:
        store.machine_final("p", Utterance(id=uid, start_ms=a, end_ms=b, speaker="证人", role=Role.witness, text=text))
    store.machine_final("p", Utterance(id="n4", start_ms=20_000, end_ms=21_000, speaker="证人", role=Role.witness,
                                       text="三号证据。"))  # long after: its own text, left as it is
    record, _ = Records(store, AuditLog(tmp_path / "audit.log"), tmp_path).public_version("p")
    assert _digits("".join(u.text for u in record.utterances[:3])) == ""
    assert record.utterances[3].text == "三号证据。"


def test_a_number_read_out_with_pauses_never_reaches_a_live_caption_whole_or_in_parts():
    from courtscribe.redaction.public import Choices
    from courtscribe.streaming.broadcast import PublicFeed
    from courtscribe.streaming.events import Endpoint, Final

    feed, shown = PublicFeed(Choices()), []
    for uid, a, b, text in PARTS:
        said = Utterance(id=uid, start_ms=a, end_ms=b, speaker="证人", role=Role.witness, text=text)
        for event in (Endpoint(hearing_id="p", utterance_id=uid, channel=0, end_ms=b),
                      Final(hearing_id="p", utterance_id=uid, utterance=said)):
            shown += [e.utterance.text for e in feed.public(event) if isinstance(e, Final)]
    assert "我的手机号是" in "".join(shown) and _digits("".join(shown)) == ""


def test_an_overlay_is_told_to_withdraw_its_lines_when_the_clerk_protects_a_name(tmp_path):
    """Lines already sent may wait on the overlay for a delayed broadcast, masked without the name."""
    from starlette.testclient import TestClient

    from courtscribe.streaming.events import CaptionsSwitched, RedactionChanged

    store = _hearing(tmp_path)
    app, services = _captions_app(tmp_path, store)
    with TestClient(app) as client, client.websocket_connect("/v1/hearings/h/captions") as ws:
        assert ws.receive_json()["type"] == "subscribed"
        hub = services.live.hub
        client.portal.call(lambda: hub.publish("h", RedactionChanged(hearing_id="h")))
        assert ws.receive_json() == {"type": "withdraw"}
        # a lift shows more, never less: what the overlay holds goes out as it is (withdrawn, it was
        # lost: the feed had counted it shown)
        client.portal.call(lambda: hub.publish("h", RedactionChanged(hearing_id="h", hides=False)))
        client.portal.call(lambda: hub.publish("h", CaptionsSwitched(hearing_id="h", blanked=True, at_ms=1,
                                                                     reason=None)))
        assert ws.receive_json()["type"] == "blank"  # and no withdraw before it


def _ended(feed, uid, start, end, text, speaker="证人", protected_words=()):
    from courtscribe.streaming.events import Endpoint, Final

    said = Utterance(id=uid, start_ms=start, end_ms=end, speaker=speaker, role=Role.witness, text=text)
    out = []
    for event in (Endpoint(hearing_id="p", utterance_id=uid, channel=0, end_ms=end),
                  Final(hearing_id="p", utterance_id=uid, utterance=said)):
        out += [(e.utterance.speaker, e.utterance.text) for e in feed.public(event) if isinstance(e, Final)]
    return out


def test_an_open_tail_goes_only_into_its_own_speakers_next_words_and_not_for_ever():
    """On a mixed channel the judge's number is never carried into the defendant's line; a tail
    nobody goes on from comes out (masked as what it is) when asked for after CARRY_MS."""
    from courtscribe.redaction.public import Choices
    from courtscribe.streaming.broadcast import PublicFeed

    feed = PublicFeed(Choices())
    shown = _ended(feed, "j1", 0, 2000, "案件编号是二零二三。", speaker="审判长")
    shown += _ended(feed, "d1", 3500, 4200, "对的。", speaker="被告")
    assert ("被告", "对的。") in shown and not any(who == "被告" and "二零" in text for who, text in shown)
    feed = PublicFeed(Choices())
    assert _ended(feed, "w1", 0, 2000, "他说的是三。")[0][1] == "他说的是"
    [(_, tail)] = [(e.utterance.speaker, e.utterance.text) for e in feed.release(0, "w1")]
    assert tail == "三。" and feed.release(0, "w1") == []


def test_a_protected_name_split_by_a_pause_never_reaches_a_caption():
    from courtscribe.redaction.public import Choices
    from courtscribe.streaming.broadcast import PublicFeed

    feed = PublicFeed(Choices(protected=("张三丰",)))
    shown = _ended(feed, "n1", 0, 1500, "证人张三") + _ended(feed, "n2", 2000, 2600, "丰。")
    text = "".join(t for _, t in shown)
    assert "三丰" not in text and "张三" not in text and "张某" in text


def test_what_the_broadcast_delay_held_when_the_court_blanked_is_out_of_the_public_version_too(tmp_path,
                                                                                                 monkeypatch):
    """The overlay dumps the last seconds it held when the court blanks (usually the words that made
    it blank): the switch's ledger entry says from when, and the public version leaves them out; so
    too a line said earlier whose final came within those seconds (finals come seconds after their
    words: the dump took it off the air before it ever aired)."""
    import datetime as dt

    from starlette.testclient import TestClient

    from courtscribe.db import utcnow

    minute_ago = utcnow() - dt.timedelta(minutes=1)
    with monkeypatch.context() as m:  # these lines' finals came long before the switch: they aired
        m.setattr("courtscribe.records.store.utcnow", lambda: minute_ago)
        store = _hearing(tmp_path)
    store.machine_final("h", Utterance(id="late", start_ms=3200, end_ms=3900, speaker="被告人", text="我不同意。"))
    app, services = _captions_app(tmp_path, store)
    services.settings = services.settings.model_copy(update={"caption_delay_ms": 3000})
    store.now_ms = lambda hid: 10_000  # the court blanks at 10 s of hearing time
    with TestClient(app) as client:
        assert client.post("/v1/hearings/h/captions/switch", json={"blanked": True}).status_code == 200
    [entry] = store.entries("h", kinds=("captions",))
    assert '"from_ms":7000' in entry.payload.replace(" ", "")
    record, _ = Records(store, AuditLog(tmp_path / "audit.log"), tmp_path).public_version("h")
    shown = {u.id: u.text for u in record.utterances}
    assert shown == {"u1": SAID[0][3], "u2": WITHHELD, "u3": WITHHELD, "late": WITHHELD}  # u2 ended at 9 s


def test_a_live_line_holds_what_may_still_become_words_the_clerk_hid():
    from courtscribe.redaction.public import Choices
    from courtscribe.streaming.broadcast import PublicFeed
    from courtscribe.streaming.events import Partial

    chosen = Choices(added={None: ("朝阳区实验小学三年级二班",)})
    feed = PublicFeed(chosen)
    text = "她的孩子平时就在朝阳区实验小学三"
    [shown] = feed.public(Partial(hearing_id="p", utterance_id="u1", channel=0, speaker="证人", role=None,
                                  start_ms=0, end_ms=3000, text=text, stable=len(text)))
    assert shown.text[:shown.stable] == "她的孩子平时就在" and "朝阳" not in shown.text


def test_what_was_being_said_when_the_court_blanked_stays_off_the_air_when_captions_come_back(tmp_path):
    """The court blanks mid-utterance and lights the captions again while the witness goes on: her
    utterance, cut into lines again from its start, aired what the blank had dumped. It stays off
    (as it is out of the archive feeds); the next utterance airs."""
    from courtscribe.streaming.events import CaptionsSwitched, Final, Partial

    with _overlay(tmp_path, _hearing(tmp_path)) as (ws, publish):
        publish(Partial(hearing_id="h", utterance_id="w1", channel=0, speaker="证人", role=Role.witness,
                        start_ms=20_000, end_ms=23_000, text="我住在幸福路十八", stable=0))
        publish(CaptionsSwitched(hearing_id="h", blanked=True, at_ms=23_500, reason="个人信息"))
        assert ws.receive_json()["blanked"] is True
        publish(CaptionsSwitched(hearing_id="h", blanked=False, at_ms=24_000, reason=None))
        assert ws.receive_json()["blanked"] is False
        said = Utterance(id="w1", start_ms=20_000, end_ms=30_000, speaker="证人", role=Role.witness,
                         text="请证人陈述，我住在幸福路十八号三单元，那天晚上我一直在家里看电视。")
        publish(Final(hearing_id="h", utterance_id="w1", utterance=said))
        after = Utterance(id="j2", start_ms=31_000, end_ms=33_000, speaker="审判长", role=Role.presiding_judge,
                          text="继续法庭调查。")
        publish(Final(hearing_id="h", utterance_id="j2", utterance=after))
        cue = ws.receive_json()
        assert cue["type"] == "cue" and cue["utterance_id"] == "j2", cue  # nothing of w1 came before it


def test_an_open_tail_said_while_captions_were_off_is_not_aired_with_the_words_after_them(tmp_path):
    """Said entirely in the dark, a sentence ending on a number (下降超50%: a number may go on) left
    its tail held for the speaker's next words; with captions back it aired glued to them, under
    their times (原告：50%每一天都要快乐哦)."""
    from courtscribe.streaming.events import CaptionsSwitched, Endpoint, Final, Partial

    with _overlay(tmp_path, _hearing(tmp_path)) as (ws, publish):
        publish(CaptionsSwitched(hearing_id="h", blanked=True, at_ms=38_300, reason="商业秘密"))
        assert ws.receive_json()["blanked"] is True
        dark = Utterance(id="f1", start_ms=45_800, end_ms=53_000, speaker="原告", role=Role.plaintiff,
                         text="目前工厂产量已下降超50%")
        publish(Partial(hearing_id="h", utterance_id="f1", channel=0, speaker="原告", role=Role.plaintiff,
                        start_ms=45_800, end_ms=52_000, text="目前工厂产量已下降超50%", stable=5))
        publish(Endpoint(hearing_id="h", utterance_id="f1", channel=0, end_ms=53_000))
        publish(Final(hearing_id="h", utterance_id="f1", utterance=dark))
        publish(CaptionsSwitched(hearing_id="h", blanked=False, at_ms=54_200, reason=None))
        assert ws.receive_json()["blanked"] is False
        after = Utterance(id="f2", start_ms=54_500, end_ms=56_000, speaker="原告", role=Role.plaintiff,
                          text="每一天都要快乐哦。")
        publish(Final(hearing_id="h", utterance_id="f2", utterance=after))
        cue = ws.receive_json()
        assert cue["type"] == "cue" and cue["utterance_id"] == "f2", cue
        assert "50" not in "".join(cue["lines"]) and cue["start_ms"] >= 54_200, cue


def test_an_overlay_that_reconnects_gets_the_lines_it_missed_but_none_the_court_blanked(tmp_path):
    """The studio's link drops: what the broadcast delay held and what was said meanwhile were lost.
    Reconnecting, the overlay says where its last aired line ended; the lines after it come, through
    the same masking and blanking as live ones (airing.js airs none twice)."""
    from starlette.testclient import TestClient

    store = _hearing(tmp_path)
    store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 3500, "reason": "不公开内容"})
    store.note("h", actor="审判长", kind="captions", payload={"blanked": False, "at_ms": 11000, "reason": None})
    app, _ = _captions_app(tmp_path, store)
    with TestClient(app) as client:
        with client.websocket_connect("/v1/hearings/h/captions?since_ms=1000") as ws:
            assert ws.receive_json()["type"] == "subscribed"
            cues = []
            while not cues or cues[-1]["utterance_id"] != "u3":
                cues.append(ws.receive_json())
    assert [c["utterance_id"] for c in cues][0] == "u1" and "u2" not in {c["utterance_id"] for c in cues}
    assert "".join(c["text"] for c in cues if c["utterance_id"] == "u3") == "继续法庭调查"
