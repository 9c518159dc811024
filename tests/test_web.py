"""The screens in real headless Chromium (Debian's, driven by Playwright) against a real server with
tokens on, fed by real clips streamed in real time: the clerk's live screen and the caption overlay.
Each test saves a screenshot (bench/out/screens; the README shows copies)."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import docx
import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
import websockets

from courtscribe.asr.commands import Dictation
from courtscribe.text import for_scoring
from courtscribe.audio import decode
from courtscribe.clients.stream_client import chunks_from_file

from browser import CHROMIUM_ARGS, Recorder, Relay, chromium_path, in_thread, shot
from conftest import ZH, issue, issue_tokens, start_server

pytestmark = pytest.mark.slow
COURT, ROOM = "北京市朝阳区人民法院", "第一法庭"


@dataclass
class Site:
    url: str  # through the relay: what the browser uses
    ws: str  # straight to the server: what the courtroom microphones use
    relay: Relay
    tokens: dict[str, str]
    home: Path

    def api(self, method: str, path: str, role: str = "admin", **kw) -> httpx.Response:
        return httpx.request(method, self.url + path, headers={"Authorization": f"Bearer {self.tokens[role]}"},
                             timeout=30, **kw)

    def hearing(self, hid: str, **fields) -> str:
        r = self.api("POST", "/v1/hearings", json={"id": hid, "court": COURT, "courtroom": ROOM, "title": f"{hid} 民间借贷纠纷",
                                                   "public": True, **fields})
        assert r.status_code == 201, r.text
        for role, name in (("presiding_judge", "王法官"), ("plaintiff", "张三"), ("defendant", "李四")):
            assert self.api("POST", f"/v1/hearings/{hid}/participants", json={"role": role, "name": name}).status_code == 201
        return hid

    def page_url(self, page: str, hid: str, role: str, extra: str = "") -> str:
        return f"{self.url}/ui/{page}?hearing={hid}{extra}#token={self.tokens[role]}"

    def record(self, hid: str) -> dict:
        return self.api("GET", f"/v1/hearings/{hid}").json()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("web")
    proc, url = start_server(home, COURTSCRIBE_INSECURE_NO_AUTH="0", COURTSCRIBE_MAX_STREAMS="4")
    tokens = issue_tokens(home, admin=("admin", "信息中心"),
                          clerk=("clerk", "赵书记员", "--court", COURT, "--room", ROOM),
                          judge=("judge", "王法官", "--court", COURT),
                          recorder=("recorder", "第一法庭录音主机", "--court", COURT, "--room", ROOM),
                          caption=("caption", "直播导播台", "--court", COURT))
    relay = Relay(int(url.rsplit(":", 1)[1]))
    yield Site(f"http://127.0.0.1:{relay.port}", url.replace("http://", "ws://"), relay, tokens, home)
    relay.close()
    proc.terminate()
    proc.wait(timeout=30)
    assert "Traceback" not in (home / "server.log").read_text(), "the server logged a traceback"


def lines_on(pg) -> list[dict]:
    return pg.eval_on_selector_all("#lines li", "els => els.map(li => ({uid: li.dataset.uid, cls: li.className, "
                                   "text: li.querySelector('.text') ? li.querySelector('.text').textContent : null}))")


# -- the clerk's screen -------------------------------------------------------------------------
def saving(page):
    """Until the page's PATCH of a line is answered: the screen shows a change at once (before the
    store has it), so a test that then reads the store waits for this, not for the screen."""
    return page.expect_response(lambda r: r.request.method == "PATCH" and "/utterances/" in r.url)


def clerk_watches_a_clip(site: Site, page, hid: str, clip: str) -> tuple[str, Recorder]:
    """A new hearing open on the clerk's screen, and its presiding judge's microphone starting to speak."""
    site.hearing(hid)
    page.goto(site.page_url("clerk", hid, "clerk"))
    page.wait_for_selector("body[data-connection=open]")
    mic = Recorder(site.ws, ZH / clip, hearing_id=hid, token=site.tokens["recorder"])
    mic.start()
    return hid, mic


def test_clerk_sees_lines_live_and_an_edit_made_before_the_final_survives_it(site, page):
    hid, mic = clerk_watches_a_clip(site, page, "web-live", "justice.wav")
    # the channel panel: the judge's microphone is connected, its meter moves while the judge speaks
    page.wait_for_function("() => Number(document.querySelector('#channels li[data-channel=\"0\"] meter')?.value) > -50")
    assert page.inner_text('#channels li[data-channel="0"] .name') == "通道 0 审判长"
    partial = page.wait_for_selector("#lines li.partial", timeout=20_000)
    assert mic.is_alive(), "the line should appear while the clip is still streaming"
    uid = partial.get_attribute("data-uid")
    page.click(f'#lines li[data-uid="{uid}"]')  # the line is redrawn with each partial: found afresh
    page.keyboard.press("Enter")
    editor = page.wait_for_selector("textarea.editor")
    assert page.query_selector(f'li[data-uid="{uid}"]').get_attribute("class").count("partial")  # not final yet
    corrected = "正是因为存在绝对正义（书记员更正）"
    editor.fill(corrected)
    with saving(page) as saved:
        page.keyboard.press("Enter")
    assert saved.value.ok
    page.wait_for_selector(f'li[data-uid="{uid}"].edited')
    shot(page, "clerk-live")
    result = mic.finish()
    page.wait_for_selector('#channels li.down[data-channel="0"]')
    assert page.inner_text('#channels li[data-channel="0"] .state') == "已断开"

    finals = {f["utterance_id"]: f["utterance"] for f in result.finals}
    assert uid in finals and finals[uid]["text"] != corrected  # the engine's final came after the edit...
    page.wait_for_function("n => document.querySelectorAll('#lines li.final, #lines li.edited').length >= n",
                           arg=len([f for f in finals.values() if f["text"]]))
    shown = {x["uid"]: x for x in lines_on(page)}
    late = page.inner_text(f'li[data-uid="{uid}"] mark.late-final')  # ...shown beside her text to look at
    assert late == f"识别结果：{finals[uid]['text']}"
    assert shown[uid]["text"] == f"{corrected} {late}" and "edited" in shown[uid]["cls"]  # ...not over it
    stored = {u["id"]: u for u in site.record(hid)["utterances"]}
    assert stored[uid]["text"] == corrected and stored[uid]["status"] == "edited"
    assert stored[uid]["machine_text"] == finals[uid]["text"]  # the machine text is kept beside the edit
    assert "final_after_edit" in stored[uid]["flags"]
    assert not page.query_selector("#lines li.partial")  # every partial was replaced in place

    # replay: a click on a line's time plays its audio from the archive, from the line's own start
    other = next(u for u in finals if u != uid and finals[u]["text"])
    with page.expect_response(lambda r: f"/utterances/{other}/audio" in r.url) as got:
        page.click(f'li[data-uid="{other}"] .time')
    offset_ms = int(got.value.headers["x-line-offset-ms"])
    assert offset_ms == min(300, stored[other]["start_ms"])
    page.wait_for_selector(f'li[data-uid="{other}"].playing')
    page.wait_for_function("() => { const p = document.getElementById('player'); return !p.paused && p.currentTime > 0; }")
    at = page.evaluate("() => document.getElementById('player').currentTime")
    assert at >= offset_ms / 1000 - 0.05  # started at the line, not at the padding before it


def test_a_dropped_connection_is_shown_then_backfilled_without_loss_or_duplicates(site, page):
    hid, mic = clerk_watches_a_clip(site, page, "web-drop", "justice.wav")
    page.wait_for_selector("#lines li", timeout=20_000)
    site.relay.down = True  # the network between the screen and the server goes away for a while
    site.relay.cut()
    page.wait_for_selector("body[data-connection=down]")
    assert "连接已断开" in page.inner_text("#banner")
    shot(page, "clerk-disconnected")
    time.sleep(4)  # lines are spoken and finalized while the screen is away
    site.relay.down = False
    page.wait_for_selector("body[data-connection=open]", timeout=20_000)
    result = mic.finish()
    said = [f["utterance_id"] for f in result.finals if f["utterance"]["text"]]
    page.wait_for_function("n => document.querySelectorAll('#lines li.final').length >= n", arg=len(said))
    shown = [x["uid"] for x in lines_on(page)]
    assert sorted(shown) == sorted(said)  # nothing lost, nothing twice
    assert shown == [u["id"] for u in site.record(hid)["utterances"]]  # in hearing-time order, as stored
    assert page.is_hidden("#banner")


def test_an_unrecognized_stretch_is_a_highlighted_line_the_clerk_replays_and_types(site, page):
    """Speech the engine gave no text for is a line on the screen, marked, with its time to replay;
    the clerk types it like any other line, and the record keeps that it was typed from the audio.
    A line that may be a neighbouring seat's crosstalk is marked too, and one another voice spoke over."""
    from courtscribe.records.model import Role, Utterance
    from courtscribe.records.store import RecordStore

    hid = site.hearing("web-gap")
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    # the line the live path writes when a decode gives nothing usable (tests/test_completeness.py)
    store = RecordStore(f"sqlite:///{site.home / 'data' / 'courtscribe.db'}")
    store.machine_final(hid, Utterance(id="c0-gap-0001", start_ms=400, end_ms=2400, channel=0, speaker="审判长",
                                       role=Role.presiding_judge, text="", confidence=0.0,
                                       flags=["unrecognized", "empty"]), actor="whisper/whisper-base")
    # a seat's line its neighbour's audio came too late to check for bleed (diarization/bleed.py)
    store.machine_final(hid, Utterance(id="c1-x-0001", start_ms=2600, end_ms=3600, channel=1, speaker="原告代理人",
                                       role=Role.plaintiff_agent, text="正是因为", confidence=0.9,
                                       flags=["crosstalk_unchecked"]), actor="whisper/whisper-base")
    # a line of one mixed microphone where a second voice spoke at the same time (diarization/attribute.py)
    store.machine_final(hid, Utterance(id="c0-gap-0001-t1", start_ms=3700, end_ms=4600, channel=0, speaker="说话人2",
                                       text="是的。", confidence=0.9, flags=["overlap"]), actor="whisper/whisper-base")
    page.goto(site.page_url("clerk", hid, "clerk"))
    assert page.wait_for_selector('li[data-uid="c0-gap-0001-t1"] mark.overlap').inner_text() == "同时发言"
    assert page.inner_text('li[data-uid="c0-gap-0001-t1"] .text').startswith("是的。")
    assert "是的。〔同时发言〕" in site.api("GET", f"/v1/hearings/{hid}/export?format=txt").text
    assert page.wait_for_selector('li[data-uid="c1-x-0001"] mark.crosstalk').inner_text() == "可能串音"
    assert page.inner_text('li[data-uid="c1-x-0001"] .text').startswith("正是因为")
    gap = page.wait_for_selector('#lines li.unrecognized[data-uid="c0-gap-0001"]')
    assert gap.inner_text().endswith("〔00:00–00:02 未能识别，请核听录音〕")
    assert page.query_selector('li[data-uid="c0-gap-0001"] mark.gap') is not None
    shot(page, "clerk-unrecognized")
    with page.expect_response(lambda r: "/utterances/c0-gap-0001/audio" in r.url) as got:
        page.click('li[data-uid="c0-gap-0001"] .time')
    assert got.value.status == 200 and got.value.headers["content-type"] == "audio/wav"
    page.click('li[data-uid="c0-gap-0001"] .text')
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor").fill("大学生利用漏洞免费吃肯德基。")
    with saving(page) as saved:
        page.keyboard.press("Enter")
    assert saved.value.ok
    page.wait_for_selector('li[data-uid="c0-gap-0001"].edited:not(.unrecognized)')
    stored = {u["id"]: u for u in site.record(hid)["utterances"]}["c0-gap-0001"]
    assert stored["text"] == "大学生利用漏洞免费吃肯德基。" and stored["flags"] == ["unrecognized", "empty"]
    assert "大学生利用漏洞免费吃肯德基。" in site.api("GET", f"/v1/hearings/{hid}/export?format=txt").text


