"""Who gets into which staff page: each page admits only its roles and shows every other role
a refusal (with links to the pages it may use) instead of calling APIs it may not; the APIs
behind each page answer 401 without a token and 403 for the other roles; one login serves every
page of the tab."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.browser import chromium_page
from tests.support.desk import PASSWORD, Api, login, make_user
from tests.support.staff_pages import log_in, watch_console

pytestmark = pytest.mark.browser

USERS = {
    "agent": "ag",
    "unit_handler": "h-eco",
    "supervisor": "sup",
    "knowledge_editor": "ed",
    "admin": "root",
}
PAGES = {
    "/desk": ("agent", "supervisor"),
    "/unit": ("unit_handler",),
    "/supervisor": ("supervisor",),
    "/kb": ("knowledge_editor",),
    "/admin": ("admin",),
}
APIS = {
    "/desk": [
        ("GET", "/api/dispatch/queue"),
        ("GET", "/api/dispatch/search?q=13800000001"),
        ("GET", "/api/dispatch/orders/20261123-0001"),
        ("POST", "/api/dispatch/orders/20261123-0001/dispatch"),
    ],
    "/unit": [("GET", "/api/unit/orders"), ("POST", "/api/unit/orders/20261123-0001/sign")],
    "/supervisor": [
        ("GET", "/api/supervisor/lights"),
        ("GET", "/api/supervisor/arbitration"),
        ("GET", "/api/supervisor/escalations"),
        ("GET", "/api/supervisor/precedents"),
        ("GET", "/api/supervisor/performance"),
    ],
    "/kb": [
        ("GET", "/api/kb/entries"),
        ("POST", "/api/kb/entries"),
        ("GET", "/api/kb/misses"),
        ("GET", "/api/kb/export"),
    ],
    "/admin": [
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users"),
        ("POST", "/api/admin/users/1/password"),
        ("POST", "/api/admin/users/1/active"),
        ("GET", "/api/admin/calendar"),
    ],
}


async def make_everyone(svc) -> None:
    for role, name in USERS.items():
        await make_user(svc, name, role, "ecology" if role == "unit_handler" else None)


async def test_each_page_refuses_the_other_roles_and_lets_its_own_in(desk_service):
    svc = desk_service
    await make_everyone(svc)
    async with chromium_page() as page:
        errors = watch_console(page)
        for path, allowed in PAGES.items():
            for role, name in USERS.items():
                if path == "/kb" and role in allowed:
                    continue  # this service has no knowledge base; tests/test_staff_kb.py has
                if page.url.startswith("http"):
                    await page.evaluate("sessionStorage.clear()")
                await log_in(page, svc.url, path, name, PASSWORD)
                refused = await page.locator("#refused").count() == 1
                assert refused == (role not in allowed), (path, role)
                if refused:
                    text = await page.locator("#refused").inner_text()
                    assert "无权访问" in text, (path, role)
                    assert await page.locator("#app").count() == 0
                    # the refusal links to the pages this role may use
                    links = await page.locator("#refused a").evaluate_all(
                        "els => els.map(e => e.getAttribute('href'))"
                    )
                    assert links and path not in links, (path, role, links)
                else:
                    assert await page.locator("#app").is_visible(), (path, role)
    assert errors == []


async def test_one_login_serves_every_page_of_the_role(desk_service):
    svc = desk_service
    await make_everyone(svc)
    async with chromium_page() as page:
        errors = watch_console(page)
        await log_in(page, svc.url, "/desk", "sup", PASSWORD)
        assert await page.locator("#topbar nav a").all_inner_texts() == [
            "坐席工作台",
            "派单台",
            "督查督办",
        ]
        await page.click("#topbar nav a[href='/supervisor']")
        await page.wait_for_selector("body[data-ready='1']")
        assert await page.locator("#login").is_hidden()
        assert await page.locator("#topbar nav a[aria-current='page']").inner_text() == "督查督办"
        # and the agent workspace takes the same login
        await page.click("#topbar nav a[href='/agent']")
        await page.wait_for_selector("body[data-live='1']")
        assert await page.locator("#login").is_hidden()
        await page.goto(svc.url + "/desk")
        await page.wait_for_selector("body[data-ready='1']")
        await page.click("#logout")
        await page.wait_for_selector("#login:not([hidden])")
    assert errors == []


async def test_the_apis_behind_each_page_answer_401_and_403(desk_service):
    svc = desk_service
    await make_everyone(svc)
    async with aiohttp.ClientSession() as http:
        apis = {role: await login(http, svc, name) for role, name in USERS.items()}
        anonymous = Api(http, svc.url, None)
        for path, allowed in PAGES.items():
            for method, api_path in APIS[path]:
                status, body = await anonymous.call(method, api_path, {})
                assert (status, body["error"]) == (401, "unauthorized"), api_path
                for role, api in apis.items():
                    if role in allowed:
                        continue
                    status, body = await api.call(method, api_path, {})
                    assert (status, body["error"]) == (403, "forbidden"), (role, api_path)
        # the units list is for every staff member, the live socket for those who wait on orders
        assert (await anonymous.get("/api/staff/units"))[0] == 401
        for api in apis.values():
            status, body = await api.get("/api/staff/units")
            assert status == 200 and len(body["units"]) == 64
        for role, api in apis.items():
            ws = await http.ws_connect(svc.url + "/api/staff/ws")
            await ws.send_json({"token": api.token})
            first = await ws.receive_json(timeout=10)
            if role in ("knowledge_editor", "admin"):
                assert first["error"] == "forbidden"
                closed = await ws.receive(timeout=10)
                assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4403
            else:
                assert first["type"] == "ready" and first["user"]["role"] == role
            await ws.close()
        ws = await http.ws_connect(svc.url + "/api/staff/ws")
        await ws.send_json({"token": "not-a-token"})
        assert (await ws.receive_json(timeout=10))["error"] == "unauthorized"
        await ws.close()
