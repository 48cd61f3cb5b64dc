"""work_orders and work_order_events: an order, its append-only history, its status projection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services.orders import states
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


# -- clocks (time limits), written together with the event that starts or stops them --------

CLOCK_COLUMNS = (
    "clock_seq",
    "dispatch_clock_at",
    "unit_clock_at",
    "dispatch_yellow_at",
    "dispatch_due_at",
    "sign_for_yellow_at",
    "sign_for_due_at",
    "contact_yellow_at",
    "contact_due_at",
    "handling_yellow_at",
    "handling_due_at",
    "return_count",
    "dissatisfied_count",
)


async def clock_state(conn: asyncpg.Connection, order_id: int) -> asyncpg.Record | None:
    """The order's status and clocks, locked for the rest of the transaction."""
    return await conn.fetchrow(
        f"""SELECT id, status, lead_unit, {", ".join(CLOCK_COLUMNS)} FROM work_orders WHERE id = $1
            FOR UPDATE""",
        order_id,
    )


async def set_clocks(conn: asyncpg.Connection, order_id: int, values: dict[str, Any]) -> None:
    unknown = set(values) - set(CLOCK_COLUMNS)
    if unknown:
        raise ValueError(f"not clock columns: {sorted(unknown)}")
    if not values:
        return
    names = list(values)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE work_orders SET {assignments} WHERE id = $1", order_id, *values.values()
    )


# -- dispatch, repeats and the staff views -------------------------------------------------

_STAFF_COLUMNS = f"""{_ORDER_COLUMNS}, clock_seq, sign_for_due_at, contact_due_at, handling_due_at,
    dispatch_due_at, return_count, dissatisfied_count, repeat_of, repeat_count, escalated_at,
    (SELECT r.request_number FROM work_orders r WHERE r.id = work_orders.repeat_of) AS repeat_of_number"""


async def staff_view(conn: asyncpg.Connection, order_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} FROM work_orders WHERE id = $1", order_id)


async def id_by_number(conn: asyncpg.Connection, request_number: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM work_orders WHERE request_number = $1", request_number
    )


async def set_place_key(conn: asyncpg.Connection, order_id: int, place_key: str | None) -> None:
    await conn.execute("UPDATE work_orders SET place_key = $2 WHERE id = $1", order_id, place_key)


async def repeat_candidates(
    conn: asyncpg.Connection,
    order_id: int,
    citizen_id: int,
    place_key: str | None,
    since: datetime,
    limit: int = 100,
) -> list[asyncpg.Record]:
    """Earlier orders of the same citizen or at the same place, newest first."""
    return await conn.fetch(
        """SELECT id, request_number, citizen_id, content, location, place_key, repeat_of, status
           FROM work_orders
           WHERE id <> $1 AND created_at >= $4 AND (citizen_id = $2 OR place_key = $3)
           ORDER BY created_at DESC, id DESC LIMIT $5""",
        order_id,
        citizen_id,
        place_key,
        since,
        limit,
    )


async def link_repeat(conn: asyncpg.Connection, order_id: int, root_id: int) -> int:
    """Make `order_id` a repeat of `root_id`; returns the root's repeat count."""
    await conn.execute("UPDATE work_orders SET repeat_of = $2 WHERE id = $1", order_id, root_id)
    return await conn.fetchval(
        "UPDATE work_orders SET repeat_count = repeat_count + 1 WHERE id = $1 RETURNING repeat_count",
        root_id,
    )


async def chain_to_escalate(conn: asyncpg.Connection, root_id: int) -> list[asyncpg.Record]:
    """The open orders of a repeat chain that are not escalated yet."""
    return await conn.fetch(
        """SELECT id, request_number FROM work_orders
           WHERE (id = $1 OR repeat_of = $1) AND status <> 'closed' AND escalated_at IS NULL
           ORDER BY id""",
        root_id,
    )


async def mark_escalated(conn: asyncpg.Connection, order_id: int, at: datetime) -> bool:
    return (
        await conn.fetchval(
            """UPDATE work_orders SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL
               RETURNING true""",
            order_id,
            at,
        )
        is True
    )


async def in_status(
    conn: asyncpg.Connection, statuses: tuple[str, ...], limit: int, offset: int
) -> list[asyncpg.Record]:
    """Orders waiting in some statuses (the dispatch and arbitration queues), oldest first."""
    return await conn.fetch(
        f"""SELECT {_STAFF_COLUMNS} FROM work_orders WHERE status = ANY($1::text[])
            ORDER BY created_at, id LIMIT $2 OFFSET $3""",
        list(statuses),
        limit,
        offset,
    )


