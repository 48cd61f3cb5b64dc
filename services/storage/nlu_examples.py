"""nlu_examples: labelled messages for retraining the NLU (imported work orders and the
dispatch desk's decisions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg


async def insert_many(
    conn: asyncpg.Connection,
    rows: Iterable[tuple[str, str | None, str | None]],
    source: str,
    created_by: str,
    at: datetime,
) -> int:
    """Store (text, unit, request type) rows; returns how many."""
    records = [(text, unit, rtype, source, created_by, at) for text, unit, rtype in rows]
    await conn.executemany(
        """INSERT INTO nlu_examples (text, unit_code, request_type, source, created_by,
               created_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        records,
    )
    return len(records)


async def insert_from_order(
    conn: asyncpg.Connection, order_id: int, unit: str, source: str, created_by: str, at: datetime
) -> None:
    """A desk decision: the order's text and request type, labelled with the unit chosen."""
    await conn.execute(
        """INSERT INTO nlu_examples (text, unit_code, request_type, source, work_order_id,
               created_by, created_at)
           SELECT content, $2, request_type, $3, id, $4, $5 FROM work_orders WHERE id = $1""",
        order_id,
        unit,
        source,
        created_by,
        at,
    )


async def all_examples(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every stored example, oldest first (a later decision on the same text wins)."""
    return await conn.fetch(
        "SELECT text, unit_code, request_type, source FROM nlu_examples ORDER BY id"
    )


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT source, count(*) AS n FROM nlu_examples GROUP BY source")
    return {r["source"]: r["n"] for r in rows}
