"""The clerk's screen (书记员, clerk.html) in real Chromium, fed live events by the test itself: the
server runs in this process, so a test says exactly which partial, final or error the screen hears
and when (tests/test_web.py drives the same screen with real clips instead). Each test waits for
what the screen shows or sends, never for time to pass."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import uvicorn

from courtscribe.config import Settings
from courtscribe.records.model import Role, Utterance
from courtscribe.server.app import create_app
from courtscribe.streaming.delivery import Delivery
from courtscribe.streaming.events import Final, Partial, StoreRecovered
from courtscribe.streaming.protocol import final_event
from courtscribe.streaming.source import Sinks
from courtscribe.streaming.speakers import Label

from browser import in_thread
from conftest import free_port

pytestmark = pytest.mark.slow


class Court:
    """The server, and what a courtroom's sources would send its screens."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url

    @property
    def store(self):
        return self.app.state.services.records

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=30, **kw)

    def hearing(self, hid: str) -> str:
        people = (("presiding_judge", "王法官"), ("plaintiff", "张三"), ("defendant", "李四"))
        r = self.api("POST", "/v1/hearings", json={
            "id": hid, "title": f"{hid} 民间借贷纠纷", "public": True,
            "participants": [{"role": r, "name": n} for r, n in people]})
        assert r.status_code == 201, r.text
        self.store.open_hearing(hid, actor="test")
        return hid

    def publish(self, hid: str, event) -> None:
        self.app.state.services.live.publish(hid, event)  # thread-safe: onto the server's loop

    def partial(self, hid: str, uid: str, text: str, start: int, end: int, *, channel: int = 0,
                speaker: str = "审判长", role: str | None = "presiding_judge") -> None:
        self.publish(hid, Partial(hearing_id=hid, utterance_id=uid, channel=channel,
                                  speaker=speaker, role=Role(role) if role else None,
                                  start_ms=start, end_ms=end, text=text))

    def final(self, hid: str, uid: str, text: str, start: int, end: int, *, channel: int = 0,
              speaker: str = "审判长", role: str | None = "presiding_judge",
              participant: str | None = None, flags: tuple[str, ...] = (),
              voice: str | None = None) -> Utterance:
        """Stored, then announced (as streaming/delivery.py does)."""
        u = Utterance(id=uid, start_ms=start, end_ms=end, channel=channel, speaker=speaker,
                      role=Role(role) if role else None, participant=participant, text=text,
                      flags=list(flags))
        named = self.store.machine_final(hid, u, actor="asr", voice=voice)
        if named is not None:
            u = u.model_copy(update=named._asdict())
        self.publish(hid, final_event(u, hid))
        return u

    def record(self, hid: str) -> dict:
        return self.api("GET", f"/v1/hearings/{hid}").json()

    def lines(self, hid: str) -> dict[str, dict]:
        return {u["id"]: u for u in self.record(hid)["utterances"]}


@pytest.fixture(scope="module")
def court(funasr_models, tmp_path_factory):
    home = tmp_path_factory.mktemp("clerk-page")
    settings = Settings(engine="funasr", model_dir=funasr_models, data_dir=home / "data",
                        insecure_no_auth=True, frontend="none")
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:  # the models load first
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield Court(app, f"http://127.0.0.1:{server.config.port}")
    server.should_exit = True
    thread.join(30)


def open_clerk(court: Court, page, hid: str) -> None:
    page.goto(f"{court.url}/ui/clerk?hearing={hid}")
    page.wait_for_selector("body[data-connection=open]")


def saving(page, uid: str):
    return page.expect_response(
        lambda r: r.request.method == "PATCH" and r.url.endswith(f"/utterances/{uid}"))


def save_with_enter(page, uid: str) -> None:
    """Enter in her editor saves the line: the store takes it."""
    with saving(page, uid) as saved:
        page.keyboard.press("Enter")
    assert saved.value.ok


def banner_says(page, words: str) -> None:
    page.wait_for_function("w => document.getElementById('banner').textContent.includes(w)",
                           arg=words)


