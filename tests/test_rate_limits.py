"""Rate limits bite: chat per session and per address (REST and WebSocket), login per address
and per user name, every other route per address; 429 with Retry-After and a JSON reason. The
login backoff delays only the address that guessed wrong, for known and unknown names alike."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from services.config import Settings
from tests.support.desk import PASSWORD, make_user
from tests.support.service import settings_for

LIMITS = {
    "rate_chat_session": "3/minute",
    "rate_chat_address": "7/minute",
    "rate_login_address": "6/minute",
    "rate_login_account": "6/minute",
    "rate_address": "12/minute",
}


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    return settings_for(database_url, tmp_path / "data").with_overrides(**LIMITS)


def other_address(last: int) -> aiohttp.TCPConnector:
    """A client that connects from 127.0.0.<last>: another address on the same machine."""
    return aiohttp.TCPConnector(local_addr=(f"127.0.0.{last}", 0))


async def post_chat(http: aiohttp.ClientSession, url: str, session: str, text: str = "你好"):
    payload = {"session_id": session, "client_message_id": uuid.uuid4().hex, "text": text}
    async with http.post(url + "/api/chat/messages", json=payload) as resp:
        return resp.status, dict(resp.headers), await resp.json()


def assert_refused(status: int, headers: dict, body: dict, limit: str) -> None:
    assert status == 429, body
    assert body["error"] == "rate_limited" and body["limit"] == limit, body
    assert int(headers["Retry-After"]) == body["retry_after"] >= 1
    assert "try again in" in body["reason"]


async def test_chat_is_limited_per_session_and_per_address(service):
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            assert (await post_chat(http, service.url, "s-one"))[0] == 200
        assert_refused(*await post_chat(http, service.url, "s-one"), "chat_session")
        # another session from the same address goes on, until the address's own limit
        for _ in range(3):
            assert (await post_chat(http, service.url, "s-two"))[0] == 200
        assert_refused(*await post_chat(http, service.url, "s-three"), "chat_address")
        async with http.get(
            service.url + "/api/chat/messages", params={"session_id": "s-one"}
        ) as resp:
            assert resp.status == 429
    # another address is not held back by this one
    async with aiohttp.ClientSession(connector=other_address(2)) as http:
        assert (await post_chat(http, service.url, "s-four"))[0] == 200
    async with service.ctx.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'")
    assert stored == 7, "a refused message is not stored"


async def test_websocket_frames_count_like_messages(service):
    async with aiohttp.ClientSession() as http, http.ws_connect(service.url + "/api/chat/ws") as ws:
        answers = []
        for n in range(4):
            await ws.send_json({"session_id": "s-ws", "client_message_id": f"m{n}", "text": "你好"})
            answers.append(await ws.receive_json(timeout=30))
    assert all("replies" in a for a in answers[:3]), answers
    assert answers[3]["error"] == "rate_limited" and answers[3]["limit"] == "chat_session"
    assert answers[3]["client_message_id"] == "m3" and answers[3]["retry_after"] >= 1


async def attempt(http: aiohttp.ClientSession, url: str, username: str, password: str):
    async with http.post(
        url + "/api/auth/login", json={"username": username, "password": password}
    ) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_login_is_limited_per_user_name_and_per_address(desk_service):
    svc = desk_service
    await make_user(svc, "wang", "agent")
    # logging in right is not held back per user name (a shift starting together)
    for n in range(8):
        async with aiohttp.ClientSession(connector=other_address(60 + n)) as http:
            assert (await attempt(http, svc.url, "wang", PASSWORD))[0] == 200
    # wrong passwords per user name, from any address, known or not: the same answer
    for name in ("wang", "ghost"):
        for n in range(6):
            async with aiohttp.ClientSession(connector=other_address(10 + n)) as http:
                assert (await attempt(http, svc.url, name, "wrong-password"))[0] == 401
        async with aiohttp.ClientSession(connector=other_address(20)) as http:
            status, headers, body = await attempt(http, svc.url, name, PASSWORD)
        assert_refused(status, headers, body, "login_account")
    # per address, whatever the names
    async with aiohttp.ClientSession(connector=other_address(30)) as http:
        for n in range(6):
            assert (await attempt(http, svc.url, f"user{n}", "wrong-password"))[0] == 401
        assert_refused(*await attempt(http, svc.url, "user9", "wrong-password"), "login_address")


async def test_login_backoff_holds_back_only_the_guessing_address(desk_service, clock):
    svc = desk_service
    await make_user(svc, "li", "supervisor")
    free = svc.ctx.settings.login_free_failures
    async with aiohttp.ClientSession(connector=other_address(40)) as attacker:
        for _ in range(free):
            assert (await attempt(attacker, svc.url, "li", "guess-guess"))[0] == 401
        status, headers, body = await attempt(attacker, svc.url, "li", PASSWORD)
        assert_refused(status, headers, body, "login_backoff")
    # the account is not locked: its owner, elsewhere, logs in
    async with aiohttp.ClientSession(connector=other_address(41)) as owner:
        assert (await attempt(owner, svc.url, "li", PASSWORD))[0] == 200
    clock.advance(seconds=body["retry_after"])
    async with aiohttp.ClientSession(connector=other_address(40)) as attacker:
        assert (await attempt(attacker, svc.url, "li", PASSWORD))[0] == 200


async def test_every_other_route_is_limited_per_address(desk_service):
    async with aiohttp.ClientSession(connector=other_address(50)) as http:
        for _ in range(12):
            async with http.get(desk_service.url + "/performance") as resp:
                assert resp.status == 200
        async with http.get(desk_service.url + "/api/public/figures") as resp:
            body = await resp.json()
            assert_refused(resp.status, dict(resp.headers), body, "address")


def test_rate_settings_are_checked():
    assert Settings.from_env({"HOTLINE_RATE_CHAT_SESSION": "5 per second"}).rate_chat_session
    with pytest.raises(ValueError, match="HOTLINE_RATE_LOGIN_ACCOUNT must be a rate"):
        Settings.from_env({"HOTLINE_RATE_LOGIN_ACCOUNT": "lots"})


def test_client_address_behind_a_trusted_proxy():
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from services.http.ratelimit import RATE_LIMITS, RateLimits, client_address

    app = web.Application()
    app[RATE_LIMITS] = RateLimits(Settings(trusted_proxies=("10.0.0.0/8",)))

    def address(peer: str, forwarded: str | None) -> str:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        request = make_mocked_request("GET", "/", headers=headers, app=app)
        request._transport_peername = (peer, 5000)  # noqa: SLF001 - the peer of a mocked request
        return client_address(request)

    # what the client wrote itself comes first and is not believed; the proxies' own hops are
    assert address("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.0.0.7") == "203.0.113.9"
    assert address("10.0.0.5", None) == "10.0.0.5"
    # a peer that is not a trusted proxy is the client, whatever it forwards
    assert address("198.51.100.1", "203.0.113.9") == "198.51.100.1"


@pytest.mark.browser
async def test_the_widget_says_when_it_is_held_back(service):
    from tests.support.browser import chromium_page
    from tests.test_widget_browser import bot_count, send

    async with chromium_page() as page:
        await page.goto(service.url + "/")
        await page.click("#h12345-btn")
        for text in ("你好", "请问办居住证要什么材料", "谢谢"):
            await send(page, text, await bot_count(page))
        await page.fill("#h12345-input", "还有一个问题")
        await page.click("#h12345-send")
        error = page.locator(".h12345-err")
        await error.wait_for(timeout=15000)
        assert "发送太频繁" in await error.inner_text()
