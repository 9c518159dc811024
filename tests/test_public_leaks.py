"""What a fourth privacy review got out of a public trial's outputs, each kept out: numbers read
with 两 and 洞, cue words a speaker says another way, a number another voice interrupts, the
clerk's choices on a line she then splits or merges, a correction that repeats part of a number,
sound-alikes that are everyday words, surnames read their own way, addresses with 甲 and A栋."""
from __future__ import annotations

import re

import pytest

from courtscribe.records.model import Token, Utterance
from courtscribe.records.store import RecordStore
from courtscribe.redaction.detect import Finder, apply
from courtscribe.redaction.public import Choices, choices, public_version, redaction
from courtscribe.streaming.broadcast import PublicFeed
from courtscribe.streaming.events import Endpoint, Final

DIGITS = dict(zip("零〇幺一二两三四五六七八九洞", "01123245678900"))


def digits_left(text: str) -> str:
    return re.sub(r"\D", "", "".join(DIGITS.get(c, c) for c in text))


def masked(text: str, protected: tuple[str, ...] = ()) -> str:
    finder = Finder(protected)
    return apply(text, finder.find(text))


@pytest.mark.parametrize("said", [
    "我手机号一三八一二三两五六七八",
    "手机号码一三九洞洞幺二三四五六",
    "他留的号码是六五四三二一零九",
    "手机号呢，是一三八，对，一二三四，五六七八",
    "座机号是，呃，六五四三，二一零九",
    "电话洞幺洞六二三四五六七八",
    "车牌沪A·1234学", "车牌京AD·12345", "车牌是沪，A，12345", "邮箱一二三四五六七八九艾特qq点com",
])
def test_numbers_read_out_another_way_are_masked(said):
    assert len(digits_left(masked(said))) < 4, masked(said)


@pytest.mark.parametrize("said", ["我要两万元", "两三个人在场", "赔偿损失13800138000元", "山洞里有三个人",
                                  "发票号码12345678，", "这两个号码不一样", "京A1234是", "证据1、2、3、4、5"])
def test_amounts_and_words_near_them_stay(said):
    assert masked(said) == said


@pytest.mark.parametrize("name,said", [
    ("陈舒", "请原告陈述诉讼请求"), ("沈丽", "依法公开审理本案"), ("袁高", "原告到庭"), ("王芳", "支付往返路费"),
])
def test_a_sound_alike_that_is_an_everyday_word_is_no_name(name, said):
    assert masked(said, (name,)) == said


@pytest.mark.parametrize("name,said,public", [
    ("曾伟", "增伟说他没去", "曾某说他没去"), ("解明", "谢明说他没去", "解某说他没去"),
    ("陈舒", "证人陈舒到庭", "证人陈某到庭"),
])
def test_a_surname_is_heard_in_its_own_reading_too(name, said, public):
    assert masked(said, (name,)) == public


def test_a_name_or_hidden_words_spelled_with_spaces_between_characters_are_found():
    finder = Finder(["王小红"], ["红星幼儿园"])
    said = "证人王 小 红在红 星 幼儿园上学"
    assert apply(said, finder.find(said)) == "证人王某在×××上学"


@pytest.mark.parametrize("said,kept", [
    ("住在建国路甲88号。", "住在××。"), ("住汤臣一品A栋1201", "住汤臣一品××"), ("在B座1203室", "在××"),
    ("A座会议室开会", "A座会议室开会"),
])
def test_house_numbers_with_jia_and_lettered_buildings_are_addresses(said, kept):
    assert masked(said) == kept


def _store(tmp_path) -> RecordStore:
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h", public=True)
    return store


def _line(uid: str, text: str, start_ms: int, speaker: str = "证人") -> Utterance:
    return Utterance(id=uid, start_ms=start_ms, end_ms=start_ms + 2000, speaker=speaker, text=text,
                     tokens=[Token(text=c, start_ms=start_ms + 100 * k, end_ms=start_ms + 100 * k + 90)
                             for k, c in enumerate(text)])


def _public_text(store: RecordStore) -> str:
    public, _ = public_version(store.record("h"), choices(store.entries("h")))
    return public.model_dump_json()