def read_back_and_sign(page) -> None:
    """核对朗读 (the record's digest as read), back, then 签名 as the clerk."""
    with page.expect_response(lambda r: r.url.endswith("/digest")):
        page.click("#readback")
    page.click("#readback")
    page.click("#sign")
    page.wait_for_selector("#sign-dialog[open]")
    page.fill("#sign-name", "赵书记员")
    page.select_option("#sign-role", "clerk")
    page.click("#sign-dialog button[value=ok]")


def close(court: Court, page, hid: str) -> None:
    assert court.api("POST", f"/v1/hearings/{hid}/close").is_success
    page.wait_for_function("() => document.querySelector('#sign').textContent === '签名'")


def choose_speaker(page, uid: str, label: str, *, whole_voice: bool | None = None) -> None:
    """S on line ``uid``, ``label`` chosen; ``whole_voice``: the voice's box as she leaves it."""
    page.click(f'li[data-uid="{uid}"] .text')
    page.keyboard.press("s")
    page.wait_for_selector("#speaker-dialog[open]")
    page.select_option("#speaker-choice", label=label)
    if whole_voice is False:
        page.uncheck("#speaker-voice")


def test_a_final_the_store_could_not_write_is_marked_until_the_clerk_saves_it(court, page):
    """The store fails on a final: the screen marks that line (not a passing toast), sign-off
    takes her to it, and her Enter writes it into the record, where it belongs."""
    hid = court.hearing("cp-unstored")
    open_clerk(court, page, hid)
    court.final(hid, "u1", "原告的借款合同已经到期。", 1000, 3000)
    sent = []

    async def broken(u, voice):
        raise OSError("disk I/O error")

    async def emit(event):
        sent.append(event)
        court.publish(hid, event)

    delivery = Delivery(Sinks(on_final=broken), emit, "test", hid)
    said = Utterance(id="u4", start_ms=9000, end_ms=11000, channel=1, speaker="被告",
                     role=Role.defendant, text="我没有收到任何借款。")
    in_thread(lambda: delivery.line(said, None, Label("被告", Role.defendant)))
    error = next(e for e in sent if e.type == "error")
    assert (error.code, error.utterance_id, error.channel, error.start_ms, error.end_ms) == (
        "store_error", "u4", 1, 9000, 11000)
    mark = page.wait_for_selector('li[data-uid="u4"].unstored mark.unstored')
    assert mark.inner_text() == "未存入笔录"
    banner_says(page, "未能存入笔录")
    assert page.get_attribute("#banner", "data-sticky") == "1"  # no timer hides it: she does
    page.click("#banner button.dismiss")
    page.wait_for_selector("#banner", state="hidden")

    close(court, page, hid)
    read_back_and_sign(page)  # refused on the screen: a line differs from the record
    page.wait_for_selector('li[data-uid="u4"].selected.differs')
    banner_says(page, "1 行与记录不一致")
    assert "第2行（00:00:09 被告）" in page.inner_text("#banner")
    assert not court.record(hid)["signatures"]
    page.keyboard.press("Enter")  # the line she was taken to
    page.wait_for_selector("textarea.editor")
    save_with_enter(page, "u4")
    page.wait_for_selector('li[data-uid="u4"].edited:not(.unstored)')
    stored = court.lines(hid)["u4"]
    assert [stored[k] for k in ("text", "channel", "start_ms", "end_ms", "role")] == [
        "我没有收到任何借款。", 1, 9000, 11000, "defendant"]
    read_back_and_sign(page)
    page.wait_for_selector("body.locked")


