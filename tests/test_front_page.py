"""The court's front page (/ui/) in real headless Chromium against the shared TLS server with tokens
on (conftest ``court``): a clerk schedules a hearing through the form (a wrong 案号 is refused at
its field, in Chinese), finds it by 案号, by a party's name and by words said, and opens its clerk
screen; another court's clerk never sees it; what a role may not do is not offered."""
from __future__ import annotations

import uuid

import pytest

from courtscribe.records.model import Role
from courtscribe.records.store import RecordStore

from browser import shot
from conftest import COURT_A

pytestmark = pytest.mark.slow


def front(court, page, role: str) -> None:
    """The front page as ``role``'s token sees it (loaded afresh: a new fragment alone does not reload)."""
    page.goto("about:blank")
    page.goto(f"{court.url}/ui/#token={court.t[role]}")
    page.wait_for_selector("#count:not(:empty)")


def search(page, text: str) -> list[str]:
    """Type into 搜索, press 查找, and read the 案号 column once the page has its answer."""
    page.get_by_label("搜索").fill(text)
    page.get_by_role("button", name="查找").click()
    page.wait_for_function("() => !document.querySelector('#count').dataset.busy")
    return page.eval_on_selector_all("#hearings tbody tr", "trs => trs.map(tr => tr.cells[0].textContent)")


def test_a_clerk_schedules_finds_and_opens_a_hearing(court, page):
    n = uuid.uuid4().int % 90000 + 10000
    case, plaintiff, defendant = f"（2026）京0105民初{n}号", f"张{n}", f"李{n}"
    front(court, page, "clerk")
    assert page.get_by_role("heading", name="排期").is_visible()
    page.get_by_label("案号").fill("2026京0105民初1号")  # no brackets around the year
    page.get_by_label("标题").fill("张三诉李四民间借贷纠纷")
    page.get_by_role("button", name="排期", exact=True).click()
    error = page.locator("#e-case_number")
    error.wait_for(state="visible")
    assert "收案年度" in error.inner_text()
    assert page.get_by_label("案号").get_attribute("aria-invalid") == "true"

    page.get_by_label("案号").fill(case)
    page.get_by_label("案由").fill("民间借贷纠纷")
    page.get_by_label("法庭").fill("第一法庭")
    page.get_by_label("开庭时间").fill("2026-12-01T09:30")
    page.get_by_label("当事人 1 姓名").fill(plaintiff)
    page.get_by_label("当事人 2 姓名").fill(defendant)
    page.get_by_label("当事人 2 受保护").check()  # masked (李某) in captions and the public version
    page.get_by_role("button", name="添加当事人").click()
    page.get_by_label("当事人 3 身份").select_option(label="被告代理人")
    page.get_by_label("当事人 3 姓名").fill("王律师")
    page.get_by_label("审判人员 1 姓名").fill("孙法官")
    page.get_by_label("审判人员 2 姓名").fill("赵书记员")
    page.get_by_label("公开审理").check()
    page.get_by_role("button", name="添加通道").click()
    page.get_by_role("button", name="添加通道").click()
    page.get_by_label("通道 2 角色").select_option(label="原告")
    page.get_by_role("button", name="排期", exact=True).click()
    page.wait_for_selector("#scheduled:not(:empty)")
    assert case in page.inner_text("#scheduled")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "front-page")

    hid = page.inner_text("#scheduled").rsplit("（", 1)[1].rstrip("）")
    record = court.as_(court.t["clerk"], "GET", f"/v1/hearings/{hid}").json()
    h = record["hearing"]
    assert (h["case_number"], h["cause"], h["court"], h["courtroom"], h["public"]) == \
        (case, "民间借贷纠纷", COURT_A, "第一法庭", True)
    store = RecordStore(f"sqlite:///{court.home / 'data' / 'courtscribe.db'}")  # the server's own database
    try:
        assert store.channel_roles(hid) == {0: Role.presiding_judge, 1: Role.plaintiff}  # the seat mics' map
    finally:
        store.close()
    assert h["scheduled_at"].startswith("2026-12-01T01:30")  # 09:30 in Beijing
    assert {(p["role"], p["name"]) for p in record["participants"]} == {
        ("plaintiff", plaintiff), ("defendant", defendant), ("defendant_agent", "王律师"),
        ("presiding_judge", "孙法官"), ("clerk", "赵书记员")}
    assert set(h["parties"]) == {plaintiff, defendant}
    redactions = f"/v1/hearings/{hid}/redactions"
    assert court.as_(court.t["clerk"], "GET", redactions).json()["protected"] == [defendant]

    # found by its case number in the other bracket style, by a party, by words said
    assert search(page, f"(2026)京0105民初{n}号") == [case]
    assert search(page, defendant) == [case]
    said = f"被告当庭确认借款{n}元"
    r = court.as_(court.t["clerk"], "PATCH", f"/v1/hearings/{hid}/utterances/u1",
                  json={"text": said, "channel": 0, "start_ms": 0, "end_ms": 2000, "speaker": "审判长"})
    assert r.status_code == 200, r.text
    assert search(page, f"确认借款{n}") == [case]
    assert page.inner_text("#hearings tbody tr .match") == f"“{said}”"
    row = page.locator("#hearings tbody tr", has_text=case)
    assert row.get_by_role("link", name="字幕").count() == 1  # public: the caption overlay is offered
    row.get_by_role("link", name="书记员屏幕").click()
    page.wait_for_selector("body[data-connection=open]")
    assert f"hearing={hid}" in page.url
    page.wait_for_selector('#lines li[data-uid="u1"]')
    # the clerk screen shows who is protected and protects one more (the reason asked in a prompt)
    page.wait_for_selector(f'#participants .protect[data-name="{defendant}"][aria-pressed=true]')
    page.once("dialog", lambda d: d.accept("未成年人"))
    page.locator(f'#participants .protect[data-name="{plaintiff}"]').click()
    page.wait_for_selector(f'#participants .protect[data-name="{plaintiff}"][aria-pressed=true]')
    assert set(court.as_(court.t["clerk"], "GET", redactions).json()["protected"]) == {plaintiff, defendant}

    # another court's clerk searches the same number, party and words: nothing
    front(court, page, "clerk_b")
    for text in (case, defendant, f"确认借款{n}"):
        assert search(page, text) == []
    assert court.as_(court.t["clerk_b"], "GET", "/v1/hearings", params={"q": case}).json()["total"] == 0


def test_what_a_role_may_not_do_is_not_offered(court, page):
    front(court, page, "viewer")
    assert page.locator("#schedule").is_hidden()  # a viewer schedules nothing
    assert page.locator("#hearings button.link").count() == 0  # and exports nothing
    assert page.locator("a.dictation").count() == 0
    front(court, page, "caption")
    listed = court.as_(court.t["caption"], "GET", "/v1/hearings", params={"limit": 200}).json()["data"]
    assert listed and all(h["public"] for h in listed)
    assert page.locator("#schedule").is_hidden()
    assert page.locator("#hearings a", has_text="书记员屏幕").count() == 0
    front(court, page, "judge")
    assert page.locator("#schedule").is_hidden()
    assert page.get_by_role("link", name="法官语音录入").is_visible()
    assert page.locator("#hearings button.link", has_text="PDF").count() > 0
