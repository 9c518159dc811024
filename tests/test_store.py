"""The record store's rules, each against SQLite and a real PostgreSQL server."""
import datetime as dt
import uuid

import pytest
from sqlalchemy import text

from courtscribe.records.model import (CROSSTALK_NOTE, CROSSTALK_UNCHECKED, FINAL_AFTER_EDIT,
                                       UNRECOGNIZED, ZH_TZ, Role, Token, Utterance, UtteranceStatus)
from courtscribe.records.reading import Named
from courtscribe.records.store import ChangedMeanwhile, Conflict, Locked, NotFound, RecordError, RecordStore


def line(uid, text, start=0, end=1000, channel=0, speaker="说话人1", role=None):
    return Utterance(id=uid, start_ms=start, end_ms=end, channel=channel, speaker=speaker, role=role, text=text,
                     tokens=[Token(text=text[:1], start_ms=start, end_ms=min(end, start + 200), prob=0.9)],
                     confidence=0.9, language="zh")


@pytest.fixture
def hearing(store):
    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid, case_number=f"(2026)京0105民初{uuid.uuid4().int % 10000}号",
                         cause="民间借贷纠纷", court="北京市朝阳区人民法院", courtroom="第三法庭", title="张三诉李四",
                         channels={0: Role.presiding_judge, 1: Role.plaintiff_agent})
    store.open_hearing(hid, actor="书记员甲")
    return hid


def test_sqlite_runs_in_wal_mode(tmp_path):
    s = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"


def _source_in_another_process(url: str, hearing_id: str, channel: int, n: int, barrier) -> None:
    s = RecordStore(url)
    barrier.wait(30)  # both join the (new) hearing at the same moment: one creates it, one joins
    s.join_live(hearing_id, actor=f"channel {channel}")
    for k in range(n):
        s.machine_final(hearing_id, line(f"p{channel}-{k}", f"第{k}句", start=k * 1000, end=k * 1000 + 900,
                                         channel=channel))
    s.close()


def test_two_processes_open_and_append_to_one_hearing_without_forking_its_ledger(store):
    """Two gateway replicas (processes) take the first two sources of a new hearing at once and
    store their finals, SQLite included: one hearing, one ledger chain, no line lost."""
    import multiprocessing

    url, hid = store.engine.url.render_as_string(hide_password=False), f"h-{uuid.uuid4().hex[:8]}"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_source_in_another_process, args=(url, hid, ch, 40, barrier)) for ch in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    record = store.record(hid)
    assert len(record.utterances) == 80 and store.verify(hid).ok


def test_a_final_becomes_a_line_with_its_tokens(store, hearing):
    store.machine_final(hearing, line("c0-a-0001", "现在开庭。", role=Role.presiding_judge, speaker="审判长"))
    [u] = store.record(hearing).utterances
    assert (u.text, u.status, u.speaker_label, u.machine_text) == ("现在开庭。", UtteranceStatus.final, "审判长", None)
    assert u.tokens[0].text == "现" and store.verify(hearing).ok


def test_a_human_edit_wins_over_a_later_final_and_the_machine_text_is_kept(store, hearing):
    store.machine_final(hearing, line("u1", "现在开停"))
    store.edit(hearing, "u1", "现在开庭。", actor="书记员甲", reason="同音字")
    store.machine_final(hearing, line("u1", "现在开停了", end=1500))  # a late re-decode of the same line
    [u] = store.record(hearing).utterances
    assert u.text == "现在开庭。" and u.machine_text == "现在开停了" and u.status is UtteranceStatus.edited
    assert u.end_ms == 1500  # times and tokens still come from the machine
    [c] = store.record(hearing).corrections
    assert (c.before, c.after, c.by, c.reason) == ("现在开停", "现在开庭。", "书记员甲", "同音字")


def test_an_edit_before_the_final_arrives_is_not_lost(store, hearing):
    store.edit(hearing, "u2", "原告代理人陈述诉讼请求。", actor="书记员甲", channel=1, start_ms=5000, end_ms=6000)
    store.machine_final(hearing, line("u2", "原告代理人陈述诉讼请", start=5100, end=7000, channel=1))
    [u] = store.record(hearing).utterances
    assert u.text == "原告代理人陈述诉讼请求。" and u.machine_text == "原告代理人陈述诉讼请"
    assert (u.start_ms, u.end_ms, u.channel) == (5100, 7000, 1)
    assert u.flags == [FINAL_AFTER_EDIT]  # the final says otherwise: it waits for her look
    store.confirm(hearing, "u2", actor="书记员甲")
    assert store.record(hearing).utterances[0].flags == []
    assert store.verify(hearing).ok


