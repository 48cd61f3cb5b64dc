"""A tiny client of the web chat API for tests, and the complaint the tests file with it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

COMPLAINT = "我要投诉，湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户，天天呛得不行"


class ChatClient:
    def __init__(self, base_url: str, session_id: str | None = None) -> None:
        self.base_url = base_url
        self.session_id = session_id or f"s-{uuid.uuid4().hex[:10]}"

    async def say(self, text: str, client_message_id: str | None = None) -> dict[str, Any]:
        payload = {
            "session_id": self.session_id,
            "client_message_id": client_message_id or f"m-{uuid.uuid4().hex[:10]}",
            "text": text,
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.base_url}/api/chat/messages", json=payload) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                return body

    async def history(self) -> list[dict[str, Any]]:
        """The session's open conversation, as the widget loads it."""
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{self.base_url}/api/chat/messages", params={"session_id": self.session_id}
            ) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                return body["messages"]


async def file_complaint(client: ChatClient) -> dict:
    first = await client.say(COMPLAINT)
    assert any("电话" in r for r in first["replies"]), first
    second = await client.say("13859901234")
    assert any("请确认" in r for r in second["replies"]), second
    third = await client.say("确认")
    assert third["request_number"], third
    return third
