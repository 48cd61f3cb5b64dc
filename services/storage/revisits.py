"""revisits and revisit_attempts: one revisit per resolution of an order, and its calls/texts."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """id, work_order_id, round, channel, phone, openid, status, call_attempts, max_call_attempts,
    call_sid, sms_sent, rating, outcome, comment, created_at, updated_at, finished_at"""


async def create(
    conn: asyncpg.Connection,
    order_id: int,
    channel: str,
    phone: str | None,
    max_call_attempts: int,
    at: datetime,
    openid: str | None = None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO revisits (work_order_id, round, channel, phone, max_call_attempts,
               created_at, updated_at, openid)
            VALUES ($1, (SELECT count(*) + 1 FROM revisits WHERE work_order_id = $1), $2, $3, $4,
                    $5, $5, $6)
            RETURNING {_COLUMNS}""",
        order_id,
        channel,
        phone,
        max_call_attempts,
        at,
        openid,
    )


async def lock(conn: asyncpg.Connection, revisit_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM revisits WHERE id = $1 FOR UPDATE", revisit_id
    )


async def get(conn: asyncpg.Connection, revisit_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM revisits WHERE id = $1", revisit_id)


async def of_order(conn: asyncpg.Connection, order_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM revisits WHERE work_order_id = $1 ORDER BY round", order_id
    )


async def awaiting_reply(
    conn: asyncpg.Connection, *, phone: str | None = None, openid: str | None = None
) -> asyncpg.Record | None:
    """The newest revisit waiting for this number's (or WeChat follower's) answer, locked."""
    column, value = ("openid", openid) if openid is not None else ("phone", phone)
    return await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM revisits WHERE {column} = $1 AND status = 'awaiting_reply'
            ORDER BY updated_at DESC, id DESC LIMIT 1 FOR UPDATE""",
        value,
    )


async def update(conn: asyncpg.Connection, revisit_id: int, at: datetime, **values: object) -> None:
    allowed = {
        "status",
        "call_attempts",
        "call_sid",
        "sms_sent",
        "rating",
        "outcome",
        "comment",
        "finished_at",
    }
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not revisit columns: {sorted(unknown)}")
    names = list(values)
    assignments = "".join(f", {name} = ${i}" for i, name in enumerate(names, start=3))
    await conn.execute(
        f"UPDATE revisits SET updated_at = $2{assignments} WHERE id = $1",
        revisit_id,
        at,
        *values.values(),
    )


async def add_attempt(
    conn: asyncpg.Connection, revisit_id: int, attempt: int, channel: str, at: datetime
) -> int:
    return await conn.fetchval(
        """INSERT INTO revisit_attempts (revisit_id, attempt, channel, created_at)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        revisit_id,
        attempt,
        channel,
        at,
    )


async def end_attempt(
    conn: asyncpg.Connection,
    revisit_id: int,
    attempt: int,
    at: datetime,
    *,
    result: str,
    call_sid: str | None = None,
    answered_by: str | None = None,
) -> None:
    await conn.execute(
        """UPDATE revisit_attempts
           SET result = $3, call_sid = COALESCE($4, call_sid),
               answered_by = COALESCE($5, answered_by), ended_at = $6
           WHERE revisit_id = $1 AND attempt = $2""",
        revisit_id,
        attempt,
        result,
        call_sid,
        answered_by,
        at,
    )


async def attempts(conn: asyncpg.Connection, revisit_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT attempt, channel, call_sid, result, answered_by, created_at, ended_at
           FROM revisit_attempts WHERE revisit_id = $1 ORDER BY id""",
        revisit_id,
    )


async def forget(conn: asyncpg.Connection, before: datetime) -> int:
    """Phones, openids and comments of revisits finished before `before`."""
    done = await conn.execute(
        """UPDATE revisits SET phone = NULL, openid = NULL, comment = NULL
           WHERE status = 'done' AND updated_at < $1
             AND (phone IS NOT NULL OR openid IS NOT NULL OR comment IS NOT NULL)""",
        before,
    )
    return int(done.split()[-1])
