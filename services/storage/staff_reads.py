"""staff_reads: the audit log of staff reads of work orders and conversations (append-only)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

KINDS = ("order", "conversation", "order_list", "conversation_list")


async def record(
    conn: asyncpg.Connection,
    at: datetime,
    user_id: int,
    username: str,
    role: str,
    kind: str,
    obj: str,
    route: str,
) -> None:
    await conn.execute(
        """INSERT INTO staff_reads (at, user_id, username, role, kind, object, route)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        at,
        user_id,
        username,
        role,
        kind,
        obj,
        route,
    )


async def search(
    conn: asyncpg.Connection,
    *,
    username: str | None,
    kind: str | None,
    obj: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    """Reads, newest first. `kind` "order" also finds the order lists, and `obj` a list
    that showed that object (a list's object is its items, comma-separated)."""
    return await conn.fetch(
        """SELECT id, at, user_id, username, role, kind, object, route FROM staff_reads
           WHERE ($1::text IS NULL OR username = $1)
             AND ($2::text IS NULL OR kind = $2 OR kind = $2 || '_list')
             AND ($3::text IS NULL OR object = $3
                  OR (kind LIKE '%\\_list' AND $3 = ANY (string_to_array(object, ','))))
             AND ($4::timestamptz IS NULL OR at >= $4)
             AND ($5::timestamptz IS NULL OR at < $5)
           ORDER BY at DESC, id DESC LIMIT $6 OFFSET $7""",
        username,
        kind,
        obj,
        since,
        until,
        limit,
        offset,
    )
