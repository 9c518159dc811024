import html
import io

import docx
import pytest
import srt
import webvtt

from courtscribe.records import Hearing, Pipeline, Record, Role, Source, Token, Utterance
from courtscribe.records import formats


@pytest.fixture()
def record() -> Record:
    return Record(
        hearing=Hearing(id="h1", title="张三诉李四民间借贷纠纷", case_number="（2026）京0105民初12345号",
                        court="北京市朝阳区人民法院", courtroom="第三法庭"),
        source=Source(path="hearing.wav", duration_ms=9000, sample_rate=16000, channels=2),
        pipeline=Pipeline(engine="whisper", model="whisper-base", vad="silero", diarizer="channel"),
        utterances=[
            Utterance(id="u00001", start_ms=0, end_ms=2500, channel=0, speaker="审判长", role=Role.presiding_judge,
                      text="现在开庭。", tokens=[Token(text="现在", start_ms=0, end_ms=900, prob=0.9),
                                               Token(text="开庭。", start_ms=900, end_ms=2500, prob=0.8)]),
            Utterance(id="u00002", start_ms=3000, end_ms=6400, channel=1, speaker="说话人2",
                      text="原告代理人<王五>到庭 & 出示证据。"),
            Utterance(id="u00003", start_ms=7000, end_ms=9000, channel=0, speaker="审判长", role=Role.presiding_judge,
                      text="请被告陈述。"),
        ],
    )


def test_json_is_canonical_and_round_trips(record):
    text = formats.render(record, "json")
    back = Record.model_validate_json(text)
    assert back == record
    assert '"schema_version": "courtscribe.record/1"' in text
    assert '"role": "presiding_judge"' in text and '"role": null' in text


def test_srt_parses_back(record):
    subs = list(srt.parse(formats.render(record, "srt")))
    assert [s.content for s in subs] == ["审判长：现在开庭。", "说话人2：原告代理人<王五>到庭 & 出示证据。", "审判长：请被告陈述。"]
    assert subs[1].start.total_seconds() == 3.0 and subs[1].end.total_seconds() == 6.4


def test_vtt_parses_back_with_voice_tags(record):
    text = formats.render(record, "vtt")
    assert text.startswith("WEBVTT")
    assert "<v 审判长>现在开庭。" in text
    captions = webvtt.from_buffer(io.StringIO(text)).captions
    assert len(captions) == 3
    assert captions[0].start == "00:00:00.000" and captions[2].end == "00:00:09.000"
    assert captions[0].voice == "审判长"
    assert "&lt;王五&gt;" in captions[1].raw_text  # markup in speech cannot break the cue


def test_docx_opens_and_holds_every_turn(record, tmp_path):
    path = tmp_path / "r.docx"
    formats.write(record, "docx", path)
    document = docx.Document(str(path))
    body = "\n".join(p.text for p in document.paragraphs)
    table = "\n".join(c.text for row in document.tables[0].rows for c in row.cells)
    assert "庭 审 笔 录" in body
    for u in record.utterances:
        assert f"{u.speaker_label}：{u.text}" in body
    assert "（2026）京0105民初12345号" in table and "第三法庭" in table


def test_txt(record):
    lines = formats.render(record, "txt").splitlines()
    assert lines[1] == "[00:00:00.000 - 00:00:02.500] 审判长：现在开庭。"


def test_txt_and_the_read_back_text_show_where_recording_paused_and_why(record):
    """A pause is part of the record (法释〔2017〕5号): the TXT shows it where it happened, and the
    text read back before signing is the whole printed 笔录 (facts, turns, notes, signature lines)."""
    import datetime as dt

    from courtscribe.records import layout
    from courtscribe.records.model import Interruption

    at = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.timezone.utc)
    record.interruptions = [Interruption(at=at, at_ms=6500, kind="paused", reason="休庭十分钟", by="书记员甲"),
                            Interruption(at=at, at_ms=9500, kind="resumed", reason="继续开庭", by="书记员甲")]
    lines = formats.render(record, "txt").splitlines()
    assert lines[3] == "[00:00:06.500] 【暂停录音　00:00:06　原因：休庭十分钟　记录人：书记员甲】"
    assert lines[4].endswith("请被告陈述。") and "继续开庭" in lines[5]
    read = layout.plain(record).splitlines()
    assert read[0] == "庭 审 笔 录（待签名稿）" and "案号：（2026）京0105民初12345号" in read
    turns = [k for k, line in enumerate(read) if line.startswith("[")]
    assert read[turns[0]] == "[00:00:00] 审判长：现在开庭。"
    assert read.index("【暂停录音　00:00:06　原因：休庭十分钟　记录人：书记员甲】") == turns[1] + 1 == turns[2] - 1
    assert read[-1].startswith("本稿由语音识别生成")