def test_a_correction_made_from_text_the_line_no_longer_holds_is_refused_and_writes_nothing(store, hearing):
    """She began correcting the partial 原告张三; its final came in while she typed, then another screen
    corrected the line: each save from what she saw would hide words nobody looked at."""
    store.machine_final(hearing, line("u5", "原告张山称被告至今未还款。"))
    with pytest.raises(ChangedMeanwhile) as err:
        store.edit(hearing, "u5", "原告张三", actor="书记员甲", base="原告张山")
    assert err.value.current == "原告张山称被告至今未还款。" and err.value.status == 409
    store.edit(hearing, "u5", "原告张三称被告至今未还款。", actor="书记员乙", base="原告张山称被告至今未还款。")
    with pytest.raises(ChangedMeanwhile):
        store.edit(hearing, "u5", "原告张三称被告至今未还钱。", actor="书记员甲", base="原告张山称被告至今未还款。")
    store.edit(hearing, "u5", "原告张三称被告至今未还款。", actor="书记员甲", base="原告张山称被告至今未还款。")  # the same: a retry
    store.edit(hearing, "u6", "好的。", actor="书记员甲", base="好", channel=0, start_ms=5000, end_ms=5500)  # no line yet
    c = next(c for c in store.record(hearing).corrections if c.utterance_id == "u5")
    assert (c.before, c.after, c.by) == ("原告张山称被告至今未还款。", "原告张三称被告至今未还款。", "书记员乙")
    assert store.verify(hearing).ok


def test_a_final_that_says_more_than_the_corrected_partial_is_kept_for_the_clerks_look(store, hearing):
    """She fixed 原告张三称 while it was a partial; the final goes on (被告至今未还款): her text stands, the
    final's words are kept beside it and the line is flagged until she edits it again."""
    store.edit(hearing, "u3", "原告张三称", actor="书记员甲", channel=0, start_ms=0, end_ms=1500)
    store.machine_final(hearing, line("u3", "原告张山称被告至今未还款。", start=0, end=4000))
    [u] = store.record(hearing).utterances
    assert (u.text, u.machine_text, u.flags) == ("原告张三称", "原告张山称被告至今未还款。", [FINAL_AFTER_EDIT])
    second = store.split(hearing, "u3", 2, actor="书记员甲")  # a cut is no look: the first half keeps it
    assert [u.flags for u in store.record(hearing).utterances if u.id in ("u3", second)] == [[FINAL_AFTER_EDIT], []]
    assert store.verify(hearing).ok
    store.edit(hearing, "u4", "好的。", actor="书记员甲", channel=0, start_ms=5000, end_ms=5500)
    store.machine_final(hearing, line("u4", "好的。", start=5000, end=5500))  # the same: nothing to look at
    assert next(x for x in store.record(hearing).utterances if x.id == "u4").flags == []


def test_a_speaker_set_by_the_clerk_survives_diarization_relabels(store, hearing):
    """…and the live path is told the label the record keeps (the screens show that, not the relabel)."""
    assert store.machine_final(hearing, line("u3", "我方请求判令被告还款。", speaker="说话人2")) is None
    store.assign_speaker(hearing, "u3", actor="书记员甲", speaker="原告代理人", role=Role.plaintiff_agent,
                         participant="陈律师")
    kept = Named("原告代理人", Role.plaintiff_agent, "陈律师")
    assert store.relabel(hearing, "u3", speaker="说话人3") == kept
    assert store.machine_final(hearing, line("u3", "我方请求判令被告还款。", speaker="说话人4")) == kept
    [u] = store.record(hearing).utterances
    assert u.speaker == "原告代理人" and u.role is Role.plaintiff_agent and u.speaker_label == "原告代理人陈律师"
    assert store.verify(hearing).ok


def test_a_speaker_is_given_only_to_a_line_the_record_has(store, hearing):
    """A line still being spoken has no row: a speaker given to it made an empty line at 00:00."""
    with pytest.raises(NotFound, match="still being spoken"):
        store.assign_speaker(hearing, "u9", actor="书记员甲", speaker="原告", role=Role.plaintiff)
    assert store.record(hearing).utterances == [] and store.verify(hearing).ok


def test_a_control_character_from_any_writer_prints_as_a_visible_mark(store, hearing):
    """The CLI passes a clerk's text straight through: a pasted \\x0b made the DOCX refuse to render
    (and with it the package); every entry's texts are made printable where all writes pass."""
    from courtscribe.records import formats

    store.machine_final(hearing, line("u1", "原话。"))
    store.edit(hearing, "u1", "改\x0b后", actor="书记员甲", reason="粘贴\x01")
    store.interruption(hearing, actor="书记员甲", kind="paused", at_ms=10, reason="休庭\x0c")
    record = store.record(hearing)
    assert record.utterances[0].text == "改〔?〕后" and record.interruptions[0].reason == "休庭〔?〕"
    for fmt in ("docx", "pdf", "ofd", "txt"):
        assert formats.render_bytes(record, fmt)
    assert store.verify(hearing).ok


