"""The audit log: every staff read of a work order or a conversation (one, or a list) is
recorded with who and when; supervisors search it; nobody can change it."""

from __future__ import annotations

from datetime import datetime

import aiohttp
import asyncpg
import pytest

from tests.support.agent import agent_socket, login, watch
from tests.support.chat import ChatClient, file_complaint


async def test_staff_reads_are_recorded_and_searchable(service, conn, clock):
    filed = await file_complaint(ChatClient(service.url))
    number = filed["request_number"]
    waiting = ChatClient(service.url)
    await waiting.say("人工")
    convo_id = await conn.fetchval(
        "SELECT id FROM conversations WHERE session_key = $1", waiting.session_id
    )
    async with aiohttp.ClientSession() as http:
        handler = await login(http, service.url, "handler-ecology")
        agent = await login(http, service.url, "agent")
        supervisor = await login(http, service.url, "supervisor")
        assert (await handler.get("/api/unit/orders"))[0] == 200
        assert (await handler.get(f"/api/unit/orders/{number}"))[0] == 200
        assert (await agent.get(f"/api/dispatch/orders/{number}"))[0] == 200
        assert (await agent.get("/api/agent/queue"))[0] == 200
        assert (await agent.get(f"/api/agent/conversations/{convo_id}"))[0] == 200
        ws = await agent_socket(http, agent)
        await watch(ws, convo_id)
        await ws.close()
        # a read that is refused is not a read
        assert (await handler.get("/api/unit/orders/20990101-0001"))[0] == 404

        status, body = await supervisor.get(f"/api/supervisor/audit?object={number}")
        assert status == 200
        seen = [(r["username"], r["kind"], r["route"]) for r in body["reads"]]
        assert ("handler-ecology", "order", f"GET /api/unit/orders/{number}") in seen
        assert ("agent", "order", f"GET /api/dispatch/orders/{number}") in seen
        assert ("handler-ecology", "order_list", "GET /api/unit/orders") in seen
        assert {datetime.fromisoformat(r["at"]) for r in body["reads"]} == {clock.now()}

        status, body = await supervisor.get(
            f"/api/supervisor/audit?kind=conversation&user=agent&object={convo_id}"
        )
        routes = [r["route"] for r in body["reads"]]
        assert f"GET /api/agent/conversations/{convo_id}" in routes
        assert "WS watch" in routes and "GET /api/agent/queue" in routes
        assert {r["role"] for r in body["reads"]} == {"agent"}

        _, body = await supervisor.get("/api/supervisor/audit?from=2026-11-24")
        assert body["reads"] == []
        _, body = await supervisor.get("/api/supervisor/audit?from=2026-11-23&to=2026-11-23")
        assert len(body["reads"]) >= 6
        assert (await supervisor.get("/api/supervisor/audit?kind=everything"))[0] == 400
        assert (await supervisor.get("/api/supervisor/audit?from=soon"))[0] == 400
        # only supervisors and admins may look
        assert (await agent.get("/api/supervisor/audit"))[0] == 403
        assert (await handler.get("/api/supervisor/audit"))[0] == 403
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM staff_reads")
