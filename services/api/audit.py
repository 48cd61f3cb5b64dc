"""The audit log of staff reads: every handler that shows a work order or a conversation (or a
list of them) records who read what, and when (`record_read`); supervisors and admins search
it: GET /api/supervisor/audit?user=&kind=order|conversation&object=&from=&to=&limit=&offset=
(`from`/`to`: dates, China time; `to` inclusive)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from aiohttp import web

from services.api.auth import current_user, require_role
from services.context import context_of
from services.core.clock import CHINA_TZ
from services.core.errors import json_exception
from services.http.requests import day_param, paging, respond
from services.staff.accounts import ADMIN, SUPERVISOR, StaffUser
from services.storage import staff_reads

MAX_OBJECT_CHARS = 4000


async def record_read(
    request: web.Request,
    kind: str,
    objects: Iterable[object],
    user: StaffUser | None = None,
    route: str | None = None,
) -> None:
    """Record that the request's user read `objects` (one, or the items of a list)."""
    ctx = context_of(request)
    user = user or current_user(request)
    items = [str(o) for o in objects]
    obj = ",".join(items)[:MAX_OBJECT_CHARS] if kind.endswith("_list") else items[0]
    async with ctx.pool.acquire() as conn:
        await staff_reads.record(
            conn,
            ctx.clock.now(),
            user.id,
            user.username,
            user.role,
            kind,
            obj,
            route or f"{request.method} {request.path_qs}"[:500],
        )


@require_role(SUPERVISOR, ADMIN)
async def get_audit(request: web.Request) -> web.Response:
    ctx = context_of(request)
    q = request.query
    kind = q.get("kind") or None
    if kind is not None and kind not in ("order", "conversation"):
        raise json_exception(400, "bad_kind", "kind is order or conversation")
    first, last = day_param(q.get("from"), "from"), day_param(q.get("to"), "to")
    limit, offset = paging(request, default=100)

    def moment(day):  # noqa: ANN001, ANN202
        return None if day is None else datetime.combine(day, time(), CHINA_TZ)

    until = moment(last + timedelta(days=1)) if last else None
    async with ctx.pool.acquire() as conn:
        rows = await staff_reads.search(
            conn,
            username=q.get("user") or None,
            kind=kind,
            obj=q.get("object") or None,
            since=moment(first),
            until=until,
            limit=limit,
            offset=offset,
        )
    return respond({"reads": [dict(r) for r in rows]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/supervisor/audit", get_audit)