def test_naming_a_voice_from_a_line_the_machine_was_unsure_of_names_that_line_too(court, page):
    hid = court.hearing("cp-voice")
    open_clerk(court, page, hid)
    court.final(hid, "u1", "原告陈述诉讼请求。", 1000, 3000, speaker="说话人1", role=None, voice="说话人1")
    court.final(hid, "u2", "请求判令被告归还借款。", 4000, 7000, speaker="说话人1", role=None, voice="说话人1",
                flags=("speaker_unsure",))
    page.wait_for_selector('li[data-uid="u2"] mark.unsure')
    choose_speaker(page, "u2", "原告 张三")
    assert page.is_checked("#speaker-voice")  # 说话人1 的所有行
    with saving(page, "u2") as assigned:  # the store's naming leaves out a line it was unsure of
        page.click("#speaker-dialog button[value=ok]")
    assert assigned.value.ok
    page.wait_for_function("() => document.querySelector('li[data-uid=\"u2\"] .who').textContent"
                           " === '原告 张三'")
    assert page.query_selector('li[data-uid="u2"] mark.unsure') is None
    assert page.inner_text('li[data-uid="u1"] .who') == "原告 张三"
    banner_says(page, "说话人1 的 1 行及所选的这一行已改为 原告 张三")
    lines = court.lines(hid)
    assert {uid: (u["speaker"], u["participant"]) for uid, u in lines.items()} == {
        "u1": ("原告 张三", "张三"), "u2": ("原告 张三", "张三")}
    assert "speaker_unsure" not in lines["u2"]["flags"]


def test_her_correction_of_a_partial_whose_final_held_no_words_is_kept_and_saved(court, page):
    hid = court.hearing("cp-empty")
    open_clerk(court, page, hid)
    court.partial(hid, "u1", "嗯我", 1000, 2000, speaker="证人", role="witness")
    page.click('li[data-uid="u1"] .text')
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor").fill("我当时在现场，看见被告先动的手")
    empty = Utterance(id="u1", start_ms=1000, end_ms=2600, speaker="证人", role=Role.witness, text="")
    court.publish(hid, Final(hearing_id=hid, utterance_id="u1", utterance=empty))
    banner_says(page, "识别结果为空")
    assert page.evaluate("() => document.activeElement.classList.contains('editor')")  # types on
    page.keyboard.type("。")
    save_with_enter(page, "u1")
    page.wait_for_selector('li[data-uid="u1"].edited')
    stored = court.lines(hid)["u1"]
    assert [stored[k] for k in ("text", "channel", "start_ms", "end_ms", "role")] == [
        "我当时在现场，看见被告先动的手。", 0, 1000, 2600, "witness"]

    # Esc lets such a line go, as the engine did
    page.click("#banner button.dismiss")
    page.wait_for_selector("#banner", state="hidden")
    court.partial(hid, "u2", "啊", 3000, 3500, speaker="证人", role="witness")
    page.click('li[data-uid="u2"] .text')
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor")
    court.publish(hid, Final(hearing_id=hid, utterance_id="u2", utterance=empty.model_copy(
        update={"id": "u2", "start_ms": 3000, "end_ms": 3600})))
    page.wait_for_selector("#banner", state="visible")
    page.keyboard.press("Escape")
    page.wait_for_selector('li[data-uid="u2"]', state="detached")
    assert "u2" not in court.lines(hid)


def test_a_search_hides_the_lines_without_its_words_and_the_arrows_skip_them(court, page):
    hid = court.hearing("cp-search")
    open_clerk(court, page, hid)
    court.final(hid, "s1", "原告的借款合同已经到期。", 1000, 3000, speaker="原告", role="plaintiff")
    court.final(hid, "s2", "被告是否收到借款？", 4000, 6000)
    court.final(hid, "s3", "收到了。", 7000, 8000, speaker="原告", role="plaintiff")
    court.final(hid, "s4", "借款已经归还。", 9000, 10000, speaker="被告", role="defendant")
    page.wait_for_selector('li[data-uid="s4"]')
    def shown() -> dict[str, bool]:
        return {uid: page.is_visible(f'li[data-uid="{uid}"]') for uid in ("s1", "s2", "s3", "s4")}
    page.fill("#search", "借款")
    page.wait_for_function("() => document.getElementById('hits').textContent === '3 处'")
    assert shown() == {"s1": True, "s2": True, "s3": False, "s4": True}
    page.fill("#search", "原告")  # the words, not the speaker: s3 is 原告's but does not say it
    page.wait_for_function("() => document.getElementById('hits').textContent === '1 处'")
    assert shown() == {"s1": True, "s2": False, "s3": False, "s4": False}
    page.fill("#search", "借款")
    page.wait_for_function("() => document.getElementById('hits').textContent === '3 处'")
    page.click('li[data-uid="s2"] .text')
    page.keyboard.press("ArrowDown")  # past the hidden s3
    page.wait_for_selector('li[data-uid="s4"].selected')
    page.keyboard.press("ArrowUp")
    page.wait_for_selector('li[data-uid="s2"].selected')
    # the line she is editing stays while its words no longer match, whatever else comes in
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor").fill("被告是否收到钱？")
    court.partial(hid, "s5", "收到", 11000, 12000)
    page.wait_for_function("() => document.querySelector('li[data-uid=\"s5\"]')?.hidden === true")
    assert page.is_visible("textarea.editor")
    assert page.evaluate("() => document.activeElement.classList.contains('editor')")
    page.keyboard.press("Escape")
    page.fill("#search", "")
    page.wait_for_function("() => !document.querySelector('#lines li[hidden]')")
    # a line no diarizer's voice: the dialog offers no "all of the voice's lines"
    page.click('li[data-uid="s1"] .text')
    page.keyboard.press("s")
    page.wait_for_selector("#speaker-dialog[open]")
    assert page.is_hidden("#speaker-voice-row")
    page.keyboard.press("Escape")


