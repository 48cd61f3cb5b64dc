"""The agent workspace over real HTTP, WebSockets and PostgreSQL LISTEN/NOTIFY, with two
service processes' apps on one database."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from services.agents import suggest as agent_suggest
from services.cli.kb_tools import temporary_database
from services.storage import citizens, work_orders
from services.storage.work_orders import Actor, NewWorkOrder
from tests.support.agent import agent_socket, frame, login, reply_reaches_widget, watch
from tests.support.desk import Api
from tests.support.serve_process import serve_env, serving
from tests.support.service import start_service


@pytest.fixture
async def two_services(settings, clock, nlu_engine):
    a = await start_service(settings, clock, nlu_engine)
    b = await start_service(settings, clock, nlu_engine)
    yield a, b
    for s in (a, b):
        await s.stop()


async def test_queue_push_crosses_processes_and_agent_reply_reaches_the_widget(two_services):
    a, b = two_services
    async with aiohttp.ClientSession() as http:
        agent = await login(http, b.url, "agent")
        agent_ws = await agent_socket(http, agent)
        # another agent on process B with the queue open but not this conversation
        bystander_ws = await agent_socket(http, await login(http, b.url, "agent"))
        # the citizen's widget socket is on process A, the agent on process B
        citizen_ws = await http.ws_connect(a.url + "/api/chat/ws")
        await citizen_ws.send_json({"type": "subscribe", "session_id": "w-agent-1"})
        await citizen_ws.send_json(
            {"session_id": "w-agent-1", "client_message_id": "m1", "text": "我要转人工客服"}
        )
        answer = await frame(citizen_ws, lambda f: f.get("client_message_id") == "m1")
        assert answer["mode"] == "waiting_agent"
        convo_id = answer["conversation_id"]
        queued = await frame(
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
        await frame(agent_ws, lambda f: f["type"] == "queue" and f["item"]["mode"] == "agent")
        await watch(agent_ws, convo_id)

        # the bot is quiet now; the citizen's words reach the agent with the bot's reading
        await citizen_ws.send_json(
            {"session_id": "w-agent-1", "client_message_id": "m2", "text": "湖滨街道长福路路灯坏了"}
        )
        quiet = await frame(citizen_ws, lambda f: f.get("client_message_id") == "m2")
        assert quiet["replies"] == [] and quiet["mode"] == "agent"
        pushed = await frame(
            agent_ws,
            lambda f: f["type"] == "message" and (f["message"]["nlu"] or {}).get("intent"),
        )
        assert pushed["message"]["text"] == "湖滨街道长福路路灯坏了"
        assert pushed["message"]["nlu"]["units"]
        # the bystander gets the queue changes but none of the messages: events are pushed in
        # order, so everything up to a later hand-back and take-over shows what it was sent
        assert (await agent.post(f"/api/agent/conversations/{convo_id}/release"))[0] == 200
        assert (await agent.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
        seen, taken_once, released = [], False, False
        while True:
            got = await frame(bystander_ws, lambda f: True)
            seen.append(got)
            if got["type"] == "queue" and got["item"]["mode"] == "agent":
                if released:
                    break
                taken_once = True
            released = released or (got["type"] == "queue_remove" and taken_once)
        assert [f for f in seen if f["type"] not in ("queue", "queue_remove")] == []
        assert any(
            f["type"] == "queue" and f["item"]["last_text"] == "湖滨街道长福路路灯坏了"
            for f in seen
        )

        await reply_reaches_widget(
            agent, convo_id, citizen_ws, "您好，我是坐席小王，<b>马上</b>为您处理。"
        )

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
        back = await frame(citizen_ws, lambda f: f.get("client_message_id") == "m3")
        assert back["mode"] == "bot" and back["replies"]
        await citizen_ws.close()
        await agent_ws.close()
        await bystander_ws.close()


async def test_two_service_processes_one_citizen_one_agent(service, database_url, tmp_path):
    """`hotline serve` in a process of its own on the same database: the citizen writes to it,
    the agent is connected to the other process, and the agent's reply comes back to the
    citizen's socket on the first."""
    env = serve_env(database_url, tmp_path / "second-process", HOTLINE_SCHEDULER="0")
    with serving(env) as other:
        async with aiohttp.ClientSession() as http:
            agent = await login(http, service.url, "agent")
            agent_ws = await agent_socket(http, agent)
            citizen_ws = await http.ws_connect(other + "/api/chat/ws")
            await citizen_ws.send_json({"type": "subscribe", "session_id": "w-two-procs"})
            await citizen_ws.send_json(
                {"session_id": "w-two-procs", "client_message_id": "p1", "text": "我要转人工"}
            )
            answer = await frame(citizen_ws, lambda f: f.get("client_message_id") == "p1")
            convo_id = answer["conversation_id"]
            queued = await frame(
                agent_ws,
                lambda f: (
                    f["type"] == "queue"
                    and f["item"]["conversation_id"] == convo_id
                    and f["item"]["mode"] == "waiting_agent"
                ),
            )
            assert queued["item"]["handoff_reason"] == "asked_for_agent"
            assert (await agent.post(f"/api/agent/conversations/{convo_id}/take"))[0] == 200
            await watch(agent_ws, convo_id)
            said = "新华路的井盖丢了，晚上很危险"
            await citizen_ws.send_json(
                {"session_id": "w-two-procs", "client_message_id": "p2", "text": said}
            )
            quiet = await frame(citizen_ws, lambda f: f.get("client_message_id") == "p2")
            assert quiet["replies"] == [] and quiet["mode"] == "agent"
            pushed = await frame(
                agent_ws,
                lambda f: (
                    f["type"] == "message"
                    and f["message"]["text"] == said
                    and f["message"]["nlu"] is not None
                ),
            )
            assert pushed["conversation_id"] == convo_id
            await reply_reaches_widget(
                agent, convo_id, citizen_ws, "您好，井盖的问题已记录，马上通知市政中心。"
            )
            await citizen_ws.close()
            await agent_ws.close()