def test_a_correction_saved_over_a_line_changed_while_she_typed_is_reopened_not_written(site, page):
    """She opens a line to correct it; another screen (a second clerk's) corrects it meanwhile. Her Enter writes nothing
    over the words she has not seen: the line shows the record's text, her text is back in the
    editor, and a second Enter (having seen both) saves it."""
    hid = site.hearing("web-meanwhile")
    line = {"channel": 0, "start_ms": 0, "end_ms": 2000}
    assert site.api("PATCH", f"/v1/hearings/{hid}/utterances/m1", "clerk", json={"text": "原告张山称", **line}).is_success
    page.goto(site.page_url("clerk", hid, "clerk"))
    page.click('li[data-uid="m1"] .text')
    page.keyboard.press("Enter")
    editor = page.wait_for_selector("textarea.editor")
    other = "原告张三称被告至今未还款。"
    assert site.api("PATCH", f"/v1/hearings/{hid}/utterances/m1", "clerk", json={"text": other}).is_success
    editor.fill("原告张三称")
    with saving(page) as refused:
        page.keyboard.press("Enter")
    assert refused.value.status == 409 and refused.value.json()["detail"]["current"] == other
    page.wait_for_function("t => document.querySelector('textarea.editor')?.value === t", arg="原告张三称")
    assert other in page.inner_text("#banner")
    assert site.record(hid)["utterances"][0]["text"] == other
    page.fill("textarea.editor", "原告张三称被告至今未还款，共计五万元。")
    with saving(page) as saved:
        page.keyboard.press("Enter")
    assert saved.value.ok
    page.wait_for_selector('li[data-uid="m1"].edited:not(.failed)')
    assert page.inner_text('li[data-uid="m1"] .text') == "原告张三称被告至今未还款，共计五万元。"
    steps = [(c["before"], c["after"]) for c in site.api("GET", f"/v1/hearings/{hid}/corrections").json()["corrections"]]
    assert steps == [(None, "原告张山称"), ("原告张山称", other), (other, "原告张三称被告至今未还款，共计五万元。")]


