"""The chat widget on the demo portal, driven in headless Chromium."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium_page

pytestmark = pytest.mark.browser


async def send(page, text: str, bot_count_before: int) -> None:
    await page.fill("#h12345-input", text)
    await page.click("#h12345-send")
    await page.wait_for_function(
        "n => document.querySelectorAll('.h12345-bot').length > n",
        arg=bot_count_before,
        timeout=15000,
    )


async def bot_count(page) -> int:
    return await page.locator(".h12345-bot").count()


async def test_widget_files_a_complaint(service, conn, tmp_path):
    async with chromium_page() as page:
        await page.goto(service.url + "/")
        await page.click("#h12345-btn")
        await page.wait_for_selector("#h12345-box.open")
        await send(
            page,
            "我要投诉，湖滨街道长福路那家川菜馆油烟直接排到我家窗户，天天呛得不行",
            await bot_count(page),
        )
        assert "电话" in await page.locator(".h12345-bot").last.inner_text()
        await send(page, "13859901234", await bot_count(page))
        assert "请确认" in await page.locator(".h12345-bot").last.inner_text()
        await send(page, "确认", await bot_count(page))
        number_el = page.locator("[data-request-number]")
        await number_el.wait_for(timeout=15000)
        number = await number_el.get_attribute("data-request-number")
        await page.screenshot(path=str(tmp_path / "widget.png"))
    order = await conn.fetchrow(
        "SELECT lead_unit, request_type, location FROM work_orders WHERE request_number = $1",
        number,
    )
    assert order is not None
    assert order["lead_unit"] == "ecology"
    assert order["request_type"] == "complain"
    assert "长福路" in order["location"]


async def test_widget_shows_citizen_text_as_text(service, conn):
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    async with chromium_page() as page:
        await page.goto(service.url + "/")
        await page.click("#h12345-btn")
        await send(page, hostile, await bot_count(page))
        assert await page.evaluate("window.__pwned === undefined")
        assert await page.locator("#h12345-log img").count() == 0
        assert hostile in await page.locator(".h12345-me").last.inner_text()
    stored = await conn.fetchval(
        "SELECT text FROM messages WHERE direction = 'in' ORDER BY id LIMIT 1"
    )
    assert stored == hostile  # stored verbatim; escaping is the page's job
