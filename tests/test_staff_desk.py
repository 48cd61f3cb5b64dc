"""The dispatch desk page (/desk) in headless Chromium against the real service and database:
a dispatcher finds a queued order, dispatches it with a lead and assisting units, searches, and
sees the queue change live, also when the change is made by another `hotline serve` process."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import aiohttp
import pytest

from services.core.clock import CHINA_TZ
from tests.support.browser import chromium_page
from tests.support.desk import PASSWORD, file_order, login, make_user, order_row, suggestion
from tests.support.serve_process import serve_env, serving
from tests.support.staff_pages import log_in, snap, watch_console

pytestmark = pytest.mark.browser
NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)
UNSURE = [suggestion("municipal-works", 0.46, False), suggestion("hubin", 0.21, False)]
HOSTILE = '<img src=x onerror="window.__pwned=1">'


async def queued(svc, content: str, phone: str = "13800000001", **kw):
    order, intake = await file_order(
        svc, NOW, content=content, suggestions=UNSURE, phone=phone, **kw
    )
    assert intake.decision.lead is None, "the order should wait in the manual queue"
    return order["request_number"]


async def test_dispatcher_dispatches_a_queued_order_with_lead_and_assisting_units(desk_service):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    lamp = await queued(svc, "长福路路灯坏了好几天，晚上很黑，走路很不安全", phone="13912345678")
    await queued(svc, "宝盖镇菜市场门口下水道堵了，污水漫到路上", location="宝盖镇菜市场")
    await queued(svc, "建议在湖滨公园增设几处公共厕所", request_type="suggest", location="湖滨公园")
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/desk", "ag", PASSWORD)
        items = page.locator("#queue .item")
        assert await items.count() == 3
        # the header: the pages an agent may use, this one marked
        assert await page.locator("#topbar nav a").all_inner_texts() == ["坐席工作台", "派单台"]
        assert await page.locator("#topbar nav a[aria-current='page']").inner_text() == "派单台"
        await page.click(f"#queue .item[data-number='{lamp}']")
        await page.wait_for_selector("#suggestions .sugg")
        assert "走路很不安全" in await page.locator("#detail-content").inner_text()
        why = await page.locator("#suggestions .sugg").first.inner_text()
        assert "市政" in why and "智能识别" in why and "46%" in why
        assert "剩" in await page.locator("#queue .item .due").first.inner_text()
        await page.select_option("#lead", "municipal-works")
        await page.select_option("#assists", ["hubin", "landscaping"])
        await page.fill("#dispatch-note", "路灯归市政，属地配合")
        await snap(page, "desk")
        await page.click("#dispatch")
        await page.wait_for_selector(".flash.ok")
        assert "市市政公用事业管理中心" in await page.locator("#flash").inner_text()
        await page.wait_for_function("() => document.querySelectorAll('#queue .item').length === 2")

        row = await order_row(svc, lamp)
        assert (row["status"], row["lead_unit"]) == ("dispatched", "municipal-works")
        async with svc.pool.acquire() as conn:
            assists = await conn.fetch(
                "SELECT unit_code FROM work_order_assists WHERE work_order_id = $1", row["id"]
            )
            note = await conn.fetchval(
                "SELECT note FROM work_order_events WHERE work_order_id = $1 AND kind = 'dispatched'",
                row["id"],
            )
        assert {a["unit_code"] for a in assists} == {"hubin", "landscaping"}
        assert note == "路灯归市政，属地配合"

        # search by phone, by request number and by words
        for q in ("139 1234 5678", lamp, "长福路 路灯"):
            await page.fill("#search-q", q)
            await page.press("#search-q", "Enter")
            await page.wait_for_function(
                "() => document.getElementById('queue-title').textContent === '搜索结果'"
            )
            await page.wait_for_selector(f"#queue .item[data-number='{lamp}']")
            assert await items.count() == 1, q
        await page.fill("#search-q", "没有这种工单")
        await page.press("#search-q", "Enter")
        await page.wait_for_selector("#queue .empty")
        await page.click("#search-clear")

        # live: an order filed meanwhile shows up without reloading the page
        await page.wait_for_selector("body[data-live='1']")
        fresh = await queued(svc, "湖滨街道一处井盖不见了" + HOSTILE)
        await page.wait_for_selector(f"#queue .item[data-number='{fresh}']", timeout=10000)
        # what citizens wrote is shown as text, never run
        await page.click(f"#queue .item[data-number='{fresh}']")
        await page.wait_for_function(
            f"() => document.getElementById('detail-number').textContent === '{fresh}'"
        )
        assert await page.evaluate("window.__pwned === undefined")
        assert await page.locator("#queue img, #detail img").count() == 0
        assert (
            HOSTILE in await page.locator(f"#queue .item[data-number='{fresh}'] .text").inner_text()
        )
        assert HOSTILE in await page.locator("#detail-content").inner_text()
    assert errors == []


async def test_the_queue_updates_live_when_another_process_dispatches(
    desk_service, database_url, tmp_path
):
    """The page is served by this process; another agent dispatches through a second real
    `hotline serve` on the same database; the NOTIFY reaches the page through this process."""
    svc = desk_service
    await make_user(svc, "ag", "agent")
    await make_user(svc, "ag2", "agent")
    number = await queued(svc, "长福路路灯坏了好几天，晚上很黑")
    other_number = await queued(svc, "新华路的井盖丢了，晚上很危险")
    env = serve_env(database_url, tmp_path / "second-process", HOTLINE_SCHEDULER="0")
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/desk", "ag", PASSWORD)
        await page.wait_for_selector("body[data-live='1']")
        await page.click(f"#queue .item[data-number='{number}']")
        await page.wait_for_selector("#dispatch-form")
        with serving(env) as other:
            async with aiohttp.ClientSession() as http:
                colleague = await login(http, SimpleNamespace(url=other), "ag2")
                status, body = await colleague.post(
                    f"/api/dispatch/orders/{number}/dispatch", {"lead": "municipal-works"}
                )
                assert status == 200, body
            # gone from the queue, and the open order shows its new state
            await page.wait_for_selector(
                f"#queue .item[data-number='{number}']", state="detached", timeout=10000
            )
            await page.wait_for_selector("#lead-form", timeout=10000)
            assert await page.locator(f"#queue .item[data-number='{other_number}']").count() == 1
    assert errors == []
