"""Agent-assist bench: how long suggested replies take with 100,000 past resolved work orders.

    python bench/agent_suggest.py [--orders 100000] [--queries 200] [--out bench/results/agent_suggest.json]

Runs in a temporary database on the configured server (DATABASE_URL, or the embedded one),
dropped afterwards. The past orders are SYNTHETIC: 400 complaint texts recombined from real
kinds of 12345 requests are encoded with e5, and each order's vector is one of them plus a
little noise (renormalised), so the HNSW index holds 100,000 distinct vectors shaped like real
ones. One timed call is services.agent_suggest.suggest exactly as the API runs it: read the
conversation, knowledge-base candidates (e5 encoding and fusion), e5 encoding of the citizen's
words, pgvector HNSW search over the orders, templates, ranking. Every query text is
different, so no call is helped by the encoder's cache. Also timed: one round of the
background indexer (agent_suggest.OrderIndexer) when there is nothing new to embed, the cost
it takes off the request path. The machine's load average is recorded before and after: on a shared
2-core machine the tail depends on what else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.agents import suggest as agent_suggest  # noqa: E402
from services.cli.kb_tools import open_kb, temporary_database  # noqa: E402
from services.config import Settings  # noqa: E402
from services.core.clock import CHINA_TZ, FixedClock  # noqa: E402
from services.nlu_loading import load_embedder_from_settings  # noqa: E402

PLACES = [
    "长福路",
    "湖滨街道",
    "东城小区",
    "滨江公园",
    "人民医院门口",
    "第三中学",
    "火车站广场",
    "新华路",
]
PROBLEMS = [
    "路灯坏了晚上很黑",
    "餐馆油烟太大",
    "工地夜间施工噪音扰民",
    "下水道堵塞污水外溢",
    "垃圾好几天没人清运",
    "井盖丢失很危险",
    "占道经营堵塞交通",
    "违章搭建",
    "自来水停水没有通知",
    "小区电梯经常故障",
    "流浪狗伤人",
    "公交车不按站停靠",
    "树木倒伏挡路",
    "广场舞音响太吵",
]


def texts(count: int, rng: random.Random) -> list[str]:
    return [
        f"{rng.choice(PLACES)}{rng.choice(PROBLEMS)}，{rng.choice(['请尽快处理', '反映多次了', '希望有人管管'])}"
        for _ in range(count)
    ]


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 1)


def queries(count: int, rng: random.Random) -> list[str]:
    """What citizens say, each different (a house number), so no encoding is cached."""
    return [
        f"{rng.choice(PLACES)}{n + 1}号附近{rng.choice(PROBLEMS)}，{rng.choice(['怎么办', '麻烦处理一下'])}"
        for n in range(count)
    ]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "agent_suggest.json"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    settings = Settings.from_env()
    rng = random.Random(12345)
    embedder = load_embedder_from_settings(settings)
    base_texts = texts(400, rng)
    base = np.asarray(embedder.encode(base_texts), dtype=np.float32)
    clock = FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=CHINA_TZ))
    async with (
        temporary_database(settings) as dsn,
        open_kb(settings, dsn, embedder, demo=True) as kb,
    ):
        pool = kb.pool
        t0 = time.perf_counter()
        async with pool.acquire() as conn:
            citizen = await conn.fetchval("INSERT INTO citizens DEFAULT VALUES RETURNING id")
            await conn.execute(
                """INSERT INTO work_orders (request_number, citizen_id, channel, request_type, content,
                       status, created_at, updated_at)
                   SELECT 'B' || lpad(g::text, 8, '0'), $1, 'web', 'complain',
                          ($2::text[])[1 + g % 400], 'resolved', now(), now()
                   FROM generate_series(1, $3) g""",
                citizen,
                base_texts,
                args.orders,
            )
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM work_orders ORDER BY id")]
            noise = np.random.default_rng(1).normal(0, 0.02, (len(ids), base.shape[1]))
            vectors = base[(np.arange(len(ids)) + 1) % 400] + noise.astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            await conn.execute("DROP INDEX work_order_embeddings_hnsw")
            await conn.copy_records_to_table(
                "work_order_embeddings",
                records=[
                    (oid, vectors[i], f"已处理（合成结果 {oid}）", clock.now())
                    for i, oid in enumerate(ids)
                ],
                columns=["work_order_id", "embedding", "result", "indexed_at"],
            )
            t1 = time.perf_counter()
            await conn.execute("SET maintenance_work_mem = '512MB'")
            await conn.execute(
                """CREATE INDEX work_order_embeddings_hnsw ON work_order_embeddings
                   USING hnsw (embedding vector_cosine_ops)"""
            )
            t2 = time.perf_counter()
            await conn.execute("ANALYZE")
            convo_ids = []
            for n, q in enumerate(queries(args.queries, rng)):
                cid = await conn.fetchval(
                    """INSERT INTO conversations (channel, session_key, citizen_id, mode)
                       VALUES ('web', $1, $2, 'waiting_agent') RETURNING id""",
                    f"b-{n}",
                    citizen,
                )
                await conn.execute(
                    "INSERT INTO messages (conversation_id, direction, text) VALUES ($1, 'in', $2)",
                    cid,
                    q,
                )
                convo_ids.append(cid)
        indexer = agent_suggest.OrderIndexer(pool, embedder, clock)
        await indexer.run_once()  # warm-up
        index_times = []
        for _ in range(10):
            s = time.perf_counter()
            await indexer.run_once()
            index_times.append(time.perf_counter() - s)
        await agent_suggest.suggest(pool, kb, clock, convo_ids[0])  # warm-up
        times = []
        found = 0
        for cid in convo_ids[1:]:
            s = time.perf_counter()
            result = await agent_suggest.suggest(pool, kb, clock, cid)
            times.append(time.perf_counter() - s)
            found += any(x["source"] == "similar_order" for x in result["suggestions"])
    out = {
        "orders": args.orders,
        "queries": len(times),
        "embedding": getattr(embedder, "name", None),
        "embedding_backend": settings.embedding_backend,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "load_s": round(t1 - t0, 1),
        "hnsw_build_s": round(t2 - t1, 1),
        "p50_ms": _ms(times, 50),
        "p95_ms": _ms(times, 95),
        "p99_ms": _ms(times, 99),
        "max_ms": round(max(times) * 1000, 1),
        "with_similar_order": found,
        "target_p99_ms": 150,
        "indexer_idle_p50_ms": _ms(index_times, 50),
        "indexer_every_s": agent_suggest.INDEX_EVERY.total_seconds(),
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    Path(args.out).write_text(
        json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    asyncio.run(main())
