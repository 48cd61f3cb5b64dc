"""The staff pages and what they share: one login, one header, one stylesheet, one live socket.

GET /desk /unit /supervisor /kb /admin      the pages (static/<page>.html + <page>.js)
GET /staff.css, /staff.js                   the shared look and the shared module (login,
                                            header and navigation, API calls, errors, live)
GET /api/staff/units                        the linked units (code, name, kind, contact phone)
GET /api/staff/ws                           live order changes; first frame {"token": ...}

Each page asks /api/auth/me who is logged in and shows a refusal (with links to the pages the
role may use) instead of calling APIs it may not; the APIs themselves answer 401/403 on their
own (services/api/auth.require_role). The socket is fed by the hub's LISTEN on order_events
(services/agents/hub.py, migration 012_staff_pages): dispatch desk and supervision
board get every change, a unit handler only its own unit's orders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from services.api.auth import require_role, socket_user
from services.context import context_of
from services.core.errors import Unavailable
from services.core.unit_directory import contact_phones
from services.http.pages import HTML, JAVASCRIPT, static_file
from services.http.requests import respond
from services.http.ws_frames import serve_json_frames
from services.staff.accounts import ROLES, SUPERVISOR, UNIT_HANDLER

STATIC = Path(__file__).resolve().parent / "static"
CSS = "text/css; charset=utf-8"
PAGES = ("desk", "unit", "supervisor", "kb", "admin")
# who hears about order changes (editors and admins have nothing waiting on them)
LIVE_ROLES = ("agent", SUPERVISOR, UNIT_HANDLER)


@require_role(*ROLES)
async def get_units(request: web.Request) -> web.Response:
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        phones = await contact_phones(conn)
    return respond(
        {
            "units": [
                {
                    "code": u.code,
                    "name": u.name,
                    "kind": u.kind,
                    "contact_phone": phones.get(u.code, u.contact_phone),
                }
                for u in ctx.units.units
            ]
        }
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ctx = context_of(request)
    if ctx.hub is None:
        raise Unavailable("live updates are not set up in this process")
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=16 * 1024)
    await ws.prepare(request)
    user = await socket_user(request, ws, LIVE_ROLES)
    if user is None:
        return ws

    async def on_frame(body: dict[str, Any]) -> dict[str, Any]:
        return {"error": "bad_type", "reason": "this socket only sends"}

    await ctx.hub.add_staff(ws, user.unit if user.role == UNIT_HANDLER else None)
    try:
        await ws.send_json({"type": "ready", "user": user.to_dict()})
        await serve_json_frames(ws, on_frame)
    finally:
        ctx.hub.remove_staff(ws)
    return ws


def add_routes(app: web.Application) -> None:
    for page in PAGES:
        app.router.add_get(f"/{page}", static_file(STATIC / f"{page}.html", HTML))
        app.router.add_get(f"/{page}.js", static_file(STATIC / f"{page}.js", JAVASCRIPT))
    app.router.add_get("/staff.css", static_file(STATIC / "staff.css", CSS))
    app.router.add_get("/staff.js", static_file(STATIC / "staff.js", JAVASCRIPT))
    app.router.add_get("/api/staff/units", get_units)
    app.router.add_get("/api/staff/ws", websocket)
