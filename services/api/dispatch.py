"""The dispatch desk, supervision desk and admin APIs (the unit handlers': services/api/unit.py).

Dispatch desk (agent, supervisor):
    GET  /api/dispatch/queue                           manual dispatch queue, top-3 suggestions
    GET  /api/dispatch/orders/{number}                 any order with history, units, lights
    GET  /api/dispatch/search?q=                       by request number, phone or words
    POST /api/dispatch/orders/{number}/dispatch        {"lead", "assists": [...], "note"}
    POST /api/dispatch/orders/{number}/lead            {"lead", "reason"}   change the lead
    POST /api/dispatch/orders/{number}/assists         {"unit"}             add an assisting unit
    POST /api/dispatch/orders/{number}/arbitration     {"reason"}           ownership disputed
Supervision desk (supervisor):
    GET  /api/supervisor/lights[?unit=&point=&color=&all=1&limit=&offset=]   the lights board
    GET  /api/supervisor/performance[?from=2026-11-01&to=2026-11-30]        per-unit figures
    GET  /api/supervisor/arbitration                   orders waiting for an owner
    POST /api/supervisor/arbitration/{number}          {"unit", "reason", "assists"}  decide
    GET  /api/supervisor/escalations                   repeat reports escalated
    GET  /api/supervisor/precedents, DELETE /api/supervisor/precedents/{id}
Admin:
    GET  /api/admin/calendar?year=2027                 the working-day calendar of a year
    PUT  /api/admin/calendar/{day}                     {"workday": false, "name": "元旦"}
    DELETE /api/admin/calendar/{day}
    PUT  /api/admin/units/{code}/contact               {"phone"}  (admin or supervisor)
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from services.api import unit as unit_api
from services.api.audit import record_read
from services.api.auth import current_user, require_role
from services.api.order_views import (
    arbitration_reasons,
    order_detail,
    order_json,
    timed,
    with_lights,
)
from services.api.reads import replica_read
from services.context import Context, context_of
from services.core.unit_directory import set_contact_phone
from services.deadlines import workdays
from services.desk import Desk
from services.http.openapi import documented
from services.http.requests import (
    day_param,
    desk_of,
    json_exception,
    paging,
    read_json,
    respond,
    text_field,
)
from services.orders import states
from services.staff.accounts import ADMIN, AGENT, SUPERVISOR
from services.storage import calendar_days, lights, performance, precedents, work_orders
from services.storage.work_orders import Actor

DESK_ROLES = (AGENT, SUPERVISOR)


def _actor(request: web.Request) -> Actor:
    user = current_user(request)
    return Actor(user.username, user.actor_role)


async def _order_id(conn, number: str) -> int:  # noqa: ANN001
    order_id = await work_orders.id_by_number(conn, number)
    if order_id is None:
        raise json_exception(404, "not_found", f"no work order {number}")
    return order_id


def _units_list(value: object, name: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise json_exception(400, f"bad_{name}", f"{name} must be a list of unit codes")
    return value


async def _desk_action(request: web.Request, action) -> web.Response:  # noqa: ANN001
    ctx = context_of(request)
    desk = desk_of(ctx)
    body = await read_json(request)
    number = request.match_info["number"]
    async with ctx.pool.acquire() as conn, conn.transaction():
        order_id = await _order_id(conn, number)
        await action(desk, conn, order_id, body, _actor(request), ctx.clock.now())
        return respond(timed(await order_detail(conn, order_id, ctx.units), ctx))


# -- dispatch desk -------------------------------------------------------------------------


async def _queue(request: web.Request, statuses: tuple[str, ...]) -> web.Response:
    ctx = context_of(request)
    limit, offset = paging(request)
    async with ctx.pool.acquire() as conn:
        items = await desk_of(ctx).dispatcher.queue(conn, statuses, limit, offset)
        orders = [{**timed(order_json(row, ctx.units), ctx), **extra} for row, extra in items]
        await with_lights(conn, orders)
        if statuses == (states.ARBITRATION,):
            for order in orders:
                order["reasons"] = await arbitration_reasons(conn, order["id"])
    await record_read(request, "order_list", [o["request_number"] for o in orders])
    return respond({"orders": orders})


@require_role(*DESK_ROLES)
async def dispatch_queue(request: web.Request) -> web.Response:
    return await _queue(request, states.DISPATCH_QUEUE)


@require_role(*DESK_ROLES)
async def search_orders(request: web.Request) -> web.Response:
    ctx = context_of(request)
    text = (request.query.get("q") or "").strip()
    if not text:
        raise json_exception(400, "missing_q", "q (a request number, phone or words) is required")
    if len(text) > 200:
        raise json_exception(400, "bad_q", "q is longer than 200 characters")
    limit, offset = paging(request, default=50, most=200)
    async with ctx.pool.acquire() as conn:
        rows = await work_orders.search(conn, text, limit, offset)
        orders = await with_lights(conn, [timed(order_json(r, ctx.units), ctx) for r in rows])
    return respond({"q": text, "orders": orders})


@require_role(*DESK_ROLES)
async def get_order(request: web.Request) -> web.Response:
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        order_id = await _order_id(conn, request.match_info["number"])
        detail = timed(await order_detail(conn, order_id, ctx.units), ctx)
    await record_read(request, "order", [detail["request_number"]])
    return respond(detail)


class Dispatch(BaseModel):
    lead: str = Field(description="the lead unit's code")
    assists: list[str] = Field(default_factory=list, description="assisting units' codes")
    note: str | None = Field(default=None, max_length=2000)


@documented("The desk sends the order to a lead unit (and assists)", Dispatch)
@require_role(*DESK_ROLES)
async def dispatch_order(request: web.Request) -> web.Response:
    async def act(desk: Desk, conn, order_id: int, body: dict, actor: Actor, now: datetime) -> None:  # noqa: ANN001
        await desk.dispatcher.dispatch(
            conn,
            order_id,
            body.get("lead"),
            _units_list(body.get("assists"), "assists"),
            actor,
            now,
            text_field(body, "note", required=False),
        )

    return await _desk_action(request, act)


@require_role(*DESK_ROLES)
async def change_lead(request: web.Request) -> web.Response:
    async def act(desk: Desk, conn, order_id: int, body: dict, actor: Actor, now: datetime) -> None:  # noqa: ANN001
        reason = text_field(body, "reason")
        await desk.dispatcher.change_lead(conn, order_id, body.get("lead"), actor, now, reason)

    return await _desk_action(request, act)


@require_role(*DESK_ROLES)
async def add_assist(request: web.Request) -> web.Response:
    async def act(desk: Desk, conn, order_id: int, body: dict, actor: Actor, now: datetime) -> None:  # noqa: ANN001
        await desk.dispatcher.add_assist(conn, order_id, body.get("unit"), actor, now)

    return await _desk_action(request, act)


@require_role(*DESK_ROLES)
async def to_arbitration(request: web.Request) -> web.Response:
    async def act(desk: Desk, conn, order_id: int, body: dict, actor: Actor, now: datetime) -> None:  # noqa: ANN001
        reason = text_field(body, "reason")
        await desk.dispatcher.send_to_arbitration(conn, order_id, actor, now, reason)

    return await _desk_action(request, act)


# -- supervision desk ----------------------------------------------------------------------


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise json_exception(400, f"bad_{name}", f"{name} must be one of {', '.join(allowed)}")
    return value


@require_role(SUPERVISOR)
async def lights_board(request: web.Request) -> web.Response:
    ctx = context_of(request)
    limit, offset = paging(request, default=100)
    lit_only = request.query.get("all", "") not in ("1", "true", "yes")
    unit = request.query.get("unit") or None
    if unit is not None and unit not in ctx.units:
        raise json_exception(400, "unknown_unit", f"{unit!r} is not a linked unit")
    point = _choice(request, "point", lights.POINTS)
    color = _choice(request, "color", lights.COLORS)
    async with ctx.pool.acquire() as conn:
        counts = await lights.board_counts(conn, lit_only)
        rows = await lights.board_list(
            conn,
            lit_only=lit_only,
            unit=unit,
            point=point,
            color=color,
            limit=limit,
            offset=offset,
        )
    by_unit: dict[str, Any] = {}
    by_point = {p: {"yellow": 0, "red": 0} for p in lights.POINTS}
    for r in counts:
        key = r["unit_code"] or "centre"
        entry = by_unit.setdefault(
            key,
            {
                "name": ctx.units.name(r["unit_code"]) if r["unit_code"] else "中心（派单）",
                "points": {},
            },
        )
        entry["points"].setdefault(r["point"], {"yellow": 0, "red": 0})[r["color"]] = r["n"]
        by_point[r["point"]][r["color"]] += r["n"]
    return respond(
        {
            "lit_only": lit_only,
            "totals": {
                "yellow": sum(p["yellow"] for p in by_point.values()),
                "red": sum(p["red"] for p in by_point.values()),
            },
            "by_point": by_point,
            "by_unit": by_unit,
            "lights": [dict(r) for r in rows],
        }
    )


def _period(request: web.Request, ctx: Context) -> tuple[datetime, datetime]:
    tz = desk_of(ctx).calendar.tz
    today = ctx.clock.now().astimezone(tz).date()
    first = day_param(request.query.get("from"), "from") or today.replace(day=1)
    last = day_param(request.query.get("to"), "to") or today
    if last < first:
        raise json_exception(400, "bad_period", "to is before from")
    return (
        datetime.combine(first, time(0), tz),
        datetime.combine(last + timedelta(days=1), time(0), tz),
    )


def _rate(done: int, counted: int) -> float | None:
    return round(done / counted, 4) if counted else None


@require_role(SUPERVISOR)
async def unit_performance(request: web.Request) -> web.Response:
    ctx = context_of(request)
    start, end = _period(request, ctx)
    now = ctx.clock.now()

    async def read(conn: asyncpg.Connection) -> tuple[list, list]:
        return (
            await performance.by_unit(conn, start, end, now),
            await performance.red_lights(conn, start, end),
        )

    rows, reds = await replica_read(request, read)  # the replica when it is current
    red_by_unit: dict[str, dict[str, int]] = {}
    for r in reds:
        red_by_unit.setdefault(r["unit"], {})[r["point"]] = r["n"]
    units = []
    for r in rows:
        units.append(
            {
                "unit": r["unit"],
                "name": ctx.units.name(r["unit"]),
                "received": r["received"],
                "resolved": r["resolved"],
                "returned": r["returned"],
                "sign_for": {
                    "counted": r["sign_for_counted"],
                    "on_time": r["sign_for_on_time"],
                    "rate": _rate(r["sign_for_on_time"], r["sign_for_counted"]),
                },
                "contact": {
                    "counted": r["contact_counted"],
                    "on_time": r["contact_on_time"],
                    "rate": _rate(r["contact_on_time"], r["contact_counted"]),
                },
                "handling": {
                    "counted": r["handling_counted"],
                    "on_time": r["handling_on_time"],
                    "rate": _rate(r["handling_on_time"], r["handling_counted"]),
                },
                "return_rate": _rate(r["returned"], r["received"]),
                "red_lights": red_by_unit.get(r["unit"], {}),
            }
        )
    return respond({"from": start.date(), "to": (end - timedelta(days=1)).date(), "units": units})


@require_role(SUPERVISOR)
async def arbitration_queue(request: web.Request) -> web.Response:
    return await _queue(request, (states.ARBITRATION,))


@require_role(SUPERVISOR)
async def arbitrate(request: web.Request) -> web.Response:
    async def act(desk: Desk, conn, order_id: int, body: dict, actor: Actor, now: datetime) -> None:  # noqa: ANN001
        reason = text_field(body, "reason")
        await desk.dispatcher.arbitrate(
            conn,
            order_id,
            body.get("unit"),
            reason,
            actor,
            now,
            _units_list(body.get("assists"), "assists"),
        )

    return await _desk_action(request, act)


@require_role(SUPERVISOR)
async def escalations(request: web.Request) -> web.Response:
    ctx = context_of(request)
    limit, offset = paging(request)
    async with ctx.pool.acquire() as conn:
        rows = await work_orders.escalated(conn, limit, offset)
    orders = [order_json(r, ctx.units) for r in rows]
    await record_read(request, "order_list", [o["request_number"] for o in orders])
    return respond({"orders": orders})


@require_role(SUPERVISOR)
async def list_precedents(request: web.Request) -> web.Response:
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        rows = await precedents.active(conn)
    return respond(
        {"precedents": [{**dict(r), "unit_name": ctx.units.name(r["unit_code"])} for r in rows]}
    )


@require_role(SUPERVISOR)
async def withdraw_precedent(request: web.Request) -> web.Response:
    ctx = context_of(request)
    try:
        precedent_id = int(request.match_info["id"])
    except ValueError as exc:
        raise json_exception(404, "not_found", "no such precedent") from exc
    async with ctx.pool.acquire() as conn:
        if not await precedents.withdraw(conn, precedent_id):
            raise json_exception(404, "not_found", "no such precedent")
    return respond({"withdrawn": precedent_id})


# -- admin ---------------------------------------------------------------------------------


def _day(request: web.Request) -> date:
    day = day_param(request.match_info["day"], "day")
    assert day is not None
    return day


@require_role(ADMIN)
async def get_calendar(request: web.Request) -> web.Response:
    ctx = context_of(request)
    calendar = desk_of(ctx).calendar
    raw = request.query.get("year") or str(ctx.clock.now().year)
    try:
        year = int(raw)
    except ValueError as exc:
        raise json_exception(400, "bad_year", "year must be a number like 2027") from exc
    if not 2000 <= year <= 2100:
        raise json_exception(400, "bad_year", "year must be between 2000 and 2100")
    async with ctx.pool.acquire() as conn:
        entered = [r for r in await calendar_days.all_days(conn) if r["day"].year == year]
    await workdays.refresh(calendar, ctx.pool)
    first, last = date(year, 1, 1), date(year, 12, 31)
    working = calendar.workdays_between(first, last)
    all_days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return respond(
        {
            "year": year,
            "source": calendar.source(year),
            "working_days": len(working),
            "rest_days_on_weekdays": [d for d in all_days if d.weekday() < 5 and d not in working],
            "working_weekend_days": [d for d in working if d.weekday() >= 5],
            "entered": [dict(r) for r in entered],
        }
    )


@require_role(ADMIN)
async def put_calendar_day(request: web.Request) -> web.Response:
    ctx = context_of(request)
    day = _day(request)
    body = await read_json(request)
    workday = body.get("workday")
    if not isinstance(workday, bool):
        raise json_exception(
            400, "bad_workday", "workday must be true (a working day) or false (a holiday)"
        )
    name = text_field(body, "name", required=False, max_chars=100) or ""
    async with ctx.pool.acquire() as conn:
        row = await calendar_days.put(conn, day, workday, name, current_user(request).username)
    await workdays.calendar_changed(desk_of(ctx).calendar, ctx.pool, day, ctx.clock.now())
    return respond(dict(row))


@require_role(ADMIN)
async def delete_calendar_day(request: web.Request) -> web.Response:
    ctx = context_of(request)
    day = _day(request)
    async with ctx.pool.acquire() as conn:
        if not await calendar_days.remove(conn, day):
            raise json_exception(404, "not_found", f"nothing entered for {day}")
    await workdays.calendar_changed(desk_of(ctx).calendar, ctx.pool, day, ctx.clock.now())
    return respond({"removed": day})


@require_role(ADMIN, SUPERVISOR)
async def put_unit_contact(request: web.Request) -> web.Response:
    ctx = context_of(request)
    code = request.match_info["code"]
    if code not in ctx.units:
        raise json_exception(404, "not_found", f"{code!r} is not a linked unit")
    body = await read_json(request)
    phone = text_field(body, "phone", max_chars=32)
    digits = phone.replace("-", "").replace(" ", "").removeprefix("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise json_exception(400, "bad_phone", "phone must be a telephone number")
    async with ctx.pool.acquire() as conn:
        await set_contact_phone(conn, code, phone)
    return respond({"unit": code, "contact_phone": phone})


ROUTES = (
    ("GET", "/api/dispatch/queue", dispatch_queue),
    ("GET", "/api/dispatch/search", search_orders),
    ("GET", "/api/dispatch/orders/{number}", get_order),
    ("POST", "/api/dispatch/orders/{number}/dispatch", dispatch_order),
    ("POST", "/api/dispatch/orders/{number}/lead", change_lead),
    ("POST", "/api/dispatch/orders/{number}/assists", add_assist),
    ("POST", "/api/dispatch/orders/{number}/arbitration", to_arbitration),
    ("GET", "/api/supervisor/lights", lights_board),
    ("GET", "/api/supervisor/performance", unit_performance),
    ("GET", "/api/supervisor/arbitration", arbitration_queue),
    ("POST", "/api/supervisor/arbitration/{number}", arbitrate),
    ("GET", "/api/supervisor/escalations", escalations),
    ("GET", "/api/supervisor/precedents", list_precedents),
    ("DELETE", "/api/supervisor/precedents/{id}", withdraw_precedent),
    ("GET", "/api/admin/calendar", get_calendar),
    ("PUT", "/api/admin/calendar/{day}", put_calendar_day),
    ("DELETE", "/api/admin/calendar/{day}", delete_calendar_day),
    ("PUT", "/api/admin/units/{code}/contact", put_unit_contact),
)


def add_routes(app: web.Application) -> None:
    """The unit, desk, supervisor and admin routes."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    unit_api.add_routes(app)
