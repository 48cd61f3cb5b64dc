"""The supervision board (/supervisor) in headless Chromium against the real service and
database: the lights matrix fills live when the scan raises lights, drills down to the orders;
a supervisor arbitrates a disputed order and the precedent routes the next similar order; the
precedent is deleted; the performance table shows the period."""

from __future__ import annotations

from datetime import datetime

import aiohttp
import pytest

from services.core.clock import CHINA_TZ
from tests.support.browser import chromium_page
from tests.support.desk import PASSWORD, file_order, login, make_user, order_row, suggestion
from tests.support.staff_pages import log_in, snap, watch_console

pytestmark = pytest.mark.browser
NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)
DISPUTED = "小区物业不管楼道里堆放的杂物，存在消防安全隐患，希望有人来管一管"
OTHERS = [
    ("ecology", "工业区有工厂晚上偷排废气，气味很刺鼻"),
    ("sanitation", "菜市场旁边的垃圾三天没人清运了"),
    ("urban-management", "人行道上有流动摊贩占道经营，行人只能走机动车道"),
    ("municipal-works", "新华路有个井盖缺失，晚上很危险"),
]
SIMILAR = "小区物业不管楼道里堆的杂物，有消防安全隐患，希望有人管一管"


async def test_supervisor_watches_lights_live_and_arbitrates_and_the_precedent_routes_the_next_order(
    desk_service, clock
):
    svc = desk_service
    await make_user(svc, "sup", "supervisor")
    await make_user(svc, "h-housing", "unit_handler", "housing")
    clock.current = NOW
    lamp, _ = await file_order(svc, NOW)  # municipal-works, confident
    for unit, text in OTHERS:  # a board with several units on it
        await file_order(svc, NOW, content=text, location=None, suggestions=[suggestion(unit)])
    disputed, intake = await file_order(
        svc, NOW, content=DISPUTED, location=None, suggestions=[suggestion("housing")]
    )
    assert intake.decision.lead == "housing"
    number = disputed["request_number"]
    async with aiohttp.ClientSession() as http:
        housing = await login(http, svc, "h-housing")
        status, body = await housing.post(
            f"/api/unit/orders/{number}/return",
            {"reason": "楼道杂物属消防通道管理，不属住建职责", "dispute": True},
        )
        assert status == 200 and body["status"] == "arbitration", body

    # the next morning (a session lasts 12 hours): the supervisor opens the board
    clock.current = datetime(2026, 11, 24, 9, tzinfo=CHINA_TZ)
    async with chromium_page() as page:
        errors = watch_console(page)
        page.on("dialog", lambda d: d.accept())
        await log_in(page, svc.url, "/supervisor", "sup", PASSWORD)
        await page.wait_for_selector("body[data-live='1']")
        # the returned order's light (退回重派 is the centre's; housing returned it)
        await page.wait_for_selector("#light-matrix")
        # the sign-for time runs out at 10:00: the scan raises the lights, the matrix follows live
        clock.current = datetime(2026, 11, 24, 10, 30, tzinfo=CHINA_TZ)
        report = await svc.desk.supervision.scan()
        assert report.lights >= 1
        cell = page.locator(
            "#light-matrix tr[data-unit='municipal-works'] button.cell[data-point='sign_for']"
        )
        await cell.first.wait_for(timeout=10000)
        await cell.first.click()
        await page.wait_for_selector(f"#drill-list .item[data-number='{lamp['request_number']}']")
        await snap(page, "supervisor")
        await page.click(f"#drill-list .item[data-number='{lamp['request_number']}']")
        await page.wait_for_selector("#drill .timeline")

        # arbitration: both sides' reasons, then the owner
        await page.click("#tabs [data-tab='arbitration']")
        card = page.locator(f"article[data-number='{number}']")
        await card.wait_for()
        assert "不属住建职责" in await card.locator(".reasons").inner_text()
        assert "争议" in await card.locator(".reasons").inner_text()
        await snap(page, "supervisor-arbitration")
        await page.select_option(f"#arb-unit-{number}", "fire")
        await page.fill(f"#arb-reason-{number}", "楼道堆物占用消防通道，由消防救援大队承办")
        await card.locator("button[type=submit]").click()
        await page.wait_for_selector(".flash.ok")
        await page.wait_for_selector("#arbitration .empty")
        row = await order_row(svc, number)
        assert (row["status"], row["lead_unit"]) == ("dispatched", "fire")

        # the precedent routes the next similar order to the decided owner at once
        unsure = [suggestion("housing", 0.5, False), suggestion("urban-management", 0.2, False)]
        nxt, intake = await file_order(
            svc, clock.current, content=SIMILAR, location=None, suggestions=unsure
        )
        assert intake.decision.reason == "precedent"
        assert (await order_row(svc, nxt["request_number"]))["lead_unit"] == "fire"

        # precedents: listed, and deleted
        await page.click("#tabs [data-tab='precedents']")
        await page.wait_for_selector("#precedents tr[data-id]")
        assert number in await page.locator("#precedents").inner_text()
        await page.click("#precedents tr[data-id] button.danger")
        await page.wait_for_selector("#precedents .empty")
        async with svc.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM dispatch_precedents WHERE active") == 0

        # performance for the period, table and bars
        await page.click("#tabs [data-tab='performance']")
        await page.fill("#from", "2026-11-01")
        await page.fill("#to", "2026-11-30")
        await page.click("#period button[type=submit]")
        await page.wait_for_selector("#performance-table tr[data-unit='municipal-works']")
        await page.wait_for_selector("#chart .bars")
        await snap(page, "supervisor-performance")
    assert errors == []
