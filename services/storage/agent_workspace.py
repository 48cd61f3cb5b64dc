"""The agent workspace tables: the live queue, taking over, flags, order embeddings,
reply templates and suggestion feedback (migration 007)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

# open conversations that need a person: waiting for one, held by one, or flagged by the bot
_QUEUE = """
    SELECT c.id, c.channel, c.session_key, c.mode, c.handoff_reason, c.agent_user_id,
           u.username AS agent, c.updated_at,
           COALESCE((SELECT array_agg(f.reason ORDER BY f.reason) FROM agent_flags f
                     WHERE f.conversation_id = c.id), '{}') AS flags,
           (SELECT m.text FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'in'
            ORDER BY m.id DESC LIMIT 1) AS last_text
    FROM conversations c LEFT JOIN users u ON u.id = c.agent_user_id
    WHERE c.mode IN ('waiting_agent', 'agent')
       OR (c.mode = 'bot' AND EXISTS (SELECT 1 FROM agent_flags f WHERE f.conversation_id = c.id))
"""


async def queue(conn: asyncpg.Connection, limit: int = 200) -> list[asyncpg.Record]:
    # emergencies first, then the longest waiting
    return await conn.fetch(
        f"""SELECT * FROM ({_QUEUE}) q
            ORDER BY ('emergency' = ANY(q.flags)) DESC, q.updated_at LIMIT $1""",
        limit,
    )


async def queue_item(conn: asyncpg.Connection, conversation_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT * FROM ({_QUEUE}) q WHERE q.id = $1", conversation_id)


async def conversation(conn: asyncpg.Connection, conversation_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.id, c.channel, c.session_key, c.citizen_id, c.mode, c.handoff_reason,
                  c.agent_user_id, c.dialogue, c.updated_at, ci.phone
           FROM conversations c JOIN citizens ci ON ci.id = c.citizen_id WHERE c.id = $1""",
        conversation_id,
    )


async def set_mode(
    conn: asyncpg.Connection,
    conversation_id: int,
    mode: str,
    agent_user_id: int | None,
    at: datetime,
    *,
    from_modes: tuple[str, ...],
) -> bool:
    """Move the conversation to `mode` when it is in one of `from_modes`; False when not."""
    row = await conn.fetchval(
        """UPDATE conversations SET mode = $2, agent_user_id = $3, updated_at = $4
           WHERE id = $1 AND mode = ANY($5::text[]) RETURNING id""",
        conversation_id,
        mode,
        agent_user_id,
        at,
        list(from_modes),
    )
    if row is not None and mode in ("bot", "closed"):
        await conn.execute("DELETE FROM agent_flags WHERE conversation_id = $1", conversation_id)
    return row is not None


async def store_agent_message(
    conn: asyncpg.Connection,
    conversation_id: int,
    text: str,
    at: datetime,
    client_message_id: str | None = None,
) -> int:
    return await conn.fetchval(
        """INSERT INTO messages (conversation_id, direction, author, client_message_id, text,
               created_at)
           VALUES ($1, 'out', 'agent', $2, $3, $4) RETURNING id""",
        conversation_id,
        client_message_id,
        text,
        at,
    )


async def agent_message_by_client_id(
    conn: asyncpg.Connection, conversation_id: int, client_message_id: str
) -> int | None:
    return await conn.fetchval(
        """SELECT id FROM messages WHERE conversation_id = $1 AND direction = 'out'
           AND author = 'agent' AND client_message_id = $2""",
        conversation_id,
        client_message_id,
    )


async def message(conn: asyncpg.Connection, message_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT m.id, m.conversation_id, m.direction, m.author, m.text, m.nlu, m.created_at,
                  m.reply_to, c.channel, c.session_key
           FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = $1""",
        message_id,
    )


# -- similar resolved orders ------------------------------------------------------------------


async def unindexed_resolved(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT o.id, o.content,
                  (SELECT COALESCE(e.data->>'result', e.note) FROM work_order_events e
                   WHERE e.work_order_id = o.id AND e.kind = 'resolved'
                   ORDER BY e.id DESC LIMIT 1) AS result
           FROM work_orders o
           WHERE o.status IN ('resolved', 'closed')
             AND NOT EXISTS (SELECT 1 FROM work_order_embeddings w WHERE w.work_order_id = o.id)
           ORDER BY o.id LIMIT $1""",
        limit,
    )


async def store_embeddings(
    conn: asyncpg.Connection, rows: list[tuple[int, np.ndarray, str | None]], at: datetime
) -> None:
    await conn.executemany(
        """INSERT INTO work_order_embeddings (work_order_id, embedding, result, indexed_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT (work_order_id) DO NOTHING""",
        [(i, v, r, at) for i, v, r in rows],
    )


async def similar_orders(
    conn: asyncpg.Connection, vector: np.ndarray, k: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT o.id, o.request_number, o.request_type, o.content, o.lead_unit, w.result,
                  1 - (w.embedding <=> $1) AS similarity
           FROM (SELECT work_order_id, result, embedding FROM work_order_embeddings
                 ORDER BY embedding <=> $1 LIMIT $2) w
           JOIN work_orders o ON o.id = w.work_order_id
           ORDER BY w.embedding <=> $1""",
        vector,
        k,
    )


async def templates(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, title, body, request_type, keywords FROM reply_templates WHERE active ORDER BY id"
    )


# -- feedback on suggestions ------------------------------------------------------------------


async def record_feedback(
    conn: asyncpg.Connection,
    conversation_id: int,
    user_id: int,
    source: str,
    ref: str,
    rank: int,
    used: bool,
    at: datetime,
) -> int:
    return await conn.fetchval(
        """INSERT INTO agent_suggestion_feedback
               (conversation_id, user_id, source, ref, rank, used, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        conversation_id,
        user_id,
        source,
        ref,
        rank,
        used,
        at,
    )


async def acceptance(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT source, count(*) AS shown_rated, count(*) FILTER (WHERE used) AS used
           FROM agent_suggestion_feedback
           WHERE ($1::timestamptz IS NULL OR created_at >= $1)
             AND ($2::timestamptz IS NULL OR created_at < $2)
           GROUP BY source ORDER BY source""",
        since,
        until,
    )
    return [dict(r) for r in rows]
