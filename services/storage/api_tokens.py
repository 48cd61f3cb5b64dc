"""api_tokens: provider access tokens shared by every process of the service."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def valid(conn: asyncpg.Connection, name: str, after: datetime) -> str | None:
    """The stored token when it is still valid at `after`."""
    return await conn.fetchval(
        "SELECT token FROM api_tokens WHERE name = $1 AND expires_at > $2", name, after
    )


async def lock(conn: asyncpg.Connection, name: str) -> None:
    """Serialise fetching one token across processes, until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('api_token:' || $1))", name)


async def save(
    conn: asyncpg.Connection, name: str, token: str, expires_at: datetime, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO api_tokens (name, token, expires_at, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO UPDATE SET token = $2, expires_at = $3, updated_at = $4""",
        name,
        token,
        expires_at,
        at,
    )


async def forget(conn: asyncpg.Connection, name: str, token: str) -> None:
    """Drop a token the provider refused, unless another process has replaced it already."""
    await conn.execute("DELETE FROM api_tokens WHERE name = $1 AND token = $2", name, token)
