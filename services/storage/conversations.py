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
    if row is None:  # the session has an open conversation (the insert's conflict)
        found = await open_of_session(conn, channel, session_key)
        if found is None:
            raise RuntimeError(f"the open conversation of {channel}:{session_key} vanished")
        return found
    return _row(row)


async def open_of_session(
    conn: asyncpg.Connection, channel: str, session_key: str
) -> ConversationRow | None:
    """The open conversation of a session, if it has one."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM conversations WHERE channel = $1 AND session_key = $2 AND mode <> 'closed'",
        channel,
        session_key,
    )
    return None if row is None else _row(row)


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


async def purgeable(conn: asyncpg.Connection, before: datetime) -> list[int]:
    """Conversations idle (or closed) since before `before` with no open work order and no
    call still going on: what retention may anonymise (services/storage/retention.py)."""
    rows = await conn.fetch(
        """SELECT c.id FROM conversations c
           WHERE c.updated_at < $1 AND c.session_key NOT LIKE 'purged-%'
             AND NOT EXISTS (SELECT 1 FROM work_orders o
                             WHERE o.conversation_id = c.id AND o.status <> 'closed')
             AND NOT EXISTS (SELECT 1 FROM voice_calls v
                             WHERE v.conversation_id = c.id AND v.updated_at >= $1)""",
        before,
    )
    return [r["id"] for r in rows]


async def anonymise(conn: asyncpg.Connection, ids: list[int]) -> int:
    """Close them and drop the session key (a phone or an openid on those channels; a unique
    stand-in keeps the open-session index) and the dialogue state."""
    done = await conn.execute(
        """UPDATE conversations SET session_key = 'purged-' || id, dialogue = '{}',
               mode = 'closed' WHERE id = ANY($1)""",
        ids,
    )
    return int(done.split()[-1])