NOT_AGENTS = ("handler-ecology", "editor", "admin")


def _agent_routes(app, convo_id: int = 1) -> list[tuple[str, str]]:  # noqa: ANN001
    """Every HTTP route of the workspace API as the app has it (a route added later is checked
    too), with a conversation id filled in."""
    routes = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/agent/") and path != "/api/agent/ws" and route.method != "HEAD":
            routes.append((route.method, path.replace("{id}", str(convo_id))))
    return routes


async def test_roles_guard_the_workspace(service):
    routes = _agent_routes(service.runner.app)
    assert len(routes) >= 10, routes
    async with aiohttp.ClientSession() as http:
        anonymous = Api(http, service.url, None)
        for method, path in routes:
            status, body = await anonymous.call(method, path, {})
            assert status == 401 and body["error"] == "unauthorized", (method, path)
        for username in NOT_AGENTS:
            other = await login(http, service.url, username)
            for method, path in routes:
                status, body = await other.call(method, path, {})
                assert status == 403 and body["error"] == "forbidden", (username, method, path)
            ws = await http.ws_connect(service.url + "/api/agent/ws")
            await ws.send_json({"token": other.token})
            refused = await frame(ws, lambda f: True)
            assert refused["error"] == "forbidden"
            assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4403
        # the supervisor is let in
        supervisor = await login(http, service.url, "supervisor")
        assert (await supervisor.get("/api/agent/queue"))[0] == 200
        # an agent's socket answers what it cannot do, and stays open
        ws = await agent_socket(http, await login(http, service.url, "agent"))
        for sent, error in (
            ({"type": "dance"}, "bad_type"),
            ({"type": "watch", "conversation_id": "7"}, "bad_conversation_id"),
            ({"type": "watch", "conversation_id": True}, "bad_conversation_id"),
            ({"type": "watch", "conversation_id": 999999}, "not_found"),
            ("[1, 2]", "bad_json"),
            (b"\x00", "bad_frame"),
        ):
            if isinstance(sent, dict):
                await ws.send_json(sent)
            elif isinstance(sent, bytes):
                await ws.send_bytes(sent)
            else:
                await ws.send_str(sent)
            assert (await frame(ws, lambda f: True))["error"] == error, sent
        await ws.close()
        ws = await http.ws_connect(service.url + "/api/agent/ws")
        await ws.send_json({"token": "not-a-token"})
        assert (await frame(ws, lambda f: True))["error"] == "unauthorized"
        await ws.close()
        ws = await http.ws_connect(service.url + "/api/agent/ws")
        await ws.send_str("no json")
        assert (await frame(ws, lambda f: True))["error"] == "unauthorized"
        await ws.close()