def test_a_second_close_from_another_screen_keeps_the_closing_time(store, hearing):
    store.close_hearing(hearing, actor="书记员甲")
    closed = store.record(hearing).hearing.closed_at
    store.close_hearing(hearing, actor="书记员乙")
    assert store.record(hearing).hearing.closed_at == closed and store.status(hearing) == "closed"


def test_a_machine_relabel_applies_when_no_person_chose(store, hearing):
    store.machine_final(hearing, line("u4", "好的。", speaker="说话人1"))
    assert store.relabel(hearing, "u4", speaker="说话人2") is None  # held as written
    assert store.record(hearing).utterances[0].speaker == "说话人2"


def test_confirmed_text_is_kept_against_a_later_final(store, hearing):
    store.machine_final(hearing, line("u5", "被告是否到庭？"))
    store.confirm(hearing, "u5", actor="书记员甲")
    store.machine_final(hearing, line("u5", "被告是否到停"))
    u = store.record(hearing).utterances[0]
    assert u.text == "被告是否到庭？" and u.status is UtteranceStatus.confirmed
    with pytest.raises(NotFound):
        store.confirm(hearing, "no-such-line", actor="书记员甲")


def test_sign_off_locks_the_record_and_only_correction_requests_follow(store, hearing):
    store.add_participant(hearing, actor="书记员甲", role=Role.presiding_judge, name="王法官", channel=0)
    store.machine_final(hearing, line("u6", "现在宣布闭庭。"))
    store.interruption(hearing, actor="书记员甲", kind="paused", at_ms=500, reason="休庭十分钟")
    with pytest.raises(Conflict):
        store.sign(hearing, by="王法官", role=Role.presiding_judge)  # still open: not read back yet
    with pytest.raises(Conflict):
        store.request_correction(hearing, by="陈律师", text="x", reason="y")  # before sign-off: edit instead
    store.close_hearing(hearing, actor="书记员甲")
    digest = store.sign(hearing, by="王法官", role=Role.presiding_judge).digest
    assert store.sign(hearing, by="书记员甲", role=Role.clerk).digest == digest
    with pytest.raises(Locked):
        store.edit(hearing, "u6", "改了", actor="书记员甲")
    with pytest.raises(Locked):
        store.machine_final(hearing, line("u7", "迟到的一句"))
    store.request_correction(hearing, by="陈律师", role=Role.plaintiff_agent, utterance_id="u6",
                             text="应为“现在宣布休庭”", reason="记录有误")
    record = store.record(hearing)
    assert record.utterances[0].text == "现在宣布闭庭。"  # the signed text stands
    assert [r.text for r in record.correction_requests] == ["应为“现在宣布休庭”"]
    assert [s.digest for s in record.signatures] == [digest, digest]
    assert record.interruptions[0].reason == "休庭十分钟"
    assert store.verify(hearing).ok


def test_a_hearings_times_read_back_in_utc_and_take_one_digest_whatever_zone_wrote_them(store):
    """SQLite keeps no zone and a PostgreSQL session in Beijing answers in +08:00: the record reads
    UTC from both, a time scheduled without a zone is the court's (Beijing), and the signed digest is
    the same whether the times are read from the store, from record.json or written in another zone."""
    import datetime as dt

    from sqlalchemy import event

    from courtscribe.records.layout import ZH_TZ, minute
    from courtscribe.records.ledger import record_digest
    from courtscribe.records.model import Record

    if store.engine.dialect.name == "postgresql":
        store.engine.dispose()
        event.listen(store.engine, "connect", lambda conn, _: conn.execute("SET TIME ZONE 'Asia/Shanghai'"))
    hid = f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=hid, scheduled_at=dt.datetime(2026, 12, 7, 9, 30))
    store.open_hearing(hid, actor="书记员甲")
    store.machine_final(hid, line("u1", "现在开庭。"))
    store.close_hearing(hid, actor="书记员甲")
    record = store.record(hid)
    hearing = record.hearing
    assert hearing.scheduled_at == dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.timezone.utc)
    assert minute(hearing.scheduled_at) == "2026年12月07日 09:30"
    times = [hearing.scheduled_at, hearing.started_at, hearing.closed_at]
    assert all(t is not None and t.utcoffset() == dt.timedelta(0) for t in times)
    digest = store.sign(hid, by="书记员甲", role=Role.clerk, read_back=store.digest(hid)).digest

    def written(zone):
        return {k: t.astimezone(zone) if zone else t.replace(tzinfo=None)
                for k, t in hearing if isinstance(t, dt.datetime)}
    for zone in (ZH_TZ, None):  # Beijing, or naive UTC as SQLite gave it before
        assert record_digest(record.model_copy(update={"hearing": hearing.model_copy(update=written(zone))})) == digest
    assert record_digest(Record.model_validate_json(store.record(hid).model_dump_json())) == digest
    assert store.verify(hid).ok


