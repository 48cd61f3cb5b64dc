"""The unit handler's page (/unit) in headless Chromium against the real service and database:
with the keyboard alone a handler opens an order, signs for it, records the contact and
resolves it, and the revisit is scheduled; an assisting unit's order is read-only; the order
sheet prints."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.core.clock import CHINA_TZ
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
    await page.wait_for_function(f"document.activeElement.id === '{element_id}'", timeout=10000)


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
            "document.getElementById('flash').textContent.includes('回访已安排')"
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