def test_a_record_corrected_during_its_read_back_is_read_again_before_it_is_signed(site, page):
    """闭庭, then 核对朗读; meanwhile another screen corrects a line already read aloud: the signature
    is refused (the record is not what was read back), and taken once it is read back again."""
    hid = site.hearing("web-readback")
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    page.goto(site.page_url("clerk", hid, "clerk"))
    page.wait_for_selector("#lines li.final")
    page.click("#sign")  # 闭庭
    page.wait_for_function("() => document.querySelector('#sign').textContent === '签名'")
    with page.expect_response(lambda r: r.url.endswith("/digest")):
        page.click("#readback")
    first = site.record(hid)["utterances"][0]["id"]
    assert site.api("PATCH", f"/v1/hearings/{hid}/utterances/{first}", "clerk", json={"text": "另一屏幕的更正。"}).is_success
    page.wait_for_function("() => document.querySelector('#lines li .text').textContent.startsWith('另一屏幕的更正。')")
    page.click("#readback")  # read back: to sign
    page.click("#sign")
    with page.expect_response(lambda r: r.url.endswith("/signatures") and r.request.method == "POST") as refused:
        page.click("#sign-dialog button[value=ok]")
    assert refused.value.status == 409
    page.wait_for_function("() => document.getElementById('banner').textContent.includes('签名失败')")
    assert not site.record(hid)["signatures"]
    with page.expect_response(lambda r: r.url.endswith("/digest")):
        page.click("#readback")  # read back again
    page.click("#readback")
    page.click("#sign")
    page.click("#sign-dialog button[value=ok]")
    page.wait_for_selector("body.locked")
    assert site.record(hid)["signatures"][0]["by"] == "赵书记员"