def test_a_record_changed_after_it_was_read_back_is_not_signed(store, hearing):
    """The clerk read back one record; a late line (or another screen's correction) came after: her
    signature is refused, not put under a record she did not read."""
    store.machine_final(hearing, line("u1", "现在开庭。"))
    store.close_hearing(hearing, actor="书记员甲")
    read_back = store.digest(hearing)
    store.machine_final(hearing, line("u2", "我还有话说。", 2000, 3000))  # the microphone was still on
    with pytest.raises(Conflict, match="read it back again"):
        store.sign(hearing, by="书记员甲", role=Role.clerk, read_back=read_back)
    assert store.status(hearing) == "closed"
    signed = store.sign(hearing, by="书记员甲", role=Role.clerk, read_back=store.digest(hearing))
    assert signed.digest == store.digest(hearing) and store.status(hearing) == "signed"


def test_a_tampered_line_and_a_tampered_ledger_entry_are_found(store, hearing):
    store.machine_final(hearing, line("u8", "我不认可这份证据。"))
    store.machine_final(hearing, line("u9", "请出示原件。", start=2000, end=3000))
    assert store.verify(hearing).ok
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE utterances SET text='我认可这份证据。' WHERE hearing_id=:h AND id='u8'"),
                     {"h": hearing})
    report = store.verify(hearing)
    assert not report.ok and "u8" in report.problem and report.broken_seq == 3
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE utterances SET text='我不认可这份证据。' WHERE hearing_id=:h AND id='u8'"),
                     {"h": hearing})
        conn.execute(text("UPDATE ledger SET actor='someone else' WHERE hearing_id=:h AND seq=3"), {"h": hearing})
    report = store.verify(hearing)
    assert not report.ok and report.broken_seq == 3 and "hash chain" in report.problem
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger WHERE hearing_id=:h AND seq=2"), {"h": hearing})
    assert store.verify(hearing).broken_seq == 3  # a removed entry breaks the next link


def test_entries_cut_from_the_end_of_a_signed_ledger_are_found(store, hearing):
    """Removing the last entries leaves a valid chain; the hearing's state gives the cut away."""
    store.machine_final(hearing, line("u10", "原告的诉讼请求不成立。"))
    store.close_hearing(hearing, actor="书记员甲")
    store.sign(hearing, by="王法官", role=Role.presiding_judge)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger WHERE hearing_id=:h AND kind='signed'"), {"h": hearing})
    report = store.verify(hearing)
    assert not report.ok and "missing from the end" in report.problem


def test_unknown_hearings_and_duplicate_ids(store, hearing):
    with pytest.raises(NotFound):
        store.record("no-such-hearing")
    with pytest.raises(Conflict):
        store.create_hearing(actor="x", hearing_id=hearing)


def test_joining_live_creates_opens_and_refuses_closed_hearings(store):
    hid = f"live-{uuid.uuid4().hex[:6]}"
    assert store.join_live(hid, actor="channel 0") is None  # this source opened it: its first sample is time 0
    opened = store.record(hid).hearing.started_at
    assert store.status(hid) == "open" and store.join_live(hid, actor="channel 1").replace(tzinfo=None) == \
        opened.replace(tzinfo=None)
    store.close_hearing(hid, actor="书记员甲")
    with pytest.raises(Locked):
        store.join_live(hid, actor="channel 0")


def test_a_transcribed_file_imports_as_a_hearing(store):
    from courtscribe.records.model import Hearing, Participant, Pipeline, Record, Source

    hid = f"file-{uuid.uuid4().hex[:6]}"
    record = Record(hearing=Hearing(id=hid, title="录音", case_number=f"(2026)测{uuid.uuid4().int % 9999}号"),
                    source=Source(duration_ms=9000, sample_rate=16000, channels=2),
                    pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="channel"),
                    participants=[Participant(name="王法官", role=Role.presiding_judge, channel=0)],
                    utterances=[line("u00001", "现在开庭。"), line("u00002", "原告到庭。", 2000, 3000, channel=1)])
    assert store.import_record(record, actor="courtscribe transcribe") == hid
    stored = store.record(hid)
    assert [u.text for u in stored.utterances] == ["现在开庭。", "原告到庭。"]
    assert stored.pipeline.model == "whisper-base" and stored.participants[0].name == "王法官"
    assert stored.hearing.case_number == record.hearing.case_number and store.verify(hid).ok
    worked = store.record(hid)  # exported again after a clerk's correction: her work would turn into the engine's
    store.edit(hid, "u00001", "现在开庭！", actor="书记员甲")
    with pytest.raises(RecordError, match="corrections, lines a person edited"):
        store.import_record(store.record(hid), actor="courtscribe transcribe", hearing_id=f"{hid}-again")
    store.import_record(worked, actor="courtscribe transcribe", hearing_id=f"{hid}-again")


