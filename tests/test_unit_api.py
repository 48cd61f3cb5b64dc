"""The unit handlers' API: own orders only (404 for every endpoint on another unit's order,
403 for an assisting unit's actions and for other roles), and the work itself."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from services.api import unit as unit_api
from services.core.clock import CHINA_TZ
from tests.support.desk import Api, file_order, login, make_user, order_row, suggestion

NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)
BODIES = {
    "sign": {},
    "contact": {"note": "已电话联系市民，核实路灯确实不亮"},
    "resolve": {"result": "已更换灯泡，路灯恢复照明"},
    "return": {"reason": "该路段路灯已移交开发区管理"},
}


def _path(template: str, number: str) -> str:
    return template.replace("{number}", number)


async def _call(api: Api, method: str, template: str, number: str) -> tuple[int, dict]:
    action = template.rsplit("/", 1)[-1]
    body = BODIES.get(action) if method == "POST" else None
    return await api.call(method, _path(template, number), body)


async def test_a_handler_never_sees_or_touches_another_units_orders(desk_service):
    svc = desk_service
    await make_user(svc, "h-works", "unit_handler", "municipal-works")
    await make_user(svc, "h-eco", "unit_handler", "ecology")
    await make_user(svc, "h-hubin", "unit_handler", "hubin")
    await make_user(svc, "ag", "agent")
    await make_user(svc, "sup", "supervisor")
    await make_user(svc, "root", "admin")
    works, _ = await file_order(svc, NOW)  # municipal-works leads, hubin assists
    eco, _ = await file_order(
        svc, NOW, suggestions=[suggestion("ecology")], content="饭店油烟太大", location=None
    )
    number = works["request_number"]
    async with aiohttp.ClientSession() as http:
        other = await login(http, svc, "h-eco")
        assist = await login(http, svc, "h-hubin")
        owner = await login(http, svc, "h-works")
        order_routes = [(m, p) for m, p, _ in unit_api.ROUTES if "{number}" in p]
        assert len(order_routes) == 5
        for method, template in order_routes:
            status, body = await _call(other, method, template, number)
            assert (status, body["error"]) == (404, "not_found"), (method, template, body)
            # indistinguishable from an order that does not exist
            status, missing = await _call(other, method, template, "20991231-9999")
            assert (status, missing) == (404, body)
            if method == "GET":
                status, body = await _call(assist, method, template, number)
                assert status == 200 and body["request_number"] == number
            else:
                status, body = await _call(assist, method, template, number)
                assert (status, body["error"]) == (403, "not_lead"), (template, body)
        for user in ("ag", "sup", "root"):
            api = await login(http, svc, user)
            for method, template, _ in unit_api.ROUTES:
                status, body = await _call(api, method, template, number)
                assert (status, body["error"]) == (403, "forbidden"), (user, template)
        anonymous = Api(http, svc.url, None)
        for method, template, _ in unit_api.ROUTES:
            status, body = await _call(anonymous, method, template, number)
            assert status == 401, template

        # lists: own orders, assisted ones marked as such, never another unit's
        _, body = await other.get("/api/unit/orders")
        assert [o["request_number"] for o in body["orders"]] == [eco["request_number"]]
        _, body = await assist.get("/api/unit/orders")
        assert [(o["request_number"], o["unit_role"]) for o in body["orders"]] == [
            (number, "assist")
        ]
        _, body = await owner.get("/api/unit/orders?status=dispatched")
        assert [(o["request_number"], o["unit_role"]) for o in body["orders"]] == [(number, "lead")]
        assert (await owner.get("/api/unit/orders?status=bogus"))[1]["error"] == "bad_status"
        assert (await owner.get("/api/unit/orders?limit=x"))[1]["error"] == "bad_limit"

        # nothing the others tried changed the order
        row = await order_row(svc, number)
        assert (row["status"], row["lead_unit"]) == ("dispatched", "municipal-works")


async def test_the_lead_unit_signs_contacts_and_resolves(desk_service, clock):
    svc = desk_service
    await make_user(svc, "h-works", "unit_handler", "municipal-works")
    order, _ = await file_order(svc, NOW)
    number = order["request_number"]
    base = f"/api/unit/orders/{number}"
    async with aiohttp.ClientSession() as http:
        owner = await login(http, svc, "h-works")
        assert (await owner.post(base + "/contact", BODIES["contact"]))[1]["error"] == "bad_state"
        clock.current = datetime(2026, 11, 23, 11, tzinfo=CHINA_TZ)
        status, body = await owner.post(base + "/sign")
        assert (status, body["status"]) == (200, "signed")
        assert (await owner.post(base + "/sign"))[1]["error"] == "bad_state"
        assert (await owner.post(base + "/contact", {}))[1]["error"] == "missing_note"
        assert (await owner.post(base + "/contact", {"note": 5}))[1]["error"] == "bad_note"
        assert (await owner.post(base + "/contact", BODIES["contact"]))[1]["status"] == "contacted"
        assert (await owner.post(base + "/resolve", {"result": "  "}))[1][
            "error"
        ] == "missing_result"
        assert (await owner.post(base + "/resolve", BODIES["resolve"]))[1]["status"] == "resolved"
        status, body = await owner.get(base)
        kinds = [e["kind"] for e in body["events"]]
        assert kinds == ["filed", "dispatched", "signed", "contacted", "resolved"]
        resolved = body["events"][-1]
        assert resolved["note"] == BODIES["resolve"]["result"]
        assert resolved["actor"] == "h-works" and resolved["unit"] == "municipal-works"
        assert body["contact_phone"] == "13800000001"  # the unit needs it to call the citizen


async def test_a_return_with_a_reason_and_the_order_leaves_the_unit(desk_service):
    svc = desk_service
    await make_user(svc, "h-works", "unit_handler", "municipal-works")
    await make_user(svc, "ag", "agent")
    order, _ = await file_order(svc, NOW)
    number = order["request_number"]
    async with aiohttp.ClientSession() as http:
        owner = await login(http, svc, "h-works")
        path = f"/api/unit/orders/{number}/return"
        assert (await owner.post(path, {}))[1]["error"] == "missing_reason"
        assert (await owner.post(path, {"reason": "x", "dispute": "yes"}))[1][
            "error"
        ] == "bad_dispute"
        status, body = await owner.post(path, BODIES["return"])
        assert (status, body["status"]) == (200, "returned")
        agent = await login(http, svc, "ag")
        status, body = await agent.post(
            f"/api/dispatch/orders/{number}/dispatch", {"lead": "econ-zone"}
        )
        assert status == 200, body
        # the order now belongs to the development zone: gone for the unit that returned it
        status, body = await owner.get(f"/api/unit/orders/{number}")
        assert status == 404
        assert (await owner.post(f"/api/unit/orders/{number}/sign"))[0] == 404
        _, body = await owner.get("/api/unit/orders")
        assert body["orders"] == []
