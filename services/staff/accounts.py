"""Staff accounts: hashed passwords, roles and bearer-token sessions (the HTTP side, login and
the role check of every staff route: services/api/auth.py).

Roles: `agent` (call-centre agent, dispatch desk), `unit_handler` (works the orders of the one
unit the account is bound to), `supervisor` (coordination and supervision desk: lights,
arbitration), `knowledge_editor` (knowledge base), `admin` (accounts, calendar, unit contacts).

Passwords are hashed with scrypt (hashlib; N=2**14, r=8, p=1, 16-byte salt) and compared in
constant time. `POST /api/auth/login` {"username", "password"} answers a bearer token, valid
for HOTLINE_SESSION_HOURS; only its SHA-256 is stored. There is no lock an attacker could hold:
after a few wrong passwords for one user name from one address, that address waits before its
next try (doubling each time, `Backoff`), and an unknown user name gets exactly the answers a
known one gets (docs/security.md).

"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from services.storage import login_failures, users

AGENT = "agent"
UNIT_HANDLER = "unit_handler"
SUPERVISOR = "supervisor"
KNOWLEDGE_EDITOR = "knowledge_editor"
ADMIN = "admin"
ROLES = (AGENT, UNIT_HANDLER, SUPERVISOR, KNOWLEDGE_EDITOR, ADMIN)

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
# a run of wrong passwords is forgotten after this long without another
FORGET_FAILURES_AFTER = timedelta(days=1)
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


def check_password_rules(password: str, *, demo: bool = False) -> None:
    if password == DEMO_PASSWORD and not demo:
        raise AccountError("the demo password is published; choose another")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"the password may have at most {MAX_PASSWORD_CHARS} characters")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- accounts ----------------------------------------------------------------------------


async def create_user(
    conn: asyncpg.Connection,
    username: str,
    password: str,
    role: str,
    unit: str | None = None,
    display_name: str | None = None,
    *,
    _demo: bool = False,
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
    check_password_rules(password, demo=_demo)
    hashed = await asyncio.to_thread(hash_password, password)
    try:
        row = await users.create(conn, username, hashed, role, unit, display_name)
    except asyncpg.UniqueViolationError as exc:
        raise AccountError(f"the user name {username!r} is taken") from exc
    return _user(row)


def _user(row: asyncpg.Record) -> StaffUser:
    return StaffUser(row["id"], row["username"], row["role"], row["unit_code"], row["display_name"])


async def reset_password(
    conn: asyncpg.Connection, user_id: int, password: str, now: datetime
) -> StaffUser:
    """Give an account a new password; its sessions end (whoever held them logs in again)."""
    check_password_rules(password)
    row = await users.by_id(conn, user_id)
    if row is None:
        raise AccountError(f"no account {user_id}")
    hashed = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        await users.set_password(conn, user_id, hashed)
        await users.revoke_all_sessions(conn, user_id, now)
    return _user(row)


async def set_active(
    conn: asyncpg.Connection, user_id: int, active: bool, now: datetime
) -> StaffUser:
    """Disable an account (its sessions end at once) or enable it again."""
    row = await users.by_id(conn, user_id)
    if row is None:
        raise AccountError(f"no account {user_id}")
    async with conn.transaction():
        await users.set_active(conn, user_id, active)
        if not active:
            await users.revoke_all_sessions(conn, user_id, now)
    return _user(row)


@dataclass
class Session:
    token: str
    expires_at: datetime
    user: StaffUser


@dataclass(frozen=True)
class Backoff:
    """How long an address waits after wrong passwords for one user name: nothing for the
    first `free_failures`, then `first_seconds`, doubling up to `max_seconds`."""

    free_failures: int = 3
    first_seconds: float = 1.0
    max_seconds: float = 900.0

    def delay(self, failures: int) -> timedelta:
        if failures < self.free_failures:
            return timedelta(0)
        steps = min(failures - self.free_failures, 40)  # 2**40 s is past any cap
        return timedelta(seconds=min(self.max_seconds, self.first_seconds * 2**steps))


class LoginBackoff(Exception):
    """This address must wait before trying this user name again."""

    def __init__(self, wait: timedelta) -> None:
        super().__init__(f"wait {wait}")
        self.wait = wait


def login_key(username: str) -> str:
    """The user name as the backoff counts it: one count for every spelling of a name."""
    return username.strip().casefold()


async def login(
    pool: asyncpg.Pool,
    username: str,
    password: str,
    now: datetime,
    ttl: timedelta,
    *,
    address: str,
    backoff: Backoff,
) -> Session | None:
    """A new session for the right password; None for a wrong one or an unknown user (the
    same work is done for both, so that neither answer nor time tells them apart). Raises
    LoginBackoff while this address must wait for this user name."""
    key = login_key(username)
    async with pool.acquire() as conn:
        retry_at = await login_failures.retry_at(conn, key, address)
        if retry_at is not None and retry_at > now:
            raise LoginBackoff(retry_at - now)
        row = await users.by_username(conn, username)
        known = row is not None and row["active"]
        stored = row["password_hash"] if known else _dummy_hash()
        ok = await asyncio.to_thread(verify_password, password, stored)
        if not (known and ok):
            failures = await login_failures.failed(
                conn, key, address, now, now - FORGET_FAILURES_AFTER
            )
            wait = backoff.delay(failures)
            await login_failures.set_retry_at(conn, key, address, now + wait if wait else None)
            return None
        token = secrets.token_urlsafe(32)
        expires = now + ttl
        async with conn.transaction():
            await login_failures.clear(conn, key, address)
            await users.create_session(conn, token_hash(token), row["id"], now, expires)
    return Session(token, expires, _user(row))


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> StaffUser:
    """A new password for an account (its sessions end). Raises AccountError."""
    row = await users.by_username(conn, username)
    if row is None:
        raise AccountError(f"no account {username!r}")
    check_password_rules(password)
    await users.set_password(conn, row["id"], await asyncio.to_thread(hash_password, password))
    return _user(row)


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
            await create_user(conn, username, DEMO_PASSWORD, role, unit, name, _demo=True)
    return len(DEMO_USERS)


async def demo_password_holders(conn: asyncpg.Connection) -> list[str]:
    """The active accounts whose password is still the published demo one. Only the demo
    accounts can have it (`check_password_rules` refuses it otherwise), so only they are
    checked: one scrypt each."""
    names = {name for name, *_ in DEMO_USERS}
    rows = [r for r in await users.all_active(conn) if r["username"] in names]
    checks = [asyncio.to_thread(verify_password, DEMO_PASSWORD, r["password_hash"]) for r in rows]
    hits = await asyncio.gather(*checks)
    return [r["username"] for r, hit in zip(rows, hits, strict=True) if hit]


async def rotate_demo_passwords(conn: asyncpg.Connection) -> dict[str, str]:
    """A new random password for every account still on the demo password: {name: password}."""
    fresh = {}
    for name in await demo_password_holders(conn):
        password = secrets.token_urlsafe(12)
        await set_password(conn, name, password)
        fresh[name] = password
    return fresh


async def user_of_token(conn: asyncpg.Connection, token: str, now: datetime) -> StaffUser | None:
    """The user of a live session token, or None."""
    row = await users.by_session(conn, token_hash(token), now)
    return None if row is None else _user(row)


async def logout(conn: asyncpg.Connection, token: str, now: datetime) -> None:
    await users.revoke_session(conn, token_hash(token), now)
