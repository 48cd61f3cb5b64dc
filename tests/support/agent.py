"""Helpers for the agent workspace tests: staff logins and the workspace's WebSocket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from services.staff import accounts as auth
from tests.support.desk import Api


async def login(http: aiohttp.ClientSession, url: str, username: str) -> Api:
    async with http.post(
        url + "/api/auth/login", json={"username": username, "password": auth.DEMO_PASSWORD}
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return Api(http, url, body["token"])


async def frame(ws: aiohttp.ClientWebSocketResponse, want: Any, timeout: float = 10) -> dict:
    """The next frame for which want(frame) holds."""

    async def wait() -> dict:
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            if want(frame):
                return frame

    return await asyncio.wait_for(wait(), timeout)


async def agent_socket(http: aiohttp.ClientSession, api: Api) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(api.base + "/api/agent/ws")
    await ws.send_json({"token": api.token})
    ready = await frame(ws, lambda f: True)
    assert ready["type"] == "ready" and ready["user"]["role"] == "agent"
    return ws


async def watch(ws: aiohttp.ClientWebSocketResponse, convo_id: int) -> None:
    await ws.send_json({"type": "watch", "conversation_id": convo_id})
    await frame(ws, lambda f: f.get("type") == "watching" and f["conversation_id"] == convo_id)


async def open_workspace(page: Any, url: str, username: str) -> None:
    """Log in on the /agent page (a Playwright page) and wait for the live socket."""
    await page.goto(url + "/agent")
    await page.fill("#login-user", username)
    await page.fill("#login-pass", auth.DEMO_PASSWORD)
    await page.click("#login-btn")
    await page.wait_for_selector("body[data-live='1']", timeout=15000)


async def reply_reaches_widget(
    agent: Api, convo_id: int, citizen_ws: aiohttp.ClientWebSocketResponse, text: str
) -> None:
    """The agent replies to a web-chat conversation; the citizen's widget socket gets it."""
    status, sent = await agent.post(f"/api/agent/conversations/{convo_id}/reply", {"text": text})
    assert status == 200 and sent["delivery"]["status"] == "pushed", sent
    got = await frame(citizen_ws, lambda f: f.get("type") == "agent_message")
    assert got["text"] == text
