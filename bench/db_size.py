"""Database size per work order, measured on orders that went through the real service, scaled
to a million; and how many orders a day one core files.

    python bench/db_size.py [--orders 2000] [--citizens 8]

Starts a PostgreSQL (the embedded wheel's binaries, tests/support/pg_cluster.py) and one
`hotline serve` process on it, then:

1. files `--orders` complaints through the web chat's HTTP API (each its own citizen and
   conversation, three to five turns: the complaint, the phone number, the confirmation),
   about 576 different place/problem pairs, so some are repeats as in real life; the service
   routes, files and dispatches them (those it cannot route wait for the desk);
2. has each dispatched order's unit sign for it, contact the citizen and resolve it (a unit
   handler account per unit), lets the scheduler post the revisit question into the chat, and
   the citizen answers it (1 = satisfied), which closes the order;
3. after VACUUM, the growth of the database and of every table: per order filed (after
   step 1), per order taken to the end (what step 2 added, per order handled, on top), and
   both scaled to 1,000,000 orders.

The service uses the test suite's models (the n-gram NLU, HOTLINE_EMBEDDINGS=0), or with
--embeddings the service's default (e5), with which resolved orders are also embedded for the
agents' similar cases. Writes bench/results/db_size.json (db_size-e5.json with --embeddings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.config import Settings  # noqa: E402
from services.core.unit_directory import load_units  # noqa: E402
from services.staff import accounts  # noqa: E402
from tests.support.agent import login  # noqa: E402
from tests.support.pg_cluster import remove, start_primary  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.serve_process import default_nlu_env, serve_env, serving  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "db_size.json"
AREAS = [
    "湖滨街道",
    "凤里街道",
    "灵秀镇",
    "宝盖镇",
    "蚶江镇",
    "祥芝镇",
    "鸿山镇",
    "永宁镇",
    "锦尚镇",
]
ROADS = ["长福路", "新华路", "八七路", "金山路", "振狮路", "石泉路", "宝岛路", "世纪大道"]
PROBLEMS = [
    "的路灯坏了好几天，晚上很黑",
    "的井盖丢了，很危险",
    "有家饭店油烟直排，熏得受不了",
    "的工地半夜施工，噪音太大睡不着",
    "的垃圾好几天没人清运，臭气熏天",
    "有人占道经营，流动摊贩把路堵了",
    "的下水道堵了，污水漫到路上",
    "路面塌陷了一个大坑，电动车摔了好几辆",
]
SIZES = """
    SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = 'public'