def _escaped(word: str) -> str:
    """`word` matched literally by LIKE (its wildcards are characters a citizen may write)."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(word: str) -> str:
    return "%" + _escaped(word) + "%"


async def search(
    conn: asyncpg.Connection, text: str, limit: int, offset: int
) -> list[asyncpg.Record]:
    """The dispatch desk's search: a request number (or its start), a phone number (or at
    least 4 of its digits), or words that all appear in the content or the place; newest
    first."""
    words = [w for w in text.split() if w][:8]
    digits = "".join(ch for ch in text if ch.isdigit())
    return await conn.fetch(
        f"""SELECT {_STAFF_COLUMNS} FROM work_orders
            WHERE request_number LIKE $1 || '%'
               OR (length($2) >= 4
                   AND regexp_replace(coalesce(contact_phone, ''), '[^0-9]', '', 'g') LIKE '%' || $2 || '%')
               OR (SELECT bool_and(content || ' ' || coalesce(location, '') ILIKE w)
                   FROM unnest($3::text[]) AS w)
            ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5""",
        _escaped(text.strip()),
        digits if digits == text.strip().replace("-", "").replace(" ", "") else "",
        [_like(w) for w in words],
        limit,
        offset,
    )


async def of_unit(
    conn: asyncpg.Connection,
    unit: str,
    statuses: list[str] | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    """A unit's orders: those it leads and those it assists."""
    return await conn.fetch(
        f"""SELECT {_STAFF_COLUMNS},
                   CASE WHEN lead_unit = $1 THEN 'lead' ELSE 'assist' END AS unit_role
            FROM work_orders
            WHERE (lead_unit = $1 OR id IN (SELECT work_order_id FROM work_order_assists
                                            WHERE unit_code = $1))
              AND ($2::text[] IS NULL OR status = ANY($2::text[]))
            ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4""",
        unit,
        statuses,
        limit,
        offset,
    )


async def escalated(conn: asyncpg.Connection, limit: int, offset: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_STAFF_COLUMNS} FROM work_orders WHERE escalated_at IS NOT NULL
              AND status <> 'closed'
            ORDER BY escalated_at DESC, id DESC LIMIT $1 OFFSET $2""",
        limit,
        offset,
    )


async def open_ids_due_after(
    conn: asyncpg.Connection, after_id: int, since: datetime, limit: int
) -> list[int]:
    """Open orders with a clock that ends on or after `since` (to recompute after a calendar change)."""
    rows = await conn.fetch(
        """SELECT id FROM work_orders
           WHERE id > $1 AND status <> 'closed'
             AND greatest(dispatch_due_at, sign_for_due_at, contact_due_at, handling_due_at) >= $2
           ORDER BY id LIMIT $3""",
        after_id,
        since,
        limit,
    )
    return [r["id"] for r in rows]


async def unit_events(conn: asyncpg.Connection, order_id: int, kind: str) -> list[str]:
    """The units named by the events of one kind (e.g. who returned the order), in order."""
    rows = await conn.fetch(
        """SELECT unit FROM work_order_events WHERE work_order_id = $1 AND kind = $2
             AND unit IS NOT NULL ORDER BY id""",
        order_id,
        kind,
    )
    return [r["unit"] for r in rows]


async def last_cycle_event(conn: asyncpg.Connection, order_id: int) -> str | None:
    return await conn.fetchval(
        """SELECT kind FROM work_order_events WHERE work_order_id = $1
             AND kind IN ('dispatched', 'reassigned', 'arbitrated')
           ORDER BY id DESC LIMIT 1""",
        order_id,
    )


async def first_event_kind(
    conn: asyncpg.Connection, order_id: int, kinds: tuple[str, ...]
) -> str | None:
    """The kind of the order's first event among `kinds`, or None."""
    return await conn.fetchval(
        """SELECT kind FROM work_order_events WHERE work_order_id = $1 AND kind = ANY($2)
           ORDER BY id LIMIT 1""",
        order_id,
        list(kinds),
    )


async def event_count(conn: asyncpg.Connection, order_id: int, kind: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM work_order_events WHERE work_order_id = $1 AND kind = $2",
        order_id,
        kind,
    )


async def last_event_kind(conn: asyncpg.Connection, order_id: int) -> str | None:
    return await conn.fetchval(
        "SELECT kind FROM work_order_events WHERE work_order_id = $1 ORDER BY id DESC LIMIT 1",
        order_id,
    )


async def queue_lengths(conn: asyncpg.Connection) -> dict[str, int]:
    """The orders waiting for the centre (each count matches a partial index of 005)."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM work_orders
                   WHERE status IN ('awaiting_dispatch', 'returned')) AS dispatch,
                  (SELECT count(*) FROM work_orders WHERE status = 'arbitration') AS arbitration"""
    )
    return {"dispatch": row["dispatch"], "arbitration": row["arbitration"]}


async def forget_contacts(conn: asyncpg.Connection, before: datetime) -> int:
    """Drop the contact phone of orders closed since before `before`."""
    done = await conn.execute(
        """UPDATE work_orders SET contact_phone = NULL
           WHERE status = 'closed' AND updated_at < $1 AND contact_phone IS NOT NULL""",
        before,
    )
    return int(done.split()[-1])
