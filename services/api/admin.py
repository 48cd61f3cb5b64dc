"""Staff accounts for administrators (the calendar and unit phones: services/api/dispatch.py).

GET  /api/admin/users                                   every account, without password hashes
POST /api/admin/users       {"username","password","role","unit","display_name"}   create
POST /api/admin/users/{id}/password   {"password"}     a new password; its sessions end
POST /api/admin/users/{id}/active     {"active": false} disable (sessions end) or enable

Only `admin`. An admin cannot disable their own account (nobody would be left to undo it).
"""

from __future__ import annotations

from aiohttp import web

from services.api.auth import current_user, require_role
from services.context import context_of
from services.core.errors import json_exception
from services.http.requests import read_json, respond, text_field
from services.staff import accounts
from services.staff.accounts import ADMIN, AccountError
from services.storage import users

admin_only = require_role(ADMIN)


def _user_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise json_exception(404, "not_found", "no such account")
    return int(raw)


def _password(body: dict) -> str:
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise json_exception(400, "missing_password", "password is required")
    return password


def _refused(exc: AccountError) -> Exception:
    status = 404 if str(exc).startswith("no account") else 400
    return json_exception(status, "not_found" if status == 404 else "bad_account", str(exc))


@admin_only
async def list_users(request: web.Request) -> web.Response:
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        rows = await users.all_users(conn)
    return respond({"users": [dict(r) for r in rows]})


@admin_only
async def create_user(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    username = text_field(body, "username", max_chars=64)
    role = text_field(body, "role", max_chars=32)
    unit = text_field(body, "unit", required=False, max_chars=64)
    name = text_field(body, "display_name", required=False, max_chars=100)
    try:
        async with ctx.pool.acquire() as conn:
            user = await accounts.create_user(conn, username, _password(body), role, unit, name)
    except AccountError as exc:
        raise _refused(exc) from exc
    return respond(user.to_dict(), status=201)


@admin_only
async def reset_password(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    try:
        async with ctx.pool.acquire() as conn:
            user = await accounts.reset_password(
                conn, _user_id(request), _password(body), ctx.clock.now()
            )
    except AccountError as exc:
        raise _refused(exc) from exc
    return respond({"id": user.id, "username": user.username, "password_reset": True})


@admin_only
async def set_active(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    active = body.get("active")
    if not isinstance(active, bool):
        raise json_exception(400, "bad_active", "active must be true or false")
    user_id = _user_id(request)
    if not active and user_id == current_user(request).id:
        raise json_exception(409, "own_account", "an admin cannot disable their own account")
    try:
        async with ctx.pool.acquire() as conn:
            user = await accounts.set_active(conn, user_id, active, ctx.clock.now())
    except AccountError as exc:
        raise _refused(exc) from exc
    return respond({"id": user.id, "username": user.username, "active": active})


ROUTES = (
    ("GET", "/api/admin/users", list_users),
    ("POST", "/api/admin/users", create_user),
    ("POST", "/api/admin/users/{id}/password", reset_password),
    ("POST", "/api/admin/users/{id}/active", set_active),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
