"""Storage: migrations, request numbers, the append-only history and the status it implies."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from services.config import DEFAULT_UNITS_FILE
from services.core.clock import CHINA_TZ
from services.core.unit_directory import UnitDirectoryError, load_units
from services.orders import states
from services.storage import citizens, db, work_orders
from services.storage.work_orders import BOT, Actor, NewWorkOrder

SHARED_UNITS = Path(__file__).resolve().parents[2] / "shared" / "spec" / "linked_units.yaml"


def test_unit_directory_has_the_64_shared_units():
    units = load_units(DEFAULT_UNITS_FILE)
    assert len(units) == 64
    if SHARED_UNITS.exists():
        shared = yaml.safe_load(SHARED_UNITS.read_text(encoding="utf-8"))["units"]
        assert units.codes == [u["code"] for u in shared]


def test_bad_unit_directory_is_a_clear_error(tmp_path):
    path = tmp_path / "units.yaml"
    path.write_text("units:\n  - {code: a, name: A}\n  - {code: a, name: B}\n", encoding="utf-8")
    with pytest.raises(UnitDirectoryError, match="appears twice"):
        load_units(path)


async def test_migrations_apply_once(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        assert await db.apply_migrations(conn) == []  # the template already has them all
        versions = [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ]
        assert versions == [n for n, _ in db.migration_files()]
        assert (
            await conn.fetchval("SELECT extname FROM pg_extension WHERE extname = 'vector'")
            == "vector"
        )
    finally:
        await conn.close()


async def _order(conn, at: datetime) -> asyncpg.Record:
    citizen = await citizens.for_identity(conn, "web", f"s-{at.timestamp()}")
    async with conn.transaction():
        return await work_orders.create(
            conn,
            NewWorkOrder(
                citizen, None, None, "web", "complain", "路灯不亮", "八七路", None, "13800000000"
            ),
            Actor("web", "citizen"),
            at,
        )


async def test_request_numbers_are_dated_and_sequential(conn):
    day = datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ)
    numbers = [(await _order(conn, day + timedelta(minutes=i)))["request_number"] for i in range(3)]
    assert numbers == ["20261123-0001", "20261123-0002", "20261123-0003"]
    late = await _order(conn, datetime(2026, 11, 23, 23, 59, tzinfo=CHINA_TZ))
    assert late["request_number"] == "20261123-0004"
    next_day = await _order(conn, datetime(2026, 11, 24, 0, 1, tzinfo=CHINA_TZ))
    assert next_day["request_number"] == "20261124-0001"


async def test_history_is_append_only_and_status_follows_from_it(conn):
    at = datetime(2026, 11, 23, 9, 0, tzinfo=CHINA_TZ)
    order = await _order(conn, at)
    async with conn.transaction():
        await work_orders.record_event(
            conn, order["id"], "dispatched", BOT, at, lead_unit="municipal-works"
        )
        await work_orders.record_event(
            conn, order["id"], "signed", Actor("u1", "unit"), at, unit="municipal-works"
        )
    with pytest.raises(states.TransitionError):
        async with conn.transaction():
            await work_orders.record_event(conn, order["id"], "revisit_satisfied", BOT, at)
    history = await work_orders.events(conn, order["id"])
    assert [e["kind"] for e in history] == ["filed", "dispatched", "signed"]
    current = await conn.fetchval("SELECT status FROM work_orders WHERE id = $1", order["id"])
    assert current == states.replay([e["kind"] for e in history]) == states.SIGNED
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute(
            "UPDATE work_order_events SET note = 'x' WHERE work_order_id = $1", order["id"]
        )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM work_order_events WHERE work_order_id = $1", order["id"])


def test_state_machine_rejects_impossible_steps():
    assert (
        states.replay(
            ["filed", "dispatched", "signed", "contacted", "resolved", "revisit_satisfied"]
        )
        == states.CLOSED
    )
    with pytest.raises(states.TransitionError):
        states.replay(["filed", "signed"])
    with pytest.raises(states.TransitionError):
        states.replay(["dispatched"])
    with pytest.raises(states.TransitionError):
        states.next_status(states.DISPATCHED, "no_such_event")


async def test_phone_links_one_citizen_across_channels(conn):
    web = await citizens.for_identity(conn, "web", "session-a")
    sms = await citizens.for_identity(conn, "sms", "+8613859901234")
    assert web != sms
    sms = await citizens.attach_phone(conn, sms, "13859901234")
    merged = await citizens.attach_phone(conn, web, "13859901234")
    assert merged == sms
    assert await citizens.for_identity(conn, "web", "session-a") == sms
