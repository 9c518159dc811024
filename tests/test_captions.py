"""Live captions: cutting finals into broadcast lines, the kill switch, and the feeds of a real server."""
import asyncio
import io
import json
import time

import httpx
import jiwer
import pytest
import webvtt
import websockets

from courtscribe.text import for_scoring
from courtscribe.clients import stream_file
from courtscribe.records.model import Role, Utterance
from courtscribe.records.store import RecordStore
from courtscribe.streaming.events import Final, Partial
from courtscribe.streaming.captioner import MAX_CHARS, Captioner, caption_lines, cues
from courtscribe.config import Settings
from courtscribe.server.captions import blanked, blanks

DELAY_S = Settings.model_fields["caption_delay_ms"].default / 1000  # the served default


def _letters(s: str) -> str:
    return "".join(ch for ch in s if ch not in "，。、；：,.;: ")


@pytest.mark.parametrize("text", [
    "正是因为存在绝对正义，所以我们接受社会的相对正义，但是不能因为现实的相对正义，我们就认为这个社会不存在绝对正义。",
    "原告请求判令被告偿还借款本金人民币一百二十三万四千五百六十七元及利息",  # no punctuation at all
    "被告代理人：我方对证据三的真实性有异议？对关联性也有异议！",
    "KFC和McDonald's在2024年的营业额是12345678901234567890元",
])
def test_caption_lines_are_short_and_lose_no_words(text):
    lines = caption_lines(text)
    assert lines and all(0 < len(line) <= MAX_CHARS for line in lines)
    assert _letters("".join(lines)) == _letters(text)  # only line-end commas and full stops are dropped
    assert not any(line[-1] in "，。、" for line in lines)


def test_caption_lines_break_at_punctuation_and_not_inside_words():
    assert caption_lines("我认为，这个合同是有效的。被告不同意。") == ["我认为，这个合同是有效的", "被告不同意"]
    lines = caption_lines("请出示编号为ABCDEFGHIJ的证据材料")
    assert all("ABCDEFGHIJ" in line or not any(c.isascii() for c in line) for line in lines)


def test_a_number_an_amount_or_a_time_is_never_cut_at_its_point_or_colon():
    """利率3.85% must not become 利率3 / 85% on air: an ASCII mark inside a number ends no phrase, in
    the archive's lines and live (where a partial's last "3." waits for what follows)."""
    assert caption_lines("利率为年利率3.85%的四倍即15.4%") == ["利率为年利率3.85%的四倍即", "15.4%"]
    assert caption_lines("定于下午15:30继续开庭，请双方当事人准时到庭") == ["定于下午15:30继续开庭", "请双方当事人准时到庭"]
    cap = Captioner()
    shown = []
    for n, said in enumerate(("利率为年利率3.", "利率为年利率3.85%", "利率为年利率3.85%的四倍，", "利率为年利率3.85%的四倍，即")):
        shown += cap.partial(_partial(said, 1000 * (n + 1), role=None, stable=len(said)))
    assert [x["text"] for x in shown] == ["利率为年利率3.85%的四倍"]


def test_cues_pair_lines_share_out_the_time_and_name_the_role():
    u = {"id": "u1", "start_ms": 1000, "end_ms": 9000, "role": "presiding_judge",
         "text": "现在开庭。核对当事人身份，原告陈述诉讼请求，被告进行答辩，然后进入法庭调查阶段。"}
    out = cues(u, prefix=True)
    assert out[0]["lines"][0].startswith("审判长：") and out[0]["who"] == "审判长"
    assert all(1 <= len(c["lines"]) <= 2 and all(len(x) <= MAX_CHARS for x in c["lines"]) for c in out)
    assert out[0]["start_ms"] == 1000 and out[-1]["end_ms"] == 9000
    assert all(a["end_ms"] == b["start_ms"] for a, b in zip(out, out[1:]))  # contiguous, in order
    assert [c["id"] for c in out] == [f"u1.{k}" for k in range(len(out))]
    assert "审判长" not in "".join(cues(u)[0]["lines"])  # no prefix unless asked


def _partial(text: str, end_ms: int, role: Role | None = Role.presiding_judge, *, stable: int | None = None,
             uid: str = "u1", continues: bool = False) -> Partial:
    """A partial as a session sends it: ``stable`` characters settled (all of them unless told)."""
    return Partial(hearing_id="h", utterance_id=uid, channel=0, speaker="", role=role, start_ms=0, end_ms=end_ms,
                   text=text, stable=len(text) if stable is None else stable, continues=continues)


def _final(end_ms: int, text: str, role: Role | None = None, *, uid: str = "u1", flags=()) -> Final:
    return Final(hearing_id="h", utterance_id=uid,
                 utterance=Utterance(id=uid, start_ms=0, end_ms=end_ms, speaker="", role=role, text=text,
                                     flags=list(flags)))


