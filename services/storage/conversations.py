"""conversations: one open conversation per channel session, with the dialogue state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass
class ConversationRow:
    id: int
    channel: str
    session_key: str
    citizen_id: int
    mode: str
    dialogue: dict[str, Any]


def _row(record: asyncpg.Record) -> ConversationRow:
    return ConversationRow(
        id=record["id"],
        channel=record["channel"],
        session_key=record["session_key"],
        citizen_id=record["citizen_id"],
        mode=record["mode"],
        dialogue=dict(record["dialogue"] or {}),
    )


_COLUMNS = "id, channel, session_key, citizen_id, mode, dialogue"


async def open_for_session(
    conn: asyncpg.Connection, channel: str, session_key: str, citizen_id: int, at: datetime
) -> ConversationRow:
    """The open conversation of a session, created when there is none."""
    row = await conn.fetchrow(
        f"""INSERT INTO conversations (channel, session_key, citizen_id, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $4)
            ON CONFLICT (channel, session_key) WHERE mode <> 'closed' DO NOTHING
            RETURNING {_COLUMNS}""",
        channel,
        session_key,
        citizen_id,
        at,
    )
    if row is None:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM conversations WHERE channel = $1 AND session_key = $2 AND mode <> 'closed'",
            channel,
            session_key,
        )
    return _row(row)


async def lock(conn: asyncpg.Connection, conversation_id: int) -> ConversationRow:
    """Lock the conversation for one turn: messages of one conversation are handled in order."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM conversations WHERE id = $1 FOR UPDATE", conversation_id
    )
    return _row(row)


async def save_turn(
    conn: asyncpg.Connection,
    conversation_id: int,
    dialogue: dict[str, Any],
    mode: str,
    handoff_reason: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE conversations SET dialogue = $2, mode = $3,
               handoff_reason = COALESCE($4, handoff_reason), updated_at = $5
           WHERE id = $1""",
        conversation_id,
        dialogue,
        mode,
        handoff_reason,
        at,
    )


async def waiting_for_agent(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, channel, session_key, citizen_id, handoff_reason, updated_at
           FROM conversations WHERE mode = 'waiting_agent' ORDER BY updated_at LIMIT $1""",
        limit,
    )