def test_unknown_format(record):
    with pytest.raises(ValueError, match="unknown format 'odt'"):
        formats.render(record, "odt")


def test_role_parse_accepts_ids_and_labels():
    assert Role.parse("原告代理人") is Role.plaintiff_agent
    assert Role.parse("clerk").label == "书记员"
    # a criminal trial's accused and victim are printed as such, not as a civil case's 被告
    assert Role.parse("被告人") is Role.accused and Role.parse("被害人").value == "victim"
    with pytest.raises(ValueError, match="unknown role '法警'"):
        Role.parse("法警")


def test_an_overlapped_utterance_keeps_its_flag_through_the_store_and_every_export(record, tmp_path):
    """Two people at once (diarization/attribute.py): the flag survives the store, every export marks the line."""
    from pypdf import PdfReader

    from courtscribe.records.model import OVERLAP, OVERLAP_NOTE
    from courtscribe.records.store import RecordStore

    flagged = record.utterances[1].model_copy(update={"flags": [OVERLAP]})
    record = record.model_copy(update={"utterances": [record.utterances[0], flagged, record.utterances[2]]})
    store = RecordStore(f"sqlite:///{tmp_path / 'records.db'}")
    hid = store.import_record(record, actor="test")
    stored = store.record(hid)
    assert [u.flags for u in stored.utterances] == [[], [OVERLAP], []]
    for fmt in ("txt", "srt", "vtt"):
        text = formats.render(stored, fmt)
        assert text.count(OVERLAP_NOTE) == 1 and "出示证据。" + OVERLAP_NOTE in text.replace("&amp;", "&"), fmt
    paragraphs = "\n".join(p.text for p in docx.Document(io.BytesIO(formats.render(stored, "docx"))).paragraphs)
    assert paragraphs.count(OVERLAP_NOTE) == 1
    pdf = "".join(p.extract_text() for p in PdfReader(io.BytesIO(formats.render(stored, "pdf"))).pages)
    assert "同时发言" in pdf
    from easyofd.ofd import OFD

    reader = OFD()
    reader.read(formats.render(stored, "ofd"), fmt="binary")
    assert "同时发言" in "".join(o["text"] for page in reader.data[0]["page_info"].values() for o in page["text_list"])
    assert '"overlap"' in formats.render(stored, "json")


def test_a_persons_text_is_printed_as_written_when_pieces_are_joined(record):
    """A long turn finalized in pieces prints as one; what a clerk typed (a name's 於 and 乾, her ！？)
    is joined as written, never converted or tidied."""
    first, second = record.utterances[2], record.utterances[2].model_copy(
        update={"id": "u00004", "start_ms": 9000, "end_ms": 9500, "text": "他住在乾县，“不是！？”", "flags": ["continues"]})
    record.utterances[2] = first.model_copy(update={"text": "证人於美乾说"})
    record.utterances.append(second)
    from courtscribe.records.layout import blocks

    assert any(b.text == "证人於美乾说他住在乾县，“不是！？”" for b in blocks(record))  # DOCX, PDF, OFD


def test_a_vtt_cue_shows_whatever_a_line_holds(record):
    """A clerk's blank line, a '-->', 'A&B' and '<5万元>' neither break the file (it would fail the whole
    hearing's export) nor hide as markup: each cue reads back as said."""
    said = "本院认为\n\n被告应当还款 --> A&B公司<5万元>"
    record.utterances[1] = record.utterances[1].model_copy(update={"text": said})
    captions = webvtt.from_buffer(io.StringIO(formats.render(record, "vtt"))).captions
    assert len(captions) == 3 and captions[1].voice == "说话人2"
    assert html.unescape(captions[1].text) == "本院认为\n被告应当还款 --> A&B公司<5万元>"  # as a player shows it
    assert [s.content for s in srt.parse(formats.render(record, "srt"))][1] == "说话人2：本院认为\n被告应当还款 --> A&B公司<5万元>"