def test_sign_off_locks_the_screen_and_exports_work(site, page):
    hid = site.hearing("web-sign", case_number="（2026）京0105民初321号", cause="民间借贷纠纷")
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    page.goto(site.page_url("clerk", hid, "clerk"))
    page.wait_for_selector("#lines li.final")
    assert page.inner_text("#case") == f"案号 （2026）京0105民初321号 · 案由 民间借贷纠纷 · 编号 {hid}"
    # a search shows only the lines whose words hold it (not their times or speakers)
    stored = site.record(hid)["utterances"]
    for words in ("肯德基", stored[0]["text"][:2], "审判长", "不在笔录中的词"):
        page.fill("#search", words)
        held = {u["id"]: words in u["text"] for u in stored}
        page.wait_for_function("n => document.getElementById('hits').textContent === `${n} 处`",
                               arg=sum(held.values()))
        assert {uid: page.is_visible(f'li[data-uid="{uid}"]') for uid in held} == held, words
    page.fill("#search", "")
    page.wait_for_function("() => !document.querySelector('#lines li[hidden]')")
    # reassign the line's speaker from the participant list, keyboard first (S, choose, Enter)
    page.click("#lines li .text")
    page.keyboard.press("s")
    page.select_option("#speaker-choice", label="原告 张三")
    with saving(page) as saved:
        page.click("#speaker-dialog button[value=ok]")
    assert saved.value.ok
    page.wait_for_function("() => document.querySelector('#lines li .who').textContent === '原告 张三'")
    stored = site.record(hid)["utterances"][0]
    assert (stored["role"], stored["participant"]) == ("plaintiff", "张三")
    # the hotwords panel: add a word the engine keeps missing, then remove it again
    page.fill("#add-hotword input[name=word]", "肯德基")
    page.click("#add-hotword button")
    page.wait_for_selector("#hotwords li.own button[aria-label='删除热词 肯德基']")
    assert site.api("GET", f"/v1/hearings/{hid}/hotwords", "clerk").json()["hotwords"] == ["肯德基"]
    page.click("#hotwords li.own button")
    page.wait_for_function("() => !document.querySelector('#hotwords li.own')")
    assert site.api("GET", f"/v1/hearings/{hid}/hotwords", "clerk").json()["hotwords"] == []
    # 休庭 and 继续开庭, each with its reason, into the record (法释〔2017〕5号)
    page.once("dialog", lambda d: d.accept("合议庭评议"))
    page.click("#pause")
    page.wait_for_function("() => document.getElementById('interruptions').textContent.includes('休庭：合议庭评议')")
    assert page.inner_text("#pause") == "继续开庭"
    page.once("dialog", lambda d: d.accept("评议结束"))
    page.click("#pause")
    page.wait_for_function("() => document.getElementById('interruptions').textContent.includes('继续开庭：评议结束')")
    assert [(i["kind"], i["reason"]) for i in site.record(hid)["interruptions"]] == [("paused", "合议庭评议"),
                                                                                    ("resumed", "评议结束")]
    page.click("#readback")
    shot(page, "clerk-readback")
    page.click("#readback")
    for fmt in ("docx", "pdf", "ofd"):  # every printed form is offered, named by the 案号
        with page.expect_download() as dl:
            page.click(f"button.export[data-format={fmt}]")
        assert dl.value.suggested_filename == f"（2026）京0105民初321号.{fmt}"

    page.click("#sign")  # 闭庭: closing and signing are two steps, the record is read back between them
    page.wait_for_function("() => document.querySelector('#sign').textContent === '签名'")
    page.click("#sign")
    page.click("#sign-dialog button[value=ok]")  # not read back yet: nothing is signed
    page.wait_for_function("() => document.getElementById('banner').textContent.includes('核对朗读')")
    assert not site.record(hid)["signatures"]
    with page.expect_response(lambda r: r.url.endswith("/digest")):
        page.click("#readback")  # 核对朗读
    page.click("#readback")  # read back: to sign
    page.click("#sign")  # the signer is the token's holder, in the roles the token holds
    page.wait_for_function("() => document.querySelector('#sign-name').value === '赵书记员'")
    assert page.eval_on_selector("#sign-name", "e => e.readOnly")
    assert page.eval_on_selector_all("#sign-role option", "os => os.map(o => o.value)") == ["clerk"]
    page.click("#sign-dialog button[value=ok]")
    page.wait_for_selector("body.locked")
    assert "已签名" in page.inner_text("#status")
    page.wait_for_selector("#signers li.signed[data-role=clerk]")
    assert page.is_visible("#signers li.pending[data-role=presiding_judge]")
    assert page.is_disabled("#add-participant button") and page.is_disabled("#add-hotword input")
    shot(page, "clerk-signed")
    page.click("#lines li")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.query_selector("textarea.editor") is None  # a signed record cannot be edited here...
    uid = page.get_attribute("#lines li", "data-uid")
    late = site.api("PATCH", f"/v1/hearings/{hid}/utterances/{uid}", "clerk", json={"text": "改"})
    assert late.status_code == 409 and late.json()["detail"]["code"] == "locked"  # ...nor anywhere else


