"""citizens and citizen_identities: one person across channels, linked by phone number."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def for_identity(conn: asyncpg.Connection, channel: str, external_id: str) -> int:
    """The citizen a channel identity belongs to, created on first contact."""
    row = await conn.fetchrow(
        "SELECT citizen_id FROM citizen_identities WHERE channel = $1 AND external_id = $2",
        channel,
        external_id,
    )
    if row:
        return row["citizen_id"]
    citizen_id = await conn.fetchval("INSERT INTO citizens DEFAULT VALUES RETURNING id")
    inserted = await conn.fetchval(
        """INSERT INTO citizen_identities (channel, external_id, citizen_id) VALUES ($1, $2, $3)
           ON CONFLICT (channel, external_id) DO NOTHING RETURNING citizen_id""",
        channel,
        external_id,
        citizen_id,
    )
    if inserted is None:  # a concurrent first message won the race
        await conn.execute("DELETE FROM citizens WHERE id = $1", citizen_id)
        return await conn.fetchval(
            "SELECT citizen_id FROM citizen_identities WHERE channel = $1 AND external_id = $2",
            channel,
            external_id,
        )
    return citizen_id


async def attach_phone(conn: asyncpg.Connection, citizen_id: int, phone: str) -> int:
    """Record a citizen's phone. If another citizen already has it, they are the same person:
    the identities of this citizen move to that one, whose id is returned."""
    owner = await conn.fetchval("SELECT id FROM citizens WHERE phone = $1", phone)
    if owner is None:
        current = await conn.fetchval("SELECT phone FROM citizens WHERE id = $1", citizen_id)
        if current is None:
            await conn.execute("UPDATE citizens SET phone = $2 WHERE id = $1", citizen_id, phone)
        return citizen_id
    if owner != citizen_id:
        await conn.execute(
            "UPDATE citizen_identities SET citizen_id = $2 WHERE citizen_id = $1", citizen_id, owner
        )
        await conn.execute(
            "UPDATE conversations SET citizen_id = $2 WHERE citizen_id = $1", citizen_id, owner
        )
        await conn.execute(
            "UPDATE work_orders SET citizen_id = $2 WHERE citizen_id = $1", citizen_id, owner
        )
    return owner


async def phone_of(conn: asyncpg.Connection, citizen_id: int) -> str | None:
    return await conn.fetchval("SELECT phone FROM citizens WHERE id = $1", citizen_id)


async def wechat_openid(conn: asyncpg.Connection, citizen_id: int) -> str | None:
    """The citizen's WeChat follower id (OpenID), when the citizen has one."""
    return await conn.fetchval(
        """SELECT external_id FROM citizen_identities WHERE citizen_id = $1 AND channel = 'wechat'
           ORDER BY created_at DESC LIMIT 1""",
        citizen_id,
    )


# a citizen left with nothing but purged conversations and closed, purged orders
_FORGOTTEN = """SELECT z.id FROM citizens z
    WHERE z.created_at < $1
      AND NOT EXISTS (SELECT 1 FROM conversations c
                      WHERE c.citizen_id = z.id AND c.session_key NOT LIKE 'purged-%')
      AND NOT EXISTS (SELECT 1 FROM work_orders o WHERE o.citizen_id = z.id
                      AND (o.status <> 'closed' OR o.updated_at >= $1))"""


async def forget(conn: asyncpg.Connection, before: datetime) -> tuple[int, int]:
    """Drop the phones and channel identities (phones, openids, web sessions) of citizens
    with nothing left in use; (citizens, identities) changed."""
    identities = await conn.execute(
        f"DELETE FROM citizen_identities WHERE citizen_id IN ({_FORGOTTEN})", before
    )
    phones = await conn.execute(
        f"UPDATE citizens SET phone = NULL WHERE phone IS NOT NULL AND id IN ({_FORGOTTEN})",
        before,
    )
    return int(phones.split()[-1]), int(identities.split()[-1])
