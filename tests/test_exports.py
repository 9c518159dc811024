"""Exports into the e-case file: the printed 笔录 (DOCX, PDF), captions, and the verified package."""
import datetime as dt
import hashlib
import io
import json
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest
import srt
import webvtt

from courtscribe.records import formats, layout, package
from courtscribe.records.model import Role, Utterance
from courtscribe.records.store import RecordStore

TURNS = [("u1", 0, "现在开庭。", Role.presiding_judge), ("u2", 1, "原告代理人陈述诉讼请求。", Role.plaintiff_agent),
         ("u3", 2, "被告对此有何意见？", Role.presiding_judge), ("u4", 3, "我方不同意原告的请求。", Role.defendant_agent)]


@pytest.fixture
def signed(tmp_path):
    store = _signed_store(tmp_path, RecordStore(f"sqlite:///{tmp_path / 'r.db'}"))
    yield store.record("h-export")
    store.close()


def _signed_store(tmp_path, store):
    hid = "h-export"
    store.create_hearing(actor="书记员甲", hearing_id=hid, case_number="(2026)京0105民初123号", cause="民间借贷纠纷",
                         parties=["原告张三", "被告李四"],
                         court="北京市朝阳区人民法院", courtroom="第三法庭", title="张三诉李四", public=False,
                         scheduled_at=dt.datetime(2026, 11, 22, 1, 30, tzinfo=dt.timezone.utc))
    store.open_hearing(hid, actor="书记员甲")
    for role, name in [(Role.presiding_judge, "王法官"), (Role.clerk, "赵书记员"), (Role.plaintiff_agent, "陈律师"),
                       (Role.defendant_agent, "刘律师")]:
        store.add_participant(hid, actor="书记员甲", role=role, name=name)
    for uid, i, text, role in TURNS:
        store.machine_final(hid, Utterance(id=uid, start_ms=i * 4000, end_ms=i * 4000 + 3000, channel=i % 2,
                                           speaker=role.label, role=role, text=text))
    store.edit(hid, "u4", "我方不同意原告的全部请求。", actor="赵书记员", reason="漏字")
    store.interruption(hid, actor="赵书记员", kind="paused", at_ms=9000, reason="休庭十分钟")
    store.interruption(hid, actor="赵书记员", kind="resumed", at_ms=11000, reason="继续开庭")
    store.close_hearing(hid, actor="赵书记员")
    store.sign(hid, by="王法官", role=Role.presiding_judge)
    store.request_correction(hid, by="刘律师", role=Role.defendant_agent, utterance_id="u4", text="应补充“及利息”",
                             reason="表述不完整")
    return store


HEADER = ["北京市朝阳区人民法院", "(2026)京0105民初123号", "民间借贷纠纷", "原告张三、被告李四", "第三法庭", "张三诉李四", "不公开审理",
          "审判长王法官", "书记员赵书记员", "原告代理人陈律师", "被告代理人刘律师", "开庭时间", "闭庭时间"]


SIGNERS = ["审判长王法官（签名）", "书记员赵书记员（签名）", "原告代理人陈律师（签名）", "被告代理人刘律师（签名）"]


def _expected_lines(record):
    return ["审判长：现在开庭。", "原告代理人：原告代理人陈述诉讼请求。", "审判长：被告对此有何意见？",
            "被告代理人：我方不同意原告的全部请求。（已更正）"]


def test_docx_holds_every_header_field_turn_note_and_signature(signed):
    d = docx.Document(io.BytesIO(formats.render(signed, "docx")))
    cells = "\n".join(c.text for t in d.tables for row in t.rows for c in row.cells)
    body = "\n".join(p.text for p in d.paragraphs)
    for field in HEADER:
        assert field in cells, field
    for turn in _expected_lines(signed):
        assert turn in body, turn
    assert "暂停录音" in body and "休庭十分钟" in body and "恢复录音" in body
    assert "“我方不同意原告的请求。” 更正为 “我方不同意原告的全部请求。”" in body
    assert "补正申请" in body and "应补充“及利息”" in body
    for line in SIGNERS:  # every participant signs, each on a line of its own
        assert line in cells, line
    assert "王法官（2026年" in cells and cells.count(layout.BLANK) == 3  # the judge has signed, three have not
    assert signed.signatures[0].digest in body
    assert body.index("现在开庭") < body.index("被告对此有何意见") < body.index("暂停录音") < body.index("我方不同意")