def spoken(uid, text, start, channel=0):
    """A final whose characters were each spoken 200 ms apart (the engine's word times)."""
    tokens = [Token(text=ch, start_ms=start + 200 * i, end_ms=start + 200 * i + 180, prob=0.9) for i, ch in enumerate(text)]
    return Utterance(id=uid, start_ms=start, end_ms=start + 200 * len(text), channel=channel, speaker="审判长",
                     role=Role.presiding_judge, text=text, tokens=tokens, confidence=0.9, language="zh")


def test_a_line_split_in_two_and_merged_back_keeps_words_times_and_the_ledger(store, hearing):
    store.machine_final(hearing, spoken("c0-x-0001", "现在开庭。请原告陈述。", 1000))
    second = store.split(hearing, "c0-x-0001", 5, actor="书记员甲")  # before 请: the 6th character
    a, b = store.record(hearing).utterances
    assert (a.id, a.text, a.start_ms, a.end_ms) == ("c0-x-0001", "现在开庭。", 1000, 2000)
    assert (b.id, b.text, b.start_ms, b.end_ms) == (second, "请原告陈述。", 2000, 3200)  # cut at 请's own start
    assert "".join(t.text for t in a.tokens) == "现在开庭。" and "".join(t.text for t in b.tokens) == "请原告陈述。"
    assert b.role is Role.presiding_judge and a.status is b.status is UtteranceStatus.final  # no word changed
    assert store.verify(hearing).ok

    assert store.merge(hearing, second, "c0-x-0001", actor="书记员甲") == "c0-x-0001"  # the earlier line is kept
    [u] = store.record(hearing).utterances
    assert (u.text, u.start_ms, u.end_ms, len(u.tokens)) == ("现在开庭。请原告陈述。", 1000, 3200, 11)
    split, merge = store.record(hearing).corrections
    assert (split.field, split.before, split.after) == ("split", "现在开庭。请原告陈述。", "现在开庭。 ‖ 请原告陈述。")
    assert (merge.field, merge.after) == ("merge", "现在开庭。请原告陈述。")
    store.relabel(hearing, second, speaker="说话人2")  # the diarizer's late word on the line merged away
    assert [x.id for x in store.record(hearing).utterances] == ["c0-x-0001"] and store.verify(hearing).ok


def test_a_cut_or_a_join_answers_no_warning_only_a_look_does(store, hearing):
    """Split and merge change no word: a seat's bleed warning and a late final's other reading stay on
    the lines (printed, and the late final still holds up signing) until the clerk edits or confirms."""
    bleed = spoken("c2-z-0001", "我同意调解。我不同意。", 0, channel=2)
    store.machine_final(hearing, bleed.model_copy(update={"flags": [CROSSTALK_UNCHECKED]}))
    second = store.split(hearing, "c2-z-0001", 6, actor="书记员甲")
    assert all(CROSSTALK_NOTE in u.printed_text for u in store.record(hearing).utterances)
    store.edit(hearing, "c0-z-0002", "他还了钱。他没还。", actor="书记员甲", start_ms=10_000, end_ms=14_000)
    store.machine_final(hearing, spoken("c0-z-0002", "他还了五万。他没还完。", 10_000))
    store.split(hearing, "c0-z-0002", 5, actor="书记员甲")
    assert FINAL_AFTER_EDIT in store.utterance(hearing, "c0-z-0002").flags
    store.machine_final(hearing, spoken("c2-z-0003", "同意。", 20_000, channel=2))
    store.merge(hearing, second, "c2-z-0003", actor="书记员甲")  # one part not looked at: nor is the whole
    assert CROSSTALK_NOTE in store.utterance(hearing, second).printed_text
    store.confirm(hearing, second, actor="书记员甲")
    store.merge(hearing, "c2-z-0001", second, actor="书记员甲")  # the looked-at part's warning is answered
    assert CROSSTALK_NOTE in store.utterance(hearing, "c2-z-0001").printed_text
    store.confirm(hearing, "c2-z-0001", actor="书记员甲")
    store.close_hearing(hearing, actor="书记员甲")
    with pytest.raises(Conflict, match="heard otherwise"):
        store.sign(hearing, by="审判长甲", role=Role.presiding_judge)
    store.confirm(hearing, "c0-z-0002", actor="书记员甲")
    assert not any(CROSSTALK_NOTE in u.printed_text for u in store.record(hearing).utterances)
    assert store.verify(hearing).ok
    store.sign(hearing, by="审判长甲", role=Role.presiding_judge)


