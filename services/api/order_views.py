"""Work orders as the staff APIs show them (dispatch desk, units, supervisors)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.core.unit_directory import UnitDirectory
from services.orders import states
from services.storage import assists, lights, work_orders


def order_json(row: asyncpg.Record, units: UnitDirectory) -> dict[str, Any]:
    out = {
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
    return out