def test_the_keyboard_finds_doubtful_words_splits_and_merges_lines_and_enrolls_a_voice(site, page):
    hid = site.hearing("web-keys")
    Recorder(site.ws, ZH / "lamp.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    stored = site.record(hid)["utterances"]
    page.goto(site.page_url("clerk", hid, "clerk"))
    page.wait_for_function("n => document.querySelectorAll('#lines li.final').length === n", arg=len(stored))

    # Tab in the editor selects the next word the engine was unsure of
    doubtful = next((u, t) for u in stored for t in u["tokens"] if t["prob"] is not None and t["prob"] < 0.5 and t["text"].strip())
    page.click(f'li[data-uid="{doubtful[0]["id"]}"] .text')
    assert page.inner_text(f'li[data-uid="{doubtful[0]["id"]}"] mark.low')  # and it is marked on screen
    page.keyboard.press("Enter")
    page.keyboard.press("Home")
    page.keyboard.press("Tab")
    assert page.evaluate("() => { const b = document.querySelector('textarea.editor'); "
                         "return b.value.slice(b.selectionStart, b.selectionEnd); }") == doubtful[1]["text"].strip()
    page.keyboard.press("Escape")

    # Ctrl+Enter splits the line at the caret; M merges it back with the next line
    u = max(stored, key=lambda x: len(x["text"]))  # at its comma, or in its middle (a piece may have none)
    inner = u["text"].rstrip("，。")
    cut = inner.index("，") + 1 if "，" in inner else len(inner) // 2
    while 0 < cut < len(inner) and inner[cut - 1].isascii() and inner[cut - 1].isalpha() and inner[cut].isalpha():
        cut += 1  # as a clerk splits English: between words (a mixed-language line may have no comma)
    page.click(f'li[data-uid="{u["id"]}"] .text')
    page.keyboard.press("Enter")
    page.evaluate("n => document.querySelector('textarea.editor').setSelectionRange(n, n)", cut)
    page.keyboard.press("Control+Enter")
    page.wait_for_function("n => document.querySelectorAll('#lines li').length === n + 1", arg=len(stored))
    after = site.record(hid)["utterances"]
    first = next(x for x in after if x["id"] == u["id"])
    second = after[after.index(first) + 1]
    assert (first["text"], second["text"]) == (u["text"][:cut].strip(), u["text"][cut:].strip())
    assert u["start_ms"] < first["end_ms"] == second["start_ms"] < u["end_ms"]
    # the new line is selected once the split's answer is in (its `line` event can draw it first)
    page.wait_for_selector(f'li[data-uid="{second["id"]}"].selected', timeout=5_000)
    shot(page, "clerk-split")
    # lines in two mouths are not merged: said in Chinese, before the server refuses it in English
    whose = {"speaker": first["speaker"], "role": first["role"]}
    site.api("PATCH", f"/v1/hearings/{hid}/utterances/{second['id']}", "clerk", json={"speaker": "李四", "role": "defendant"})
    page.wait_for_function("uid => document.querySelector(`li[data-uid='${uid}']`).textContent.includes('李四')",
                           arg=second["id"])
    page.click(f'li[data-uid="{u["id"]}"] .text')
    page.keyboard.press("m")
    page.wait_for_function("() => document.getElementById('banner').textContent.includes('两行的发言人不同')")
    assert len(site.record(hid)["utterances"]) == len(stored) + 1
    site.api("PATCH", f"/v1/hearings/{hid}/utterances/{second['id']}", "clerk", json=whose)
    page.wait_for_function("uid => !document.querySelector(`li[data-uid='${uid}']`).textContent.includes('李四')",
                           arg=second["id"])
    page.click(f'li[data-uid="{u["id"]}"] .text')
    page.keyboard.press("m")
    page.wait_for_function("n => document.querySelectorAll('#lines li').length === n", arg=len(stored))
    merged = next(x for x in site.record(hid)["utterances"] if x["id"] == u["id"])
    assert (merged["text"], merged["start_ms"], merged["end_ms"]) == (u["text"], u["start_ms"], u["end_ms"])
    assert page.query_selector(f'li[data-uid="{second["id"]}"]') is None
    assert site.api("GET", f"/v1/hearings/{hid}/verify", "clerk").json()["ok"] is True

    # enrol the presiding judge's voice from the longest line
    longest = max(stored, key=lambda x: x["end_ms"] - x["start_ms"])
    page.click(f'li[data-uid="{longest["id"]}"] .text')
    page.once("dialog", lambda d: d.accept("王法官"))  # the line names no participant: the page asks who
    with page.expect_response(lambda r: "/participants/" in r.url and r.url.endswith("/voice")) as enrolled:
        page.click("#enroll")
    assert enrolled.value.status == 200 and enrolled.value.json()["enrolled"] is True
    page.wait_for_function("() => document.getElementById('banner').textContent.includes('已登记 王法官 的声纹')")


# -- the caption overlay ------------------------------------------------------------------------
def test_caption_overlay_lines_are_short_and_the_kill_switch_blanks_within_a_second(site, page):
    hid = site.hearing("web-cap")
    said: list[str] = []  # the browser's console: nothing (a missing favicon was an error on every page)
    page.on("console", lambda m: said.append(m.text) if m.type == "error" else None)
    page.goto(site.page_url("captions", hid, "caption", "&prefix=1&operator=1"))
    page.wait_for_selector("body[data-connection=open]", state="attached")  # all its content is fixed: no height
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"  # OBS keys it out
    page.evaluate("""() => { window.seen = [];
        new MutationObserver(() => window.seen.push([...document.querySelectorAll('#caption-box .cap')].map(e => e.textContent)))
          .observe(document.getElementById('caption-box'), {childList: true, subtree: true}); }""")
    mic = Recorder(site.ws, ZH / "justice.wav", hearing_id=hid, token=site.tokens["recorder"])
    mic.start()
    page.wait_for_selector("#caption-box .cap", timeout=30_000)
    shot(page, "captions")
    mic.finish()
    page.wait_for_function("() => Number(document.body.dataset.shown || 0) >= 2", timeout=30_000)
    seen = [s for s in page.evaluate("window.seen") if s]
    assert seen and all(len(screen) <= 2 and all(len(line) <= 16 for line in screen) for screen in seen)
    assert seen[0][0].startswith("审判长：")
    assert "字幕延迟" in page.inner_text("#operator")

    # the court orders non-public content: captions go blank at once, and stay blank
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    page.wait_for_selector("#caption-box .cap")
    t0 = time.monotonic()
    assert site.api("POST", f"/v1/hearings/{hid}/captions/switch", "clerk", json={"blanked": True, "reason": "涉及个人隐私"}).status_code == 200
    page.wait_for_function("() => document.querySelectorAll('#caption-box .cap').length === 0", timeout=1000)
    blank_s = time.monotonic() - t0
    assert blank_s < 1.0
    Recorder(site.ws, ZH / "news_foxconn.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    page.wait_for_timeout(1500)
    assert page.query_selector("#caption-box .cap") is None and page.get_attribute("body", "data-blanked") == "1"
    assert said == []


def test_an_overlay_on_a_pc_whose_clock_is_behind_still_airs(site, page):
    """The OBS PC's clock runs 10 minutes slow: the cues' times are the server's wall clock, and the
    overlay held every line back until its own clock caught up."""
    page.add_init_script("(() => { const real = Date.now.bind(Date); Date.now = () => real() - 600000; })();")
    hid = site.hearing("web-cap-skew")
    page.goto(site.page_url("captions", hid, "caption"))
    page.wait_for_selector("body[data-connection=open]", state="attached")
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid, token=site.tokens["recorder"], speed=0).play()
    page.wait_for_selector("#caption-box .cap", timeout=90_000)  # not ten minutes


def test_an_overlay_that_reconnects_mid_utterance_airs_no_line_twice(site, page):
    """The studio's connection drops while the judge speaks; the server's new feed cuts the utterance's
    settled words into lines again from its start, cut otherwise now that more is settled. The overlay
    (its own module, in the page) airs each line once and of a longer line only the rest."""
    page.goto(site.page_url("captions", site.hearing("web-cap-again"), "caption"))
    page.wait_for_selector("body[data-connection=open]", state="attached")
    aired = page.evaluate("""async () => {
        const { Airing } = await import('/ui/static/airing.js');
        const a = new Airing(), out = [];
        const feed = (uid, ...lines) => lines.forEach((line) => {
          const cue = { utterance_id: uid, lines: [line] };
          if (a.fresh(cue)) out.push(cue.lines.join(''));
        });
        feed('u1', '审判长：本院认为', '被告应当');
        a.reconnected();
        feed('u1', '审判长：本院认为', '被告应当承担违约责任', '并赔偿损失');
        feed('u2', '对对');
        a.reconnected();
        feed('u2', '对对', '对对');  // said twice: aired twice, as said
        return out; }""")
    assert aired == ["审判长：本院认为", "被告应当", "承担违约责任", "并赔偿损失", "对对", "对对"]


# -- judge dictation ------------------------------------------------------------------------------
def _no_stream_left(site: Site) -> None:
    """Until the server holds no live stream (a slot for the next one)."""
    deadline = time.monotonic() + 120
    while site.api("GET", "/healthz").json().get("live_streams"):
        assert time.monotonic() < deadline, "streams of earlier tests still held after 120 s"
        time.sleep(0.5)


def test_dictation_from_a_browser_microphone_writes_text_and_applies_edits(site, playwright, tmp_path):
    """Chromium's fake microphone plays a real clip (welcome.wav, then silence) into getUserMedia; the page
    streams it as PCM16 over the native protocol and writes the finals into its editor. The edits of the
    voice commands go through the same code as the page's 删除上一句 and 撤销 buttons, used here."""
    clip = decode(ZH / "welcome.wav").channel(0)
    mic = tmp_path / "mic.wav"
    sf.write(mic, np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(48000, np.float32)]), 16000, subtype="PCM_16")
    site.tokens.setdefault("judge", issue(site.home, "judge", "王法官", "--court", COURT))
    args = CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-audio-capture={mic}%noloop"]
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=args)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["microphone"],
                                      accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{site.url}/ui/dictation#token={site.tokens['judge']}")
        page.fill("#hotwords", "达摩院")
        _no_stream_left(site)  # this module's server takes 4: a loaded machine's earlier streams may still be finishing
        page.click("#record")
        page.wait_for_function("() => document.body.classList.contains('recording') || "
                               "document.getElementById('banner').textContent", timeout=90_000)
        assert page.evaluate("document.body.classList.contains('recording')"), page.inner_text("#banner")
        page.wait_for_function("() => document.getElementById('editor').value.length >= 8", timeout=90_000)
        page.click("#record")  # stop: the server finalizes what was said
        page.wait_for_selector("body:not(.recording)")
        page.wait_for_timeout(500)
        text = page.input_value("#editor")
        assert jiwer.cer(for_scoring("欢迎大家来体验达摩院推出的语音识别模型"), for_scoring(text)) < 0.3, text
        shot(page, "dictation")

        page.click("#editor")
        page.keyboard.press("End")
        page.keyboard.type("第二句。")
        page.click("#delete-sentence")
        assert page.input_value("#editor") == text  # only the last sentence went
        page.click("#undo")
        assert page.input_value("#editor") == text + "第二句。"
        with page.expect_download() as dl:
            page.click("#export")
        assert dl.value.suggested_filename.endswith(".docx")
        assert text.strip("。") in "".join(par.text for par in docx.Document(dl.value.path()).paragraphs)

        refused = context.new_page()  # a wrong token: the socket's refusal is said as every page says it
        refused.on("pageerror", lambda e: errors.append(str(e)))
        refused.goto(f"{site.url}/ui/dictation#token=cst_0000_not-a-token")
        refused.click("#record")
        refused.wait_for_selector("body:not(.recording)")
        try:
            refused.wait_for_function("() => document.getElementById('banner').textContent.startsWith('录音已停止')",
                                      timeout=90_000)  # a loaded machine: the microphone and socket open slowly
        except Exception:
            raise AssertionError(f"banner {refused.inner_text('#banner')!r}, state {refused.inner_text('#state')!r}, "
                                 f"button {refused.inner_text('#record')!r}") from None
        assert "令牌无效" in refused.inner_text("#banner")
    finally:
        browser.close()
    assert not errors, errors


