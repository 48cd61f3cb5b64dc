"""outbound_messages and sms_consent_events: what the centre sends, and who said 退订."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Provider statuses in the order they can follow each other; a late callback never moves a
# message back (Twilio's callbacks may arrive out of order).
_RANK = {
    "pending": 0,
    "not_configured": 0,
    "sent": 1,
    "delivered": 2,
    "undelivered": 2,
    "failed": 2,
    "opted_out": 2,
}


@dataclass
class NewOutbound:
    channel: str
    recipient: str
    body: str
    purpose: str
    part: int = 1
    parts: int = 1
    segments: int | None = None
    idempotency_key: str | None = None
    conversation_id: int | None = None
    work_order_id: int | None = None


async def insert_pending(
    conn: asyncpg.Connection, rows: list[NewOutbound], at: datetime
) -> list[int] | None:
    """Insert the messages as pending, all or none. None when their idempotency key was used
    before (the caller then sends nothing). Call inside a transaction."""
    ids = []
    for row in rows:
        new_id = await conn.fetchval(
            """INSERT INTO outbound_messages (channel, recipient, body, purpose, part, parts,
                   segments, status, idempotency_key, conversation_id, work_order_id,
                   created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $11)
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id""",
            row.channel,
            row.recipient,
            row.body,
            row.purpose,
            row.part,
            row.parts,
            row.segments,
            row.idempotency_key,
            row.conversation_id,
            row.work_order_id,
            at,
        )
        if new_id is None:
            return None
        ids.append(new_id)
    return ids


async def by_idempotency_prefix(conn: asyncpg.Connection, key: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM outbound_messages WHERE idempotency_key = $1
               OR idempotency_key LIKE $2 ORDER BY part""",
        key,
        key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "#%",
    )


async def set_status(
    conn: asyncpg.Connection,
    message_id: int,
    status: str,
    at: datetime,
    *,
    provider_id: str | None = None,
    provider_status: str | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """The sender's verdict on one message; `retry_at` when it is to be sent again then."""
    await conn.execute(
        """UPDATE outbound_messages SET status = $2, provider_id = COALESCE($3, provider_id),
               provider_status = COALESCE($4, provider_status), error = $5, updated_at = $6,
               retry_at = $7
           WHERE id = $1""",
        message_id,
        status,
        provider_id,
        provider_status,
        error,
        at,
        retry_at,
    )


@dataclass
class Retry:
    id: int
    recipient: str
    body: str
    retries: int
    created_at: datetime


async def due_retries(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Retry]:
    """Failed SMS whose time to be sent again has come, each the oldest still waiting for its
    recipient: nothing overtakes an earlier message (or an earlier part of a long text)."""
    rows = await conn.fetch(
        """SELECT id, recipient, body, retries, created_at FROM outbound_messages m
           WHERE retry_at IS NOT NULL AND retry_at <= $1 AND status = 'failed'
             AND channel = 'sms'
             AND NOT EXISTS (
                 SELECT 1 FROM outbound_messages e
                 WHERE e.channel = 'sms' AND e.recipient = m.recipient AND e.id < m.id
                   AND e.status = 'failed' AND e.retry_at IS NOT NULL)
           ORDER BY id LIMIT $2""",
        now,
        limit,
    )
    return [Retry(**dict(r)) for r in rows]


async def give_up_rest(conn: asyncpg.Connection, message_id: int, at: datetime) -> None:
    """The later parts of a text whose part `message_id` will not be sent stop waiting: the
    rest makes no sense without it."""
    await conn.execute(
        """UPDATE outbound_messages r SET retry_at = NULL, error = 'an earlier part failed',
               updated_at = $2
           FROM outbound_messages f
           WHERE f.id = $1 AND r.channel = f.channel AND r.recipient = f.recipient
             AND r.created_at = f.created_at AND r.parts = f.parts AND r.part > f.part
             AND r.status = 'failed' AND r.retry_at IS NOT NULL""",
        message_id,
        at,
    )


async def lock_retry(conn: asyncpg.Connection, message_id: int) -> bool:
    """Lock a message still waiting to be sent again (False: another worker has it, or it
    was sent meanwhile). Call inside a transaction."""
    found = await conn.fetchval(
        """SELECT id FROM outbound_messages
           WHERE id = $1 AND status = 'failed' AND retry_at IS NOT NULL
           FOR UPDATE SKIP LOCKED""",
        message_id,
    )
    return found is not None


async def retry_later(
    conn: asyncpg.Connection,
    message_id: int,
    retries: int,
    retry_at: datetime | None,
    error: str,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE outbound_messages SET retries = $2, retry_at = $3, error = $4, updated_at = $5
           WHERE id = $1""",
        message_id,
        retries,
        retry_at,
        error,
        at,
    )


async def apply_provider_status(
    conn: asyncpg.Connection,
    channel: str,
    provider_id: str,
    status: str,
    provider_status: str,
    error: str | None,
    at: datetime,
) -> bool:
    """A delivery report from the provider. False when no such message was sent by us."""
    row = await conn.fetchrow(
        "SELECT id, status FROM outbound_messages WHERE channel = $1 AND provider_id = $2 FOR UPDATE",
        channel,
        provider_id,
    )
    if row is None:
        return False
    if _RANK.get(status, 0) >= _RANK.get(row["status"], 0):
        await set_status(conn, row["id"], status, at, provider_status=provider_status, error=error)
    return True


async def of_recipient(
    conn: asyncpg.Connection, channel: str, recipient: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM outbound_messages WHERE channel = $1 AND recipient = $2 ORDER BY id",
        channel,
        recipient,
    )


# -- SMS consent -----------------------------------------------------------------------------


async def record_consent(
    conn: asyncpg.Connection,
    phone: str,
    action: str,
    keyword: str,
    message_sid: str | None,
    at: datetime,
) -> bool:
    """Record 退订 (opt_out) or 订阅 (opt_in). False when this message was recorded before."""
    inserted = await conn.fetchval(
        """INSERT INTO sms_consent_events (phone, action, keyword, message_sid, created_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (message_sid) DO NOTHING RETURNING id""",
        phone,
        action,
        keyword,
        message_sid,
        at,
    )
    return inserted is not None


async def is_opted_out(conn: asyncpg.Connection, phone: str) -> bool:
    action = await conn.fetchval(
        "SELECT action FROM sms_consent_events WHERE phone = $1 ORDER BY id DESC LIMIT 1", phone
    )
    return action == "opt_out"


async def forget(conn: asyncpg.Connection, before: datetime, stand_in: str) -> int:
    """Recipients and texts of messages handed over (or given up) before `before`."""
    done = await conn.execute(
        """UPDATE outbound_messages SET recipient = $2, body = ''
           WHERE created_at < $1 AND status <> 'pending' AND recipient <> $2""",
        before,
        stand_in,
    )
    return int(done.split()[-1])
