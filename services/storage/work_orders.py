"""work_orders and work_order_events: an order, its append-only history, its status projection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services import workorder_states as states
from services.storage import request_numbers


@dataclass
class NewWorkOrder:
    citizen_id: int
    conversation_id: int | None
    source_message_id: int | None
    channel: str
    request_type: str
    content: str
    location: str | None
    address: dict[str, Any] | None
    contact_phone: str | None
    suggestions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Actor:
    name: str
    role: str  # citizen, bot, agent, unit, supervisor, system


BOT = Actor("bot", "bot")

_ORDER_COLUMNS = """id, request_number, citizen_id, conversation_id, source_message_id, channel, request_type, content,
    location, address, contact_phone, lead_unit, suggestions, status, created_at, updated_at"""


async def create(
    conn: asyncpg.Connection, order: NewWorkOrder, actor: Actor, at: datetime
) -> asyncpg.Record:
    """Insert an order with its first event, `filed`. Call inside a transaction."""
    number = await request_numbers.next_number(conn, at)
    status = states.next_status(None, "filed")
    row = await conn.fetchrow(
        f"""INSERT INTO work_orders (request_number, citizen_id, conversation_id, source_message_id,
               channel, request_type, content, location, address, contact_phone, suggestions,
               status, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
            RETURNING {_ORDER_COLUMNS}""",
        number,
        order.citizen_id,
        order.conversation_id,
        order.source_message_id,
        order.channel,
        order.request_type,
        order.content,
        order.location,
        order.address,
        order.contact_phone,
        order.suggestions,
        status,
        at,
    )
    await _insert_event(conn, row["id"], "filed", actor, None, None, {}, status, at)
    return row


async def record_event(
    conn: asyncpg.Connection,
    order_id: int,
    kind: str,
    actor: Actor,
    at: datetime,
    *,
    unit: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    lead_unit: str | None = None,
) -> str:
    """Append an event and move the status by the state machine. Call inside a transaction.

    `lead_unit`, when given, becomes the order's lead unit in the same step (dispatch).
    Raises TransitionError when the current status does not allow the event.
    """
    current = await conn.fetchval(
        "SELECT status FROM work_orders WHERE id = $1 FOR UPDATE", order_id
    )
    if current is None:
        raise LookupError(f"work order {order_id} does not exist")
    status = states.next_status(current, kind)
    await conn.execute(
        """UPDATE work_orders SET status = $2, lead_unit = COALESCE($3, lead_unit), updated_at = $4
           WHERE id = $1""",
        order_id,
        status,
        lead_unit,
        at,
    )
    await _insert_event(
        conn, order_id, kind, actor, unit or lead_unit, note, data or {}, status, at
    )
    return status


async def _insert_event(
    conn: asyncpg.Connection,
    order_id: int,
    kind: str,
    actor: Actor,
    unit: str | None,
    note: str | None,
    data: dict[str, Any],
    status_after: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO work_order_events (work_order_id, kind, actor, actor_role, unit, note, data,
               status_after, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        order_id,
        kind,
        actor.name,
        actor.role,
        unit,
        note,
        data,
        status_after,
        at,
    )


async def by_number(conn: asyncpg.Connection, request_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM work_orders WHERE request_number = $1", request_number
    )


async def by_id(conn: asyncpg.Connection, order_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM work_orders WHERE id = $1", order_id)


async def events(conn: asyncpg.Connection, order_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, kind, actor, actor_role, unit, note, data, status_after, created_at
           FROM work_order_events WHERE work_order_id = $1 ORDER BY id""",
        order_id,
    )


async def by_source_message(conn: asyncpg.Connection, message_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM work_orders WHERE source_message_id = $1", message_id
    )


async def of_citizen(
    conn: asyncpg.Connection, citizen_id: int, limit: int = 5
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_ORDER_COLUMNS} FROM work_orders WHERE citizen_id = $1
            ORDER BY created_at DESC, id DESC LIMIT $2""",
        citizen_id,
        limit,
    )
