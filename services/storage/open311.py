"""open311_api_keys and open311_requests: who may file through the Open311 API, and what a
request filed there carries besides its work order (channels/open311.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

# -- API keys ---------------------------------------------------------------------------------


async def add_key(conn: asyncpg.Connection, name: str, key_hash: str, at: datetime) -> int | None:
    """A new active key; None when the name already has one."""
    return await conn.fetchval(
        """INSERT INTO open311_api_keys (name, key_hash, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING RETURNING id""",
        name,
        key_hash,
        at,
    )


async def active_key(conn: asyncpg.Connection, key_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name FROM open311_api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash,
    )


async def touch_key(conn: asyncpg.Connection, key_id: int, at: datetime) -> None:
    await conn.execute("UPDATE open311_api_keys SET last_used_at = $2 WHERE id = $1", key_id, at)


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT k.id, k.name, k.created_at, k.last_used_at, k.revoked_at,
                  (SELECT count(*) FROM open311_requests r WHERE r.api_key_id = k.id) AS requests
           FROM open311_api_keys k ORDER BY k.name, k.id"""
    )


async def revoke_key(conn: asyncpg.Connection, name: str, at: datetime) -> bool:
    return (
        await conn.fetchval(
            """UPDATE open311_api_keys SET revoked_at = $2
               WHERE name = $1 AND revoked_at IS NULL RETURNING true""",
            name,
            at,
        )
        is True
    )


# -- requests ---------------------------------------------------------------------------------


@dataclass
class RequestDetails:
    """What an Open311 POST carries that the work order has no column for."""

    api_key_id: int
    service_code: str
    token: str
    attributes: dict[str, Any] = field(default_factory=dict)
    lat: float | None = None
    long: float | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    media_url: str | None = None


async def insert_request(
    conn: asyncpg.Connection, work_order_id: int, d: RequestDetails, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO open311_requests (work_order_id, api_key_id, service_code, token,
               attributes, lat, long, address_id, email, device_id, account_id, first_name,
               last_name, media_url, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        work_order_id,
        d.api_key_id,
        d.service_code,
        d.token,
        d.attributes,
        d.lat,
        d.long,
        d.address_id,
        d.email,
        d.device_id,
        d.account_id,
        d.first_name,
        d.last_name,
        d.media_url,
        at,
    )


async def number_of_token(conn: asyncpg.Connection, token: str) -> str | None:
    return await conn.fetchval(
        """SELECT o.request_number FROM open311_requests r
           JOIN work_orders o ON o.id = r.work_order_id WHERE r.token = $1""",
        token,
    )


# A request as GET requests shows it: the order, its Open311 details (NULL for an order filed
# on another channel), and from its history the unit's latest result and how the revisit ended.
_VIEW = """SELECT o.request_number, o.channel, o.status, o.lead_unit, o.content, o.location,
              o.created_at, o.updated_at, o.handling_due_at, o.dispatch_due_at,
              r.service_code, r.lat, r.long, r.address_id, r.media_url,
              (SELECT e.note FROM work_order_events e
                WHERE e.work_order_id = o.id AND e.kind = 'resolved'
                ORDER BY e.id DESC LIMIT 1) AS resolution,
              (SELECT e.kind FROM work_order_events e
                WHERE e.work_order_id = o.id
                  AND e.kind IN ('revisit_satisfied', 'revisit_dissatisfied', 'revisit_no_answer')
                ORDER BY e.id DESC LIMIT 1) AS revisit
       FROM work_orders o"""


async def by_numbers(conn: asyncpg.Connection, numbers: list[str]) -> list[asyncpg.Record]:
    """Orders by request number, from any channel, in the order asked."""
    rows = await conn.fetch(
        f"""{_VIEW} LEFT JOIN open311_requests r ON r.work_order_id = o.id
            WHERE o.request_number = ANY($1::text[])""",
        numbers,
    )
    found = {r["request_number"]: r for r in rows}
    return [found[n] for n in numbers if n in found]


async def filed_between(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    service_codes: list[str] | None,
    closed: bool | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Requests filed through the API in [start, end], newest first."""
    return await conn.fetch(
        f"""{_VIEW} JOIN open311_requests r ON r.work_order_id = o.id
            WHERE r.created_at >= $1 AND r.created_at <= $2
              AND ($3::text[] IS NULL OR r.service_code = ANY($3::text[]))
              AND ($4::boolean IS NULL OR (o.status = 'closed') = $4)
            ORDER BY r.created_at DESC, o.id DESC LIMIT $5""",
        start,
        end,
        service_codes,
        closed,
        limit,
    )