def test_a_slow_backfill_keeps_a_correction_made_while_the_record_was_on_its_way(court, page):
    hid = court.hearing("cp-backfill")
    open_clerk(court, page, hid)
    court.final(hid, "u1", "借款是十万元。", 1000, 3000)
    line = f"/v1/hearings/{hid}/utterances/u1"
    assert court.api("PATCH", line, json={"text": "借款是一万元。"}).is_success
    page.wait_for_selector('li[data-uid="u1"].edited')
    # the record a backfill fetches reaches the page only when the test lets it through
    page.evaluate("""path => {
        const real = window.fetch;
        const held = new Promise((ok) => { window.releaseRecord = ok; });
        window.fetch = async (url, init) => {
            const res = await real(url, init);
            if (String(url) === path) await held;
            return res;
        };
    }""", f"/v1/hearings/{hid}")
    with page.expect_response(lambda r: r.url.endswith(f"/v1/hearings/{hid}")):  # the record now
        court.publish(hid, StoreRecovered(hearing_id=hid, utterances=1, lines=1))
    fixed = court.api("PATCH", line, json={"text": "借款是一万二千元。"})
    assert fixed.is_success  # another screen's correction, after that record was read
    page.wait_for_function("() => document.querySelector('li[data-uid=\"u1\"] .text').textContent"
                           " === '借款是一万二千元。'")
    with page.expect_response(lambda r: r.url.endswith(f"/v1/hearings/{hid}/hotwords")):  # its end
        page.evaluate("() => window.releaseRecord()")
    assert page.inner_text('li[data-uid="u1"] .text') == "借款是一万二千元。"


def test_a_signature_refused_over_a_late_final_leads_to_the_line_and_c_confirms_it(court, page):
    hid = court.hearing("cp-late")
    open_clerk(court, page, hid)
    assert "C 确认本行" in page.inner_text("#help")
    court.final(hid, "u1", "现在开庭。", 500, 1500)
    court.partial(hid, "u3", "被告是否承认借款", 8000, 9000)
    page.click('li[data-uid="u3"] .text')
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor").fill("被告是否承认借款事实？")
    save_with_enter(page, "u3")
    court.final(hid, "u3", "被告是否承认借款实施？", 8000, 9500)  # the engine heard otherwise
    page.wait_for_selector('li[data-uid="u3"] mark.late-final')
    close(court, page, hid)
    signing = lambda r: r.url.endswith("/signatures") and r.request.method == "POST"  # noqa: E731
    with page.expect_response(signing) as refused:
        read_back_and_sign(page)
    assert refused.value.status == 409
    page.wait_for_selector('li[data-uid="u3"].selected')
    banner_says(page, "按 C 确认")
    assert "第2行（00:00:08 审判长）" in page.inner_text("#banner")
    with page.expect_response(lambda r: r.url.endswith("/utterances/u3/confirm")) as confirmed:
        page.keyboard.press("c")
    assert confirmed.value.ok
    page.wait_for_selector('li[data-uid="u3"]:not(:has(mark.late-final))')
    assert "final_after_edit" not in court.lines(hid)["u3"]["flags"]
    assert court.lines(hid)["u3"]["text"] == "被告是否承认借款事实？"
    read_back_and_sign(page)
    page.wait_for_selector("body.locked")


