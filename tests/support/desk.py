"""Helpers for the dispatch, time-limit and supervision tests.

`start_desk_service` runs the real aiohttp app (services.app.create_app, every route and the
scheduler wiring) on a loopback port against a fresh database, with only what dispatch needs
in its Context: no NLU model and no knowledge base, which these tests do not use and which
keeps each test to a fraction of a second. Orders are filed through the same
`Dispatcher.intake` the conversation service calls, with the NLU suggestions given.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg

from services.agents.hub import AgentHub
from services.app import create_app
from services.config import Settings
from services.context import Context
from services.core.clock import FixedClock
from services.core.unit_directory import load_units, sync_units
from services.desk import Desk, build_desk
from services.jobs.scheduler import Scheduler
from services.outbound.outbox import build_outbox
from services.revisits.service import RevisitService
from services.staff import accounts as auth
from services.storage import citizens, db, work_orders
from services.storage.work_orders import Actor, NewWorkOrder
from tests.support.loopback import serve_on_loopback
from tests.support.service import Running

PASSWORD = "correct-horse-12345"
_session_ids = itertools.count(1)


@dataclass
class RecordingNotifier:
    """Test double of the outbox (services/outbound/outbox.py) for the desk's texts to units:
    records what would be sent."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(
        self, channel: str, recipient: str, text: str, purpose: str, **kwargs: Any
    ) -> object:
        self.sent.append(
            {"channel": channel, "to": recipient, "body": text, "purpose": purpose, **kwargs}
        )
        return None


@dataclass
class DeskService(Running):
    """A started service (stopped by `Running.stop`) with the test double of its notifier."""

    notifier: RecordingNotifier

    @property
    def desk(self) -> Desk:
        assert self.ctx.desk is not None
        return self.ctx.desk

    @property
    def pool(self) -> asyncpg.Pool:
        return self.ctx.pool


async def start_desk_service(
    settings: Settings, clock: FixedClock, *, scheduler: bool = False, revisits: bool = False
) -> DeskService:
    """With `revisits`, the revisit service too, calling and texting through the real outbox
    (at the fake Twilio and WeChat of the settings); the units' texts still go to the double."""
    settings = settings.with_overrides(
        scheduler_enabled=scheduler, supervision_phone="0595-12345000"
    )
    units = load_units(settings.units_file)
    pool = await db.connect(settings.database_url)
    await sync_units(pool, units)
    notifier = RecordingNotifier()
    desk = await build_desk(settings, pool, clock, units, notifier)
    outbox = build_outbox(settings, pool, clock) if revisits else None
    ctx = Context(
        settings,
        clock,
        pool,
        units,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        outbox=outbox,
        desk=desk,
        hub=AgentHub(pool),  # the staff pages' live updates
        revisits=RevisitService(settings, pool, clock, outbox, desk.clocks, desk.supervision)
        if outbox
        else None,
    )
    runner, url = await serve_on_loopback(create_app(settings, clock, context=ctx))
    return DeskService(url, ctx, runner, notifier)


def suggestion(code: str, probability: float = 0.9, confident: bool = True) -> dict[str, Any]:
    return {"code": code, "probability": probability, "confident": confident}


async def file_order(
    svc: DeskService,
    at: datetime,
    *,
    content: str = "长福路的路灯坏了好几天，晚上很黑",
    location: str | None = "湖滨街道长福路",
    address: dict[str, Any] | None = None,
    suggestions: list[dict[str, Any]] | None = None,
    session: str | None = None,
    phone: str = "13800000001",
    request_type: str = "complain",
) -> tuple[asyncpg.Record, Any]:
    """File an order the way the conversation service does; returns (order, intake result)."""
    if address is None and location:
        address = {"text": location, "area": "湖滨街道", "territorial_unit": "hubin"}
    async with svc.pool.acquire() as conn, conn.transaction():
        citizen = await citizens.for_identity(conn, "web", session or f"s-{next(_session_ids)}")
        order = await work_orders.create(
            conn,
            NewWorkOrder(
                citizen_id=citizen,
                conversation_id=None,
                source_message_id=None,
                channel="web",
                request_type=request_type,
                content=content,
                location=location,
                address=address,
                contact_phone=phone,
                suggestions=suggestions
                if suggestions is not None
                else [suggestion("municipal-works")],
            ),
            Actor("web", "citizen"),
            at,
        )
        intake = await svc.desk.dispatcher.intake(conn, order, at)
    return order, intake


async def make_user(
    svc: DeskService, username: str, role: str, unit: str | None = None
) -> auth.StaffUser:
    async with svc.pool.acquire() as conn:
        return await auth.create_user(conn, username, PASSWORD, role, unit)


class Api:
    """A logged-in staff member talking to the service over HTTP."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self.http = http
        self.base = base
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, headers=self._headers()
        ) as resp:
            data = await resp.json(content_type=None)
            return resp.status, data

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.call("POST", path, body if body is not None else {})


async def login(
    http: aiohttp.ClientSession, svc: DeskService, username: str, password: str = PASSWORD
) -> Api:
    async with http.post(
        svc.url + "/api/auth/login", json={"username": username, "password": password}
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return Api(http, svc.url, body["token"])


async def order_row(svc: DeskService, number: str) -> asyncpg.Record:
    async with svc.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)


async def event_kinds(svc: DeskService, order_id: int) -> list[str]:
    async with svc.pool.acquire() as conn:
        return [e["kind"] for e in await work_orders.events(conn, order_id)]


async def lights_of(svc: DeskService, order_id: int) -> list[tuple[str, str, int]]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT point, color, cycle FROM supervision_lights WHERE work_order_id = $1 ORDER BY id",
            order_id,
        )
    return [(r["point"], r["color"], r["cycle"]) for r in rows]


def scheduler_for(ctx: Context, *, lease_seconds: float | None = None) -> Scheduler:
    """A scheduler that runs every job kind of the service's context (the test drives it)."""
    return Scheduler(
        ctx.pool,
        ctx.clock,
        ctx.job_handlers(),
        lease_seconds=lease_seconds or ctx.settings.job_lease_seconds,
    )