def test_split_and_merge_refuse_what_would_lose_words(store, hearing):
    store.machine_final(hearing, spoken("c0-y-0001", "休庭。", 0))
    store.machine_final(hearing, spoken("c1-y-0001", "同意。", 900, channel=1))
    store.edit(hearing, "c0-y-0002", "正在说的话", actor="书记员甲", start_ms=2000, end_ms=3000)  # no final yet
    with pytest.raises(Conflict):
        store.split(hearing, "c0-y-0002", 2, actor="书记员甲")  # a late final would land on half a line
    with pytest.raises(Conflict):
        store.merge(hearing, "c0-y-0001", "c1-y-0001", actor="书记员甲")  # two channels: replay could not play both
    with pytest.raises(RecordError):
        store.split(hearing, "c0-y-0001", 3, actor="书记员甲")  # nothing after the cut
    with pytest.raises(NotFound):
        store.merge(hearing, "c0-y-0001", "nope", actor="书记员甲")
    witness = spoken("c0-y-0003", "李四。", 4000).model_copy(update={"speaker": "证人", "role": Role.witness})
    store.machine_final(hearing, witness)
    gap = Utterance(id="c0-y-0004", start_ms=6000, end_ms=9000, speaker="审判长", role=Role.presiding_judge, text="",
                    flags=[UNRECOGNIZED, "empty"])
    store.machine_final(hearing, gap)
    with pytest.raises(Conflict, match="two mouths"):  # the witness's answer and the judge's next words
        store.merge(hearing, "c0-y-0003", "c0-y-0004", actor="书记员甲")
    with pytest.raises(Conflict, match="between"):  # two lines lie between: the text would go out of order
        store.merge(hearing, "c0-y-0001", "c0-y-0004", actor="书记员甲")
    overlap = spoken("c0-y-0005", "我反对。", 10_000).model_copy(update={"flags": ["overlap", "continues"]})
    store.machine_final(hearing, overlap)
    with pytest.raises(Conflict, match="not recognized"):  # merged, the gap to replay would vanish
        store.merge(hearing, "c0-y-0004", "c0-y-0005", actor="书记员甲")
    store.edit(hearing, "c0-y-0004", "请坐。", actor="书记员甲")  # typed from the audio: its flags stay
    store.merge(hearing, "c0-y-0004", "c0-y-0005", actor="书记员甲")
    merged = next(u for u in store.record(hearing).utterances if u.id == "c0-y-0004")
    assert merged.text == "请坐。我反对。" and merged.flags == [UNRECOGNIZED, "empty", "overlap"]  # its own turn
    store.close_hearing(hearing, actor="书记员甲")
    store.sign(hearing, by="书记员甲", role=Role.clerk)
    with pytest.raises(Locked):
        store.split(hearing, "c0-y-0001", 1, actor="书记员甲")
    assert store.verify(hearing).ok


def test_naming_a_voice_moves_all_its_machine_lines_and_is_undone_line_by_line(store, hearing):
    for uid, speaker in (("v1", "说话人1"), ("v2", "说话人2"), ("v3", "说话人1"), ("v4", "说话人1")):
        store.machine_final(hearing, line(uid, f"{uid}说的话。", speaker=speaker))
    store.assign_speaker(hearing, "v4", actor="书记员甲", speaker="证人", role=Role.witness)  # a person chose
    store.machine_final(hearing, line("w1", "另一个麦克风的说话人1。", channel=1, speaker="说话人1"))  # another voice
    changed = store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三", role=Role.plaintiff,
                               participant="张三")
    assert changed == ["v1", "v3"]
    speakers = {u.id: (u.speaker, u.role) for u in store.record(hearing).utterances}
    assert speakers == {"v1": ("原告 张三", Role.plaintiff), "v2": ("说话人2", None), "v3": ("原告 张三", Role.plaintiff),
                        "v4": ("证人", Role.witness), "w1": ("说话人1", None)}
    record = store.record(hearing)
    assert [(c.utterance_id, c.before, c.after) for c in record.corrections if c.field == "speaker"][-2:] == \
        [("v1", "说话人1", "原告 张三"), ("v3", "说话人1", "原告 张三")]  # one audited entry per line
    assert store.unname_voice(hearing, "说话人1", actor="书记员甲") == ["v1", "v3"]
    assert {u.id: u.speaker for u in store.record(hearing).utterances} == {
        "v1": "说话人1", "v2": "说话人2", "v3": "说话人1", "v4": "证人", "w1": "说话人1"}
    assert store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="被告 李四") == ["v1", "v3"]  # again
    assert store.verify(hearing).ok


