"""Suggestions (建言): the lead unit says whether it adopts a citizen's suggestion, and why.

POST /api/unit/orders/{number}/suggestion   {"adopted": true|false, "reason": "..."}

The decision is an event of the order (`suggestion_adopted` / `suggestion_not_adopted`, the
reason as its note), so the figures count it from the history like everything else. A
suggestion is decided once; the order must be a suggestion the unit has signed for.
"""

from __future__ import annotations

from aiohttp import web

from services.api.auth import current_user, require_role
from services.context import context_of
from services.core.errors import json_exception
from services.http.requests import read_json, respond, text_field
from services.staff.accounts import UNIT_HANDLER
from services.storage.work_orders import Actor
from services.unit import actions


@require_role(UNIT_HANDLER)
async def decide(request: web.Request) -> web.Response:
    ctx = context_of(request)
    user = current_user(request)
    body = await read_json(request)
    adopted = body.get("adopted")
    if not isinstance(adopted, bool):
        raise json_exception(400, "bad_adopted", "adopted must be true or false")
    reason = text_field(body, "reason")
    number = request.match_info["number"]
    actor = Actor(user.username, user.actor_role)
    async with ctx.pool.acquire() as conn, conn.transaction():
        status = await actions.decide_suggestion(
            conn, number, user.unit, adopted, reason, actor, ctx.clock.now()
        )
    return respond({"request_number": number, "status": status, "adopted": adopted})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/unit/orders/{number}/suggestion", decide)
