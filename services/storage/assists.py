"""work_order_assists: the assisting units (协办) of an order."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def add(
    conn: asyncpg.Connection, order_id: int, unit: str, added_by: str, at: datetime
) -> bool:
    """Add an assisting unit; False when it already assists."""
    return (
        await conn.fetchval(
            """INSERT INTO work_order_assists (work_order_id, unit_code, added_by, added_at)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            order_id,
            unit,
            added_by,
            at,
        )
        is True
    )


async def remove(conn: asyncpg.Connection, order_id: int, unit: str) -> None:
    await conn.execute(
        "DELETE FROM work_order_assists WHERE work_order_id = $1 AND unit_code = $2",
        order_id,
        unit,
    )


async def of_order(conn: asyncpg.Connection, order_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT unit_code FROM work_order_assists WHERE work_order_id = $1 ORDER BY added_at, unit_code",
        order_id,
    )
    return [r["unit_code"] for r in rows]


async def assists(conn: asyncpg.Connection, order_id: int, unit: str) -> bool:
    return (
        await conn.fetchval(
            "SELECT true FROM work_order_assists WHERE work_order_id = $1 AND unit_code = $2",
            order_id,
            unit,
        )
        is True
    )
