"""The 笔录 as court systems file it: PDF with its fonts embedded and every page numbered, OFD read back
by an independent reader (easyofd), DOCX with page-number fields, a signature line for every
participant, the optional signing strip, and a recording transcribed into a hearing scheduled
beforehand. PDF pages are rendered to images (pypdfium2) and looked at: ink on each page."""
import datetime as dt
import io
import logging
import zipfile

import docx
import numpy as np
import pypdf
import pytest

from courtscribe.records import formats, fonts, intake, layout, package
from courtscribe.records.model import (CONTINUES, Hearing, Participant, Pipeline, Record, Role, Source, Token,
                                      Utterance)
from courtscribe.records.ofd import render_ofd
from courtscribe.records.pdf import render_pdf
from courtscribe.records.reading import Locked
from courtscribe.records.store import RecordStore

from browser import SCREENS

PEOPLE = [(Role.presiding_judge, "王法官"), (Role.clerk, "赵书记员"), (Role.plaintiff, "张三"),
          (Role.plaintiff_agent, "陈律师"), (Role.defendant, "李四"), (Role.defendant_agent, "刘律师")]
SAID = "原告请求被告归还借款本金十万元及利息，被告对借款事实无异议，但认为利息约定过高。"


@pytest.fixture
def store(tmp_path):
    s = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    yield s
    s.close()


@pytest.fixture
def record(store) -> Record:
    """A scheduled hearing with a case number and six participants, 40 lines long (several pages)."""
    hid = "h-print"
    store.create_hearing(actor="书记员", hearing_id=hid, case_number="（2026）京0105民初4321号", cause="民间借贷纠纷",
                         court="北京市朝阳区人民法院", courtroom="第三法庭", title="张三诉李四民间借贷纠纷", public=True,
                         scheduled_at=dt.datetime(2026, 11, 22, 1, 30, tzinfo=dt.timezone.utc),
                         participants=[Participant(role=r, name=n) for r, n in PEOPLE], parties=["张三", "李四"])
    store.open_hearing(hid, actor="书记员")
    for i in range(40):
        role = PEOPLE[i % len(PEOPLE)][0]
        store.machine_final(hid, Utterance(id=f"u{i}", start_ms=i * 5000, end_ms=i * 5000 + 4000, speaker=role.label,
                                           role=role, text=f"第{i}句。{SAID}"))
    store.close_hearing(hid, actor="书记员")
    store.sign(hid, by="王法官", role=Role.presiding_judge)
    return store.record(hid)


def test_pdf_embeds_every_font_and_numbers_every_page(record):
    blocks = layout.blocks(record)
    pdf = pypdf.PdfReader(io.BytesIO(render_pdf(blocks, page_signing=True)))
    pages = len(pdf.pages)
    assert pages >= 3
    for n, page in enumerate(pdf.pages, 1):
        text = page.extract_text()
        assert f"第 {n} 页 共 {pages} 页" in text and "本页签名" in text
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            descriptor = (descendants[0].get_object() if descendants else font).get("/FontDescriptor")
            assert descriptor is not None, font  # no base-14 font (Helvetica …) a reader must supply
            assert {"/FontFile2", "/FontFile3"} & set(descriptor.get_object().keys()), font["/BaseFont"]
    text = "".join(p.extract_text() for p in pdf.pages).replace("\n", "")
    for role, name in PEOPLE:  # a signature line for everyone present
        assert f"{role.label}{name}（签名）" in text
    assert "王法官（2026年" in text, text
    assert "第39句" in text and "（2026）京0105民初4321号" in text
    assert "[00:00:05] 书记员：第1句。" in text  # the renderer's own characters are in the font too
    from reportlab.pdfbase import pdfmetrics

    assert not [n for n in pdfmetrics.getRegisteredFontNames() if n.startswith("NotoSerif")]  # none left behind
    import pypdfium2

    doc = pypdfium2.PdfDocument(render_pdf(blocks))
    for i in (0, len(doc) - 1):  # the first and last pages, as a reader shows them
        image = doc[i].render(scale=1.2).to_pil()
        assert (np.asarray(image.convert("L")) < 128).mean() > 0.01, f"page {i + 1} renders blank"
        if i == 0:
            SCREENS.mkdir(parents=True, exist_ok=True)
            image.save(SCREENS / "bilu-page1.png")  # the README's picture


