"""Work orders as the staff APIs show them (dispatch desk, units, supervisors)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.context import Context
from services.core.unit_directory import UnitDirectory
from services.deadlines.workdays import DAY_SECONDS
from services.orders import states
from services.storage import assists, lights, revisits, work_orders


def order_json(row: asyncpg.Record, units: UnitDirectory) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "request_number": row["request_number"],
        "status": row["status"],
        "status_label": states.STATUS_LABELS.get(row["status"], row["status"]),
        "channel": row["channel"],
        "request_type": row["request_type"],
        "content": row["content"],
        "location": row["location"],
        "address": row["address"],
        "contact_phone": row["contact_phone"],
        "lead_unit": row["lead_unit"],
        "lead_unit_name": units.name(row["lead_unit"]) if row["lead_unit"] else None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deadlines": {
            "dispatch": row["dispatch_due_at"],
            "sign_for": row["sign_for_due_at"],
            "contact": row["contact_due_at"],
            "handling": row["handling_due_at"],
        },
        "returns": row["return_count"],
        "repeat_of": row["repeat_of_number"],
        "repeat_count": row["repeat_count"],
        "escalated_at": row["escalated_at"],
    }
    if "unit_role" in row.keys():
        out["unit_role"] = row["unit_role"]
    return out


async def order_detail(
    conn: asyncpg.Connection, order_id: int, units: UnitDirectory
) -> dict[str, Any]:
    row = await work_orders.staff_view(conn, order_id)
    out = order_json(row, units)
    out["assisting_units"] = await assists.of_order(conn, order_id)
    out["events"] = [
        {
            "kind": e["kind"],
            "actor": e["actor"],
            "actor_role": e["actor_role"],
            "unit": e["unit"],
            "note": e["note"],
            "data": e["data"],
            "status_after": e["status_after"],
            "at": e["created_at"],
        }
        for e in await work_orders.events(conn, order_id)
    ]
    out["lights"] = [dict(r) for r in await lights.of_order(conn, order_id)]
    # the citizen's verdict on each resolution (the comment when dissatisfied)
    out["revisits"] = [
        {k: r[k] for k in REVISIT_FIELDS} for r in await revisits.of_order(conn, order_id)
    ]
    return out


REVISIT_FIELDS = ("round", "channel", "status", "rating", "outcome", "comment", "finished_at")


def timed(order: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The order with the working time left on each clock that runs now (seconds of
    working-day time; negative: overdue by that much) and whether working time passes now, so
    a page can count down between two loads without knowing the calendar."""
    if ctx.desk is None:
        return order
    calendar, now = ctx.desk.calendar, ctx.clock.now()
    left = {}
    for point, running in states.CLOCK_POINTS.items():
        due = order["deadlines"].get(point)
        if due is not None and order["status"] in running:
            days = calendar.elapsed(now, due) - calendar.elapsed(due, now)
            left[point] = round(days * DAY_SECONDS)
    order["time_left"] = left
    order["clock_ticking"] = calendar.is_workday(calendar.local(now).date())
    return order


async def with_lights(
    conn: asyncpg.Connection, orders: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each order of a list with the lights lit on it now, as [{"point", "color"}]."""
    lit: dict[int, list[dict[str, str]]] = {}
    for r in await lights.lit_of_orders(conn, [o["id"] for o in orders]):
        lit.setdefault(r["work_order_id"], []).append({"point": r["point"], "color": r["color"]})
    for o in orders:
        o["lit"] = lit.get(o["id"], [])
    return orders


async def arbitration_reasons(conn: asyncpg.Connection, order_id: int) -> list[dict[str, Any]]:
    """What each side said: the units' returns and disputes, the desk's referral."""
    kinds = ("returned", "sent_to_arbitration")
    return [
        {
            "kind": e["kind"],
            "unit": e["unit"],
            "actor": e["actor"],
            "note": e["note"],
            "data": e["data"],
            "at": e["created_at"],
        }
        for e in await work_orders.events(conn, order_id)
        if e["kind"] in kinds
    ]