"""


def complaint(k: int) -> str:
    area, road, problem = next(
        itertools.islice(itertools.product(AREAS, ROADS, PROBLEMS), k % 576, None)
    )
    return f"我要投诉，{area}{road}{problem}"


async def say(http: aiohttp.ClientSession, url: str, session: str, text: str) -> dict:
    payload = {"session_id": session, "client_message_id": uuid.uuid4().hex, "text": text}
    async with http.post(url + "/api/chat/messages", json=payload) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 200, body
        return body


async def file_one(http: aiohttp.ClientSession, url: str, k: int) -> tuple[str, str | None]:
    """A citizen's complaint through to its request number (None if the dialogue went
    elsewhere); returns (session, request number)."""
    session = f"size-{k}-{uuid.uuid4().hex[:8]}"
    body = await say(http, url, session, complaint(k))
    for _ in range(4):
        if body.get("request_number"):
            return session, body["request_number"]
        replies = " ".join(body["replies"])
        if "请确认" in replies:  # the summary, which also names the phone: first
            body = await say(http, url, session, "确认")
        elif "电话" in replies:
            body = await say(http, url, session, f"1385990{k % 10000:04d}")
        elif "地点" in replies:
            body = await say(http, url, session, complaint(k).split("，")[1][:8])
        else:
            break
    return session, body.get("request_number")


async def measure(url: str, dsn: str, orders: int, citizens: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        for unit in load_units(Settings().units_file).codes:
            if not await conn.fetchval("SELECT 1 FROM users WHERE username = $1", f"h-{unit}"):
                await accounts.create_user(
                    conn, f"h-{unit}", accounts.DEMO_PASSWORD, accounts.UNIT_HANDLER, unit, unit
                )
        await conn.execute("VACUUM ANALYZE")
        before = {r["name"]: r["bytes"] for r in await conn.fetch(SIZES)}
        db_before = await conn.fetchval("SELECT pg_database_size(current_database())")

        numbers = itertools.count()
        filed: list[tuple[str, str]] = []
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:

            async def citizen() -> None:
                while (k := next(numbers)) < orders:
                    session, number = await file_one(http, url, k)
                    if number:
                        filed.append((session, number))

            await asyncio.gather(*(citizen() for _ in range(citizens)))
            filing_s = time.monotonic() - started
            await conn.execute("VACUUM ANALYZE")
            after_filing = {r["name"]: r["bytes"] for r in await conn.fetch(SIZES)}
            db_after_filing = await conn.fetchval("SELECT pg_database_size(current_database())")

            # the units handle what was dispatched to them
            rows = await conn.fetch(
                "SELECT request_number, lead_unit FROM work_orders WHERE status = 'dispatched'"
            )
            handlers: dict[str, Any] = {}
            for unit in {r["lead_unit"] for r in rows}:
                handlers[unit] = await login(http, url, f"h-{unit}")
            queue = iter(rows)

            async def unit_worker() -> None:
                for row in queue:
                    api, path = (
                        handlers[row["lead_unit"]],
                        f"/api/unit/orders/{row['request_number']}",
                    )
                    for action, body in (
                        ("sign", {}),
                        ("contact", {"note": "已电话联系市民，约定今天下午到现场"}),
                        ("resolve", {"result": "已派人到现场处理完毕，设施已修复，市民认可"}),
                    ):
                        status, answer = await api.post(f"{path}/{action}", body)
                        assert status == 200, (action, answer)

            await asyncio.gather(*(unit_worker() for _ in range(citizens)))
            # the scheduler posts each revisit question into the citizen's chat
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM scheduler_jobs WHERE done_at IS NULL "
                    "AND failed_at IS NULL AND run_at <= now() AND kind LIKE 'revisit%'"
                )
                if not waiting:
                    break
                await asyncio.sleep(1)
            sessions = iter(filed)

            async def answer_revisits() -> None:
                for session, _ in sessions:
                    await say(http, url, session, "1")

            await asyncio.gather(*(answer_revisits() for _ in range(citizens)))
        statuses = dict(
            await conn.fetch("SELECT status, count(*) FROM work_orders GROUP BY status")
        )
        await conn.execute("VACUUM ANALYZE")
        after = {r["name"]: r["bytes"] for r in await conn.fetch(SIZES)}
        db_after = await conn.fetchval("SELECT pg_database_size(current_database())")
        counts = dict(
            await conn.fetch(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 0"
            )
        )
    finally:
        await conn.close()

    n = len(filed)
    if not n:
        raise SystemExit("no order was filed: the dialogue went another way (see the service log)")
    handled = len(rows)
    tables = {
        name: {
            "bytes_per_order": round((after[name] - before.get(name, 0)) / n),
            "rows": counts.get(name, 0),
        }
        for name in after
        if after[name] - before.get(name, 0) > 0
    }
    per_order_filed = (db_after_filing - db_before) / n
    per_order_all = (db_after - db_before) / n
    # what handling, the revisit and closing add, per order that went through them
    per_order_closed = per_order_filed + (db_after - db_after_filing) / max(1, handled)
    return {
        "orders_asked": orders,
        "orders_filed": n,
        "orders_handled_by_units": handled,
        "statuses_at_end": statuses,
        "filing_seconds": round(filing_s, 1),
        "filing_orders_per_s": round(n / filing_s, 2),
        "bytes_per_order_filed": round(per_order_filed),
        "bytes_per_order_at_end": round(per_order_all),
        "bytes_per_order_closed": round(per_order_closed),
        "gb_per_million_orders_filed": round(per_order_filed * 1e6 / 1e9, 2),
        "gb_per_million_orders_closed": round(per_order_closed * 1e6 / 1e9, 2),
        "tables_growth": dict(sorted(tables.items(), key=lambda kv: -kv[1]["bytes_per_order"])),
        "after_filing_tables": {k: v - before.get(k, 0) for k, v in after_filing.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--citizens", type=int, default=8)
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="the service's default NLU (e5 embeddings): resolved orders are then embedded "
        "for the agents' similar cases too (work_order_embeddings)",
    )
    parser.add_argument("--nlu-dir", type=Path, default=Path("/tmp/hotline-bench-nlu-e5"))
    args = parser.parse_args()
    extra = default_nlu_env(args.nlu_dir) if args.embeddings else {}
    # a SIGTERM (timeout, kill) still stops the servers this started: ExitStack unwinds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hl-bench-size-", dir="/tmp"))
    work.chmod(0o755)
    try:
        with contextlib.ExitStack() as stack:
            primary = start_primary(work / "pg", free_port())
            stack.callback(remove, primary)
            dsn = primary.url("hotline")
            env = serve_env(dsn, work / "a", HOTLINE_SCHEDULER_POLL_SECONDS="0.5", **extra)
            url = stack.enter_context(serving(env))
            figures = asyncio.run(measure(url, dsn, args.orders, args.citizens))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["after_filing_tables"] = {
        k: v for k, v in figures["after_filing_tables"].items() if v > 0
    }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "shared": "measured under load: the machine was shared with other engineers' "
            "test runs at the same time",
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        **figures,
    }
    results_file = RESULTS.with_name("db_size-e5.json") if args.embeddings else RESULTS
    report["nlu"] = "e5 embeddings (int8 ONNX) + n-grams" if args.embeddings else "n-grams"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"written to {results_file.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
