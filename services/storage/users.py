"""users and user_sessions: staff accounts and their bearer-token sessions."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_USER_COLUMNS = """id, username, display_name, password_hash, role, unit_code, active,
    created_at"""


async def create(
    conn: asyncpg.Connection,
    username: str,
    password_hash: str,
    role: str,
    unit_code: str | None,
    display_name: str | None,
) -> asyncpg.Record:
    """Insert a user; raises asyncpg.UniqueViolationError when the name is taken."""
    return await conn.fetchrow(
        f"""INSERT INTO users (username, password_hash, role, unit_code, display_name)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}""",
        username,
        password_hash,
        role,
        unit_code,
        display_name,
    )


async def by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1", username)


async def count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM users")


async def all_active(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users WHERE active ORDER BY id")


async def set_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    """A new password; every session of the account ends with it."""
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
    await conn.execute(
        "UPDATE user_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
    )


async def create_session(
    conn: asyncpg.Connection, token_hash: str, user_id: int, at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO user_sessions (token_hash, user_id, created_at, expires_at)
           VALUES ($1, $2, $3, $4)""",
        token_hash,
        user_id,
        at,
        expires_at,
    )


async def by_session(
    conn: asyncpg.Connection, token_hash: str, now: datetime
) -> asyncpg.Record | None:
    """The active user of a live session."""
    return await conn.fetchrow(
        f"""SELECT {", ".join("u." + c.strip() for c in _USER_COLUMNS.split(","))},
                   s.expires_at AS session_expires_at
            FROM user_sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.active""",
        token_hash,
        now,
    )


async def revoke_session(conn: asyncpg.Connection, token_hash: str, at: datetime) -> bool:
    return (
        await conn.fetchval(
            """UPDATE user_sessions SET revoked_at = $2
               WHERE token_hash = $1 AND revoked_at IS NULL RETURNING true""",
            token_hash,
            at,
        )
        is True
    )


async def all_users(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every account (without the password hash), with when it last logged in."""
    return await conn.fetch(
        """SELECT u.id, u.username, u.display_name, u.role, u.unit_code, u.active,
                  u.created_at,
                  (SELECT max(s.created_at) FROM user_sessions s WHERE s.user_id = u.id)
                      AS last_login_at
           FROM users u ORDER BY u.role, u.username"""
    )


async def by_id(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def set_active(conn: asyncpg.Connection, user_id: int, active: bool) -> None:
    await conn.execute("UPDATE users SET active = $2 WHERE id = $1", user_id, active)


async def revoke_all_sessions(conn: asyncpg.Connection, user_id: int, at: datetime) -> int:
    """End every live session of a user; how many."""
    rows = await conn.fetch(
        """UPDATE user_sessions SET revoked_at = $2
           WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1""",
        user_id,
        at,
    )
    return len(rows)
