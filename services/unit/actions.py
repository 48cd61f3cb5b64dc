"""What a linked unit does with the orders it leads: sign for (签收), record the contact with
the citizen, resolve with the result (which schedules the revisit), return with a reason or a
dispute (back to the dispatch desk), and decide a suggestion (建言: adopted or not, and why).

A unit sees only the orders it leads or assists. An order it neither leads nor assists is
"not found", exactly like one that does not exist, so a handler cannot learn which orders
other units have; an assisting unit sees the order but only the lead acts on it.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.config import Settings
from services.core.errors import Conflict, Forbidden, NotFound, ServiceError
from services.desk import Desk
from services.revisits import service as revisits
from services.storage import assists, work_orders
from services.storage.work_orders import Actor

ACTIONS = ("signed", "contacted", "resolved", "returned")
SUGGESTION_DECISIONS = ("suggestion_adopted", "suggestion_not_adopted")


class OrderNotVisible(NotFound):
    def __init__(self) -> None:
        super().__init__("no such work order for your unit")


async def visible_order(conn: asyncpg.Connection, number: str, unit: str) -> tuple[int, bool]:
    """(order id, whether the unit leads it) for an order the unit leads or assists."""
    order_id = await work_orders.id_by_number(conn, number)
    if order_id is not None:
        order = await work_orders.by_id(conn, order_id)
        if order["lead_unit"] == unit:
            return order_id, True
        if await assists.assists(conn, order_id, unit):
            return order_id, False
    raise OrderNotVisible()


async def act(
    conn: asyncpg.Connection,
    desk: Desk,
    settings: Settings,
    number: str,
    unit: str,
    kind: str,
    text: str | None,
    actor: Actor,
    now: datetime,
    *,
    dispute: bool = False,
) -> str:
    """One of ACTIONS by the lead unit, in the caller's transaction; the order's new status."""
    if kind not in ACTIONS:
        raise ServiceError(f"unknown action {kind!r}", code="bad_action")
    order_id, leads = await visible_order(conn, number, unit)
    # lock, then check again: a reassignment may have happened in between
    state = await work_orders.clock_state(conn, order_id)
    if state["lead_unit"] != unit:
        if leads:
            raise OrderNotVisible()
        raise Forbidden("only the lead unit acts on this order", code="not_lead")
    if kind == "returned":
        return await desk.dispatcher.unit_return(
            conn, order_id, unit, text, actor, now, dispute=dispute
        )
    status = await desk.clocks.record(
        conn,
        order_id,
        kind,
        actor,
        now,
        unit=unit,
        note=text,
        data={"result": text} if kind == "resolved" else None,
    )
    if kind == "resolved":
        await revisits.schedule(conn, order_id, now, settings)
    return status


async def decide_suggestion(
    conn: asyncpg.Connection,
    number: str,
    unit: str,
    adopted: bool,
    reason: str,
    actor: Actor,
    now: datetime,
) -> str:
    """The lead unit's decision on a suggestion, once; an event of the order, so the figures
    count it from the history like everything else. The order's status after it."""
    order_id = await work_orders.id_by_number(conn, number)
    state = await work_orders.clock_state(conn, order_id) if order_id else None
    if state is None or state["lead_unit"] != unit:
        raise OrderNotVisible()
    order = await work_orders.by_id(conn, order_id)
    if order["request_type"] != "suggest":
        raise Conflict("only a suggestion is adopted or not", code="not_a_suggestion")
    decided = await work_orders.first_event_kind(conn, order_id, SUGGESTION_DECISIONS)
    if decided is not None:
        raise Conflict(f"the suggestion is already {decided}", code="already_decided")
    kind = SUGGESTION_DECISIONS[0] if adopted else SUGGESTION_DECISIONS[1]
    return await work_orders.record_event(
        conn, order_id, kind, actor, now, unit=unit, note=reason, data={"adopted": adopted}
    )
