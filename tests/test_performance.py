"""Per-unit performance from the event history agrees with a hand count."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from services.core.clock import CHINA_TZ
from services.storage.work_orders import Actor
from tests.support.desk import file_order, login, make_user

UNIT = Actor("handler", "unit")
AGENT = Actor("agent", "agent")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


async def test_on_time_rates_and_returns_by_unit(desk_service, clock):
    svc = desk_service
    monday = at(2026, 11, 23, 10)
    a, _ = await file_order(svc, monday)
    b, _ = await file_order(svc, monday, content="井盖丢了", location="凤里街道宝岛路", address={})
    c, _ = await file_order(svc, monday, content="河道有人倒垃圾", location=None)

    async def do(order, kind, when, **kw):
        async with svc.pool.acquire() as conn, conn.transaction():
            await svc.desk.clocks.record(conn, order["id"], kind, UNIT, when, **kw)

    # A: everything in time (sign by Tue 10:00, contact by Wed 10:00, resolve by Mon 30th 10:00)
    await do(a, "signed", at(2026, 11, 23, 11))
    await do(a, "contacted", at(2026, 11, 24, 9))
    await do(a, "resolved", at(2026, 11, 27, 16))
    # B: signed and contacted late, never resolved
    await do(b, "signed", at(2026, 11, 24, 11))
    await do(b, "contacted", at(2026, 11, 26, 9))
    # C: returned before any deadline, then dispatched to ecology and only signed
    async with svc.pool.acquire() as conn, conn.transaction():
        await svc.desk.dispatcher.unit_return(
            conn, c["id"], "municipal-works", "不属市政", UNIT, at(2026, 11, 23, 12)
        )
        await svc.desk.dispatcher.dispatch(
            conn, c["id"], "ecology", [], AGENT, at(2026, 11, 23, 13)
        )
    await do(c, "signed", at(2026, 11, 23, 14))

    clock.current = at(2026, 12, 1, 12)
    await svc.desk.supervision.scan()
    await make_user(svc, "sup", "supervisor")
    async with aiohttp.ClientSession() as http:
        sup = await login(http, svc, "sup")
        status, body = await sup.get("/api/supervisor/performance?from=2026-11-01&to=2026-12-01")
        assert status == 200, body
        units = {u["unit"]: u for u in body["units"]}
        works, eco = units["municipal-works"], units["ecology"]
        assert (works["received"], works["resolved"], works["returned"]) == (3, 1, 1)
        assert works["sign_for"] == {"counted": 2, "on_time": 1, "rate": 0.5}
        assert works["contact"] == {"counted": 2, "on_time": 1, "rate": 0.5}
        assert works["handling"] == {"counted": 2, "on_time": 1, "rate": 0.5}
        assert works["return_rate"] == round(1 / 3, 4)
        assert works["red_lights"] == {"handling": 1}
        assert (eco["received"], eco["returned"]) == (1, 0)
        assert eco["sign_for"] == {"counted": 1, "on_time": 1, "rate": 1.0}
        assert eco["contact"] == {"counted": 1, "on_time": 0, "rate": 0.0}
        assert eco["handling"] == {"counted": 1, "on_time": 0, "rate": 0.0}
        assert eco["red_lights"] == {"contact": 1, "handling": 1}
        # another period has nothing; a bad period is a clear error
        _, body = await sup.get("/api/supervisor/performance?from=2026-10-01&to=2026-10-31")
        assert body["units"] == []
        status, body = await sup.get("/api/supervisor/performance?from=2026-11-30&to=2026-11-01")
        assert (status, body["error"]) == (400, "bad_period")
        assert (await sup.get("/api/supervisor/performance?from=yesterday"))[1][
            "error"
        ] == "bad_from"