def test_pdf_has_the_same_text(signed):
    pdf = pypdf.PdfReader(io.BytesIO(formats.render(signed, "pdf")))
    text = "".join(page.extract_text() for page in pdf.pages).replace("\n", "")
    for field in HEADER:
        assert field in text, field
    for turn in _expected_lines(signed):
        assert turn in text.replace(" ", ""), turn
    assert "休庭十分钟" in text and signed.signatures[0].digest in text


def test_captions_parse_back(signed):
    subs = list(srt.parse(formats.render(signed, "srt")))
    assert [s.content for s in subs] == [f"{u.speaker_label}：{u.text}" for u in signed.utterances]
    vtt = webvtt.from_buffer(io.StringIO(formats.render(signed, "vtt")))
    assert [c.voice for c in vtt.captions] == [u.speaker_label for u in signed.utterances]


def test_package_manifest_verifies_and_a_tampered_file_is_found(signed, tmp_path, data_dir):
    path = tmp_path / "卷宗.zip"
    path.write_bytes(package.build(signed, [("ch0/news_kfc.wav", data_dir / "zh-smoke" / "news_kfc.wav")]))
    assert package.verify(path) == []
    names = set(zipfile.ZipFile(path).namelist())
    assert {"record.json", "笔录.docx", "笔录.pdf", "笔录.ofd", "笔录.txt", "record.srt", "record.vtt", "record.txt",
            "interruptions.json",
            "audio/ch0/news_kfc.wav", "manifest.json"} == names
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "record.json":
                data = data.replace("全部请求".encode(), "部分请求".encode())
            dst.writestr(name, data)
    problems = package.verify(forged)
    assert "record.json: SHA-256 differs from the manifest (altered)" in problems
    assert "record.json no longer matches the digest it was signed with" in problems
    assert package.verify(tmp_path / "nothing.zip")[0].startswith("not a readable ZIP package")


def test_a_package_rewritten_whole_is_found_by_the_courts_seal_and_by_its_own_signatures(signed, tmp_path):
    """A forger changes the record and rewrites the manifest's hashes to match (and drops the digest it
    names): the court's seal no longer verifies, and even without the key the record no longer
    matches the signatures it carries."""
    key = b"k" * 32
    path = tmp_path / "卷宗.zip"
    path.write_bytes(package.build(signed, key=key))
    assert package.verify(path, key) == [] and package.verify(path) == []

    def forge(name: str, change) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            files = {n: src.read(n) for n in src.namelist()}
            files["record.json"] = files["record.json"].replace("全部请求".encode(), "部分请求".encode())
            manifest = json.loads(files.pop("manifest.json"))
            manifest["files"]["record.json"]["sha256"] = hashlib.sha256(files["record.json"]).hexdigest()
            change(manifest)
            for n, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
                dst.writestr(n, data)
        return out

    rehashed = forge("rehashed.zip", lambda m: None)
    assert any("seal does not verify" in p for p in package.verify(rehashed, key))
    assert "record.json no longer matches the digest its signatures signed" in package.verify(rehashed)
    unnamed = forge("unnamed.zip", lambda m: m.update(signed_digest=None))
    assert "manifest.json does not name the digest the record was signed with" in package.verify(unnamed)
    assert any("seal does not verify" in p for p in package.verify(path, b"another court's key, not ours"))


