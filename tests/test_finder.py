"""Finding hearings (records/finder.py), against SQLite and a real PostgreSQL server: by 案号 in
either bracket style, by party or participant, by words said (after a correction: the corrected
words), by status and date, a page at a time, never outside the asked scope."""
import datetime as dt
import uuid

import pytest

from courtscribe.records.finder import HearingFilter
from courtscribe.records.model import Participant, Role, Utterance
from courtscribe.records.store import RecordStore

BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def court(store) -> str:
    """A court of this test's own (the PostgreSQL database is shared by the session's tests)."""
    name = f"第{uuid.uuid4().hex[:6]}人民法院"
    for n, (day, status) in enumerate([(1, "signed"), (2, "closed"), (3, "scheduled")]):
        hid = f"{name}-{n}"
        store.create_hearing(actor="书记员", hearing_id=hid, court=name, courtroom="第一法庭", public=n == 1,
                             case_number=f"（2026）京0105民初{100 + n}号", cause="民间借贷纠纷", title=f"第{n}个庭审",
                             scheduled_at=dt.datetime(2026, 10, day, 23, 30, tzinfo=BEIJING),  # late: a UTC day earlier
                             participants=[Participant(role=Role.plaintiff, name=f"原告{n}号"),
                                           Participant(role=Role.defendant_agent, name=f"代理人{n}号")])
        if status != "scheduled":
            store.open_hearing(hid, actor="书记员")
            store.machine_final(hid, Utterance(id="u1", start_ms=0, end_ms=2000, speaker="审判长",
                                               text=f"被告应当归还借款{n}万元，利息另计"))
            store.close_hearing(hid, actor="书记员")
        if status == "signed":
            store.sign(hid, by="书记员", role=Role.clerk)
            store.request_correction(hid, by="张三", text="我说的是三万元", reason="笔录有误")
    return name


def ids(store, **kw) -> list[str]:
    return [h["id"] for h in store.find_hearings(HearingFilter(**kw))[1]]


def test_found_by_case_number_party_and_words_said(store, court):
    assert ids(store, court=court, q="(2026)京0105民初101号") == [f"{court}-1"]  # other bracket width
    assert ids(store, court=court, q="2026京0105民初102") == [f"{court}-2"]  # none at all
    assert ids(store, court=court, q="原告0号") == [f"{court}-0"]  # a participant
    assert ids(store, court=court, q="代理人2") == [f"{court}-2"]
    assert ids(store, court=court, q="借款1万元") == [f"{court}-1"]  # said in the hearing (FTS on SQLite)
    assert ids(store, court=court, q="利息") == [f"{court}-1", f"{court}-0"]  # two characters: scanned
    [hit] = store.find_hearings(HearingFilter(court=court, q="借款0万"))[1]
    assert hit["match"] == {"id": "u1", "start_ms": 0, "text": "被告应当归还借款0万元，利息另计"}
    assert ids(store, court=court, q="100%") == [] and ids(store, court=court, q='"') == []  # no wildcards


def test_a_corrected_line_is_found_by_its_new_words(store, court):
    hid = f"{court}-2"
    store.edit(hid, "u1", "被告应当归还本金八万元", actor="书记员")
    assert ids(store, court=court, q="本金八万") == [hid]
    assert ids(store, court=court, q="借款2万元") == []
    assert store.verify(hid).ok


def test_filters_pages_and_scope(store, court):
    total, page = store.find_hearings(HearingFilter(court=court), limit=2)
    assert total == 3 and [h["id"] for h in page] == [f"{court}-2", f"{court}-1"]  # newest first
    assert [h["id"] for h in store.find_hearings(HearingFilter(court=court), limit=2, offset=2)[1]] == [f"{court}-0"]
    assert ids(store, court=court, status="signed") == [f"{court}-0"]
    # 开庭时间 by the Beijing day: 2 Oct 23:30 in Beijing is 2 Oct, not the UTC day before
    assert ids(store, court=court, since=dt.date(2026, 10, 2), until=dt.date(2026, 10, 2)) == [f"{court}-1"]
    assert ids(store, court=court, since=dt.date(2026, 10, 2)) == [f"{court}-2", f"{court}-1"]
    assert ids(store, court=court, public_only=True) == [f"{court}-1"]
    assert ids(store, court=court, room="第二法庭") == []
    assert ids(store, court="别的法院", q="民间借贷") == []
    signed = store.find_hearings(HearingFilter(court=court, status="signed"))[1][0]
    assert signed["correction_requests"] == 1 and signed["parties"] == []
    assert {p["name"] for p in signed["participants"]} == {"原告0号", "代理人0号"}


def test_an_sqlite_without_the_index_still_finds_words_by_scanning(tmp_path):
    """Migration 0005 skips the FTS5 index where SQLite lacks FTS5 or its trigram tokenizer."""
    from sqlalchemy import text

    s = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    with s.engine.begin() as conn:
        for name in ("insert", "delete", "update"):
            conn.execute(text(f"DROP TRIGGER utterances_fts_{name}"))
        conn.execute(text("DROP TABLE utterance_fts"))
    s.create_hearing(actor="书记员", hearing_id="h1", court="甲院")
    s.machine_final("h1", Utterance(id="u1", start_ms=0, end_ms=1000, speaker="审判长", text="现在宣布开庭"))
    assert ids(s, court="甲院", q="宣布开庭") == ["h1"]
    s.close()