def test_the_voices_a_channel_heard_and_whom_a_clerk_named_them_as(store, hearing):
    """What a reconnecting mixed source learns again (streaming/speakers.recall)."""
    for uid, start, speaker in (("v1", 0, "说话人1"), ("v2", 2000, "说话人2"), ("v3", 4000, "说话人1"),
                                ("v4", 6000, "说话人2")):
        store.machine_final(hearing, line(uid, f"{uid}。", start, start + 1500, speaker=speaker))
    store.machine_final(hearing, line("w1", "别的麦克风。", 0, 900, channel=1, speaker="说话人3"))
    store.assign_speaker(hearing, "v4", actor="书记员甲", speaker="证人", role=Role.witness)  # by hand: nobody's voice
    store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三", role=Role.plaintiff,
                     participant="张三")
    heard = {v.voice: (v.spans, v.named) for v in store.heard_voices(hearing, 0)}
    assert heard == {"说话人1": ([(4000, 5500), (0, 1500)], ("原告 张三", Role.plaintiff, "张三")),
                     "说话人2": ([(2000, 3500)], None)}
    store.unname_voice(hearing, "说话人1", actor="书记员甲")
    assert [(v.voice, v.named) for v in store.heard_voices(hearing, 0)] == [("说话人1", None), ("说话人2", None)]
    assert [(v.voice, v.spans) for v in store.heard_voices(hearing, 1)] == [("说话人3", [(0, 900)])]


def test_undoing_a_name_also_takes_it_off_the_lines_the_live_labeller_wrote_under_it(store, hearing):
    """The clerk named 说话人1 wrongly; two more of that voice's lines came in under the name before
    the undo: the undo puts all of them back to 说话人1, and only that channel's."""
    store.machine_final(hearing, line("v1", "一。", 0, 1000, speaker="说话人1"))
    store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三", role=Role.plaintiff,
                     participant="张三")
    for uid, start in (("v2", 2000), ("v3", 4000)):  # the running source labels the voice's next lines so
        named = line(uid, f"{uid}。", start, start + 1000, speaker="原告 张三", role=Role.plaintiff)
        store.machine_final(hearing, named.model_copy(update={"participant": "张三"}), voice="说话人1")
    store.machine_final(hearing, line("w1", "别的麦克风。", 0, 900, channel=1, speaker="原告 张三"), voice="说话人1")
    assert [(v.voice, v.spans[0], v.named) for v in store.heard_voices(hearing, 0)] == [
        ("说话人1", (4000, 5000), ("原告 张三", Role.plaintiff, "张三"))]
    assert store.unname_voice(hearing, "说话人1", actor="书记员甲", channel=0) == ["v1", "v2", "v3"]
    assert {u.id: (u.speaker, u.role) for u in store.record(hearing).utterances} == {
        "v1": ("说话人1", None), "v2": ("说话人1", None), "v3": ("说话人1", None), "w1": ("原告 张三", None)}
    assert [(v.voice, v.named) for v in store.heard_voices(hearing, 0)] == [("说话人1", None)]
    assert store.verify(hearing).ok


def test_a_line_on_its_way_while_a_clerk_names_or_unnames_its_voice_goes_in_as_the_voice_is_named_now(store, hearing):
    """The live labeller labelled a line just before the clerk's click reached it (or on another
    gateway), and the store wrote it just after the click changed the voice's lines: it goes in
    under whom the voice is named as when it is written, never under a name taken back."""
    store.machine_final(hearing, line("v1", "一。", 0, 1000), voice="说话人1")
    store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三", role=Role.plaintiff,
                     participant="张三")
    late = store.machine_final(hearing, line("v2", "二。", 2000, 3000), voice="说话人1")  # labelled before the name
    assert late == Named("原告 张三", Role.plaintiff, "张三")
    assert store.machine_final(hearing, line("w1", "别的麦克风。", 0, 900, channel=1), voice="说话人1") is None
    assert store.unname_voice(hearing, "说话人1", actor="书记员甲", channel=0) == ["v1", "v2"]
    named = line("v3", "三。", 4000, 5000, speaker="原告 张三", role=Role.plaintiff).model_copy(
        update={"participant": "张三"})
    assert store.machine_final(hearing, named, voice="说话人1") == Named("说话人1", None, None)  # named before the undo
    assert store.relabel(hearing, "v2", speaker="原告 张三", role=Role.plaintiff, participant="张三",
                         voice="说话人1") == Named("说话人1", None, None)
    assert {u.id: (u.speaker, u.role, u.participant) for u in store.record(hearing).utterances} == {
        "v1": ("说话人1", None, None), "v2": ("说话人1", None, None), "v3": ("说话人1", None, None),
        "w1": ("说话人1", None, None)}
    assert [(v.voice, v.named) for v in store.heard_voices(hearing, 0)] == [("说话人1", None)]
    # named again (another person): every line of the voice, the late ones included
    assert store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="被告 李四") == ["v1", "v2", "v3"]
    assert store.verify(hearing).ok