@pytest.fixture
async def other_centre(settings, clock, nlu_engine, tmp_path):
    """Another 12345 centre: its own service on its own database (a deployment is a centre)."""
    async with temporary_database(settings) as dsn:
        other = settings.with_overrides(database_url=dsn, data_dir=tmp_path / "other-centre")
        running = await start_service(other, clock, nlu_engine)
        yield running
        await running.stop()


async def test_an_agent_cannot_open_another_centres_data(service, other_centre):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            service.url + "/api/chat/messages",
            json={"session_id": "w-centre-a", "text": "我要转人工"},
        ) as resp:
            convo_id = (await resp.json())["conversation_id"]
        here = await login(http, service.url, "agent")
        there = await login(http, other_centre.url, "agent")
        status, queue = await here.get("/api/agent/queue")
        assert [i["conversation_id"] for i in queue["items"]] == [convo_id]
        # the other centre's agent sees its own (empty) queue and nothing of this one
        status, queue = await there.get("/api/agent/queue")
        assert status == 200 and queue["items"] == []
        assert (await there.get(f"/api/agent/conversations/{convo_id}"))[0] == 404
        # and its session is worth nothing here, over HTTP or the socket
        foreign = Api(http, service.url, there.token)
        for method, path in _agent_routes(service.runner.app, convo_id):
            status, body = await foreign.call(method, path, {})
            assert status == 401 and body["error"] == "unauthorized", (method, path)
        ws = await http.ws_connect(service.url + "/api/agent/ws")
        await ws.send_json({"token": there.token})
        assert (await frame(ws, lambda f: True))["error"] == "unauthorized"
        await ws.close()
        async with service.ctx.pool.acquire() as conn:
            assert await conn.fetchval(
                "SELECT mode FROM conversations WHERE id = $1", convo_id
            ) == ("waiting_agent")


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
    # resolved orders are embedded in the background, not by the request: its next round
    indexer = svc.ctx.indexer
    while await indexer.run_once() is None:  # the round at start-up may still hold the lock
        await asyncio.sleep(0.05)
    async with svc.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM work_order_embeddings") == 2
        # one process embeds at a time: the others skip the round
        await conn.execute("SELECT pg_advisory_lock($1)", agent_suggest.INDEX_LOCK)
        assert await indexer.run_once() is None
        await conn.execute("SELECT pg_advisory_unlock($1)", agent_suggest.INDEX_LOCK)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            svc.url + "/api/chat/messages",
            json={"session_id": "w-sug", "text": "湖滨街道长福路的路灯坏了好几天，晚上很黑"},
        ) as resp:
            first = await resp.json()
        convo_id = first["conversation_id"]
        agent = await login(http, svc.url, "agent")
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
        assert {r["source"]: r["acceptance_rate"] for r in stats["by_source"]}[pick["source"]] > 0
        status, day = await agent.get("/api/agent/stats?from=2026-11-23&to=2026-11-23")
        assert status == 200 and (day["rated"], day["used"]) == (2, 1)
        status, later = await agent.get("/api/agent/stats?from=2026-11-24")
        assert later["rated"] == 0 and later["acceptance_rate"] is None
        status, bad = await agent.get("/api/agent/stats?from=2026-11-24&to=2026-11-23")
        assert status == 400 and bad["error"] == "bad_period"

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