def test_live_lines_come_from_settled_partials_and_the_final_adds_only_the_rest():
    cap = Captioner(prefix=True)
    assert cap.partial(_partial("现在开庭，核对", 1200, stable=0)) == []  # nothing settled yet
    shown = cap.partial(_partial("现在开庭，核对当事", 1800, stable=7))
    assert [x["text"] for x in shown] == ["审判长：现在开庭"]  # settled, and complete (ends at a comma)
    assert shown[0]["stable"] == "partial" and 0 < shown[0]["end_ms"] < 1800
    assert cap.partial(_partial("现在开庭，核对当事人的身份。原告", 3000, stable=9)) == []  # "核对当事" may grow
    # a source that revised what it had settled gets nothing shown from it; the final fills in the rest
    assert cap.partial(_partial("现在开停，核对当事人的身份。原告", 3300)) == []
    rest = cap.final(_final(4000, "现在开庭，核对当事人的身份。原告陈述。", Role.presiding_judge))
    assert [x["text"] for x in rest] == ["核对当事人的身份。原告陈述"]
    assert rest[-1]["last"] and rest[-1]["end_ms"] == 4000 and rest[-1]["stable"] == "final"
    assert [x["id"] for x in shown + rest] == ["u1.0", "u1.1"]


def test_a_piece_of_a_long_utterance_goes_on_without_its_speakers_name_again():
    cap = Captioner(prefix=True)
    first = cap.final(_final(8000, "原告请求判令被告偿还借款本金，", Role.plaintiff_agent))
    assert first[0]["text"].startswith("原告代理人")
    more = cap.partial(_partial("以及自二〇二三年起的利息，", 9500, Role.plaintiff_agent, uid="u2", continues=True))
    rest = cap.final(_final(12000, "以及自二〇二三年起的利息，诉讼费由被告承担。", Role.plaintiff_agent, uid="u2",
                            flags=["continues"]))
    assert [x["text"] for x in more + rest] == ["以及自二〇二三年起的利息", "诉讼费由被告承担"]


def test_a_speakers_line_after_another_speakers_is_named_again():
    """Two channels interleave (the agent objects while the judge speaks): the judge's next line came
    unnamed right after the agent's, and viewers read it as the agent's words."""
    cap = Captioner(prefix=True)
    judge = cap.partial(_partial("现在开庭，", 1000, Role.presiding_judge))
    agent = cap.partial(Partial(hearing_id="h", utterance_id="a1", channel=1, speaker="", role=Role.plaintiff_agent,
                                start_ms=900, end_ms=1800, text="我有异议。", stable=5))
    back = cap.final(_final(3000, "现在开庭，核对当事人身份。", Role.presiding_judge))
    assert [x["text"] for x in judge + agent + back] == ["审判长：现在开庭", "原告代理人：我有异议",
                                                         "审判长：核对当事人身份"]
    more = cap.final(_final(5000, "请原告陈述。", Role.presiding_judge, uid="u2"))
    assert more[0]["text"] == "审判长：请原告陈述"  # a new utterance: named, as always


def test_a_pieces_lines_wait_for_the_words_said_before_them():
    """The next piece's partial may come before the previous piece's final (the screen moves on first):
    its lines wait, so the overlay reads in the order things were said."""
    cap = Captioner()
    assert [x["text"] for x in cap.partial(_partial("被告应当返还借款，", 5000, role=None, stable=9))] == ["被告应当返还借款"]
    cap.partial(_partial("被告应当返还借款，并支付利息", 5600, role=None, stable=9))
    early = cap.partial(_partial("逾期利息按照约定计算，", 7000, role=None, uid="u2", continues=True))
    assert early == []  # u1's rest is not out yet
    rest = cap.final(_final(5400, "被告应当返还借款，并支付利息。"))
    later = cap.partial(_partial("逾期利息按照约定计算，自起诉之日起", 7600, role=None, uid="u2", stable=11,
                                 continues=True))
    assert [x["text"] for x in rest + later] == ["并支付利息", "逾期利息按照约定计算"]


