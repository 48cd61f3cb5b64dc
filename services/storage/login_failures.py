"""login_failures: wrong passwords per (user name, client address), for the login backoff."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def retry_at(conn: asyncpg.Connection, username: str, address: str) -> datetime | None:
    """When this address may try this user name again (None: at once)."""
    return await conn.fetchval(
        "SELECT retry_at FROM login_failures WHERE username = $1 AND address = $2",
        username,
        address,
    )


async def failed(
    conn: asyncpg.Connection, username: str, address: str, at: datetime, forget_before: datetime
) -> int:
    """Count a wrong password; failures older than `forget_before` start the count afresh.
    Returns the failures in a row."""
    return await conn.fetchval(
        """INSERT INTO login_failures (username, address, failures, last_failed_at)
           VALUES ($1, $2, 1, $3)
           ON CONFLICT (username, address) DO UPDATE SET
               failures = CASE WHEN login_failures.last_failed_at < $4 THEN 1
                               ELSE login_failures.failures + 1 END,
               last_failed_at = $3
           RETURNING failures""",
        username,
        address,
        at,
        forget_before,
    )


async def set_retry_at(
    conn: asyncpg.Connection, username: str, address: str, when: datetime | None
) -> None:
    await conn.execute(
        "UPDATE login_failures SET retry_at = $3 WHERE username = $1 AND address = $2",
        username,
        address,
        when,
    )


async def clear(conn: asyncpg.Connection, username: str, address: str) -> None:
    await conn.execute(
        "DELETE FROM login_failures WHERE username = $1 AND address = $2", username, address
    )


async def forget(conn: asyncpg.Connection, before: datetime) -> int:
    """Drop rows of failures older than `before` (`hotline purge`)."""
    done = await conn.execute("DELETE FROM login_failures WHERE last_failed_at < $1", before)
    return int(done.split()[-1])
