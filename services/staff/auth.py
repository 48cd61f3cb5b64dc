"""Staff accounts: hashed passwords, roles, bearer-token sessions and the role check.

Roles: `agent` (call-centre agent, dispatch desk), `unit_handler` (works the orders of the one
unit the account is bound to), `supervisor` (coordination and supervision desk: lights,
arbitration), `knowledge_editor` (knowledge base), `admin` (accounts, calendar, unit contacts).

Passwords are hashed with scrypt (hashlib; N=2**14, r=8, p=1, 16-byte salt) and compared in
constant time. `POST /api/auth/login` {"username", "password"} answers a bearer token, valid
for HOTLINE_SESSION_HOURS; only its SHA-256 is stored. Five wrong passwords in a row lock the
account for 15 minutes.

For other APIs:

    from services.staff.auth import require_role, current_user

    @require_role("agent", "supervisor")
    async def handler(request):
        user = current_user(request)   # a StaffUser; user.unit for unit handlers

No token or a dead one: 401 {"error": "unauthorized"}; a role not in the list: 403
{"error": "forbidden"}.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from services.http.requests import json_exception, read_json, respond, text_field
from services.storage import users

AGENT = "agent"
UNIT_HANDLER = "unit_handler"
SUPERVISOR = "supervisor"
KNOWLEDGE_EDITOR = "knowledge_editor"
ADMIN = "admin"
ROLES = (AGENT, UNIT_HANDLER, SUPERVISOR, KNOWLEDGE_EDITOR, ADMIN)

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(ValueError):
    """A user that cannot be created as asked (bad role, unknown unit, name taken...)."""


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str
    unit: str | None
    display_name: str | None

    @property
    def actor_role(self) -> str:
        """The role recorded with work-order events."""
        return "unit" if self.role == UNIT_HANDLER else self.role

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "unit": self.unit,
            "display_name": self.display_name,
        }


USER = web.RequestKey("staff_user", StaffUser) if hasattr(web, "RequestKey") else "staff_user"


# -- passwords ---------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            dklen=len(expected),
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so both cases take as long."""
    return hash_password(secrets.token_hex(8))


def context_of(request: web.Request):  # noqa: ANN201 - services.context.Context
    # imported here so that the command line (users add) does not load the whole service
    from services.context import context_of as of

    return of(request)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"the password may have at most {MAX_PASSWORD_CHARS} characters")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- accounts ----------------------------------------------------------------------------


async def create_user(
    conn: asyncpg.Connection,
    username: str,
    password: str,
    role: str,
    unit: str | None = None,
    display_name: str | None = None,
) -> StaffUser:
    """Create an account. Raises AccountError with a plain reason when it cannot."""
    username = username.strip()
    if not 2 <= len(username) <= 64 or any(ch.isspace() for ch in username):
        raise AccountError("a user name has 2-64 characters and no spaces")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == UNIT_HANDLER and not unit:
        raise AccountError("a unit handler needs --unit, the code of their unit")
    if role != UNIT_HANDLER and unit:
        raise AccountError("only unit handlers belong to a unit")
    if unit and not await conn.fetchval("SELECT true FROM units WHERE code = $1", unit):
        raise AccountError(f"unknown unit {unit!r}")
    check_password_rules(password)
    hashed = await asyncio.to_thread(hash_password, password)
    try:
        row = await users.create(conn, username, hashed, role, unit, display_name)
    except asyncpg.UniqueViolationError as exc:
        raise AccountError(f"the user name {username!r} is taken") from exc
    return _user(row)


def _user(row: asyncpg.Record) -> StaffUser:
    return StaffUser(row["id"], row["username"], row["role"], row["unit_code"], row["display_name"])


@dataclass
class Session:
    token: str
    expires_at: datetime
    user: StaffUser


class LoginLocked(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until


async def login(
    pool: asyncpg.Pool, username: str, password: str, now: datetime, ttl: timedelta
) -> Session | None:
    """A new session for the right password; None for a wrong one. Raises LoginLocked."""
    async with pool.acquire() as conn:
        row = await users.by_username(conn, username)
        if row is None or not row["active"]:
            await asyncio.to_thread(verify_password, password, _dummy_hash())
            return None
        if row["locked_until"] is not None and row["locked_until"] > now:
            raise LoginLocked(row["locked_until"])
        ok = await asyncio.to_thread(verify_password, password, row["password_hash"])
        if not ok:
            await users.login_failed(conn, row["id"], MAX_FAILURES, now + LOCK_FOR)
            return None
        token = secrets.token_urlsafe(32)
        expires = now + ttl
        async with conn.transaction():
            await users.login_succeeded(conn, row["id"])
            await users.create_session(conn, _token_hash(token), row["id"], now, expires)
    return Session(token, expires, _user(row))


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
        row = await users.by_session(conn, _token_hash(token), ctx.clock.now())
    if row is None:
        raise json_exception(
            401, "unauthorized", "the session has expired or was ended; log in again", _CHALLENGE
        )
    user = _user(row)
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

        return guarded

    return wrap


# -- HTTP --------------------------------------------------------------------------------


async def post_login(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    username = text_field(body, "username", max_chars=64)
    password = body.get("password")
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
        raise json_exception(400, "missing_password", "password is required")
    try:
        session = await login(
            ctx.pool,
            username,
            password,
            ctx.clock.now(),
            timedelta(hours=ctx.settings.session_hours),
        )
    except LoginLocked as exc:
        raise json_exception(
            429, "locked", f"too many wrong passwords; try again after {exc.until.isoformat()}"
        ) from exc
    if session is None:
        raise json_exception(401, "bad_credentials", "wrong user name or password")
    return respond(
        {"token": session.token, "expires_at": session.expires_at, "user": session.user.to_dict()}
    )


async def post_logout(request: web.Request) -> web.Response:
    ctx = context_of(request)
    await authenticate(request)
    async with ctx.pool.acquire() as conn:
        await users.revoke_session(conn, _token_hash(_bearer(request) or ""), ctx.clock.now())
    return respond({"ok": True})


async def get_me(request: web.Request) -> web.Response:
    return respond((await authenticate(request)).to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", post_login)
    app.router.add_post("/api/auth/logout", post_logout)
    app.router.add_get("/api/auth/me", get_me)


# -- demo accounts -----------------------------------------------------------------------

DEMO_PASSWORD = "demo12345"
DEMO_USERS = (
    ("agent", AGENT, None, "坐席演示账号"),
    ("supervisor", SUPERVISOR, None, "督查股演示账号"),
    ("editor", KNOWLEDGE_EDITOR, None, "知识库编辑演示账号"),
    ("admin", ADMIN, None, "管理员演示账号"),
    ("handler-ecology", UNIT_HANDLER, "ecology", "市生态环境局承办人"),
    ("handler-housing", UNIT_HANDLER, "housing", "市住建局承办人"),
    ("handler-municipal-works", UNIT_HANDLER, "municipal-works", "市政中心承办人"),
    ("handler-hubin", UNIT_HANDLER, "hubin", "湖滨街道承办人"),
)


async def ensure_demo_users(pool: asyncpg.Pool) -> int:
    """Create the demo accounts (README) when there is no account at all; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        # one process creates them even when several start together
        await conn.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        if await users.count(conn):
            return 0
        for username, role, unit, name in DEMO_USERS:
            await create_user(conn, username, DEMO_PASSWORD, role, unit, name)
    return len(DEMO_USERS)
