"""The administrators' page (/admin) in headless Chromium against the real service and
database: an admin creates an account, resets its password (its sessions end) and disables it,
sets a unit's contact phone, and enters a holiday for a year the built-in calendar does not
know."""

from __future__ import annotations

from datetime import date

import aiohttp
import pytest

from tests.support.browser import chromium_page
from tests.support.desk import PASSWORD, login, make_user
from tests.support.staff_pages import log_in, snap, watch_console

pytestmark = pytest.mark.browser


async def can_log_in(svc, username: str, password: str) -> bool:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            svc.url + "/api/auth/login", json={"username": username, "password": password}
        ) as resp:
            return resp.status == 200


async def test_admin_manages_accounts_unit_phones_and_the_calendar(desk_service):
    svc = desk_service
    await make_user(svc, "root", "admin")
    await make_user(svc, "sup", "supervisor")
    async with chromium_page() as page, aiohttp.ClientSession() as http:
        errors = watch_console(page)
        await log_in(page, svc.url, "/admin", "root", PASSWORD)
        assert await page.locator("#topbar nav a").all_inner_texts() == ["系统管理"]
        await page.wait_for_selector("#users-table tr[data-username='sup']")

        # a new unit handler
        await page.fill("#u-name", "wang.li")
        await page.fill("#u-display", "王力")
        await page.select_option("#u-role", "unit_handler")
        await page.select_option("#u-unit", "housing")
        await page.fill("#u-pass", "short")
        await page.click("#u-create")
        await page.wait_for_selector(".flash.error")  # too short a password: said in the page
        await page.fill("#u-pass", "first-password-1")
        await page.click("#u-create")
        row = page.locator("#users-table tr[data-username='wang.li']")
        await row.wait_for()
        assert "市住房和城乡建设局" in await row.inner_text()
        account = await svc.pool.fetchrow(
            "SELECT role, unit_code, display_name, active FROM users WHERE username = 'wang.li'"
        )
        assert tuple(account) == ("unit_handler", "housing", "王力", True)
        wang = await login(http, svc, "wang.li", "first-password-1")
        assert (await wang.get("/api/unit/orders"))[0] == 200
        await snap(page, "admin")

        # a new password ends the sessions; disabling ends the logins
        await row.locator("input.new-pass").fill("second-password-2")
        await row.locator("button.reset").click()
        await page.wait_for_function(
            "() => document.getElementById('flash').textContent.includes('已重置')"
        )
        assert (await wang.get("/api/unit/orders"))[0] == 401
        assert await can_log_in(svc, "wang.li", "second-password-2")
        await row.locator("button.toggle").click()
        await page.wait_for_function(
            "() => document.getElementById('flash').textContent.includes('已停用')"
        )
        assert not await can_log_in(svc, "wang.li", "second-password-2")
        assert "已停用" in await row.inner_text()

        # a unit's contact phone
        await page.click("#tabs [data-tab='units']")
        await page.fill("#unit-filter", "生态")
        eco = page.locator("#units tr[data-unit='ecology']")
        await eco.locator("input.phone").fill("0595-88881234")
        await eco.locator("button").click()
        await page.wait_for_selector(".flash.ok")
        phone = await svc.pool.fetchval("SELECT contact_phone FROM units WHERE code = 'ecology'")
        assert phone == "0595-88881234"

        # a holiday in a year the built-in calendar does not know
        await page.click("#tabs [data-tab='calendar']")
        await page.fill("#year", "2031")
        await page.click("#load-year")
        await page.wait_for_selector("#calendar .flash.error")  # not known: say so
        await page.fill("#d-day", "2031-01-01")
        await page.fill("#d-name", "元旦")
        await page.click("#d-save")
        await page.wait_for_selector("#entered tr[data-day='2031-01-01']")
        await snap(page, "admin-calendar")
        entered = await svc.pool.fetchrow(
            "SELECT workday, name, created_by FROM calendar_days WHERE day = $1", date(2031, 1, 1)
        )
        assert tuple(entered) == (False, "元旦", "root")
        assert not svc.desk.calendar.is_workday(date(2031, 1, 1))
    # Chromium logs every 4xx response: the short password's 400 is the answer shown in the page
    assert [e for e in errors if "status of 400" not in e] == []
