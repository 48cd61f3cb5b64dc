"""The agent workspace over real HTTP, WebSockets and PostgreSQL LISTEN/NOTIFY, with two
service processes' apps on one database."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from services import auth
from services.storage import citizens, work_orders
from services.storage.work_orders import Actor, NewWorkOrder
from tests.conftest import start_service
from tests.desk_support import Api


async def _login(http: aiohttp.ClientSession, url: str, username: str) -> Api:
    async with http.post(
        url + "/api/auth/login", json={"username": username, "password": auth.DEMO_PASSWORD}
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return Api(http, url, body["token"])


async def _frame(ws: aiohttp.ClientWebSocketResponse, want: Any, timeout: float = 10) -> dict:
    """The next frame for which want(frame) holds."""

    async def wait() -> dict:
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            if want(frame):
                return frame

    return await asyncio.wait_for(wait(), timeout)


async def _agent_socket(http: aiohttp.ClientSession, api: Api) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(api.base + "/api/agent/ws")
    await ws.send_json({"token": api.token})
    ready = await _frame(ws, lambda f: True)
    assert ready["type"] == "ready" and ready["user"]["role"] == "agent"
    return ws


@pytest.fixture
async def two_services(settings, clock, nlu_engine):
    a = await start_service(settings, clock, nlu_engine)
    b = await start_service(settings, clock, nlu_engine)
    yield a, b
    for s in (a, b):
        await s.stop()
        await s.ctx.pool.close()


async def test_queue_push_crosses_processes_and_agent_reply_reaches_the_widget(two_services):
    a, b = two_services
    async with aiohttp.ClientSession() as http:
        agent = await _login(http, b.url, "agent")
        agent_ws = await _agent_socket(http, agent)
        # the citizen's widget socket is on process A, the agent on process B
        citizen_ws = await http.ws_connect(a.url + "/api/chat/ws")
        await citizen_ws.send_json({"type": "subscribe", "session_id": "w-agent-1"})
        await citizen_ws.send_json(
            {"session_id": "w-agent-1", "client_message_id": "m1", "text": "我要转人工客服"}
        )
        answer = await _frame(citizen_ws, lambda f: f.get("client_message_id") == "m1")
        assert answer["mode"] == "waiting_agent"
        convo_id = answer["conversation_id"]
        queued = await _frame(
            agent_ws,
            lambda f: f["type"] == "queue" and f["item"]["mode"] == "waiting_agent",
        )
        assert queued["item"]["conversation_id"] == convo_id
        assert queued["item"]["handoff_reason"] == "asked_for_agent"
        status, listed = await agent.get("/api/agent/queue")
        assert status == 200 and [i["conversation_id"] for i in listed["items"]] == [convo_id]

        assert (await agent.post(f"/api/agent/conversations/{convo_id}/reply", {"text": "x"}))[
            0
        ] == 409  # not taken yet
        status, taken = await agent.post(f"/api/agent/conversations/{convo_id}/take")
        assert status == 200 and taken["mode"] == "agent"
        await _frame(agent_ws, lambda f: f["type"] == "queue" and f["item"]["mode"] == "agent")

        # the bot is quiet now; the citizen's words reach the agent with the bot's reading
        await citizen_ws.send_json(
            {"session_id": "w-agent-1", "client_message_id": "m2", "text": "湖滨街道长福路路灯坏了"}
        )
        quiet = await _frame(citizen_ws, lambda f: f.get("client_message_id") == "m2")
        assert quiet["replies"] == [] and quiet["mode"] == "agent"
        pushed = await _frame(
            agent_ws,
            lambda f: f["type"] == "message" and (f["message"]["nlu"] or {}).get("intent"),
        )
        assert pushed["message"]["text"] == "湖滨街道长福路路灯坏了"
        assert pushed["message"]["nlu"]["units"]

        reply = "您好，我是坐席小王，<b>马上</b>为您处理。"
        status, sent = await agent.post(
            f"/api/agent/conversations/{convo_id}/reply", {"text": reply}
        )
        assert status == 200 and sent["delivery"]["status"] == "pushed"
        got = await _frame(citizen_ws, lambda f: f.get("type") == "agent_message")
        assert got["text"] == reply

        status, convo = await agent.get(f"/api/agent/conversations/{convo_id}")
        assert status == 200
        assert [(m["direction"], m["author"]) for m in convo["messages"]][-1] == ("out", "agent")
        readings = [m["nlu"] for m in convo["messages"] if m["direction"] == "in"]
        assert all(r and "intent_confidence" in r and "entities" in r for r in readings)

        # handed back, the bot answers again
        status, _ = await agent.post(f"/api/agent/conversations/{convo_id}/release")
        assert status == 200
        await citizen_ws.send_json(
            {"session_id": "w-agent-1", "client_message_id": "m3", "text": "你好"}
        )
        back = await _frame(citizen_ws, lambda f: f.get("client_message_id") == "m3")
        assert back["mode"] == "bot" and back["replies"]
        await citizen_ws.close()
        await agent_ws.close()


async def test_roles_guard_the_workspace(service):
    async with aiohttp.ClientSession() as http:
        anonymous = Api(http, service.url, None)
        assert (await anonymous.get("/api/agent/queue"))[0] == 401
        handler = await _login(http, service.url, "handler-ecology")
        status, body = await handler.get("/api/agent/queue")
        assert status == 403 and body["error"] == "forbidden"
        ws = await http.ws_connect(service.url + "/api/agent/ws")
        await ws.send_json({"token": handler.token})
        frame = await _frame(ws, lambda f: True)
        assert frame["error"] == "forbidden"
        await ws.close()
        ws = await http.ws_connect(service.url + "/api/agent/ws")
        await ws.send_json({"token": "not-a-token"})
        assert (await _frame(ws, lambda f: True))["error"] == "unauthorized"
        await ws.close()


async def _resolved_order(svc, content: str, result: str, unit: str) -> str:
    now = svc.ctx.clock.now()
    async with svc.ctx.pool.acquire() as conn, conn.transaction():
        citizen = await citizens.for_identity(conn, "web", f"old-{content[:6]}")
        order = await work_orders.create(
            conn,
            NewWorkOrder(citizen, None, None, "web", "complain", content, None, None, None),
            Actor("web", "citizen"),
            now,
        )
        await conn.execute(
            "UPDATE work_orders SET status = 'resolved', lead_unit = $2 WHERE id = $1",
            order["id"],
            unit,
        )
        await conn.execute(
            """INSERT INTO work_order_events (work_order_id, kind, actor, actor_role, unit, note,
                   data, status_after, created_at)
               VALUES ($1, 'resolved', 'h', 'unit', $2, $3, $4, 'resolved', $5)""",
            order["id"],
            unit,
            result,
            {"result": result},
            now,
        )
    return order["request_number"]


async def test_suggestions_feedback_and_dispatch(service):
    svc = service
    lamp = await _resolved_order(
        svc,
        "长福路的路灯坏了，晚上一片漆黑",
        "已安排路灯维修班组更换长福路3盏损坏灯具，当晚恢复照明。",
        "municipal-works",
    )
    await _resolved_order(
        svc, "小区楼下餐馆油烟太大", "已责令餐馆加装油烟净化器并复查达标。", "ecology"
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            svc.url + "/api/chat/messages",
            json={"session_id": "w-sug", "text": "湖滨街道长福路的路灯坏了好几天，晚上很黑"},
        ) as resp:
            first = await resp.json()
        convo_id = first["conversation_id"]
        agent = await _login(http, svc.url, "agent")
        assert (await agent.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
        status, got = await agent.get(f"/api/agent/conversations/{convo_id}/suggestions")
        assert status == 200, got
        items = got["suggestions"]
        assert [s["rank"] for s in items] == list(range(1, len(items) + 1))
        assert all(s["why"] for s in items)
        scores = [s["score"] for s in items]
        assert scores == sorted(scores, reverse=True)
        similar = [s for s in items if s["source"] == "similar_order"]
        assert similar and similar[0]["ref"] == lamp  # the lamp order, not the restaurant
        assert "路灯" in similar[0]["text"]
        assert any(s["source"] == "template" for s in items)
        status, convo = await agent.get(f"/api/agent/conversations/{convo_id}")
        nlu = convo["messages"][0]["nlu"]
        assert got["reading"]["request_type"] == nlu["request_type"]
        assert got["reading"]["units"] == nlu["units"] and nlu["units"]
        draft = got["draft"]
        assert "长福路" in draft["content"] and draft["lead_unit"] == nlu["units"][0]["code"]
        assert draft["request_type"] == nlu["request_type"]

        pick = similar[0]
        status, _ = await agent.post(
            "/api/agent/suggestions/feedback",
            {
                "conversation_id": convo_id,
                "source": pick["source"],
                "ref": pick["ref"],
                "rank": pick["rank"],
                "used": True,
            },
        )
        assert status == 201
        other = items[-1]
        await agent.post(
            "/api/agent/suggestions/feedback",
            {
                "conversation_id": convo_id,
                "source": other["source"],
                "ref": other["ref"],
                "rank": other["rank"],
                "used": False,
            },
        )
        status, bad = await agent.post(
            "/api/agent/suggestions/feedback",
            {"conversation_id": convo_id, "source": "guess", "ref": "1", "rank": 1, "used": True},
        )
        assert status == 400 and bad["error"] == "bad_source"
        status, stats = await agent.get("/api/agent/stats")
        assert stats["rated"] == 2 and stats["acceptance_rate"] == 0.5

        status, filed = await agent.post(
            f"/api/agent/conversations/{convo_id}/work-order",
            {k: draft[k] for k in ("request_type", "content", "location", "lead_unit")}
            | {"contact_phone": "13800000009"},
        )
        assert status == 201, filed
        assert filed["dispatched"] and filed["lead_unit"] == draft["lead_unit"]
        async with svc.ctx.pool.acquire() as conn:
            row = await work_orders.by_number(conn, filed["request_number"])
        assert row["conversation_id"] == convo_id and row["status"] != "filed"
        status, bad = await agent.post(
            f"/api/agent/conversations/{convo_id}/work-order",
            {"request_type": "nonsense", "content": "x"},
        )
        assert status == 400
