"""Origins: the widget's routes answer the allow-list (CORS) and the WebSocket checks the same
list; staff APIs answer their own origin only; every response carries the security headers.
In Chromium, the widget embedded on a page of another loopback origin files a complaint, and
on a page of an origin not on the list it is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from services.http.security import HEADERS
from tests.support.browser import chromium_page
from tests.support.loopback import LoopbackServer
from tests.support.service import Running, start_service
from tests.test_widget_browser import bot_count, send

PORTAL = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>城市门户</title></head><body><h1>城市门户</h1>
<script src="{service}/widget.js" defer></script></body></html>"""


class Portal(LoopbackServer):
    """A city portal on its own loopback origin (http://localhost:PORT) embedding the widget
    of the service at `service`."""

    service: str = ""

    async def start(self) -> Portal:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text=PORTAL.format(service=self.service), content_type="text/html")

        app = web.Application()
        app.router.add_get("/", page)
        await self.serve(app)
        self.url = self.url.replace("127.0.0.1", "localhost")
        return self


@pytest.fixture
async def portals() -> AsyncIterator[tuple[Portal, Portal]]:
    listed, unlisted = await Portal().start(), await Portal().start()
    yield listed, unlisted
    await listed.stop()
    await unlisted.stop()


@pytest.fixture
async def embedded(settings, clock, nlu_engine, portals) -> AsyncIterator[Running]:
    listed, unlisted = portals
    running = await start_service(
        settings.with_overrides(allowed_origins=(listed.url,)), clock, nlu_engine
    )
    listed.service = unlisted.service = running.url
    yield running
    await running.stop()


async def test_cors_and_origin_checks(embedded, portals):
    listed, unlisted = portals
    url = embedded.url
    async with aiohttp.ClientSession() as http:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        async with http.options(
            url + "/api/chat/messages", headers={"Origin": listed.url, **preflight}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == listed.url
        async with http.options(
            url + "/api/chat/messages", headers={"Origin": unlisted.url, **preflight}
        ) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(
            url + "/api/chat/messages", params={"session_id": "s1"}, headers={"Origin": listed.url}
        ) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == listed.url
        async with http.post(
            url + "/api/chat/messages",
            json={"session_id": "s1", "text": "你好"},
            headers={"Origin": unlisted.url},
        ) as resp:
            assert (resp.status, (await resp.json())["error"]) == (403, "origin_not_allowed")
        # the WebSocket: the listed origin and the service's own are let in, others refused
        async with http.ws_connect(url + "/api/chat/ws", headers={"Origin": listed.url}) as ws:
            await ws.send_json({"session_id": "s1", "client_message_id": "m1", "text": "你好"})
            assert "replies" in await ws.receive_json(timeout=30)
        async with http.ws_connect(url + "/api/chat/ws", headers={"Origin": url}):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url + "/api/chat/ws", headers={"Origin": unlisted.url})
        assert refused.value.status == 403
        # staff APIs: own origin only, never CORS headers, even for the listed portal
        for origin in (listed.url, "https://evil.example"):
            async with http.post(
                url + "/api/auth/login",
                json={"username": "agent", "password": "demo12345"},
                headers={"Origin": origin},
            ) as resp:
                assert resp.status == 403 and (await resp.json())["error"] == "cross_origin"
                assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.post(
            url + "/api/auth/login",
            json={"username": "agent", "password": "demo12345"},
            headers={"Origin": url},
        ) as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    "path", ["/", "/widget.js", "/agent", "/performance", "/api/auth/me", "/nowhere"]
)
async def test_security_headers_on_every_response(service, path):
    async with aiohttp.ClientSession() as http, http.get(service.url + path) as resp:
        for name, value in HEADERS.items():
            assert resp.headers.get(name) == value, (path, name)
    assert "frame-ancestors 'none'" in HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in HEADERS["Content-Security-Policy"]


async def test_security_headers_on_the_websocket_handshake(service):
    async with aiohttp.ClientSession() as http, http.ws_connect(service.url + "/api/chat/ws") as ws:
        assert ws._response.headers["X-Content-Type-Options"] == "nosniff"  # noqa: SLF001


@pytest.mark.browser
async def test_widget_on_a_listed_portal_files_a_complaint(embedded, portals, conn_of_embedded):
    listed, _ = portals
    async with chromium_page() as page:
        refused = []
        page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
        await page.goto(listed.url + "/")
        assert page.url.startswith("http://localhost:")
        await page.click("#h12345-btn")
        await page.wait_for_selector("#h12345-box.open")
        await send(
            page,
            "我要投诉，湖滨街道长福路那家川菜馆油烟直接排到我家窗户，天天呛得不行",
            await bot_count(page),
        )
        await send(page, "13859901234", await bot_count(page))
        await send(page, "确认", await bot_count(page))
        number_el = page.locator("[data-request-number]")
        await number_el.wait_for(timeout=15000)
        number = await number_el.get_attribute("data-request-number")
        assert await page.locator(".h12345-err").count() == 0
    assert not [m for m in refused if "CORS" in m or "blocked" in m], refused
    order = await conn_of_embedded.fetchrow(
        "SELECT lead_unit, request_type FROM work_orders WHERE request_number = $1", number
    )
    assert order is not None and order["request_type"] == "complain"


@pytest.mark.browser
async def test_widget_on_an_unlisted_portal_is_refused(embedded, portals, conn_of_embedded):
    _, unlisted = portals
    async with chromium_page() as page:
        await page.goto(unlisted.url + "/")
        await page.click("#h12345-btn")
        await page.wait_for_selector("#h12345-box.open")
        await page.fill("#h12345-input", "我要投诉，楼下烧烤店油烟太大")
        await page.click("#h12345-send")
        error = page.locator(".h12345-err")
        await error.wait_for(timeout=15000)
        assert "未送达" in await error.inner_text()
        assert await page.locator(".h12345-bot").count() <= 1  # the greeting only
    assert await conn_of_embedded.fetchval("SELECT count(*) FROM messages") == 0


@pytest.fixture
async def conn_of_embedded(embedded):  # noqa: ANN201
    async with embedded.ctx.pool.acquire() as connection:
        yield connection
