"""A tiny client of the web chat API for tests."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp


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