def test_a_package_made_before_packages_were_sealed_says_so(signed, tmp_path):
    """An older version's package (no ledger, no seal) checked with the court's key: not "altered",
    which would send court IT after a forger, but what it is and what to do."""
    path = tmp_path / "旧卷宗.zip"
    path.write_bytes(package.build(signed))
    assert package.verify(path) == []
    [said] = package.verify(path, b"k" * 32)
    assert said.startswith("manifest.json carries no seal") and "export it again" in said


def test_a_forged_copy_put_before_the_genuine_file_is_found(signed, tmp_path):
    """A ZIP may hold a name twice: a reader takes the last copy, an unzip tool may keep the first;
    a forged record.json before the untouched package, with the court's key, is still altered."""
    key = b"k" * 32
    path = tmp_path / "卷宗.zip"
    path.write_bytes(package.build(signed, key=key))
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        dst.writestr("record.json", src.read("record.json").replace("全部请求".encode(), "部分请求".encode()))
        dst.writestr("../record.json", b"{}")
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    problems = package.verify(forged, key)
    assert "record.json: in the package 2 times (one copy may be forged): altered" in problems
    assert "../record.json: a path outside the package: altered" in problems
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as dst:
        dst.writestr("manifest.json", b"[1, 2]")
    assert package.verify(bare) == ["manifest.json cannot be read (TypeError): altered"]


def test_a_package_carries_its_ledger_and_a_record_rewritten_with_its_signatures_is_found(tmp_path):
    """The package holds the hearing's ledger: a forger without the court's key who rewrites a line
    in record.json, the digests its signatures carry and the manifest is found by the ledger; an
    altered ledger entry breaks its chain; a chain rewritten whole fails the court's seal."""
    from courtscribe.chain import GENESIS, canonical
    from courtscribe.records.ledger import entry_hash, record_digest
    from courtscribe.records.model import Record

    key = b"k" * 32
    store = _signed_store(tmp_path, RecordStore(f"sqlite:///{tmp_path / 'r.db'}", key))
    record, ledger = store.snapshot("h-export")
    path = tmp_path / "卷宗.zip"
    path.write_bytes(package.build(record, key=key, ledger=ledger))
    assert package.verify(path, key) == [] and package.verify(path) == []
    assert len(zipfile.ZipFile(path).read("ledger.jsonl").splitlines()) == len(store.entries("h-export"))
    store.close()

    def forge(name, record_change=None, ledger_change=None):
        out = tmp_path / name
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            files = {n: src.read(n) for n in src.namelist()}
            manifest = json.loads(files.pop("manifest.json"))
            if ledger_change:
                files["ledger.jsonl"] = ledger_change(files["ledger.jsonl"])
            if record_change:
                forged = Record.model_validate_json(files["record.json"].replace("全部请求".encode(), "部分请求".encode()))
                digest = record_digest(forged)
                forged.signatures = [s.model_copy(update={"digest": digest}) for s in forged.signatures]
                files["record.json"] = forged.model_dump_json().encode()
                manifest["signed_digest"] = digest
            for n in files:
                manifest["files"][n]["sha256"] = hashlib.sha256(files[n]).hexdigest()
            for n, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
                dst.writestr(n, data)
        return out

    rewritten = package.verify(forge("rewritten.zip", record_change=True))
    assert "record.json: line u4 is not what ledger.jsonl records for it" in rewritten
    assert any(p.startswith("record.json does not match the digest signed at ledger.jsonl entry") for p in rewritten)

    def alter_entry(data: bytes) -> bytes:
        return data.replace("全部请求".encode(), "部分请求".encode())
    assert any("does not match its hash chain" in p for p in package.verify(forge("entry.zip", True, alter_entry)))

    def rechain(data: bytes) -> bytes:  # every entry rewritten and re-hashed, the signature's digest too
        prev, out = GENESIS, []
        digest = record_digest(Record.model_validate_json(
            zipfile.ZipFile(tmp_path / "rewritten.zip").read("record.json")))
        for e in (json.loads(line) for line in alter_entry(data).splitlines()):
            payload = json.loads(e["payload"])
            if e["kind"] == "signed":
                payload["digest"] = digest
            e["payload"] = canonical(payload)
            e["prev_hash"] = prev
            e["hash"] = prev = entry_hash(prev, e["seq"], e["at"], e["actor"], e["kind"], e["utterance_id"],
                                          e["payload"])
            out.append(json.dumps(e, ensure_ascii=False))
        return ("\n".join(out) + "\n").encode()
    rechained = forge("rechained.zip", True, rechain)
    assert package.verify(rechained) == []  # consistent all through: only the court's key can tell
    assert any("not sealed by this court's key" in p for p in package.verify(rechained, key))