def test_a_dictated_mark_punctuates_and_undo_takes_back_only_the_dictated_change(site, page):
    """问号 said alone replaces the engine's mark before the caret; 删除上一句 stops at an item of a
    judgment (；); 撤销 takes back the last dictated change and nothing the judge typed elsewhere, and
    refuses (saying so) where the judge has typed over it."""
    page.goto(f"{site.url}/ui/dictation#token={site.tokens['judge']}")
    done = page.evaluate("""async () => {
        const { apply } = await import('/ui/static/dictation.js');
        const editor = document.getElementById('editor'), out = [];
        const at = () => editor.setSelectionRange(editor.value.length, editor.value.length);
        editor.value = ''; at();
        apply([{ op: 'insert', text: '被告是否同意调解。', auto_mark: '。' }]);  // as the server sends it
        apply([{ op: 'punctuate', text: '？' }]);
        out.push(editor.value);
        editor.value = '手打的标题\\n' + editor.value; at();  // the judge types at the top
        apply([{ op: 'insert', text: '判决如下：一、驳回起诉；二、诉讼费由原告负担。' }]);
        apply([{ op: 'delete_sentence' }]);
        out.push(editor.value);
        apply([{ op: 'undo' }]);
        out.push(editor.value);
        editor.value = editor.value.replace('二、诉讼费', '二、案件受理费'); at();  // typed over the dictated words
        apply([{ op: 'undo' }]);
        out.push(editor.value, document.getElementById('banner').textContent);
        return out; }""")
    assert done[0] == "被告是否同意调解？"
    assert done[1] == "手打的标题\n被告是否同意调解？判决如下：一、驳回起诉；"
    assert done[2] == "手打的标题\n被告是否同意调解？判决如下：一、驳回起诉；二、诉讼费由原告负担。"
    assert done[3] == "手打的标题\n被告是否同意调解？判决如下：一、驳回起诉；二、案件受理费由原告负担。" and "未撤销" in done[4]


def test_a_dictation_stream_carries_the_edits_of_its_voice_commands(site):
    """Over the protocol, a judge's own stream (no hearing): a dictation source's finals come with their edits
    (insert, here: no command was said)."""
    async def dictate() -> list[dict]:
        async with websockets.connect(f"{site.ws}/v1/stream", subprotocols=["courtscribe.v1", f"bearer.{site.tokens['judge']}"]) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "role": "judge", "dictation": True}))
            assert json.loads(await ws.recv())["type"] == "ready"
            async for chunk in chunks_from_file(ZH / "custody.wav"):
                await ws.send((chunk * 32767).astype("<i2").tobytes())
            await ws.send(json.dumps({"type": "stop"}))
            return [json.loads(m) async for m in ws]

    finals = [e for e in in_thread(dictate) if e["type"] == "final" and e["utterance"]["text"]]
    def said(text: str) -> list[dict]:  # the engine's own mark at the end is named: a mark said next replaces it
        mark = text[len(text.rstrip("，。？！：；、")):]
        return [{"op": "insert", "text": text, **({"auto_mark": mark} if mark else {})}]

    assert finals and all(e["dictation"] == said(e["utterance"]["text"]) for e in finals)