def test_a_slow_final_does_not_hold_the_overlay_the_last_partial_goes_out_and_the_final_adds_the_rest():
    cap = Captioner()
    cap.partial(_partial("他一定在家，因为", 1500, role=None, stable=0))
    first = cap.partial(_partial("他一定在家，因为灯亮着", 2500, role=None, stable=8))
    assert [x["text"] for x in first] == ["他一定在家"]
    flushed = cap.flush("u1")  # the endpoint came a while ago and no final yet
    assert [x["text"] for x in flushed] == ["因为灯亮着"] and flushed[-1]["last"] and flushed[-1]["stable"] == "endpoint"
    assert cap.flush("u1") == []  # nothing twice
    rest = cap.final(_final(3200, "他一定在家，因为灯亮着呢。"))
    assert [x["text"] for x in rest] == ["呢"]
    assert cap.flush("u1") == [] and cap.flush("never-heard") == []
    # the preview's closing "。" is not the end of what was said (zh-smoke/lamp.wav, live)
    cap.partial(_partial("就是有一种推理或者解释的。", 7600, role=None, stable=0))
    cap.flush("u1")
    rest = cap.final(_final(8400, "就是有一种推理或者解释的一种感觉。"))
    assert [x["text"] for x in rest] == ["一种感觉"]


def test_a_long_phrase_without_punctuation_goes_out_a_full_line_at_a_time():
    cap = Captioner()
    said = "原告请求判令被告偿还借款本金人民币一百二十三万元及利息"
    out = []
    for n in range(8, len(said) + 1, 4):
        out += cap.partial(_partial(said[:n], n * 200, role=None, stable=n - 4))
    assert [x["text"] for x in out] == ["原告请求判令被告偿还借款本金"] and out[0]["who"] is None  # not 人|民币
    rest = cap.final(_final(6000, said + "。"))
    assert "".join(x["text"] for x in out + rest) == said


def test_the_kill_switch_is_kept_in_the_ledger_and_hides_its_stretch(tmp_path):
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="t", hearing_id="h", public=True)
    store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 5000, "reason": "不公开内容"})
    store.note("h", actor="审判长", kind="captions", payload={"blanked": False, "at_ms": 9000, "reason": None})
    store.note("h", actor="审判长", kind="captions", payload={"blanked": True, "at_ms": 20000, "reason": "涉及隐私"})
    stretches = blanks(store, "h")
    assert stretches == [(5000, 9000), (20000, None)]
    assert not blanked({"start_ms": 0, "end_ms": 5000}, stretches)
    assert blanked({"start_ms": 4000, "end_ms": 6000}, stretches)
    assert not blanked({"start_ms": 9000, "end_ms": 19000}, stretches)
    assert blanked({"start_ms": 30000, "end_ms": 31000}, stretches)
    assert store.verify("h").ok  # the switch is part of the hash-chained record
    with pytest.raises(ValueError):
        store.note("h", actor="x", kind="edit", payload={})