def test_a_warning_the_clerk_has_answered_leaves_the_line(court, page):
    """可能串音 goes once she has looked at the line (Enter on it, or C)."""
    hid = court.hearing("cp-crosstalk")
    open_clerk(court, page, hid)
    for uid, start in (("u1", 1000), ("u2", 4000)):
        court.final(hid, uid, "请求判令被告归还借款十万元。", start, start + 2000, channel=1, speaker="原告",
                    role="plaintiff", flags=("crosstalk_unchecked",))
    page.wait_for_selector('li[data-uid="u2"] mark.crosstalk')
    page.click('li[data-uid="u1"] .text')
    page.keyboard.press("Enter")
    page.wait_for_selector("textarea.editor")
    save_with_enter(page, "u1")  # she heard it: the words stand as they are
    page.wait_for_selector('li[data-uid="u1"].edited:not(:has(mark.crosstalk))')
    page.click('li[data-uid="u2"] .text')
    with page.expect_response(lambda r: r.url.endswith("/utterances/u2/confirm")):
        page.keyboard.press("c")
    page.wait_for_selector('li[data-uid="u2"].confirmed:not(:has(mark.crosstalk))')
    assert "可能串音" not in court.api("GET", f"/v1/hearings/{hid}/export?format=txt").text


def test_a_speaker_chosen_for_a_line_still_spoken_is_written_with_its_final(court, page):
    """S on a partial: nothing goes to the record until the line is there (else a line at 00:00 on
    channel 0); its final brings no 发言人待核 back, the record having her word on it."""
    hid = court.hearing("cp-partial-speaker")
    open_clerk(court, page, hid)
    page.evaluate("""() => {
        const real = window.fetch;
        window.sent = [];
        window.fetch = (url, init = {}) => {
            window.sent.push(`${init.method || "GET"} ${url}`);
            return real(url, init);
        };
    }""")
    court.final(hid, "u0", "现在开庭。", 500, 1500, channel=2, speaker="审判长")
    court.partial(hid, "u1", "被告对原告的诉讼请求", 60000, 62000, channel=2, speaker="说话人1", role=None)
    choose_speaker(page, "u1", "被告 李四", whole_voice=False)
    page.click("#speaker-dialog button[value=ok]")
    page.wait_for_selector('li[data-uid="u1"].partial.pending')
    assert page.inner_text('li[data-uid="u1"] .who') == "被告 李四"
    assert not [c for c in page.evaluate("() => window.sent") if c.startswith("PATCH")]
    court.partial(hid, "u1", "被告对原告的诉讼请求有什么意见", 60000, 63500, channel=2, speaker="说话人1", role=None)
    page.wait_for_function(
        "() => document.querySelector('li[data-uid=\"u1\"] .text').textContent.endsWith('意见')")
    assert page.inner_text('li[data-uid="u1"] .who') == "被告 李四"  # not the machine's label again
    with saving(page, "u1") as assigned:
        court.final(hid, "u1", "被告对原告的诉讼请求有什么意见？", 60000, 64000, channel=2, speaker="说话人1",
                    role=None, flags=("speaker_unsure",))
    assert assigned.value.ok
    page.wait_for_selector('li[data-uid="u1"].final:not(.pending)')
    assert page.inner_text('li[data-uid="u1"] .who') == "被告 李四"
    assert page.query_selector('li[data-uid="u1"] mark.unsure') is None
    lines = court.lines(hid)
    assert sorted(lines) == ["u0", "u1"]
    u1 = lines["u1"]
    assert [u1[k] for k in ("channel", "start_ms", "text", "speaker", "role", "participant")] == [
        2, 60000, "被告对原告的诉讼请求有什么意见？", "被告 李四", "defendant", "李四"]
    assert "speaker_unsure" not in u1["flags"]