def dictating(site: Site, page):
    """The dictation page, and a function that applies a final's edits to it as the socket would."""
    page.goto(f"{site.url}/ui/dictation#token={site.tokens['judge']}")
    page.evaluate("async () => { window.dictation = await import('/ui/static/dictation.js'); }")
    page.click("#editor")
    return lambda ops: page.evaluate("ops => window.dictation.apply(ops)", ops)


def test_undo_after_the_judge_typed_before_it_puts_the_dictated_change_back_in_its_place(site, page):
    """删除上一句, then the judge numbers the item by keyboard at the top, then 撤销: the sentence comes
    back where it was, not at its old offset; where she typed at that very place 撤销 refuses, in Chinese."""
    apply = dictating(site, page)
    said = Dictation()
    for final in ("原告张某诉称，被告借款未还。", "本院认为，借贷关系成立。", "删除上一句。"):
        apply(said.parse(final))
    assert page.input_value("#editor") == "原告张某诉称，被告借款未还。"
    page.keyboard.press("Control+Home")
    page.keyboard.insert_text("一、")
    apply(said.parse("撤销。"))
    assert page.input_value("#editor") == "一、原告张某诉称，被告借款未还。本院认为，借贷关系成立。"

    apply(said.parse("删除上一句。"))
    page.keyboard.press("Control+End")
    page.keyboard.insert_text("本院认为，借贷关系不成立。")  # typed where the sentence was deleted
    apply(said.parse("撤销。"))
    assert page.input_value("#editor") == "一、原告张某诉称，被告借款未还。本院认为，借贷关系不成立。"
    assert "未撤销" in page.inner_text("#banner")


def test_a_mark_said_alone_goes_to_the_dictated_words_and_new_words_to_the_caret(site, page):
    """She clicks after 本院认为， while 问号 (said about the question she just dictated) is decoded:
    the mark ends the question, her caret stays, and her next words go in where she clicked. Typing on
    from the dictated words carries the dictation point along."""
    apply = dictating(site, page)
    said = Dictation()
    for final in ("本院认为，原告的请求于法有据。", "被告是否已经还款。"):
        apply(said.parse(final))
    page.evaluate("() => document.getElementById('editor').setSelectionRange(5, 5)")  # her click
    apply(said.parse("问号。"))
    assert page.input_value("#editor") == "本院认为，原告的请求于法有据。被告是否已经还款？"
    assert page.evaluate("() => document.getElementById('editor').selectionStart") == 5
    apply(said.parse("经审理查明"))
    assert page.input_value("#editor") == "本院认为，经审理查明原告的请求于法有据。被告是否已经还款？"

    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    apply(said.parse("本院认为"))
    page.keyboard.insert_text("，借贷关系成立")  # she goes on by hand; then says 句号 alone
    apply(said.parse("句号。"))
    assert page.input_value("#editor") == "本院认为，借贷关系成立。"


def test_marks_said_alone_or_first_and_commands_cut_by_a_pause(site, page):
    """The server's edits for finals as the engine gives them (asr/commands.py), applied by the page:
    an opening mark said alone keeps the colon before it; a mark said first replaces the engine's mark;
    撤销 twice in one final takes back two finals; 新段 | 落 and 删除上 | 一句 are obeyed."""
    apply = dictating(site, page)
    said = Dictation()
    text = lambda: page.input_value("#editor")  # noqa: E731
    for final in ("原告诉称。", "逗号被告辩称：", "左引号。", "我已经还清了。", "右引号句号。"):
        apply(said.parse(final))
    assert text() == "原告诉称，被告辩称：“我已经还清了”。"
    apply(said.parse("撤销，撤销。"))
    assert text() == "原告诉称，被告辩称：“"
    for final in ("我没有借款。", "右引号句号。", "新段", "落。本院认为，"):
        apply(said.parse(final))
    assert text() == "原告诉称，被告辩称：“我没有借款”。\n\n本院认为，"
    apply(said.parse("撤销。"))  # the command cut in two was one final's change: taken back whole
    assert text() == "原告诉称，被告辩称：“我没有借款”。新段"
    for final in ("落。本院认为，借贷关系成立。", "双方均无异议。删除上", "一句。"):
        apply(said.parse(final))
    assert text() == "原告诉称，被告辩称：“我没有借款”。新段落。本院认为，借贷关系成立。"


def test_the_dictation_page_says_its_errors_in_chinese_and_exports_what_it_cannot_print(site, page):
    """A form feed pasted from Word exports as a visible 〔?〕 rather than a refused export; a title
    the server refuses, and a microphone the browser cannot open, are said in Chinese."""
    apply = dictating(site, page)
    apply([{"op": "insert", "text": "第一页\f第二页\u0007。"}])
    with page.expect_download() as dl:
        page.click("#export")
    paragraphs = [p.text for p in docx.Document(dl.value.path()).paragraphs]
    assert "第一页〔?〕第二页〔?〕。" in paragraphs, paragraphs
    page.fill("#doc-title", "民" * 201)
    page.click("#export")
    page.wait_for_selector("#banner:not([hidden])")
    assert page.inner_text("#banner").startswith("导出失败：文书过长")
    page.click("#record")  # this browser has no microphone
    page.wait_for_function("() => document.getElementById('banner').textContent.startsWith('无法录音')")
    assert not re.search("[A-Za-z]", page.inner_text("#banner")), page.inner_text("#banner")


def test_a_wrong_token_is_said_as_wrong_and_the_clerk_screen_offers_nothing(site, page):
    hid = site.hearing("web-badtoken")
    page.goto(f"{site.url}/ui/clerk?hearing={hid}#token=cst_0000_not-a-token")
    page.wait_for_selector("body.refused")
    assert "令牌无效" in page.inner_text("#banner")
    assert page.eval_on_selector_all("nav button", "bs => bs.every(b => b.disabled)")
    page.goto(f"{site.url}/ui/#token=cst_0000_not-a-token")
    page.wait_for_function("() => document.body.textContent.includes('令牌无效')")
    page.goto(f"{site.url}/ui/clerk?hearing=deadbeefdeadbeef#token={site.tokens['clerk']}")
    page.wait_for_function("() => document.getElementById('banner').textContent.includes('没有这个庭审')")


