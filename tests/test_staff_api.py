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