def test_the_header_names_each_person_once(record):
    """书记员：赵书记员, not 书记员：书记员赵书记员; a row of several roles keeps each one's role."""
    facts = dict(layout.facts(record))
    assert facts["书记员"] == "赵书记员" and facts["审判人员"] == "审判长王法官"
    assert facts["到庭人员"].startswith("原告张三、原告代理人陈律师")


def test_a_group_case_with_three_hundred_parties_still_prints(store):
    """当事人 of a group labour case fill more than a page in one cell: a table row that could not
    split made the PDF (and so the package) impossible to produce."""
    parties = [f"原告{n}号张某某" for n in range(1, 301)]
    store.create_hearing(actor="书记员", hearing_id="h-group", parties=parties)
    store.open_hearing("h-group", actor="书记员")
    store.machine_final("h-group", Utterance(id="u1", start_ms=0, end_ms=1000, speaker="审判长", text="开庭。"))
    pdf = pypdf.PdfReader(io.BytesIO(formats.render_bytes(store.record("h-group"), "pdf")))
    text = "".join(page.extract_text() for page in pdf.pages).replace("\n", "")
    assert len(pdf.pages) >= 2 and "原告300号张某某" in text and "开庭。" in text


def test_a_character_the_font_lacks_prints_as_its_code_point_never_a_box(store):
    """A party's name in a script the 笔录 font lacks, an emoji pasted into a correction: the PDF
    printed boxes and its text held NULs (a name vanished from 到庭人员). Each is its code point."""
    store.create_hearing(actor="书记员", hearing_id="h-glyph",
                         participants=[Participant(role=Role.plaintiff, name="אבג")])
    store.open_hearing("h-glyph", actor="书记员")
    store.machine_final("h-glyph", Utterance(id="u1", start_ms=0, end_ms=1000, speaker="原告", text="好的😀。"))
    record = store.record("h-glyph")
    pdf = pypdf.PdfReader(io.BytesIO(formats.render_bytes(record, "pdf")))
    text = "".join(page.extract_text() for page in pdf.pages).replace("\n", "")
    ofd = zipfile.ZipFile(io.BytesIO(formats.render_bytes(record, "ofd")))
    pages = "".join(ofd.read(n).decode() for n in ofd.namelist() if n.endswith("Content.xml"))
    for printed in (text, pages):
        assert "好的〔U+1F600〕。" in printed and "〔U+05D0〕〔U+05D1〕〔U+05D2〕" in printed
        assert "\x00" not in printed and "U+1F600" in printed.split("注：")[-1]
    assert "好的😀。" in _docx_text(formats.render_bytes(record, "docx"))  # the reader's fonts show it


def _docx_text(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    return "\n".join([p.text for p in doc.paragraphs]
                     + [c.text for t in doc.tables for row in t.rows for c in row.cells])


def test_ofd_reads_back_with_an_independent_reader(record):
    logging.getLogger("easyofd").setLevel(logging.ERROR)
    from easyofd.ofd import OFD

    data = render_ofd(layout.blocks(record), page_signing=True)
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"OFD.xml", "Doc_0/Document.xml", "Doc_0/PublicRes.xml", "Doc_0/Res/font_1.ttf"} <= names
    reader = OFD()
    reader.read(data, fmt="binary")
    [doc] = reader.data
    pages = [doc["page_info"][k]["text_list"] for k in sorted(doc["page_info"], key=int)]
    assert len(pages) >= 3
    text = ""
    for n, objects in enumerate(pages, 1):
        page_text = "".join(o["text"] for o in objects)
        assert f"第 {n} 页 共 {len(pages)} 页" in page_text and "本页签名" in page_text
        text += page_text
    for field in ("北京市朝阳区人民法院", "（2026）京0105民初4321号", "民间借贷纠纷", "第三法庭", "公开审理"):
        assert field in text, field
    for u in record.utterances:  # every line, in order, whole (wrapped lines joined)
        assert f"{u.speaker_label}：{u.text}" in text
    assert text.index("第0句") < text.index("第1句") < text.index("第39句")
    for role, name in PEOPLE:
        assert f"{role.label}{name}（签名）" in text
    font = next(iter(doc["fonts"].values()))
    assert font["FontFile"] == "font_1.ttf" and font["font_b64"]  # the glyphs travel with the file