def test_a_caption_overlay_that_is_refused_says_why_to_its_operator(site, page):
    """Refused (a bad token, a hearing not public, none such), the overlay looked like a courtroom
    where nobody speaks: its panel says why, even with the operator's panel off."""
    closed = site.hearing("web-cap-closed", public=False)
    for query, token, why in (("web-cap-closed", site.tokens["caption"], "不公开"),
                              ("deadbeefdeadbeef", site.tokens["caption"], "没有这个庭审"),
                              (closed, "cst_0000_not-a-token", "令牌无效")):
        page.goto(f"{site.url}/ui/captions?hearing={query}#token={token}")
        page.wait_for_selector("body[data-refused='1']", state="attached")
        assert why in page.inner_text("#operator") and page.is_visible("#operator"), query


def test_a_courts_first_day_from_scheduling_to_every_signature(site, page):
    """Tokens on: the clerk schedules on the front page; the room's recorder streams without an id
    (a mistyped id is refused, nothing made); the clerk names a voice (all its lines change) and
    signs; the judge signs on the same screen; both show as signed; the printed forms carry the 案号."""
    room = "第五法庭"
    t = issue_tokens(site.home, clerk=("clerk", "钱书记员", "--court", COURT, "--room", room),
                     recorder=("recorder", "第五法庭录音", "--court", COURT, "--room", room))
    case = "（2026）京0105民初555号"
    page.goto(f"{site.url}/ui/#token={t['clerk']}")
    page.get_by_label("案号").fill(case)
    page.get_by_label("案由").fill("民间借贷纠纷")
    beijing = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 8 * 3600))
    page.get_by_label("开庭时间").fill(beijing)
    page.get_by_label("当事人 1 姓名").fill("张三")
    page.get_by_label("当事人 2 姓名").fill("李四")
    page.get_by_label("审判人员 1 姓名").fill("王法官")
    page.get_by_role("button", name="排期", exact=True).click()
    page.wait_for_selector("#scheduled:not(:empty)")
    hid = page.inner_text("#scheduled").rsplit("（", 1)[1].rstrip("）")

    typo = Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=hid[:-1] + "x", token=t["recorder"], speed=0, role=None)
    typo.start()
    typo.join(120)
    assert "no hearing" in str(typo.error)
    assert site.api("GET", f"/v1/hearings/{hid[:-1]}x").status_code == 404  # nothing was made
    Recorder(site.ws, ZH / "news_kfc.wav", hearing_id=None, token=t["recorder"], speed=0, role=None).play()

    page.goto(f"{site.url}/ui/clerk?hearing={hid}#token={t['clerk']}")
    page.wait_for_selector("#lines li.final")
    assert case in page.inner_text("#case") and hid in page.inner_text("#case")
    before = {u["id"]: u["speaker"] for u in site.record(hid)["utterances"]}
    voice = next(iter(before.values()))
    theirs = sorted(uid for uid, who in before.items() if who == voice)
    page.click("#lines li .text")
    page.keyboard.press("s")
    assert page.inner_text("#speaker-voice-label") == voice and page.is_checked("#speaker-voice")
    page.select_option("#speaker-choice", label="原告 张三")
    with page.expect_response(lambda r: r.request.method == "POST" and "/voices/" in r.url) as saved:
        page.click("#speaker-dialog button[value=ok]")
    assert saved.value.ok
    page.wait_for_function("n => [...document.querySelectorAll('#lines li .who')]"
                           ".filter(w => w.textContent === '原告 张三').length === n", arg=len(theirs))
    after = {u["id"]: u for u in site.record(hid)["utterances"]}
    assert sorted(uid for uid, u in after.items() if (u["speaker"], u["role"], u["participant"]) ==
                  ("原告 张三", "plaintiff", "张三")) == theirs  # every line of that voice, no other
    page.wait_for_selector("#undo-voice")

    page.click("#sign")  # 闭庭, 核对朗读, then 签名
    page.wait_for_function("() => document.querySelector('#sign').textContent === '签名'")
    with page.expect_response(lambda r: r.url.endswith("/digest")):
        page.click("#readback")
    page.click("#readback")
    page.click("#sign")
    page.wait_for_function("() => document.querySelector('#sign-name').value === '钱书记员'")
    page.click("#sign-dialog button[value=ok]")
    page.wait_for_selector("#signers li.signed[data-role=clerk]")
    assert page.is_visible("#signers li.pending[data-role=presiding_judge]")
    judge = page.context.new_page()  # the judge, at the clerk's desk, signs on the same screen
    judge.goto(f"{site.url}/ui/clerk?hearing={hid}#token={site.tokens['judge']}")
    judge.wait_for_selector("#signers li.signed[data-role=clerk]")
    assert judge.inner_text("#sign") == "签名" and not judge.is_disabled("#sign")
    judge.click("#sign")
    judge.wait_for_function("() => document.querySelector('#sign-name').value === '王法官'")
    judge.select_option("#sign-role", "presiding_judge")
    judge.click("#sign-dialog button[value=ok]")
    judge.wait_for_selector("#signers li.signed[data-role=presiding_judge]")
    assert judge.is_disabled("#sign")  # signed once
    judge.close()
    page.reload()
    page.wait_for_selector("#signers li.signed[data-role=presiding_judge]")  # both shown as signed
    assert [(s["role"], s["name"], s["state"]) for s in site.api("GET", f"/v1/hearings/{hid}/signatures").json()[
        "signers"]] == [("presiding_judge", "王法官", "signed"), ("clerk", "钱书记员", "signed")]
    for fmt in ("pdf", "ofd", "docx"):
        with page.expect_download() as dl:
            page.click(f"button.export[data-format={fmt}]")
        assert dl.value.suggested_filename == f"{case}.{fmt}"
