"""Personal data found and masked for public outputs (redaction/): numbers in every written and
spoken form, plates, e-mail, addresses, protected names and their sound-alikes; the court's own
numbers left alone; the public version and its log; live partials held while a number is open."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass

import pytest

from courtscribe.records.ledger import record_digest
from courtscribe.records.model import CONTINUES, Hearing, Participant, Pipeline, Record, Role, Source, Token, Utterance
from courtscribe.redaction.detect import Finder, apply
from courtscribe.streaming.broadcast import Delayed, PublicFeed
from courtscribe.redaction.public import (
    PROTECTION,
    REDACTION,
    Choices,
    choices,
    protection,
    public_listing,
    public_version,
)
from courtscribe.streaming.events import Endpoint, Final, Partial

ID = "110105197805123417"  # check digit right
MOBILE = "13910234567"
CARD = "6222021234567890128"  # Luhn right
SPOKEN = dict(zip("0123456789", "零一二三四五六七八九"))
SPOKEN_BACK = {**{v: k for k, v in SPOKEN.items()}, "幺": "1"}


def spoken(number: str) -> str:
    return "".join(SPOKEN[c] for c in number)


def masked(text: str, finder: Finder | None = None) -> str:
    finder = finder or Finder()
    return apply(text, finder.find(text))


@pytest.mark.parametrize(
    "said",
    [
        f"身份证号码是{ID}。",
        f"身份证号码是{spoken(ID)}。",
        f"身份证{ID[:6]} {ID[6:14]} {ID[14:]}",
        f"他的证件号{spoken(ID).replace('一', '幺')}",
        "身份证号11010119900307123X，",
        "11010119900307123叉",
        f"手机{MOBILE}",
        f"手机{spoken(MOBILE)}",
        f"电话{MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}",
        f"打{MOBILE[:3]}，{MOBILE[3:7]}，{MOBILE[7:]}找我",
        "座机010-65234567",
        "电话零一零六五二三四五六七",
        f"卡号{CARD}",
        f"转到{spoken(CARD)}这张卡",
        "银行账号是12345678901",  # a cue and a number read in part
        "车牌号京A12345",
        "车牌京A·D12345",
        "京a一二三四五",
        "车排后是经12345",
        "邮箱zhangsan@qq.com",
        "zhang.san 艾特 163 点 com",
        "(010)65234567找我", "电话零一零杠六五二三四五六七", "+86 138 1023 4567", "QQ号123456789",
        "手机号是138。1234。5678。", "138 - 1234 - 5678", "zhangsan@qq.com我们", "zhangsan at qq dot com",
        "京A 123 45", "12812345678", "一三八依二三四五六七八",
    ],
)
def test_numbers_plates_and_mail_never_show(said):
    out = masked(said)
    digits = re.sub(r"\D", "", "".join(SPOKEN_BACK.get(c, c) for c in out))
    assert "××" in out and len(digits) < 4 and "zhang" not in out, out


@pytest.mark.parametrize(
    "said",
    [
        "标的额125000元",
        "共计十二万五千元",
        "依据民法典第675条",
        "第一百零三条第二款",
        "年利率为3.65%",
        "案号为(2026)京0105民初4321号",
        "（2025）沪0101刑初88号",
        "今天是2026年4月15日",
        "二零二六年五月二十日",
        "上午九点三十分",
        "2019、2020、2021年的账目",
        "账户余额12345678元",
        "一二审",
        "第1、2、3项",
        "利息20250元",
        "证据3号",
        "被告住所地北京市朝阳区",
        "这里3号证据", "2026-04-15", "人民币1,250,000元", "12345678901.23元", "（2026）京0105民初12345号",
        "刑法第二百三十四条", "账号后四位1234", "原告通过微信向被告转账20000，", "转到了他的账户上，一共123456",
        "他的手机在2026-03-07丢了", "发票号码12345678，", "借了5000块",
    ],
)
def test_the_courts_own_numbers_stay(said):
    assert masked(said) == said


def test_a_number_run_into_a_date_is_masked_up_to_its_last_group():
    assert masked("卡号6284-800-432-1876-42025年3月1日") == "卡号××××-42025年3月1日"


def test_addresses_lose_the_street_and_number_and_keep_the_district():
    assert masked("住在北京市朝阳区建国路88号院3号楼2单元501室。") == "住在北京市朝阳区××。"
    assert masked("住朝阳区建国路八十八号院三号楼二单元五零一室") == "住朝阳区××"
    assert masked("他住在幸福小区3栋2单元501室") == "他住在××"  # the estate names the home too
    assert (
        masked("住在朝阳区建国路88号演3号罗尔丹原5015。") == "住在朝阳区××。"
    )  # misheard, still its clause
    assert masked("住在建国路88号，电话") == "住在××，电话"
    assert masked("家住王家村3组15号。") == "家住××。"


def test_a_line_of_one_long_run_of_digits_or_letters_is_read_once():
    """A pasted or fuzzed line of 50,000 digits, or of letters, one e-mail at its end: its patterns
    start only where a run starts, so this finishes (it read the rest of the run at every character:
    a minute for 20,000 digits) and finds the same."""
    digits, letters = "0" * 50_000, "a" * 50_000
    assert [f.category for f in Finder([]).find(digits + "号楼3室")] == ["address"]
    [mail] = Finder([]).find("邮箱" + letters + "@qq.com")
    assert (mail.category, mail.start, mail.end) == ("email", 2, 2 + 50_000 + 7)


def test_a_protected_name_and_its_sound_alikes_become_surname_mou():
    f = Finder(["王小红", "欧阳娜娜"])
    assert masked("证人王小红请陈述", f) == "证人王某请陈述"
    assert masked("证人汪晓红请陈述", f) == "证人王某请陈述"  # what the engine wrote, by sound
    assert masked("小红当时在场", f) == "某当时在场"
    assert masked("欧阳娜娜", f) == "欧阳某"
    assert masked("原告张建国", f) == "原告张建国"  # not protected


def test_a_protected_name_of_parts_is_found_whole_with_or_without_its_dot_and_by_each_part():
    f = Finder(["阿依古丽·买买提", "John Smith"])
    assert masked("证人阿依古丽买买提请陈述", f) == "证人某请陈述"  # the engine writes no dot
    assert masked("证人阿依古丽·买买提请陈述", f) == "证人某·某请陈述"
    assert masked("买买提当时在场", f) == "某当时在场"
    assert masked("阿依古丽说", f) == "某说"
    assert masked("witness john  smith said; Smith agreed", f) == "witness 某 said; 某 agreed"
    assert masked("Smithers said", f) == "Smithers said"  # a part is a whole word, not a piece of one
    assert f.open_from("证人阿依") == 2


def test_open_ends_a_live_caption_holds_back():
    f = Finder(["王小红"])
    assert f.open_from("我的手机号是138") == 6
    assert f.open_from("号码一三八，") == 2
    assert f.open_from("车牌是京A1") == 3
    assert f.open_from("住在建国路") == 2
    assert f.open_from("证人王") == 2
    assert f.open_from("证人汪晓") == 2
    assert f.open_from("我同意。") == 4


def _record() -> Record:
    said = [
        ("u1", "证人王小红，你的电话是13800138000吗？", Role.presiding_judge, None),
        ("u2", "是的，我住在建国路88号。", Role.witness, "王小红"),
        ("u3", "标的额125000元，依据第675条。", Role.plaintiff_agent, "张律师"),
    ]
    return Record(
        hearing=Hearing(id="h", title="原告张建国诉被告李明", parties=["张建国", "李明"]),
        source=Source(duration_ms=9000, sample_rate=16000, channels=1, path="/court/王小红.wav"),
        pipeline=Pipeline(engine="e", model="m", vad="v", diarizer="d"),
        participants=[
            Participant(name="王小红", role=Role.witness),
            Participant(name="张律师", role=Role.plaintiff_agent),
        ],
        utterances=[
            Utterance(
                id=uid,
                start_ms=k * 3000,
                end_ms=k * 3000 + 2500,
                speaker="S",
                role=role,
                participant=who,
                text=text,
                machine_text=text,
                tokens=[Token(text=text[:2], start_ms=k * 3000, end_ms=k * 3000 + 100)],
            )
            for k, (uid, text, role, who) in enumerate(said)
        ],
    )


def test_the_public_version_masks_every_field_and_logs_each_mask():
    record = _record()
    public, log = public_version(record, Choices(protected=("王小红",)))
    texts = [u.text for u in public.utterances]
    assert texts == [
        "证人王某，你的电话是××××吗？",
        "是的，我住在××。",
        "标的额125000元，依据第675条。",
    ]
    dumped = public.model_dump_json()
    assert "王小红" not in dumped and "13800138000" not in dumped and "建国路" not in dumped
    assert (
        public.participants[0].name == "王某" and public.utterances[1].speaker_label == "证人王某"
    )
    assert (
        all(not u.tokens and u.machine_text is None for u in public.utterances)
        and public.source.path is None
    )
    assert {(r.utterance_id, r.category, r.words) for r in log} >= {
        ("u1", "name", "王小红"),
        ("u1", "mobile", "13800138000"),
        ("u2", "address", "建国路88号"),
        ("u2", "name", "王小红"),
    }
    notes = public.public_version.redactions
    for note in (
        n for n in notes if n.field == "text"
    ):  # each note points at its mask in the public text
        text = next(u.text for u in public.utterances if u.id == note.utterance_id)
        assert "×" in text[note.start : note.end] or "某" in text[note.start : note.end]
    assert record.utterances[0].text.startswith("证人王小红")  # the record itself is untouched
    assert record_digest(public.model_copy(update={"public_version": None})) != record_digest(
        record
    )
    assert record_digest(record) == record_digest(
        record.model_copy(update={"public_version": public.public_version})
    )


@dataclass
class _Entry:
    kind: str
    payload: str
    at: str = "2026-12-08T09:00:00.000+00:00"  # when the ledger wrote it (wall clock, UTC)
    utterance_id: str | None = None
    actor: str = "书记员"


def test_a_final_the_blank_dumped_or_that_came_while_dark_never_aired():
    """Captions go dark at 09:00:10 (a 3 s broadcast delay) and light again at 09:01:00: a final
    made from 09:00:07 on was still held, or made while dark, and never aired, whenever its words
    were said; one made before it, or after captions came back, aired."""
    def final(uid: str, at: str, end_ms: int = 60_000, actor: str = "asr") -> _Entry:
        return _Entry("final", json.dumps({"end_ms": end_ms}), f"2026-12-08T09:{at}.000+00:00", uid, actor)

    def switch(blanked: bool, at: str, **said) -> _Entry:
        return _Entry("captions", json.dumps({"blanked": blanked, **said}), f"2026-12-08T09:{at}.000+00:00")

    entries = [final("aired", "00:06"), final("held", "00:08"),
               switch(True, "00:10", at_ms=70_000, from_ms=67_000),  # written before held_ms was kept
               final("dark", "00:30"), final("uploaded", "00:31", actor="whisper/whisper-base"),
               final("replayed", "00:32", end_ms=5_000),  # from the spool, its words long before
               _Entry("split", json.dumps({"new_id": "held.2"}), "2026-12-08T09:00:40.000+00:00", "held"),
               _Entry("merge", json.dumps({"other": "dark"}), "2026-12-08T09:00:41.000+00:00", "aired"),
               switch(False, "01:00", at_ms=120_000),
               final("after", "01:05"), final("held", "01:06")]  # a line's later final changes nothing
    assert choices(entries).unaired == {"held", "dark", "held.2", "aired"}  # halves and merges keep it


def test_the_clerks_choices_from_the_ledger_last_word_wins():
    entries = [
        _Entry(PROTECTION, json.dumps(protection("王小红"))),
        _Entry(PROTECTION, json.dumps(protection("李明"))),
        _Entry(PROTECTION, json.dumps(protection("李明", False))),
        _Entry(REDACTION, json.dumps({"action": "add", "text": "幸福小区", "utterance_id": None})),
        _Entry(
            REDACTION, json.dumps({"action": "add", "text": "红星幼儿园", "utterance_id": "u2"})
        ),
        _Entry(
            REDACTION, json.dumps({"action": "lift", "text": "13800138000", "utterance_id": "u1"})
        ),
        _Entry("captions", json.dumps({"blanked": True, "at_ms": 5000, "reason": "不公开"})),
    ]
    chosen = choices(entries)
    assert chosen.protected == ("王小红",) and chosen.withheld == ((5000, None),)
    assert chosen.redact("他在幸福小区的红星幼儿园", "u2") == "他在×××的×××"
    assert (
        chosen.redact("他在幸福小区的红星幼儿园", "u3") == "他在×××的红星幼儿园"
    )  # added to u2 only
    assert chosen.redact("电话13800138000", "u1") == "电话13800138000"  # lifted in u1
    assert chosen.redact("电话13800138000", "u3") == "电话××××"


def _partial(text: str, stable: int, uid: str = "u1", continues: bool = False, at_ms: int = 0) -> Partial:
    return Partial(hearing_id="h", utterance_id=uid, channel=0, speaker="S", role=None, start_ms=at_ms,
                   end_ms=at_ms + 1000, text=text, stable=stable, continues=continues)


def _said(uid: str, text: str, *, flags=(), participant: str | None = None) -> Final:
    return Final(hearing_id="h", utterance_id=uid, utterance=Utterance(
        id=uid, start_ms=0, end_ms=1000, speaker="S", participant=participant, text=text, flags=list(flags),
        tokens=[Token(text=text[:1], start_ms=0, end_ms=10)]))


def _shown(e: Partial) -> str:
    return e.text[:e.stable]


def test_a_partial_holds_an_open_number_and_shows_a_closed_one_masked():
    feed = PublicFeed(Choices(protected=("王小红",)))
    [open_] = feed.public(_partial("我的手机是一三八一二", 10))
    assert _shown(open_) == "我的手机是" and open_.text == "我的手机是"  # a flush shows no more either
    [closed] = feed.public(_partial(f"我的手机是{MOBILE}，谢谢", 19))
    assert _shown(closed) == "我的手机是××××，谢谢"
    [name] = feed.public(_partial("证人王小", 4))
    assert _shown(name) == "证人"
    feed.public(Endpoint(hearing_id="h", utterance_id="u1", channel=0, end_ms=1000))
    [final] = feed.public(_said("u1", f"王小红的电话{MOBILE}", participant="王小红"))
    assert final.utterance.text == "王某的电话××××" and final.utterance.participant == "王某"
    assert not final.utterance.tokens


def test_a_number_cut_between_two_pieces_of_a_long_utterance_is_found_whole():
    feed = PublicFeed(Choices())
    [first] = feed.public(_said("p1", "请记一下，你打一三八一二三"))  # no endpoint: a piece, its speaker goes on
    assert first.utterance.text == "请记一下，你打"
    [goes_on] = feed.public(_partial("四五六七八就行", 7, uid="p2", continues=True))
    assert "四五六七八" not in goes_on.text and _shown(goes_on).endswith("就行")
    [second] = feed.public(_said("p2", "四五六七八就行", flags=[CONTINUES]))
    assert second.utterance.text == "手机号码××××就行"
    # a piece whose speaker did not go on after all (the next line begins long after): its held
    # tail is released, masked, as its own line
    feed.public(_said("p3", "卡号六二二二零二"))
    released, new = feed.public(_partial("好的", 2, uid="p4", at_ms=10_000))
    assert released.utterance.text == "××××" and released.utterance_id == "p3.tail"
    assert _shown(new) == "好的"
    # … begins at once: searched with it (a number may go on after a pause)
    feed.public(_said("p5", "卡号六二二二零二"))
    [joined] = feed.public(_partial("好的", 2, uid="p6", at_ms=1500))
    assert _shown(joined) == "××××好的"


def test_partials_ahead_of_an_earlier_final_wait_for_it():
    """Partials decoded beside an earlier utterance's final can reach the feed before it: of a long
    utterance's next piece (the open tail of the piece before is not known yet), or of the next
    utterance (it would release that tail as a line of its own). Neither shows."""
    feed = PublicFeed(Choices())
    [first] = feed.public(_partial("请记一下，你打一三八一二三", 7, uid="p1"))
    assert "一三八" not in first.text
    early = _partial("四五六七八就行", 7, uid="p2", continues=True).model_copy(update={"ahead": True})
    assert feed.public(early) == []
    [final] = feed.public(_said("p1", "请记一下，你打一三八一二三"))  # no endpoint: a piece
    assert final.utterance.text == "请记一下，你打"
    assert feed.public(_partial("下一句", 3, uid="p3").model_copy(update={"ahead": True})) == []  # no release
    [goes_on] = feed.public(_partial("四五六七八就行了", 8, uid="p2", continues=True))
    assert "四五六七八" not in goes_on.text
    [second] = feed.public(_said("p2", "四五六七八就行了", flags=[CONTINUES]))
    assert second.utterance.text == "手机号码××××就行了"


def test_the_delay_lets_a_final_that_came_meanwhile_overrule_its_partials():
    async def run() -> list:
        handled: list = []

        async def handle(event) -> None:
            handled.append(event)

        held = Delayed(handle, 0.05)
        runner = asyncio.create_task(held.run())
        held.put(_partial("我的电话", 4))
        held.put(_partial("我的电话一三八是", 8))  # settled too early: the final says otherwise
        held.put(
            Final(
                hearing_id="h",
                utterance_id="u1",
                utterance=Utterance(
                    id="u1", start_ms=0, end_ms=1000, speaker="S", text="我的电话一三九"
                ),
            )
        )
        held.put(_partial("四", 1, uid="u2"))
        while len(handled) < 4:
            await asyncio.sleep(0.01)
        held.put(_partial("五", 1, uid="u3"))
        held.clear()  # the court blanked: what is held never goes out
        await asyncio.sleep(0.1)
        runner.cancel()
        return handled

    handled = asyncio.run(run())
    assert [(e.type, e.utterance_id) for e in handled] == [
        ("partial", "u1"),
        ("partial", "u1"),
        ("final", "u1"),
        ("partial", "u2"),
    ]
    assert [e.text[: e.stable] for e in handled[:2]] == ["我的电话", "我的电话一三"]


def test_a_hearing_may_be_public_without_any_find():
    public, log = public_version(_record().model_copy(update={"utterances": []}), Choices())
    assert log == [] or all(r.field != "text" for r in log)
    assert public.public_version is not None and public.public_version.made_at <= dt.datetime.now(
        dt.timezone.utc
    )


def test_a_caption_tokens_hearing_list_masks_protected_names_and_never_finds_by_them():
    row = {
        "id": "h",
        "title": "王小红被伤害案",
        "case_number": "（2026）京0105刑初7号",
        "cause": "故意伤害",
        "parties": ["王小红", "李明"],
        "participants": [{"name": "王小红", "role": "witness"}],
    }
    chosen = Choices(protected=("王小红",))
    shown = public_listing(row, chosen)
    assert "王小红" not in json.dumps(shown, ensure_ascii=False) and shown["parties"] == [
        "王某",
        "李明",
    ]
    assert public_listing(row, chosen, q="王小红") is None
    assert public_listing(row, chosen, q="小红") is None
    assert public_listing(row, chosen, q="李明") is not None
    assert public_listing(row, chosen, q="(2026)京0105刑初7号") is not None


def test_a_signed_record_takes_public_version_choices_and_stays_as_signed(tmp_path):
    from courtscribe.records.store import RecordStore

    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h", public=True)
    store.machine_final("h", Utterance(id="u1", start_ms=0, end_ms=2000, speaker="S", text="证人王小红的电话13800138000"))
    store.close_hearing("h", actor="书记员")
    digest = store.sign("h", by="王法官", role=Role.presiding_judge).digest
    store.note("h", actor="书记员", kind=PROTECTION, payload=protection("王小红", reason="未成年人"))
    public, _ = public_version(store.record("h"), choices(store.entries("h")))
    assert public.utterances[0].text == "证人王某的电话××××"
    assert record_digest(store.record("h")) == digest and store.verify("h").ok
    store.close()


# -- numbers read with fillers and pauses, IDs' check places, handles, addresses, split names -----
def _digits_left(out: str) -> str:
    return re.sub(r"\D", "", "".join(SPOKEN_BACK.get(c, c) for c in out))


@pytest.mark.parametrize(
    "said, kept",
    [
        ("手机号是一三八，呃，一二三四，五六七八", "手机号是"),
        ("手机号是一三八嗯一二三四五六七八", "手机号是"),
        ("手机号是一三八，那个，一二三四，就是，五六七八", "手机号是"),
        ("电话是一三八…一二三四…五六七八", "电话是"),
        ("一三八……一二三四……五六七八", ""),
        ("卡号是，六二二二零二", "卡号是，"),  # read in part: its cue word reaches across the pause
        ("身份证号码是，一一零一零五，一九九", "身份证号码是，"),
        # a digit misheard as a character, inside a number its cue word names (live, public probe)
        ("手机后码是158123孙5678", "手机后码是"), ("身份证号码是110105198803孙152316", "身份证号码是"),
        ("手机号是158123", "手机号是"),  # six digits of it are already a leak
    ],
)
def test_a_number_read_with_fillers_or_pauses_between_its_groups_is_masked_whole(said, kept):
    out = masked(said)
    assert out == kept + out[len(kept):] and "××××" in out and _digits_left(out) == "", out


@pytest.mark.parametrize(
    "said",
    [
        "身份证号码是，一一零一零五，一九九零零三零七，一二三，叉",
        "110105，19900307，123，X",
        "110105 19900307 123 X",
        "一一零一零五，一九九零零三零七，一二三艾克斯",
        "我报身份证，一一零一零五，一九九零零三零七，一二三埃克斯",
        "一一零一零五一九九零零三零七一二三，X。",
        "一一零一零五，一九九零零三零七，一二三",  # its check place not (yet) said: 17 digits, a birth date
        "一一零一零五，一九九零一三零七，一二三四",  # 6-8-4 as an ID is read, its date misheard
    ],
)
def test_an_id_read_in_groups_is_masked_with_its_check_place_after_a_pause(said):
    finds = Finder().find(said)
    assert [f.category for f in finds] == ["id_card"]
    left = apply(said, finds)
    assert _digits_left(left) == "" and not re.search("[Xx叉]|克斯", left), left


def test_numbers_read_one_after_another_are_each_masked():
    assert masked("一三八，一二三四，五六七八，一三九，一二三四，五六七八") == "手机号码××××，手机号码××××"
    assert masked("一三八一二三四五六七八、一三九一二三四五六七八") == "手机号码××××、手机号码××××"
    assert masked("一一零一零五，一九九零零三零七，一二三，一三八，一二三四，五六七八") == "身份证号码××××，手机号码××××"


def test_a_list_of_small_numbers_read_with_pauses_is_no_phone_number():
    assert masked("证据1、3、5、6、7、8、9、10、11") == "证据1、3、5、6、7、8、9、10、11"  # 11 digits, 1 and 3 first
    assert masked("一三八、一二三四、五六七八") == "手机号码××××"  # in groups as a phone is read: one


@pytest.mark.parametrize(
    "said, kept",
    [
        ("微信号zhangsan_1990", "微信号"),
        ("微信号是wxid_abc123，你加我", "微信号是"),
        ("微信号是，wxid_k3j2h1", "微信号是，"),
        ("抖音号是zs19900307", "抖音号是"),
        ("他的微信是zhangsan", "他的微信是"),  # letters alone, right after the cue
    ],
)
def test_an_account_handle_after_its_cue_word_is_masked(said, kept):
    out = masked(said)
    assert out.startswith(kept + "××××") and not re.search("[A-Za-z0-9]", out), out


def test_words_and_amounts_after_an_account_cue_stay_and_an_email_stays_an_email():
    for said in ("他用微信发了一个excel表格", "原告通过微信向被告转账20000，", "微信里说OK"):
        assert masked(said) == said
    [mail] = Finder().find("支付宝账号是zhangsan@163.com")
    assert mail.category == "email" and mail.start == 6


@pytest.mark.parametrize(
    "said, public",
    [
        ("住在天津市和平区睦南道12号", "住在天津市和平区××"),
        ("住在朝阳区幸福里5号院", "住在朝阳区××"),
        ("住在阳光家园5栋302", "住在××"),
        ("住在阳光苑五栋三零二", "住在××"),
        ("住在北京市朝阳区望京西园四区412号楼", "住在北京市朝阳区××"),
        ("住在中山大道西一百号", "住在××"),
        ("住在上海市静安区愚园路1088弄5号", "住在上海市静安区××"),  # the road and its lane too
        ("他住在3号楼2单元301，", "他住在××，"),  # a building's unit and room, no 室
        ("涉案房屋位于阳光家园三号楼", "涉案房屋位于××"),
        # its road misheard past knowing (世纪大道): a house number and floor where someone lives
        ("我住在上海市普东新趋势级大到100号6楼", "我住在上海市××"),
        ("案件发生在100号6楼的会议室", "案件发生在100号6楼的会议室"),  # no one lives there: a scene
    ],
)
def test_roads_estates_lanes_and_rooms_without_shi_are_addresses(said, public):
    assert masked(said) == public


@pytest.mark.parametrize(
    "said",
    [
        "依据第一百二十条", "二〇二四年三月五日", "借款五万元", "在第三法庭开庭", "第二被告", "一审判决", "百分之六十",
        "我知道3号那天他不在", "他说道，3号那天", "在公园，3号那天", "他家里5号那天没人", "第一，嗯，三个人",
        "嗯，一二三四，就是这样", "我给他打电话，他说12345",
    ],
)
def test_ordinary_speech_near_the_new_patterns_stays(said):
    assert masked(said) == said


def test_a_protected_name_split_by_a_space_a_dot_or_a_pause_is_masked():
    f = Finder(["李明", "王小红"])
    assert masked("被害人李 明", f) == "被害人李某"
    assert masked("被害人叫李，明。", f) == "被害人叫李某。"
    assert masked("证人王 小红到庭", f) == "证人王某到庭"
    assert masked("王·小红", f) == "王某"
    assert masked("我姓李，明天再说", f) == "我姓李，明天再说"  # across a pause: a name as written, no word's start
    assert masked("距离，明天再说", f) == "距离，明天再说"  # nor a sound-alike


def test_open_ends_of_the_new_shapes_are_held():
    f = Finder(["王小红"])
    assert f.open_from("手机号是一三八，呃，") == 4
    assert f.open_from("手机号是一三八，那") == 4  # 那个 begun
    assert f.open_from("电话是一三八…") == 3
    assert f.open_from("一一零一零五一九九零零三零七一二三艾克") == 0
    assert f.open_from("微信号是wxid_ab") == 4
    assert f.open_from("我的手机号是") == 2  # a cue word: its number is still to come
    assert f.open_from("卡号是，") == 0
    assert f.open_from("住在愚园路1088弄") == 2
    assert f.open_from("住在中山大道西一百") == 2
    assert f.open_from("住在睦南道") == 2
    assert f.open_from("证人王 ") == 2 and f.open_from("证人王，") == 2 and f.open_from("证人王 小") == 2
    assert f.open_from("我知道") == 3 and f.open_from("我知道。") == 4


def test_a_cue_word_ending_a_piece_names_the_number_in_the_next():
    feed = PublicFeed(Choices())
    [first] = feed.public(_said("p1", "我的银行卡号是"))  # no endpoint: its speaker goes on
    assert first.utterance.text == "我的"
    [second] = feed.public(_said("p2", "六二二二零二就这些", flags=[CONTINUES]))
    assert second.utterance.text == "银行卡号是××××就这些"


@pytest.mark.parametrize("said, public", [
    ("被告张三，住上海市浦东新区势级大到100号6楼", "被告张三，住上海市浦东新区××"),
    ("原告住所地为上海市黄浦区某某路100号6楼", "原告住所地为上海市黄浦区××"),
    ("居住地是一百号六楼", "居住地是××"), ("住在势级大到100号楼6层", "住在××"),
    ("公司的注册地址为100号6楼", "公司的注册地址为100号6楼"),  # a company's, no one's home
    ("事故发生地址为100号6楼", "事故发生地址为100号6楼"), ("他住院在100号6楼", "他住院在100号6楼"),
    ("他的手机卖了150000", "他的手机卖了150000"), ("电话会议编号202603", "电话会议编号202603"),
])
def test_a_home_and_a_phone_read_in_part_are_found_by_what_names_them(said, public):
    """Second review of the probe's rules: where someone lives, not any address; six digits a phone's
    cue word names right before, not a number that merely follows it."""
    assert masked(said) == public
