"""calendar_days: holidays and adjusted working days an admin has entered."""

from __future__ import annotations

from datetime import date

import asyncpg


async def all_days(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT day, workday, name, created_by, created_at FROM calendar_days ORDER BY day"
    )


async def put(
    conn: asyncpg.Connection, day: date, workday: bool, name: str, created_by: str
) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO calendar_days (day, workday, name, created_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (day) DO UPDATE SET workday = EXCLUDED.workday, name = EXCLUDED.name,
               created_by = EXCLUDED.created_by, created_at = now()
           RETURNING day, workday, name, created_by, created_at""",
        day,
        workday,
        name,
        created_by,
    )


async def remove(conn: asyncpg.Connection, day: date) -> bool:
    return (
        await conn.fetchval("DELETE FROM calendar_days WHERE day = $1 RETURNING true", day) is True
    )
