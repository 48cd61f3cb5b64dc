"""What the Open311 documents say about a service, an attribute and a request (the fields of
GeoReport v2), from the catalogue and the work order with its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from channels.open311_filing import CHANNEL
from channels.open311_services import Attribute, Catalogue, Service
from services.context import Context
from services.core.clock import CHINA_TZ
from services.orders import states


def service_view(s: Service, kind: str) -> dict[str, Any]:
    """A service of the list; `kind` is realtime or batch (HOTLINE_OPEN311_TYPE)."""
    return {
        "service_code": s.code,
        "service_name": s.name,
        "description": s.description,
        "metadata": s.metadata,
        "type": kind,
        "keywords": ", ".join(s.keywords),
        "group": s.group,
    }


def attribute_view(a: Attribute) -> dict[str, Any]:
    return {
        "variable": True,
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": None,
        "order": a.order,
        "description": a.description,
        "values": [{"key": key, "name": name} for key, name in a.values],
    }


def service_notice(ctx: Context, status: str) -> str | None:
    """What the time limits promise from where the order is now."""
    s = ctx.settings
    if status in states.DISPATCH_QUEUE or status == states.ARBITRATION:
        return f"热线将在{s.limit_dispatch_days:g}个工作日内派发承办单位"
    if status in (states.DISPATCHED, states.SIGNED, states.CONTACTED):
        return (
            f"承办单位{s.limit_sign_for_days:g}个工作日内签收，{s.limit_contact_days:g}个工作日内"
            f"联系核实，{s.limit_handling_days:g}个工作日内办结答复"
        )
    return None


def request_view(ctx: Context, catalogue: Catalogue, row: Any) -> dict[str, Any]:
    service = catalogue.get(row["service_code"]) if row["service_code"] else None
    unit = ctx.units.name(row["lead_unit"]) if row["lead_unit"] else None
    published = row["channel"] == CHANNEL  # what another channel was told stays there
    return {
        "service_request_id": row["request_number"],
        "status": "closed" if row["status"] == states.CLOSED else "open",
        "status_notes": status_notes(row, unit),
        "service_name": service.name if service else None,
        "service_code": row["service_code"],
        "description": row["content"] if published else None,
        "agency_responsible": unit,
        "service_notice": service_notice(ctx, row["status"]),
        "requested_datetime": datetime_w3(row["created_at"]),
        "updated_datetime": datetime_w3(row["updated_at"]),
        "expected_datetime": datetime_w3(row["handling_due_at"]),
        "address": row["location"] if published else None,
        "address_id": row["address_id"],
        "zipcode": None,
        "lat": row["lat"],
        "long": row["long"],
        "media_url": row["media_url"],
    }


def status_notes(row: Any, unit_name: str | None) -> str:
    """Why the request is where it is, from its history: the status in words, with the
    unit's result once it has resolved it and how the revisit ended."""
    label = states.STATUS_LABELS[row["status"]]
    if row["status"] in (states.RESOLVED, states.CLOSED) and row["resolution"]:
        label = f"{label}。{unit_name or '承办单位'}答复：{row['resolution']}"
    outcome = {
        "revisit_satisfied": "回访满意",
        "revisit_no_answer": "回访未获答复",
        "revisit_dissatisfied": "回访不满意，已重新办理",
    }.get(row["revisit"] or "")
    return f"{label}（{outcome}）" if outcome else label


def datetime_w3(value: datetime | None) -> str | None:
    """A timestamp as GeoReport wants it: ISO 8601 with the offset (China time)."""
    return value.astimezone(CHINA_TZ).isoformat(timespec="seconds") if value else None