def test_a_speaker_refused_for_a_line_the_store_has_not_got_is_sent_once_it_has(court, page):
    """The store answers 404 (its final waits on disk, the store being away): her choice waits on
    the line and goes in when the store has it."""
    hid = court.hearing("cp-later-speaker")
    open_clerk(court, page, hid)
    u = Utterance(id="u7", start_ms=3000, end_ms=5000, speaker="说话人2", text="我不同意。")
    court.publish(hid, final_event(u, hid))  # announced; not in the store yet

    def not_there(route):
        said = {"detail": {"code": "not_found", "message": "no utterance 'u7'"}}
        route.fulfill(status=404, content_type="application/json", body=json.dumps(said))
    page.route("**/utterances/u7", not_there)
    choose_speaker(page, "u7", "原告 张三", whole_voice=False)
    with saving(page, "u7") as refused:
        page.click("#speaker-dialog button[value=ok]")
    assert refused.value.status == 404
    page.wait_for_selector('li[data-uid="u7"].pending')
    page.unroute("**/utterances/u7", not_there)
    court.store.machine_final(hid, u)  # the store is back and takes what waited
    with saving(page, "u7") as sent:
        court.publish(hid, StoreRecovered(hearing_id=hid, utterances=1, lines=1))
    assert sent.value.ok
    page.wait_for_selector('li[data-uid="u7"]:not(.pending)')
    assert court.lines(hid)["u7"]["speaker"] == "原告 张三"


def test_an_error_answer_is_said_in_words_whatever_its_shape(court, page):
    hid = court.hearing("cp-errors")
    open_clerk(court, page, hid)
    court.final(hid, "u1", "原告陈述诉讼请求" * 20, 1000, 71000, speaker="原告 张三", role="plaintiff",
                participant="张三")
    court.final(hid, "u2", "被告答辩。", 72000, 74000, speaker="被告 李四", role="defendant",
                participant="李四")
    page.click('li[data-uid="u1"] .text')
    with page.expect_response(lambda r: r.url.endswith("/voice")) as refused:
        page.click("#enroll")  # 70 s: too long to enroll from
    assert refused.value.status == 422
    body = refused.value.json()  # the shape of every other error answer
    assert body["detail"]["code"] == "bad_stretch"
    assert body["error"]["message"] == "pick 1.5 to 60 s of the recording"
    banner_says(page, "声纹登记失败：pick 1.5 to 60 s of the recording")
    # a proxy's error page, and an older server's {"error", "message"}
    older = json.dumps({"error": "busy", "message": "数据库忙"})
    for status, kind, text, said in ((502, "text/html", "<h1>502 Bad Gateway</h1>", "HTTP 502"),
                                     (500, "application/json", older, "数据库忙")):
        answer = answering(status, kind, text)
        page.route("**/utterances/u2", answer)
        page.click('li[data-uid="u2"] .text')
        page.keyboard.press("Enter")
        page.wait_for_selector("textarea.editor").fill("被告答辩如下。")
        with saving(page, "u2"):
            page.keyboard.press("Enter")
        banner_says(page, f"修改未保存：{said}")
        assert "{}" not in page.inner_text("#banner")
        assert said in page.get_attribute('li[data-uid="u2"]', "title")
        page.unroute("**/utterances/u2", answer)


def answering(status: int, kind: str, text: str):
    """A route handler (Playwright passes the route alone to a one-argument one)."""
    return lambda route: route.fulfill(status=status, content_type=kind, body=text)


def test_enter_after_replaying_a_line_by_its_time_opens_it_for_correction(court, page):
    hid = court.hearing("cp-replay")
    open_clerk(court, page, hid)
    court.final(hid, "u1", "原告陈述诉讼请求。", 1000, 3000)
    with page.expect_response(lambda r: r.url.endswith("/utterances/u1/audio")):
        page.click('li[data-uid="u1"] button.time')
    page.wait_for_function("() => document.activeElement.id === 'lines'")  # not the time button
    page.keyboard.press("Enter")
    page.wait_for_selector('li[data-uid="u1"] textarea.editor')