def test_a_signature_made_on_postgresql_before_the_times_were_hashed_zone_free_still_verifies(signed, tmp_path):
    """Such a digest hashed the hearing's times as the store gave them: UTC, or Beijing time on a
    server in China. The record still matches it; a changed record still does not."""
    from courtscribe.chain import canonical, sha256

    def before(record, zone):  # the digest as it was taken then
        times = {k: t.astimezone(zone) for k, t in record.hearing if isinstance(t, dt.datetime)}
        body = record.model_copy(update={"hearing": record.hearing.model_copy(update=times)}).model_dump(
            mode="json", exclude={"signatures", "correction_requests", "party_signatures", "public_version",
                                  "created_at"})
        return sha256(canonical(body))
    for zone in (dt.timezone.utc, layout.ZH_TZ):
        old = before(signed, zone)
        record = signed.model_copy(update={"signatures": [s.model_copy(update={"digest": old})
                                                          for s in signed.signatures]})
        path = tmp_path / "old.zip"
        path.write_bytes(package.build(record))
        assert package.verify(path) == []
        changed = record.model_copy(update={"utterances": [u.model_copy(update={"text": "改过"})
                                                           for u in record.utterances]})
        path.write_bytes(package.build(changed))
        assert "record.json no longer matches the digest its signatures signed" in package.verify(path)


def test_a_package_missing_or_garbling_its_ledger_says_so(tmp_path):
    store = _signed_store(tmp_path, RecordStore(f"sqlite:///{tmp_path / 'r.db'}"))
    record, ledger = store.snapshot("h-export")
    path = tmp_path / "卷宗.zip"
    path.write_bytes(package.build(record, ledger=ledger))
    store.close()

    def without(name: str, data: bytes | None) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
            manifest = json.loads(src.read("manifest.json"))
            for n in src.namelist():
                if n == "ledger.jsonl" and data is None:
                    manifest["files"].pop(n)
                elif n == "ledger.jsonl":
                    dst.writestr(n, data)
                    manifest["files"][n]["sha256"] = hashlib.sha256(data).hexdigest()
                elif n != "manifest.json":
                    dst.writestr(n, src.read(n))
            dst.writestr("manifest.json", json.dumps(manifest))
        return out
    assert any("ledger.jsonl is missing" in p for p in package.verify(without("gone.zip", None)))
    assert any("cannot be read" in p for p in package.verify(without("garbled.zip", b'{"seq": 1}\nnot json\n')))


def test_both_halves_of_a_split_line_are_printed_as_corrected(tmp_path):
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h")
    store.machine_final("h", Utterance(id="c0-1", start_ms=0, end_ms=4000, speaker="审判长", text="现在开庭。请原告陈述。"))
    store.machine_final("h", Utterance(id="c0-2", start_ms=5000, end_ms=6000, speaker="原告", text="好的。"))
    second = store.split("h", "c0-1", 5, actor="书记员")
    third = store.split("h", second, 2, actor="书记员")  # a half split again
    turns = {b.text for b in layout.blocks(store.record("h")) if b.kind == "turn"}
    assert {"现在开庭。（已更正）", "请原（已更正）", "告陈述。（已更正）", "好的。"} <= turns, turns
    assert third != second
    store.close()
