"""The unit handlers' API: a unit's own orders, and what the unit does with them.

    GET  /api/unit/orders[?status=dispatched,signed&limit=&offset=]  orders it leads or assists
    GET  /api/unit/orders/{number}                                   one order with its history
    POST /api/unit/orders/{number}/sign                              签收
    POST /api/unit/orders/{number}/contact   {"note": "..."}         contacted the citizen
    POST /api/unit/orders/{number}/resolve   {"result": "..."}       resolved, with the result
    POST /api/unit/orders/{number}/return    {"reason": "...", "dispute": false}

Only `unit_handler` accounts, each bound to one unit; what the unit may do with which order:
services/unit/actions.py (404 for an order it neither leads nor assists, 403 for an
assisting unit that tries to act).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from services.api.audit import record_read
from services.api.auth import current_user, require_role
from services.api.order_views import order_detail, order_json, timed, with_lights
from services.context import context_of
from services.core.errors import json_exception
from services.http.openapi import documented
from services.http.requests import desk_of, paging, read_json, respond, text_field
from services.orders import states
from services.staff.accounts import UNIT_HANDLER
from services.storage import work_orders
from services.storage.work_orders import Actor
from services.unit import actions


@require_role(UNIT_HANDLER)
async def list_orders(request: web.Request) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    limit, offset = paging(request)
    raw = request.query.get("status")
    statuses = [s for s in raw.split(",") if s] if raw else None
    if statuses and any(s not in states.STATUSES for s in statuses):
        raise json_exception(
            400, "bad_status", f"status must be among {', '.join(states.STATUSES)}"
        )
    async with ctx.pool.acquire() as conn:
        rows = await work_orders.of_unit(conn, user.unit, statuses, limit, offset)
        orders = await with_lights(conn, [timed(order_json(r, ctx.units), ctx) for r in rows])
    await record_read(request, "order_list", [o["request_number"] for o in orders])
    return respond({"unit": user.unit, "orders": orders})


@require_role(UNIT_HANDLER)
async def get_order(request: web.Request) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    async with ctx.pool.acquire() as conn:
        order_id, leads = await actions.visible_order(conn, request.match_info["number"], user.unit)
        detail = await order_detail(conn, order_id, ctx.units)
    detail["unit_role"] = "lead" if leads else "assist"
    await record_read(request, "order", [detail["request_number"]])
    return respond(timed(detail, ctx))


async def _act(request: web.Request, kind: str, body_field: str | None) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    body = await read_json(request)
    text = text_field(body, body_field) if body_field else text_field(body, "note", required=False)
    dispute = body.get("dispute", False)
    if not isinstance(dispute, bool):
        raise json_exception(400, "bad_dispute", "dispute must be true or false")
    number = request.match_info["number"]
    actor = Actor(user.username, user.actor_role)
    desk = desk_of(ctx)
    async with ctx.pool.acquire() as conn, conn.transaction():
        status = await actions.act(
            conn,
            desk,
            ctx.settings,
            number,
            user.unit,
            kind,
            text,
            actor,
            ctx.clock.now(),
            dispute=dispute,
        )
    return respond({"request_number": number, "status": status})


class UnitAction(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    dispute: bool = False


class Resolution(BaseModel):
    result: str = Field(min_length=1, max_length=2000)
    dispute: bool = False


class Return(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    dispute: bool = False


class ActionDone(BaseModel):
    request_number: str
    status: str


@documented("The unit signs for the order", UnitAction, {200: ActionDone})
@require_role(UNIT_HANDLER)
async def sign(request: web.Request) -> web.Response:
    return await _act(request, "signed", None)


@documented("The unit has contacted the citizen", UnitAction, {200: ActionDone})
@require_role(UNIT_HANDLER)
async def contact(request: web.Request) -> web.Response:
    return await _act(request, "contacted", "note")


@documented("The unit's result", Resolution, {200: ActionDone})
@require_role(UNIT_HANDLER)
async def resolve(request: web.Request) -> web.Response:
    return await _act(request, "resolved", "result")


@documented("The unit returns the order (not its duty)", Return, {200: ActionDone})
@require_role(UNIT_HANDLER)
async def return_order(request: web.Request) -> web.Response:
    return await _act(request, "returned", "reason")


ROUTES = (
    ("GET", "/api/unit/orders", list_orders),
    ("GET", "/api/unit/orders/{number}", get_order),
    ("POST", "/api/unit/orders/{number}/sign", sign),
    ("POST", "/api/unit/orders/{number}/contact", contact),
    ("POST", "/api/unit/orders/{number}/resolve", resolve),
    ("POST", "/api/unit/orders/{number}/return", return_order),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
