"""Dispatch: automatic from the NLU with the territorial unit assisting, the manual queue with
the top-3 suggestions, the agents' changes, returns, arbitration and precedents."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from services.core.clock import CHINA_TZ
from services.storage import assists
from services.storage.work_orders import Actor
from tests.support.desk import (
    event_kinds,
    file_order,
    login,
    make_user,
    order_row,
    suggestion,
)

NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)
UNIT = Actor("handler", "unit")
HUBIN = {
    "text": "湖滨街道金鸿小区",
    "area": "湖滨街道",
    "place": "金鸿小区",
    "territorial_unit": "hubin",
}


async def assisting(svc, order) -> list[str]:
    async with svc.pool.acquire() as conn:
        return await assists.of_order(conn, order["id"])


async def test_confident_nlu_dispatches_with_the_territorial_unit_assisting(desk_service):
    svc = desk_service
    order, intake = await file_order(svc, NOW, suggestions=[suggestion("ecology")])
    assert intake.decision.lead == "ecology" and intake.decision.reason == "nlu"
    assert intake.decision.assists == ["hubin"]
    row = await order_row(svc, order["request_number"])
    assert (row["status"], row["lead_unit"]) == ("dispatched", "ecology")
    assert await assisting(svc, order) == ["hubin"]
    assert await event_kinds(svc, order["id"]) == ["filed", "dispatched"]
    # an enterprise leads alone; so does a territorial lead; so does a matter with no place
    power, _ = await file_order(svc, NOW, suggestions=[suggestion("power")])
    local, _ = await file_order(svc, NOW, suggestions=[suggestion("hubin")])
    nowhere, _ = await file_order(svc, NOW, location=None, suggestions=[suggestion("ecology")])
    for o in (power, local, nowhere):
        assert (await order_row(svc, o["request_number"]))["status"] == "dispatched"
        assert await assisting(svc, o) == []


async def test_unsure_nlu_leaves_the_order_in_the_queue_with_top_three(desk_service):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    await make_user(svc, "h-eco", "unit_handler", "ecology")
    unsure = [
        suggestion("ecology", 0.41, confident=False),
        suggestion("urban-management", 0.3, confident=False),
    ]
    order, intake = await file_order(svc, NOW, suggestions=unsure)
    assert intake.decision.lead is None
    assert (await order_row(svc, order["request_number"]))["status"] == "awaiting_dispatch"
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")
        status, body = await agent.get("/api/dispatch/queue")
        assert status == 200, body
        [item] = body["orders"]
        assert item["request_number"] == order["request_number"]
        assert [(s["code"], s["source"]) for s in item["suggestions"]] == [
            ("ecology", "nlu"),
            ("urban-management", "nlu"),
            ("hubin", "territorial"),
        ]
        assert item["suggestions"][0]["name"] == "市生态环境局"
        assert item["deadlines"]["dispatch"] == "2026-11-24T02:00:00+00:00"
        # nobody else gets the queue
        assert (await agent.call("GET", "/api/dispatch/queue"))[0] == 200
        handler = await login(http, svc, "h-eco")
        assert (await handler.get("/api/dispatch/queue"))[0] == 403
        anonymous = type(agent)(http, svc.url, None)
        status, body = await anonymous.get("/api/dispatch/queue")
        assert (status, body["error"]) == (401, "unauthorized")
        bogus = type(agent)(http, svc.url, "not-a-token")
        assert (await bogus.get("/api/dispatch/queue"))[0] == 401

        # dispatching: bad input is a clear 4xx, a good one dispatches (with the assist)
        path = f"/api/dispatch/orders/{order['request_number']}/dispatch"
        assert (await agent.post(path, {"lead": "nope"}))[1]["error"] == "unknown_unit"
        assert (await agent.post(path, {"lead": "ecology", "assists": "hubin"}))[1][
            "error"
        ] == "bad_assists"
        assert (
            await agent.post("/api/dispatch/orders/20990101-0001/dispatch", {"lead": "ecology"})
        )[0] == 404
        async with http.post(
            svc.url + path, data=b"{not json", headers={"Authorization": f"Bearer {agent.token}"}
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"] == "bad_json"
        status, body = await agent.post(path, {"lead": "ecology", "note": "油烟归环保"})
        assert status == 200, body
        assert body["status"] == "dispatched" and body["assisting_units"] == ["hubin"]
        assert (await agent.post(path, {"lead": "ecology"}))[1]["error"] == "bad_state"
        status, body = await agent.get("/api/dispatch/queue")
        assert body["orders"] == []


async def test_agents_change_the_lead_and_add_assisting_units(desk_service, clock):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    order, _ = await file_order(svc, NOW, suggestions=[suggestion("ecology")])
    number = order["request_number"]
    clock.current = datetime(2026, 11, 23, 15, tzinfo=CHINA_TZ)
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")
        base = f"/api/dispatch/orders/{number}"
        assert (await agent.post(base + "/lead", {"lead": "urban-management"}))[1][
            "error"
        ] == "missing_reason"
        assert (await agent.post(base + "/lead", {"lead": "ecology", "reason": "x"}))[1][
            "error"
        ] == "same_unit"
        status, body = await agent.post(
            base + "/lead", {"lead": "urban-management", "reason": "露天烧烤归城管"}
        )
        assert status == 200, body
        assert body["lead_unit"] == "urban-management"
        # the new lead's clocks start now
        assert body["deadlines"]["sign_for"] == "2026-11-24T07:00:00+00:00"
        status, body = await agent.post(base + "/assists", {"unit": "ecology"})
        assert status == 200 and set(body["assisting_units"]) == {"hubin", "ecology"}
        assert (await agent.post(base + "/assists", {"unit": "ecology"}))[1][
            "error"
        ] == "already_assists"
        assert (await agent.post(base + "/assists", {"unit": "urban-management"}))[1][
            "error"
        ] == "is_lead"
        status, body = await agent.get(base)
        assert [e["kind"] for e in body["events"]] == [
            "filed",
            "dispatched",
            "reassigned",
            "assist_added",
        ]
        assert body["events"][2]["data"]["previous_lead"] == "ecology"


async def test_a_return_goes_back_to_the_queue_without_the_returning_unit(desk_service):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    await make_user(svc, "sup", "supervisor")
    order, _ = await file_order(
        svc,
        NOW,
        content="金鸿小区地下室人防工程被改成仓库出租",
        location="湖滨街道金鸿小区",
        address=HUBIN,
        suggestions=[
            suggestion("housing", 0.7),
            suggestion("civil-defense", 0.2, False),
            suggestion("urban-management", 0.1, False),
        ],
    )
    number = order["request_number"]
    d = svc.desk.dispatcher
    async with svc.pool.acquire() as conn, conn.transaction():
        await d.unit_return(conn, order["id"], "housing", "人防工程不归住建", UNIT, NOW)
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")
        _, body = await agent.get("/api/dispatch/queue")
        [item] = body["orders"]
        assert item["returned_by"] == ["housing"]
        assert [s["code"] for s in item["suggestions"]] == [
            "civil-defense",
            "urban-management",
            "hubin",
        ]
        path = f"/api/dispatch/orders/{number}/dispatch"
        status, body = await agent.post(path, {"lead": "housing"})
        assert (status, body["error"]) == (409, "returned_by_unit")
        status, body = await agent.post(path, {"lead": "urban-management"})
        assert status == 200, body
        # returned a second time: arbitration, never back to the queue
        async with svc.pool.acquire() as conn, conn.transaction():
            await d.unit_return(conn, order["id"], "urban-management", "不归城管", UNIT, NOW)
        assert (await agent.get("/api/dispatch/queue"))[1]["orders"] == []
        sup = await login(http, svc, "sup")
        _, body = await sup.get("/api/supervisor/arbitration")
        [item] = body["orders"]
        assert item["status"] == "arbitration" and item["returned_by"] == [
            "housing",
            "urban-management",
        ]
        assert (await agent.get("/api/supervisor/arbitration"))[0] == 403
        decide = f"/api/supervisor/arbitration/{number}"
        assert (await sup.post(decide, {"unit": "civil-defense"}))[1]["error"] == "missing_reason"
        status, body = await sup.post(
            decide, {"unit": "civil-defense", "reason": "人防工程使用管理属人防办职责"}
        )
        assert status == 200, body
        assert body["lead_unit"] == "civil-defense" and body["status"] == "dispatched"
        assert body["assisting_units"] == ["hubin"]
        _, body = await sup.get("/api/supervisor/precedents")
        [precedent] = body["precedents"]
        assert precedent["unit_code"] == "civil-defense"
        assert precedent["rejected_units"] == ["housing", "urban-management"]
        assert "湖滨街道金鸿小区" not in precedent["text"]
        assert precedent["request_number"] == number
        # the owner decided by arbitration cannot send it back
        async with svc.pool.acquire() as conn, conn.transaction():
            try:
                await d.unit_return(conn, order["id"], "civil-defense", "不归我们", UNIT, NOW)
            except Exception as exc:  # noqa: BLE001
                assert getattr(exc, "code", None) == "decided_by_arbitration"
            else:
                raise AssertionError("an arbitrated owner returned the order")


async def test_precedents_route_similar_orders(desk_service):
    svc = desk_service
    d = svc.desk.dispatcher
    first, _ = await file_order(
        svc,
        NOW,
        content="金鸿小区地下室人防工程被改成仓库出租",
        location="湖滨街道金鸿小区",
        address=HUBIN,
        suggestions=[suggestion("housing", 0.4, False)],
    )
    async with svc.pool.acquire() as conn, conn.transaction():
        await d.send_to_arbitration(
            conn, first["id"], Actor("ag", "agent"), NOW, "住建与人防各执一词"
        )
        await d.arbitrate(
            conn, first["id"], "civil-defense", "人防工程属人防办", Actor("sup", "supervisor"), NOW
        )
    # very similar, NLU confidently wrong: the precedent decides
    same, intake = await file_order(
        svc,
        NOW,
        content="凤里街道某小区人防工程被人改成仓库出租",
        location="凤里街道某小区",
        address={"text": "凤里街道某小区", "area": "凤里街道", "territorial_unit": "fengli"},
        suggestions=[suggestion("housing", 0.8)],
    )
    assert (intake.decision.lead, intake.decision.reason) == ("civil-defense", "precedent")
    assert intake.decision.assists == ["fengli"]
    # somewhat similar: shown first, but not decided; the unit it rejected is not auto-chosen
    near, intake = await file_order(
        svc, NOW, content="地下室被人改成仓库了", suggestions=[suggestion("housing", 0.8)]
    )
    assert intake.decision.lead is None
    assert [s.code for s in intake.decision.suggestions][:2] == ["civil-defense", "housing"]
    assert intake.decision.suggestions[0].source == "precedent"
    # unrelated: the NLU as usual
    other, intake = await file_order(
        svc, NOW, content="小区门口路灯不亮", suggestions=[suggestion("municipal-works")]
    )
    assert (intake.decision.lead, intake.decision.reason) == ("municipal-works", "nlu")
    # the first disputed order's red light
    async with svc.pool.acquire() as conn:
        colors = await conn.fetch(
            "SELECT color FROM supervision_lights WHERE work_order_id = $1 AND point = 'returned'",
            first["id"],
        )
    assert [r["color"] for r in colors] == ["red"]


async def test_a_disputed_return_goes_straight_to_arbitration(desk_service):
    svc = desk_service
    order, _ = await file_order(svc, NOW)
    async with svc.pool.acquire() as conn, conn.transaction():
        status = await svc.desk.dispatcher.unit_return(
            conn, order["id"], "municipal-works", "该路段已移交开发区管理", UNIT, NOW, dispute=True
        )
    assert status == "arbitration"
    assert await event_kinds(svc, order["id"]) == [
        "filed",
        "dispatched",
        "returned",
        "sent_to_arbitration",
    ]


async def test_from_the_chat_to_the_unit_and_the_repeat_noted(service, conn):
    """End to end with the real NLU: the chat files, dispatch routes with the territorial unit
    assisting, the unit's handler sees it; the same complaint again is linked as a repeat."""
    from services.staff.accounts import create_user
    from tests.support.chat import COMPLAINT, ChatClient, file_complaint
    from tests.support.desk import PASSWORD, Api

    client = ChatClient(service.url)
    number = (await file_complaint(client))["request_number"]
    order = await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)
    assert (order["status"], order["lead_unit"]) == ("dispatched", "ecology")
    assert await assists.of_order(conn, order["id"]) == ["hubin"]
    assert order["sign_for_due_at"] is not None and order["sign_for_yellow_at"] is not None
    await create_user(conn, "h-hubin", PASSWORD, "unit_handler", "hubin")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            service.url + "/api/auth/login", json={"username": "h-hubin", "password": PASSWORD}
        ) as resp:
            token = (await resp.json())["token"]
        handler = Api(http, service.url, token)
        _, body = await handler.get("/api/unit/orders")
        assert [(o["request_number"], o["unit_role"]) for o in body["orders"]] == [
            (number, "assist")
        ]
    again = await client.say(COMPLAINT + "，上次反映了还是没解决")
    assert any("请确认" in r for r in again["replies"]), again
    filed = await client.say("确认")
    assert any("第2次反映" in r and number in r for r in filed["replies"]), filed
    second = await conn.fetchrow(
        "SELECT * FROM work_orders WHERE request_number = $1", filed["request_number"]
    )
    assert second["repeat_of"] == order["id"]
