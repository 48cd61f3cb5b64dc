"""Suggestions (建言): the lead unit says whether it adopts a citizen's suggestion, and why.

POST /api/unit/orders/{number}/suggestion   {"adopted": true|false, "reason": "..."}

The decision is an event of the order (`suggestion_adopted` / `suggestion_not_adopted`, the
reason as its note), so the figures count it from the history like everything else. A
suggestion is decided once; the order must be a suggestion the unit has signed for.
"""

from __future__ import annotations

from aiohttp import web

from services.context import context_of
from services.http.requests import json_exception, read_json, respond, text_field
from services.orders import states
from services.staff.auth import UNIT_HANDLER, current_user, require_role
from services.storage import work_orders
from services.storage.work_orders import Actor

DECISIONS = ("suggestion_adopted", "suggestion_not_adopted")


@require_role(UNIT_HANDLER)
async def decide(request: web.Request) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    body = await read_json(request)
    adopted = body.get("adopted")
    if not isinstance(adopted, bool):
        raise json_exception(400, "bad_adopted", "adopted must be true or false")
    reason = text_field(body, "reason")
    kind = DECISIONS[0] if adopted else DECISIONS[1]
    number = request.match_info["number"]
    async with ctx.pool.acquire() as conn, conn.transaction():
        order_id = await work_orders.id_by_number(conn, number)
        state = await work_orders.clock_state(conn, order_id) if order_id else None
        if state is None or state["lead_unit"] != user.unit:
            raise json_exception(404, "not_found", "no such work order for your unit")
        order = await work_orders.by_id(conn, order_id)
        if order["request_type"] != "suggest":
            raise json_exception(409, "not_a_suggestion", "only a suggestion is adopted or not")
        decided = await work_orders.first_event_kind(conn, order_id, DECISIONS)
        if decided is not None:
            raise json_exception(409, "already_decided", f"the suggestion is already {decided}")
        try:
            status = await work_orders.record_event(
                conn,
                order_id,
                kind,
                Actor(user.username, user.actor_role),
                ctx.clock.now(),
                unit=user.unit,
                note=reason,
                data={"adopted": adopted},
            )
        except states.TransitionError as exc:
            raise json_exception(409, "bad_state", str(exc)) from exc
    return respond({"request_number": number, "status": status, "adopted": adopted})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/unit/orders/{number}/suggestion", decide)
