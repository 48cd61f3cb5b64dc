"""Staff login over HTTP and the role check of every staff route.

`POST /api/auth/login` {"username", "password"} answers a bearer token (services/staff/
accounts.py keeps accounts and sessions). For other APIs:

    from services.api.auth import require_role, current_user

    @require_role("agent", "supervisor")
    async def handler(request):
        user = current_user(request)   # a StaffUser; user.unit for unit handlers

No token or a dead one: 401 {"error": "unauthorized"}; a role not in the list: 403
{"error": "forbidden"}.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from services.context import context_of
from services.core.errors import ServiceError, json_exception
from services.http.openapi import documented
from services.http.ratelimit import RATE_LIMITS, RateLimited, client_address
from services.http.requests import read_json, respond, text_field
from services.http.ws_frames import parse_frame
from services.staff.accounts import (
    MAX_PASSWORD_CHARS,
    ROLES,
    Backoff,
    LoginBackoff,
    StaffUser,
    login,
    login_key,
    logout,
    user_of_token,
)

USER = web.RequestKey("staff_user", StaffUser) if hasattr(web, "RequestKey") else "staff_user"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="12345"'}


async def authenticate(request: web.Request) -> StaffUser:
    """The user of the request's bearer token; raises 401 JSON when there is none."""
    cached = request.get(USER)
    if cached is not None:
        return cached
    token = _bearer(request)
    if token is None:
        raise json_exception(
            401, "unauthorized", "log in and send Authorization: Bearer <token>", _CHALLENGE
        )
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        user = await user_of_token(conn, token, ctx.clock.now())
    if user is None:
        raise json_exception(
            401, "unauthorized", "the session has expired or was ended; log in again", _CHALLENGE
        )
    request[USER] = user
    return user


def current_user(request: web.Request) -> StaffUser:
    """The user `require_role` let through."""
    user = request.get(USER)
    if user is None:
        raise RuntimeError("current_user() outside a handler wrapped by require_role")
    return user


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Wrap a handler so that only a logged-in user with one of `roles` reaches it."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"require_role needs roles from {ROLES}, got {roles}")

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = await authenticate(request)
            if user.role not in roles:
                raise json_exception(403, "forbidden", f"this needs the role {' or '.join(roles)}")
            return await handler(request)

        guarded.__roles__ = roles  # for the OpenAPI document (services/http/openapi.py)
        return guarded

    return wrap


async def socket_user(
    request: web.Request, ws: web.WebSocketResponse, roles: tuple[str, ...]
) -> StaffUser | None:
    """Browsers cannot set headers on a WebSocket: the bearer token is the first frame. The
    socket is closed (4401 no or dead token, 4403 a role not in `roles`) and None comes back
    when the user may not have it."""
    try:
        msg = await ws.receive(timeout=10)
    except TimeoutError:
        await ws.close(code=4401, message=b"no token")
        return None
    body = parse_frame(msg.data) if msg.type == WSMsgType.TEXT else None
    token = body.get("token") if body else None
    if not isinstance(token, str) or not token:
        await ws.send_json({"error": "unauthorized", "reason": 'send {"token": ...} first'})
        await ws.close(code=4401)
        return None
    try:
        user = await authenticate(request.clone(headers={"Authorization": f"Bearer {token}"}))
    except ServiceError as exc:
        await ws.send_json(exc.body())
        await ws.close(code=4401)
        return None
    if user.role not in roles:
        reason = f"this needs the role {' or '.join(roles)}"
        await ws.send_json({"error": "forbidden", "reason": reason})
        await ws.close(code=4403)
        return None
    return user


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class LoginAnswer(BaseModel):
    token: str
    expires_at: str
    user: dict[str, object]


@documented("A bearer token for a staff member's password", LoginRequest, {200: LoginAnswer})
async def post_login(request: web.Request) -> web.Response:
    """A bearer token for the right password. Per address (the middleware: every attempt) and
    per user name (here: wrong passwords) a rate limit; per (user name, address) the backoff after wrong passwords. An
    unknown user name and a wrong password get the same answers (docs/security.md)."""
    ctx = context_of(request)
    body = await read_json(request)
    username = text_field(body, "username", max_chars=64)
    password = body.get("password")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
        raise json_exception(400, "missing_password", "password is required")
    # per user name only wrong passwords count: staff sharing a name at a shift's start are
    # not held back, and guesses spread over many addresses are
    limits = request.app[RATE_LIMITS]
    await limits.check("login_account", login_key(username))
    settings = ctx.settings
    try:
        session = await login(
            ctx.pool,
            username,
            password,
            ctx.clock.now(),
            timedelta(hours=settings.session_hours),
            address=client_address(request),
            backoff=Backoff(
                settings.login_free_failures,
                settings.login_backoff_seconds,
                settings.login_backoff_max_seconds,
            ),
        )
    except LoginBackoff as exc:
        wait = max(1, math.ceil(exc.wait.total_seconds()))
        raise RateLimited(
            f"too many wrong passwords from your address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            limit="login_backoff",
            retry_after=wait,
        ) from exc
    if session is None:
        await limits.count("login_account", login_key(username))
        raise json_exception(401, "bad_credentials", "wrong user name or password")
    return respond(
        {"token": session.token, "expires_at": session.expires_at, "user": session.user.to_dict()}
    )


async def post_logout(request: web.Request) -> web.Response:
    ctx = context_of(request)
    await authenticate(request)
    async with ctx.pool.acquire() as conn:
        await logout(conn, _bearer(request) or "", ctx.clock.now())
    return respond({"ok": True})


async def get_me(request: web.Request) -> web.Response:
    return respond((await authenticate(request)).to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", post_login)
    app.router.add_post("/api/auth/logout", post_logout)
    app.router.add_get("/api/auth/me", get_me)
