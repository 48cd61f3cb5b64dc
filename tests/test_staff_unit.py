"""The unit handler's page (/unit) in headless Chromium against the real service and database:
with the keyboard alone a handler opens an order, signs for it, records the contact and
resolves it, and the revisit is scheduled; an assisting unit's order is read-only; the order
sheet prints."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.core.clock import CHINA_TZ
from services.revisits.service import RevisitService
from tests.support.browser import chromium_page
from tests.support.desk import PASSWORD, file_order, make_user, order_row
from tests.support.staff_pages import log_in, snap, watch_console

pytestmark = pytest.mark.browser
NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)


async def focused(page) -> dict:
    return await page.evaluate(
        "() => ({id: document.activeElement.id, number: document.activeElement.dataset.number})"
    )


async def tab_to(page, predicate, most: int = 40) -> None:
    for _ in range(most):
        await page.keyboard.press("Tab")
        if predicate(await focused(page)):
            return
    raise AssertionError("the keyboard never reached it")


async def wait_focus(page, element_id: str) -> None:
    await page.wait_for_function(
        f"() => document.activeElement.id === '{element_id}'", timeout=10000
    )


async def test_handler_signs_contacts_and_resolves_with_the_keyboard_and_the_revisit_is_scheduled(
    desk_service,
):
    svc = desk_service
    await make_user(svc, "h-works", "unit_handler", "municipal-works")
    await make_user(svc, "h-hubin", "unit_handler", "hubin")
    # filed and dispatched at once: municipal-works leads, hubin (the place's subdistrict) assists
    order, intake = await file_order(svc, NOW, phone="13800000009")
    assert intake.decision.lead == "municipal-works"
    number = order["request_number"]
    await file_order(
        svc, NOW, content="人民路人行道地砖松动，老人差点摔倒", location="湖滨街道人民路"
    )
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/unit", "h-works", PASSWORD)
        assert await page.locator("#topbar nav a").all_inner_texts() == ["承办工作台"]
        assert await page.locator("#orders .item").count() == 2
        assert "签收" in await page.locator(f"#orders .item[data-number='{number}']").inner_text()

        await tab_to(page, lambda f: f["number"] == number)
        await page.keyboard.press("Enter")
        await wait_focus(page, "sign")
        await snap(page, "unit")
        await page.keyboard.press("Enter")
        await wait_focus(page, "contact-note")
        assert (await order_row(svc, number))["status"] == "signed"
        await page.keyboard.type("已电话联系市民，约定明早到现场查看")
        await page.keyboard.press("Tab")
        assert (await focused(page))["id"] == "contact"
        await page.keyboard.press("Enter")
        await wait_focus(page, "resolve-result")
        assert (await order_row(svc, number))["status"] == "contacted"
        await page.keyboard.type("已更换灯泡，路灯恢复照明")
        await page.keyboard.press("Tab")
        assert (await focused(page))["id"] == "resolve"
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            "() => document.getElementById('flash').textContent.includes('回访已安排')"
        )
        await page.wait_for_selector("#detail [data-outcome]")
        assert "已安排" in await page.locator("#detail [data-outcome]").inner_text()

        # the printed sheet is the order, not the page
        await page.evaluate("window.print = () => { window.__printed = true; }")
        await page.click("#print")
        assert await page.evaluate("window.__printed === true")
        await page.emulate_media(media="print")
        assert await page.locator("#sheet").is_visible()
        assert await page.locator("#app").is_hidden()
        sheet = await page.locator("#sheet").inner_text()
        assert number in sheet and "已更换灯泡" in sheet and "承办人" in sheet
        await page.emulate_media(media="screen")
    row = await order_row(svc, number)
    assert row["status"] == "resolved"
    async with svc.pool.acquire() as conn:
        revisit = await conn.fetchrow(
            "SELECT id, status, channel, phone FROM revisits WHERE work_order_id = $1", row["id"]
        )
        job = await conn.fetchrow(
            "SELECT kind, run_at FROM scheduler_jobs WHERE dedupe_key = $1",
            f"revisit:{revisit['id']}:1",
        )
    assert (revisit["status"], revisit["phone"]) == ("scheduled", "13800000009")
    assert job["kind"] == "revisit_attempt"
    assert errors == []


async def test_an_assisting_unit_sees_the_order_read_only(desk_service):
    svc = desk_service
    await make_user(svc, "h-hubin", "unit_handler", "hubin")
    order, _ = await file_order(svc, NOW)
    number = order["request_number"]
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/unit", "h-hubin", PASSWORD)
        assert await page.locator("#orders .empty").count() == 1  # nothing to sign for
        await page.click("#tabs [data-tab='assist']")
        await page.click(f"#orders .item[data-number='{number}']")
        await page.wait_for_selector("#detail-number")
        assert "协办" in await page.locator("#detail").inner_text()
        assert await page.locator("#sign, #resolve, #return").count() == 0
    assert errors == []


async def test_handler_decides_a_suggestion_and_sees_the_dissatisfied_revisit_live(
    desk_service, clock
):
    """The revisit's verdict is recorded by the revisit service itself (what the phone, SMS and
    chat answers call); the page shows it, with the citizen's comment, as it happens."""
    svc = desk_service
    await make_user(svc, "h-works", "unit_handler", "municipal-works")
    clock.current = NOW
    order, _ = await file_order(
        svc, NOW, request_type="suggest", content="建议在长福路增设路灯，晚上太暗"
    )
    number = order["request_number"]
    revisits = RevisitService(
        svc.ctx.settings, svc.pool, clock, None, svc.desk.clocks, svc.desk.supervision
    )
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/unit", "h-works", PASSWORD)
        await page.wait_for_selector("body[data-live='1']")
        await page.click(f"#orders .item[data-number='{number}']")
        await page.click("#sign")
        await page.wait_for_selector("#suggestion-form")
        await page.check("#adopt-yes")
        await page.fill("#adopt-reason", "已列入明年路灯增设计划")
        await page.click("#adopt")
        await page.wait_for_selector("#suggestion-form", state="detached")
        await page.fill("#resolve-result", "已列入计划，明年二季度施工")
        await page.click("#resolve")
        await page.wait_for_selector("#detail [data-outcome]")
        async with svc.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM revisits WHERE work_order_id = $1 FOR UPDATE", order["id"]
            )
            await revisits.finish(conn, row, "dissatisfied", "等到明年太久了", clock.now())
        comment = page.locator("#detail [data-outcome='dissatisfied'] .revisit-comment")
        await comment.wait_for(timeout=10000)
        assert await comment.inner_text() == "等到明年太久了"
        assert "回访不满意" in await page.locator("#detail").inner_text()
    async with svc.pool.acquire() as conn:
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM work_order_events WHERE work_order_id = $1 ORDER BY id",
                order["id"],
            )
        ]
    assert "suggestion_adopted" in kinds and kinds[-1] == "revisit_dissatisfied"
    assert (await order_row(svc, number))["status"] == "signed"
    assert errors == []