def test_docx_numbers_its_pages_and_the_package_holds_the_ofd(record):
    d = docx.Document(io.BytesIO(formats.render(record, "docx")))
    footer = d.sections[0].footer._element.xml
    assert "PAGE" in footer and "NUMPAGES" in footer and "第 " in footer
    assert d.styles["Normal"].element.rPr.rFonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia") == "宋体"
    z = zipfile.ZipFile(io.BytesIO(package.build(record)))
    assert "笔录.ofd" in z.namelist()
    assert z.read("笔录.ofd")[:2] == b"PK"


def test_a_missing_font_is_a_clear_error(record, monkeypatch):
    monkeypatch.setenv("COURTSCRIBE_FONT_FILE", "/nonexistent/font.otf")
    fonts.subset.cache_clear()
    with pytest.raises(fonts.FontMissing, match="fonts-noto-cjk"):
        formats.render(record, "pdf")
    fonts.subset.cache_clear()


def _recording(seconds: int, text: str) -> Record:
    lines = [Utterance(id=f"{i}", start_ms=i * 2000, end_ms=i * 2000 + 1500, speaker="说话人1", text=f"{text}{i}",
                       tokens=[Token(text=text[:1], start_ms=i * 2000, end_ms=i * 2000 + 300)])
             for i in range(seconds // 2)]
    return Record(hearing=Hearing(id="file", title="录音"), utterances=lines,
                  source=Source(path="day.wav", duration_ms=seconds * 1000, sample_rate=16000, channels=1), pipeline=Pipeline(engine="whisper", model="base", vad="fsmn-vad", diarizer="channel"))


def test_a_recording_joins_the_hearing_the_clerk_scheduled(store, tmp_path):
    store.create_hearing(actor="书记员", hearing_id="e1", case_number="（2026）京0105民初77号", court="甲院",
                         participants=[Participant(role=Role.presiding_judge, name="王法官")])
    root = tmp_path / "archive"
    silence = [np.zeros(16_000 * 10, np.float32)]
    assert intake.keep(store, root, _recording(10, "上午"), silence, "e1", actor="转写") == 0
    assert intake.keep(store, root, _recording(10, "下午"), silence, "e1", actor="转写") == 10_000  # after the first
    rec = store.record("e1")
    assert rec.hearing.case_number == "（2026）京0105民初77号" and rec.participants[0].name == "王法官"
    assert [u.text for u in rec.utterances] == [f"上午{i}" for i in range(5)] + [f"下午{i}" for i in range(5)]
    afternoon = rec.utterances[5]
    assert afternoon.start_ms == 10_000 and afternoon.tokens[0].start_ms == 10_000
    assert store.verify("e1").ok
    store.open_hearing("e1", actor="书记员")
    store.close_hearing("e1", actor="书记员")
    store.sign("e1", by="王法官", role=Role.presiding_judge)
    with pytest.raises(Locked):
        intake.keep(store, root, _recording(4, "晚上"), silence, "e1", actor="转写")


def test_a_long_utterance_finalized_in_pieces_prints_as_one_turn(store):
    """Live pieces (streaming/pieces.py) go on from the line before; another voice between them, or a
    piece the clerk gave to someone else, starts a turn of its own."""
    hid = "h-pieces"
    store.create_hearing(actor="书记员", hearing_id=hid, title="分段")
    judge, agent = Role.presiding_judge, Role.plaintiff_agent
    lines = [("a", 0, 0, judge, "原告请求判令被告偿还借款本金，", []),
             ("b", 6000, 0, judge, "以及自起诉之日起的利息。", [CONTINUES]),
             ("c", 9000, 1, agent, "有异议。", []),
             ("d", 10000, 0, judge, "请继续。", [CONTINUES]),
             ("e", 12000, 0, agent, "我方认为……", [CONTINUES])]
    for uid, at, ch, role, text, flags in lines:
        store.machine_final(hid, Utterance(id=uid, start_ms=at, end_ms=at + 2500, channel=ch, speaker=role.label,
                                           role=role, text=text, flags=flags))
    turns = [(b.who, b.text, b.stamp) for b in layout.blocks(store.record(hid)) if b.kind == "turn"]
    assert turns == [("审判长", "原告请求判令被告偿还借款本金，以及自起诉之日起的利息。", "00:00:00"),
                     ("原告代理人", "有异议。", "00:00:09"), ("审判长", "请继续。", "00:00:10"),
                     ("原告代理人", "我方认为……", "00:00:12")]


def test_what_a_reader_of_the_page_must_know_of_a_line_prints_in_every_format(store):
    """A late final the clerk has not looked at (its words printed beside hers, and the record not signed
    until she looks), a seat line that may repeat a neighbour (until checked), an engine's control
    character (shown, never breaking a file), a judge's line break, a juror's long name beside its
    signature line: each in every format, every file still opening."""
    from easyofd.ofd import OFD
    from xml.dom import minidom

    from courtscribe.records.model import CROSSTALK_NOTE, CROSSTALK_UNCHECKED
    from courtscribe.records.reading import Conflict

    hid = "h-marks"
    store.create_hearing(actor="书记员", hearing_id=hid, court="北京市朝阳区人民法院",
                         participants=[Participant(role=Role.juror, name="欧阳某某某某")])
    store.open_hearing(hid, actor="书记员")
    store.edit(hid, "late", "书记员改过的话", actor="书记员", channel=0, start_ms=0, end_ms=2000)
    store.machine_final(hid, Utterance(id="late", start_ms=0, end_ms=2500, speaker="审判长", text="机器说的另一番话"))
    store.machine_final(hid, Utterance(id="seat", start_ms=3000, end_ms=4000, channel=1, speaker="原告", text="我同意。",
                                       flags=[CROSSTALK_UNCHECKED]))
    store.machine_final(hid, Utterance(id="ctl", start_ms=5000, end_ms=6000, speaker="被告", text="好的\x1b可以\ufffe"))
    store.edit(hid, "ctl", "第一段。\n第二段。", actor="书记员", base="好的〔?〕可以〔?〕")
    store.close_hearing(hid, actor="书记员")
    with pytest.raises(Conflict, match="line late"):
        store.sign(hid, by="王法官", role=Role.presiding_judge)
    record = store.record(hid)
    late = "〔识别结果另为：机器说的另一番话〕"
    texts = {fmt: formats.render(record, fmt) for fmt in ("txt", "srt", "vtt")}
    texts["docx"] = "\n".join(p.text for p in docx.Document(io.BytesIO(formats.render(record, "docx"))).paragraphs)
    texts["pdf"] = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(formats.render(record, "pdf"))).pages)
    data = formats.render(record, "ofd")
    for name in zipfile.ZipFile(io.BytesIO(data)).namelist():
        if name.endswith(".xml"):
            minidom.parseString(zipfile.ZipFile(io.BytesIO(data)).read(name))  # every part is well-formed XML
    reader = OFD()
    reader.read(data, fmt="binary")
    objects = [o for page in reader.data[0]["page_info"].values() for o in page["text_list"]]
    texts["ofd"] = "".join(o["text"] for o in objects)
    for fmt, text in texts.items():
        flat = text.replace("\n", "")
        assert "书记员改过的话" + late in flat and "我同意。" + CROSSTALK_NOTE in flat, fmt
        assert "第二段。" in flat, fmt
    assert not any("\n" in o["text"] for o in objects)  # a line break starts a printed line, never a raw one
    key = next(o for o in objects if o["text"] == "人民陪审员欧阳某某某某（签名）")
    blank = next(o for o in objects if o["text"] == layout.BLANK)
    assert float(blank["pos"][0]) > float(key["pos"][0]) + float(key["pos"][2])  # the name never runs under it
    assert record.utterances[2].tokens == [] and "\x1b" not in formats.render(record, "json")
    store.confirm(hid, "late", actor="书记员")
    store.confirm(hid, "seat", actor="书记员")
    store.sign(hid, by="王法官", role=Role.presiding_judge)
    signed = formats.render(store.record(hid), "txt")
    assert late not in signed and CROSSTALK_NOTE not in signed
    # her correction of the line before its final stands against the machine's text in 更正记录, not "（无）"
    printed = formats.render(store.record(hid), "plain")
    assert "“机器说的另一番话〔识别稿，于更正后生成〕” 更正为 “书记员改过的话”" in printed
