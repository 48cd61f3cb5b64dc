"""dispatch_precedents: who owns what, as decided at arbitration."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert(
    conn: asyncpg.Connection,
    order_id: int,
    text: str,
    unit: str,
    rejected_units: list[str],
    reason: str,
    decided_by: str,
    at: datetime,
) -> int:
    return await conn.fetchval(
        """INSERT INTO dispatch_precedents (work_order_id, text, unit_code, rejected_units, reason,
               decided_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        order_id,
        text,
        unit,
        rejected_units,
        reason,
        decided_by,
        at,
    )


async def version(conn: asyncpg.Connection) -> tuple[int, int]:
    """Changes whenever a precedent is added or withdrawn (cheap cache check)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(max(id), 0) AS last FROM dispatch_precedents WHERE active"
    )
    return row["n"], row["last"]


async def active(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.id, p.text, p.unit_code, p.rejected_units, p.reason, p.decided_by,
                  p.created_at, o.request_number
           FROM dispatch_precedents p JOIN work_orders o ON o.id = p.work_order_id
           WHERE p.active ORDER BY p.id"""
    )


async def withdraw(conn: asyncpg.Connection, precedent_id: int) -> bool:
    return (
        await conn.fetchval(
            "UPDATE dispatch_precedents SET active = false WHERE id = $1 AND active RETURNING true",
            precedent_id,
        )
        is True
    )