@pytest.mark.slow
def test_caption_feeds_of_a_live_hearing_and_the_switch(server, data_dir):
    api, wsurl = f"{server}/v1/hearings", server.replace("http://", "ws://")
    assert httpx.post(api, json={"id": "cap-1", "public": True, "title": "公开庭审"}).status_code == 201
    assert httpx.post(api, json={"id": "cap-closed", "public": False}).status_code == 201

    async def watch_and_speak() -> tuple[list[dict], dict]:
        async with websockets.connect(f"{wsurl}/v1/hearings/cap-1/captions?prefix=true") as sock:
            hello = json.loads(await sock.recv())
            result = await stream_file(f"{wsurl}/v1/stream", data_dir / "zh-smoke" / "justice.wav", speed=0,
                                       hearing_id="cap-1", role="presiding_judge")
            said = {f["utterance_id"] for f in result.finals if f["utterance"]["text"]}
            got: list[dict] = []
            while {c["utterance_id"] for c in got if c["last"]} != said:  # every cue, after the broadcast delay
                got.append(json.loads(await asyncio.wait_for(sock.recv(), 30)))
            assert {c["utterance_id"] for c in got} == said
            # the switch comes after the words' hearing time (streamed faster than spoken) and the
            # broadcast delay: the archive leaves out what the live dump would have dropped
            await asyncio.sleep(max(0.0, max(c["speech_end_at"] for c in got) + DELAY_S + 0.5 - time.time()))
            switched = httpx.post(f"{api}/cap-1/captions/switch", json={"blanked": True, "reason": "不公开内容"})
            assert switched.status_code == 200
            blank = json.loads(await asyncio.wait_for(sock.recv(), 30))
            return [hello] + got, blank

    events, blank = asyncio.run(watch_and_speak())
    hello, live = events[0], events[1:]
    assert hello == {"type": "subscribed", "hearing_id": "cap-1", "blanked": False}
    assert live and all(e["type"] == "cue" for e in live)
    assert live[0]["lines"][0].startswith("审判长：")
    assert all(len(e["lines"]) == 1 and len(e["lines"][0]) <= MAX_CHARS for e in live)
    # wall-clock stamps for the overlay's delay and latency (true wall times for real-time sources)
    assert all(isinstance(e["speech_end_at"], float) and e["spoken_at"] <= e["speech_end_at"] for e in live)
    assert blank == {"type": "blank", "blanked": True}  # the court's reason stays with the court

    async def screen_hello() -> dict:  # a clerk's screen (re)connecting learns the switch as it stands
        async with websockets.connect(f"{wsurl}/v1/hearings/cap-1/events") as sock:
            return json.loads(await sock.recv())
    assert asyncio.run(screen_hello())["blanked"] is True

    feed = httpx.get(f"{api}/cap-1/captions.json", params={"prefix": True}).json()["cues"]
    # the archive feed is cut from the finals; the overlay said nearly the same words, partly earlier
    archived, shown = ("".join(line for c in x for line in c["lines"]) for x in (feed, live))
    assert jiwer.cer(for_scoring(archived), for_scoring(shown)) <= 0.15, (archived, shown)
    assert sum(e["last"] for e in live) == len({e["utterance_id"] for e in live})  # each utterance ends once
    plain = httpx.get(f"{api}/cap-1/captions.json").json()["cues"]
    vtt = webvtt.from_buffer(io.StringIO(httpx.get(f"{api}/cap-1/captions.vtt").text))
    assert [c.text.split("\n") for c in vtt.captions] == [c["lines"] for c in plain] and all(len(line) <= MAX_CHARS for c in vtt.captions for line in c.lines)

    # a correction reaches the archive feed at the next poll: what was made is kept only while nothing changed
    assert httpx.get(f"{api}/cap-1/captions.json").json()["cues"] == plain
    fixed = httpx.patch(f"{api}/cap-1/utterances/{plain[0]['utterance_id']}", json={"text": "更正后的第一句"})
    assert fixed.status_code == 200, fixed.text
    again = httpx.get(f"{api}/cap-1/captions.json").json()["cues"]
    assert again[0]["lines"] == ["更正后的第一句"] and again[1:] == [c for c in plain if c["utterance_id"] !=
                                                                    plain[0]["utterance_id"]]
    feed = httpx.get(f"{api}/cap-1/captions.json", params={"prefix": True}).json()["cues"]

    # while blanked, nothing said reaches any feed
    asyncio.run(stream_file(f"{wsurl}/v1/stream", data_dir / "zh-smoke" / "news_kfc.wav", speed=0,
                            hearing_id="cap-1", role="presiding_judge"))
    assert httpx.get(f"{api}/cap-1/captions.json", params={"prefix": True}).json()["cues"] == feed

    # a hearing that is not public has no captions, whoever asks
    refused = httpx.get(f"{api}/cap-closed/captions.json")
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "not_public"


def test_a_line_of_marks_alone_is_not_put_on_air():
    assert caption_lines("”") == [] and caption_lines("……") == [] and caption_lines("？") == []
    assert caption_lines("我不同意。”") == ["我不同意。”"]


@pytest.mark.parametrize("said", ["被告应于本判决生效之日起十日内支付原告人民币十二万三千五百元",
                                  "本院于二零二六年三月十五日立案受理后依法适用普通程序审理",
                                  "原告诉称被告于2026年3月15日向原告借款125000元约定年利率3.65%"])
def test_caption_lines_break_between_words_and_never_inside_a_number(said):
    lines = caption_lines(said)
    assert "".join(lines) == said and all(len(line) <= MAX_CHARS for line in lines)
    for a, b in zip(lines, lines[1:]):
        assert a[-1] + b[0] not in ("支付", "受理", "人民") and not (a[-1].isdigit() and b[0] in "0123456789日元")
        assert not (a[-1] in "零一二三四五六七八九十百千万" and b[0] in "零一二三四五六七八九十百千万元")


@pytest.mark.parametrize("said", ["正是因为存在绝对正义所以我们接受现实的相对正义", "对于原告提出的第一项诉讼请求我们有异议。",
                                  "现在开庭。"])
def test_the_speakers_role_never_airs_on_a_line_of_its_own(said):
    """A phrase longer than the line after 原告： left 原告 alone on the first row (the screens probe)."""
    u = {"id": "u1", "start_ms": 0, "end_ms": 4000, "text": said, "role": "defendant_agent", "flags": []}
    lines = [line for cue in cues(u, prefix=True) for line in cue["lines"]]
    assert lines[0].startswith("被告代理人：") and len(lines[0]) > len("被告代理人：")
    assert all(len(line) <= 16 for line in lines) and "".join(lines) == "被告代理人：" + said.rstrip("。")
    live = Captioner(prefix=True).final(Final(hearing_id="h", utterance_id="u1", utterance=Utterance(**{
        **u, "speaker": "被告代理人"})))
    assert live[0]["text"].startswith("被告代理人：") and len(live[0]["text"]) > len("被告代理人：")
