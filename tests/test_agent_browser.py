"""The agent workspace page in headless Chromium, with a citizen on the chat widget."""

from __future__ import annotations

import pytest

from services.staff import accounts as auth
from tests.support.agent import open_workspace
from tests.support.browser import chromium_page

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1">长福路路灯坏了'


async def citizen_says(page, text: str) -> None:
    before = await page.locator(".h12345-bot").count()
    await page.fill("#h12345-input", text)
    await page.click("#h12345-send")
    await page.wait_for_function(
        "n => document.querySelectorAll('.h12345-bot').length > n", arg=before, timeout=15000
    )


async def test_agent_takes_over_suggests_replies_and_dispatches(service, conn):
    async with chromium_page() as citizen:
        await citizen.goto(service.url + "/")
        await citizen.click("#h12345-btn")
        await citizen_says(citizen, "湖滨街道" + HOSTILE + "，晚上很黑")
        await citizen_says(citizen, "转人工")

        agent = await citizen.context.new_page()
        # a unit handler's account does not open the workspace
        await agent.goto(service.url + "/agent")
        await agent.fill("#login-user", "handler-ecology")
        await agent.fill("#login-pass", auth.DEMO_PASSWORD)
        await agent.click("#login-btn")
        await agent.wait_for_function(
            "() => document.getElementById('login-error').textContent.includes('没有坐席权限')"
        )
        assert await agent.locator("#app").is_hidden()
        await open_workspace(agent, service.url, "agent")
        item = agent.locator("#queue li[data-mode='waiting_agent']")
        await item.first.wait_for(timeout=10000)
        await item.first.click()
        await agent.wait_for_selector("#history .msg.in")
        await agent.click("#take")
        await agent.wait_for_selector("#queue li[data-mode='agent']", timeout=10000)
        # citizen text is shown as text, with the bot's reading beside it
        assert await agent.evaluate("window.__pwned === undefined")
        assert await agent.locator("#history img").count() == 0
        assert HOSTILE in await agent.locator("#history .msg.in .text").first.inner_text()
        assert "意图" in await agent.locator("#history .msg.in .reading").first.inner_text()

        card = agent.locator("#suggestions .sug").first
        await card.wait_for(timeout=10000)
        picked = await card.locator(".text").inner_text()
        await card.locator("button.use").click()
        await agent.wait_for_function(
            "() => document.getElementById('acceptance').textContent.includes('1/1')"
        )
        assert await agent.input_value("#reply") == picked
        await agent.click("#send")
        got = citizen.locator(".h12345-agent")
        await got.wait_for(timeout=10000)
        assert await got.inner_text() == picked

        await agent.click("#dispatch")
        result = agent.locator("#wo-result[data-request-number]")
        await result.wait_for(timeout=10000)
        number = await result.get_attribute("data-request-number")
    order = await conn.fetchrow(
        "SELECT conversation_id, content, status FROM work_orders WHERE request_number = $1",
        number,
    )
    assert order is not None and "长福路" in order["content"]
    stored = await conn.fetchval(
        "SELECT text FROM messages WHERE author = 'agent' ORDER BY id DESC LIMIT 1"
    )
    assert stored == picked
