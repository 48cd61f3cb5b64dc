"""The unit handlers' API: a unit's own orders, and what the unit does with them.

    GET  /api/unit/orders[?status=dispatched,signed&limit=&offset=]  orders it leads or assists
    GET  /api/unit/orders/{number}                                   one order with its history
    POST /api/unit/orders/{number}/sign                              签收
    POST /api/unit/orders/{number}/contact   {"note": "..."}         contacted the citizen
    POST /api/unit/orders/{number}/resolve   {"result": "..."}       resolved, with the result
    POST /api/unit/orders/{number}/return    {"reason": "...", "dispute": false}

Only `unit_handler` accounts, each bound to one unit. An order the unit neither leads nor
assists answers 404, exactly like one that does not exist, so a handler cannot even learn
which orders other units have. An assisting unit sees the order but only the lead acts (403).
"""

from __future__ import annotations

from aiohttp import web

from services.context import context_of
from services.dispatch.dispatcher import DispatchError
from services.http.requests import desk_of, json_exception, paging, read_json, respond, text_field
from services.orders import states
from services.orders.views import order_detail, order_json
from services.revisits import service as revisits
from services.staff.auth import UNIT_HANDLER, StaffUser, current_user, require_role
from services.storage import assists, work_orders
from services.storage.work_orders import Actor

_NOT_FOUND = ("not_found", "no such work order for your unit")


async def _visible_id(conn, number: str, user: StaffUser) -> tuple[int, bool]:  # noqa: ANN001
    """(order id, leads) for an order the user's unit leads or assists; 404 otherwise."""
    order_id = await work_orders.id_by_number(conn, number)
    if order_id is not None:
        order = await work_orders.by_id(conn, order_id)
        if order["lead_unit"] == user.unit:
            return order_id, True
        if await assists.assists(conn, order_id, user.unit):
            return order_id, False
    raise json_exception(404, *_NOT_FOUND)


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
    return respond({"unit": user.unit, "orders": [order_json(r, ctx.units) for r in rows]})


@require_role(UNIT_HANDLER)
async def get_order(request: web.Request) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    async with ctx.pool.acquire() as conn:
        order_id, _ = await _visible_id(conn, request.match_info["number"], user)
        return respond(await order_detail(conn, order_id, ctx.units))


async def _act(request: web.Request, kind: str, body_field: str | None) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    body = await read_json(request)
    text = text_field(body, body_field) if body_field else text_field(body, "note", required=False)
    dispute = body.get("dispute", False)
    if not isinstance(dispute, bool):
        raise json_exception(400, "bad_dispute", "dispute must be true or false")
    now = ctx.clock.now()
    actor = Actor(user.username, user.actor_role)
    desk = desk_of(ctx)
    async with ctx.pool.acquire() as conn, conn.transaction():
        order_id, leads = await _visible_id(conn, request.match_info["number"], user)
        # lock, then check again: a reassignment may have happened in between
        state = await work_orders.clock_state(conn, order_id)
        if state["lead_unit"] != user.unit:
            if leads:
                raise json_exception(404, *_NOT_FOUND)
            raise json_exception(403, "not_lead", "only the lead unit acts on this order")
        try:
            if kind == "returned":
                status = await desk.dispatcher.unit_return(
                    conn, order_id, user.unit, text, actor, now, dispute=dispute
                )
            else:
                status = await desk.clocks.record(
                    conn,
                    order_id,
                    kind,
                    actor,
                    now,
                    unit=user.unit,
                    note=text,
                    data={"result": text} if kind == "resolved" else None,
                )
                if kind == "resolved":
                    await revisits.schedule(conn, order_id, now, ctx.settings)
        except states.TransitionError as exc:
            raise json_exception(409, "bad_state", str(exc)) from exc
        except DispatchError as exc:
            raise json_exception(exc.status, exc.code, exc.reason) from exc
        number = request.match_info["number"]
    return respond({"request_number": number, "status": status})


@require_role(UNIT_HANDLER)
async def sign(request: web.Request) -> web.Response:
    return await _act(request, "signed", None)


@require_role(UNIT_HANDLER)
async def contact(request: web.Request) -> web.Response:
    return await _act(request, "contacted", "note")


@require_role(UNIT_HANDLER)
async def resolve(request: web.Request) -> web.Response:
    return await _act(request, "resolved", "result")


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
