"""messages: every inbound message verbatim, every reply, linked to what it answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass
class StoredInbound:
    id: int
    created: bool  # False when the same client message id was stored before


async def store_inbound(
    conn: asyncpg.Connection,
    conversation_id: int,
    text: str,
    client_message_id: str | None,
    at: datetime,
) -> StoredInbound:
    row = await conn.fetchrow(
        """INSERT INTO messages (conversation_id, direction, author, client_message_id, text, created_at)
           VALUES ($1, 'in', 'citizen', $2, $3, $4)
           ON CONFLICT (conversation_id, client_message_id)
               WHERE direction = 'in' AND client_message_id IS NOT NULL DO NOTHING
           RETURNING id""",
        conversation_id,
        client_message_id,
        text,
        at,
    )
    if row is not None:
        return StoredInbound(row["id"], True)
    existing = await conn.fetchval(
        """SELECT id FROM messages WHERE conversation_id = $1 AND direction = 'in'
           AND client_message_id = $2""",
        conversation_id,
        client_message_id,
    )
    return StoredInbound(existing, False)


async def set_nlu(conn: asyncpg.Connection, message_id: int, nlu: dict[str, Any]) -> None:
    await conn.execute("UPDATE messages SET nlu = $2 WHERE id = $1", message_id, nlu)


async def replies_to(conn: asyncpg.Connection, message_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT text FROM messages WHERE reply_to = $1 AND direction = 'out' ORDER BY id",
        message_id,
    )
    return [r["text"] for r in rows]


async def store_replies(
    conn: asyncpg.Connection,
    conversation_id: int,
    reply_to: int | None,
    texts: list[str],
    author: str,
    at: datetime,
) -> None:
    await conn.executemany(
        """INSERT INTO messages (conversation_id, direction, author, reply_to, text, created_at)
           VALUES ($1, 'out', $2, $3, $4, $5)""",
        [(conversation_id, author, reply_to, t, at) for t in texts],
    )


async def history(conn: asyncpg.Connection, conversation_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, direction, author, text, nlu, created_at FROM messages
           WHERE conversation_id = $1 ORDER BY id""",
        conversation_id,
    )


async def of_open_session(
    conn: asyncpg.Connection, channel: str, session_key: str, limit: int
) -> list[asyncpg.Record]:
    """The last `limit` messages of the session's open conversation, oldest first."""
    rows = await conn.fetch(
        """SELECT m.id, m.direction, m.author, m.text, m.created_at
           FROM messages m JOIN conversations c ON c.id = m.conversation_id
           WHERE c.channel = $1 AND c.session_key = $2 AND c.mode <> 'closed'
           ORDER BY m.id DESC LIMIT $3""",
        channel,
        session_key,
        limit,
    )
    return rows[::-1]


async def blank(conn: asyncpg.Connection, conversation_ids: list[int]) -> int:
    """Empty the texts (and what the NLU read in them) of these conversations' messages."""
    done = await conn.execute(
        """UPDATE messages SET text = '', nlu = NULL
           WHERE conversation_id = ANY($1) AND (text <> '' OR nlu IS NOT NULL)""",
        conversation_ids,
    )
    return int(done.split()[-1])
