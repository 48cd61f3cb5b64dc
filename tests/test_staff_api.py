"""The APIs added for the staff pages, over HTTP: the desk's search, the admin's account
management (with its refusals), the units list."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from services.core.clock import CHINA_TZ
from tests.support.desk import PASSWORD, file_order, login, make_user, suggestion

NOW = datetime(2026, 11, 23, 10, tzinfo=CHINA_TZ)


async def test_the_desk_searches_by_number_phone_and_words(desk_service):
    svc = desk_service
    await make_user(svc, "ag", "agent")
    lamp, _ = await file_order(svc, NOW, phone="139-1234-5678")
    fumes, _ = await file_order(
        svc,
        NOW,
        content="饭店油烟100%直排_太呛",
        location=None,
        suggestions=[suggestion("ecology")],
    )
    async with aiohttp.ClientSession() as http:
        agent = await login(http, svc, "ag")

        async def found(q: str) -> list[str]:
            status, body = await agent.get("/api/dispatch/search?q=" + q)
            assert status == 200, body
            return [o["request_number"] for o in body["orders"]]

        assert await found(lamp["request_number"]) == [lamp["request_number"]]
        assert await found("20261123") == [fumes["request_number"], lamp["request_number"]]
        assert await found("13912345678") == [lamp["request_number"]]
        assert await found("5678") == [lamp["request_number"]]
        assert await found("路灯 长福路") == [lamp["request_number"]]
        assert await found("路灯 油烟") == []
        # LIKE's wildcards are the words themselves
        assert await found("100%25") == [fumes["request_number"]]
        assert await found("_") == [fumes["request_number"]]
        status, body = await agent.get("/api/dispatch/search?q=")
        assert (status, body["error"]) == (400, "missing_q")
        status, body = await agent.get("/api/dispatch/search?q=" + "字" * 201)
        assert (status, body["error"]) == (400, "bad_q")
        status, body = await agent.get(f"/api/dispatch/search?q={lamp['request_number']}")
        order = body["orders"][0]
        assert set(order["time_left"]) == {"sign_for", "contact", "handling"}
        assert order["clock_ticking"] is True and order["lit"] == []


async def test_admin_accounts_api_refuses_bad_input_with_reasons(desk_service):
    svc = desk_service
    root = await make_user(svc, "root", "admin")
    async with aiohttp.ClientSession() as http:
        admin = await login(http, svc, "root")
        bad = [
            ({"username": "x y", "password": PASSWORD, "role": "agent"}, "bad_account"),
            ({"username": "li", "password": PASSWORD, "role": "mayor"}, "bad_account"),
            ({"username": "li", "password": PASSWORD, "role": "unit_handler"}, "bad_account"),
            (
                {"username": "li", "password": PASSWORD, "role": "unit_handler", "unit": "nope"},
                "bad_account",
            ),
            (
                {"username": "li", "password": PASSWORD, "role": "agent", "unit": "ecology"},
                "bad_account",
            ),
            ({"username": "li", "password": "short", "role": "agent"}, "bad_account"),
            ({"username": "li", "role": "agent"}, "missing_password"),
            ({"password": PASSWORD, "role": "agent"}, "missing_username"),
        ]
        for body, code in bad:
            status, answer = await admin.post("/api/admin/users", body)
            assert (status, answer["error"]) == (400, code), (body, answer)
        status, made = await admin.post(
            "/api/admin/users", {"username": "li", "password": PASSWORD, "role": "agent"}
        )
        assert status == 201 and made["role"] == "agent"
        status, answer = await admin.post(
            "/api/admin/users", {"username": "li", "password": PASSWORD, "role": "agent"}
        )
        assert status == 400 and "taken" in answer["reason"]
        status, listed = await admin.get("/api/admin/users")
        assert [u["username"] for u in listed["users"]] == ["root", "li"]
        assert all("password_hash" not in u for u in listed["users"])

        status, answer = await admin.post(f"/api/admin/users/{root.id}/active", {"active": False})
        assert (status, answer["error"]) == (409, "own_account")
        status, answer = await admin.post("/api/admin/users/999999/active", {"active": False})
        assert (status, answer["error"]) == (404, "not_found")
        status, answer = await admin.post("/api/admin/users/abc/password", {"password": PASSWORD})
        assert status == 404
        status, answer = await admin.post(f"/api/admin/users/{made['id']}/active", {"active": "no"})
        assert (status, answer["error"]) == (400, "bad_active")
        status, answer = await admin.post(
            f"/api/admin/users/{made['id']}/password", {"password": "short"}
        )
        assert (status, answer["error"]) == (400, "bad_account")


async def _frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict:
    return await ws.receive_json(timeout=timeout)


async def test_the_staff_socket_pushes_order_changes_and_one_event_per_light_scan(
    desk_service, clock
):
    svc = desk_service
    await make_user(svc, "sup", "supervisor")
    await make_user(svc, "h-eco", "unit_handler", "ecology")
    clock.current = NOW
    async with aiohttp.ClientSession() as http:
        sockets = {}
        for name in ("sup", "h-eco"):
            api = await login(http, svc, name)
            ws = await http.ws_connect(svc.url + "/api/staff/ws")
            await ws.send_json({"token": api.token})
            assert (await _frame(ws))["type"] == "ready"
            sockets[name] = ws
        works, _ = await file_order(svc, NOW)  # municipal-works
        eco, _ = await file_order(
            svc, NOW, content="饭店油烟太大", location=None, suggestions=[suggestion("ecology")]
        )
        seen = [await _frame(sockets["sup"]) for _ in range(2)]
        assert [(f["type"], f["request_number"], f["status"]) for f in seen] == [
            ("order", works["request_number"], "awaiting_dispatch"),
            ("order", works["request_number"], "dispatched"),
        ]
        # the unit hears only of its own order, by number
        mine = await _frame(sockets["h-eco"])
        assert mine == {"type": "order", "request_number": eco["request_number"]}

        # a scan that raises several lights is one event (however many it raises)
        clock.current = datetime(2026, 11, 24, 10, 30, tzinfo=CHINA_TZ)
        report = await svc.desk.supervision.scan()
        assert report.lights >= 4
        frames = []
        while True:
            f = await _frame(sockets["sup"])
            if f["type"] == "lights":
                frames.append(f)
                break
        assert frames[0]["count"] == report.lights
        assert sorted(frames[0]["units"]) == ["ecology", "municipal-works"]
        got = await _frame(sockets["h-eco"])
        while got["type"] != "lights":
            got = await _frame(sockets["h-eco"])
        assert got == {"type": "lights", "request_number": None}
        for ws in sockets.values():
            await ws.close()