def test_the_screens_show_a_late_line_as_the_record_holds_it(store, hearing):
    """What the clerk's screen is told of such a line is what the store wrote (streaming/delivery.py)."""
    import asyncio

    from courtscribe.streaming.delivery import Delivery
    from courtscribe.streaming.source import Sinks
    from courtscribe.streaming.speakers import Label

    store.machine_final(hearing, line("v1", "一。", 0, 1000), voice="说话人1")
    store.name_voice(hearing, "说话人1", channel=0, actor="书记员甲", speaker="原告 张三", role=Role.plaintiff,
                     participant="张三")
    store.unname_voice(hearing, "说话人1", actor="书记员甲", channel=0)
    sent = []

    async def on_final(u, voice):
        return await asyncio.to_thread(store.machine_final, hearing, u, voice=voice)

    async def emit(event):
        sent.append(event)
    delivery = Delivery(Sinks(on_final=on_final), emit, "test", hearing)
    named = Label("原告 张三", Role.plaintiff, "张三", voice="说话人1")  # the name the source still had
    u, label = asyncio.run(delivery.line(line("v2", "二。", 2000, 3000, speaker="原告 张三"), None, named))
    assert (u.speaker, u.role, label) == ("说话人1", None, Label("说话人1", None, None, voice="说话人1"))
    [final] = sent
    assert (final.utterance.speaker, final.utterance.participant) == ("说话人1", None)


def test_a_later_hearing_of_a_case_keeps_the_parties_and_cause_its_clerk_gave_and_the_first_is_unchanged(store):
    """The recorder made the case with the first hearing (no 案由, two parties); the clerk schedules
    the second with the 案由 and a third party (第三人): its record says so, the first's record,
    signed, reads and digests as before."""
    number = f"(2026)京0105民初{uuid.uuid4().int % 100000}号"
    first, second = f"h-{uuid.uuid4().hex[:8]}", f"h-{uuid.uuid4().hex[:8]}"
    store.create_hearing(actor="书记员甲", hearing_id=first, case_number=number, court="朝阳法院",
                         parties=["张三", "李四"])
    store.open_hearing(first, actor="书记员甲")
    store.machine_final(first, line("u1", "现在开庭。"))
    store.close_hearing(first, actor="书记员甲")
    signed = store.sign(first, by="书记员甲", role=Role.clerk, read_back=store.digest(first)).digest
    store.create_hearing(actor="书记员甲", hearing_id=second, case_number=number, court="朝阳法院",
                         cause="民间借贷纠纷", parties=["张三", "李四", "王五"])
    later = store.record(second).hearing
    assert (later.cause, later.parties) == ("民间借贷纠纷", ["张三", "李四", "王五"])
    assert "王五" in store.vocabulary(second) and "民间借贷纠纷" in store.vocabulary(second)
    before = store.record(first).hearing
    assert (before.cause, before.parties) == (None, ["张三", "李四"])
    assert store.digest(first) == signed and store.verify(first).ok
    from courtscribe.records.finder import HearingFilter

    total, found = store.find_hearings(HearingFilter(q="王五"))
    assert [h["id"] for h in found] == [second] and found[0]["cause"] == "民间借贷纠纷"


def test_a_hearing_fact_changed_in_the_database_is_found_before_the_record_is_signed(store):
    """The 笔录's header (case number, title, parties…) is signed with the lines, but until then only
    its ledger entry vouches for it: a case number or a party rewritten in the database is found."""
    from sqlalchemy import select, update

    from courtscribe.records.db import CaseRow, HearingRow

    hid = f"facts-{uuid.uuid4().hex[:6]}"
    at = dt.datetime(2026, 12, 7, 9, 30, tzinfo=ZH_TZ)  # the clerk's own zone; the store keeps UTC
    store.create_hearing(actor="书记员甲", hearing_id=hid, case_number="（2026）京0105民初4321号",
                         title="张三诉李四借款合同纠纷", parties=["张三", "李四"], scheduled_at=at)
    store.set_hotwords(hid, ["借条"], actor="书记员甲")
    assert store.verify(hid).ok
    case = select(HearingRow.case_id).where(HearingRow.id == hid).scalar_subquery()
    for column, value in ((HearingRow.title, "另一案件"), (HearingRow.parties, ["王五", "李四"]),
                          (HearingRow.hotwords, ["欠条"]), (CaseRow.case_number, "（2026）京0105民初1号"),
                          (HearingRow.scheduled_at, at + dt.timedelta(hours=1))):
        row = HearingRow.id == hid if column.class_ is HearingRow else CaseRow.id == case
        with store.engine.begin() as conn:
            before = conn.execute(select(column).where(row)).scalar_one()
            conn.execute(update(column.class_).where(row).values({column: value}))
        report = store.verify(hid)
        assert not report.ok and report.problem == f"the hearing's {column.key} differs from what its ledger records"
        with store.engine.begin() as conn:
            conn.execute(update(column.class_).where(row).values({column: before}))
        assert store.verify(hid).ok
    with store.engine.begin() as conn:  # made before hearings held their own (0006): the case's are shown
        conn.execute(update(HearingRow).where(HearingRow.id == hid).values(parties=None, cause=None))
    assert store.verify(hid).ok