def test_words_the_clerk_hid_in_a_line_stay_hidden_when_she_splits_or_merges_it(tmp_path):
    store = _store(tmp_path)
    store.machine_final("h", _line("u1", "我的孩子在红星幼儿园上学，每天接送。", 0))
    store.note("h", actor="书记员", kind="redaction", payload=redaction("add", "红星幼儿园", "u1"))
    store.split("h", "u1", 12, actor="书记员")  # 红星幼儿园 goes into the new second half
    assert "红星幼儿园" not in _public_text(store)
    store.machine_final("h", _line("u2", "我住的小区叫", 5000))
    store.machine_final("h", _line("u3", "幸福花园小区。", 7100))
    store.note("h", actor="书记员", kind="redaction", payload=redaction("add", "幸福花园", "u3"))
    store.merge("h", "u2", "u3", actor="书记员")  # u3 is merged away: its choice goes to u2
    assert "幸福花园" not in _public_text(store)  # the line, and the merge's entry in 更正记录
    store.close()


def test_a_correction_that_repeats_part_of_a_number_is_masked_as_the_line_is(tmp_path):
    store = _store(tmp_path)
    store.machine_final("h", _line("p1", "我的手机号是一三八，", 0))
    store.machine_final("h", _line("p2", "一二三四五六七八，就这个号。", 2600))
    store.edit("h", "p2", "一二三四五六七八。就这个号。", actor="书记员", reason="标点")
    store.split("h", "p2", 9, actor="书记员")
    public, _ = public_version(store.record("h"), choices(store.entries("h")))
    for c in public.corrections:
        assert len(digits_left(f"{c.before}{c.after}")) < 4, c
    assert all(len(digits_left(u.text)) < 4 for u in public.utterances)
    store.close()


def test_a_number_another_voice_interrupts_is_found_whole(tmp_path):
    store = _store(tmp_path)
    store.machine_final("h", _line("w1", "我的手机号是一三八，", 0))
    store.machine_final("h", _line("j1", "慢一点。", 2200, speaker="审判长"))
    store.machine_final("h", _line("w2", "一二三四五六七八。", 4000))
    public, _ = public_version(store.record("h"), choices(store.entries("h")))
    assert [u.text for u in public.utterances][1] == "慢一点。"
    assert len(digits_left("".join(u.text for u in public.utterances))) < 4
    store.close()


def test_a_live_caption_holds_a_number_another_voice_interrupts():
    feed = PublicFeed(Choices())
    aired = []
    for uid, text, at, who in (("w1", "我的手机号是一三八，", 0, "证人"), ("j1", "慢一点。", 2200, "审判长"),
                               ("w2", "一二三四五六七八。", 4000, "证人")):
        feed.public(Endpoint(hearing_id="h", utterance_id=uid, channel=0, end_ms=at + 2000))
        u = Utterance(id=uid, start_ms=at, end_ms=at + 2000, speaker=who, text=text)
        aired += [e.utterance.text for e in feed.public(Final(hearing_id="h", utterance_id=uid, utterance=u))
                  if isinstance(e, Final)]
    aired += [e.utterance.text for e in feed.release(0, "w1") + feed.release(0, "w2") if isinstance(e, Final)]
    assert "慢一点。" in aired and len(digits_left("".join(aired))) < 4, aired



def test_an_id_read_off_the_card_after_a_long_pause_is_masked_live_and_in_the_public_version(tmp_path):
    said = (("w1", "我的身份证号是一一零一零五，", 0), ("w2", "一九七八零五一二，三四一七。", 8000))
    feed = PublicFeed(Choices())
    aired = []
    for uid, text, at in said:
        feed.public(Endpoint(hearing_id="h", utterance_id=uid, channel=0, end_ms=at + 2000))
        u = Utterance(id=uid, start_ms=at, end_ms=at + 2000, speaker="证人", text=text)
        aired += [e.utterance.text for e in feed.public(Final(hearing_id="h", utterance_id=uid, utterance=u))
                  if isinstance(e, Final)]
        aired += [e.utterance.text for e in feed.release(0, uid) if isinstance(e, Final)]  # CARRY_MS passed
    assert len(digits_left("".join(aired))) < 4, aired
    store = _store(tmp_path)
    for uid, text, at in said:
        store.machine_final("h", _line(uid, text, at))
    public, _ = public_version(store.record("h"), choices(store.entries("h")))
    assert len(digits_left("".join(u.text for u in public.utterances))) < 4
    store.close()
