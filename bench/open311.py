"""Open311 and /metrics bench: how long filing and following a request through GeoReport v2
take end to end on loopback (form reading, NLU, work order, dispatch intake, JSON), one client
at a time and many at once, and how long a /metrics scrape takes.

    python bench/open311.py [--requests 50] [--concurrent 20] [--scrapes 20]
                            [--out bench/results/open311.json]

Runs in a temporary database on the configured server (DATABASE_URL, or the embedded one in
HOTLINE_DATA_DIR), dropped afterwards; the NLU as the settings say (HOTLINE_EMBEDDINGS=0 for
the n-gram model). The machine's load average is written beside the figures: on a shared
machine they vary with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from channels import open311_keys  # noqa: E402
from channels.open311_services import service_code  # noqa: E402
from services.app import build_context, create_app  # noqa: E402
from services.cli.kb_tools import temporary_database  # noqa: E402
from services.config import Settings  # noqa: E402
from tests.support.loopback import serve_on_loopback  # noqa: E402

# (category, description, place): matters of several units, as apps would file them
MATTERS = [
    ("路灯不亮", "长福路口的路灯不亮了，晚上很黑", "湖滨街道长福路"),
    ("占道经营", "宝岛路菜市场门口流动摊贩占道经营，车辆无法通行", "凤里街道宝岛路"),
    ("垃圾清运不及时", "小区门口的垃圾三天没人清运，臭味很大", "灵秀镇钞坑村"),
    ("餐饮油烟污染", "楼下烧烤店油烟直接排到居民楼", "湖滨街道长福路"),
    ("停水", "我们小区从早上开始停水，没有通知", "凤里街道新华路"),
]


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 1),
        "max_ms": round(ms[-1], 1),
    }


async def timed(samples: list[float], coro):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    result = await coro
    samples.append((time.perf_counter() - started) * 1000)
    return result


async def file_one(http: aiohttp.ClientSession, url: str, key: str, i: int) -> str:
    category, description, place = MATTERS[i % len(MATTERS)]
    form = {
        "api_key": key,
        "service_code": service_code(category),
        "description": f"{description}（{i}）",
        "address_string": place,
        "phone": f"138{60000000 + i:08d}",
    }
    async with http.post(f"{url}/open311/v2/requests.json", data=form) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body[0]["service_request_id"]


async def get(http: aiohttp.ClientSession, url: str, path: str) -> None:
    async with http.get(url + path) as resp:
        await resp.read()
        assert resp.status == 200, path


async def run(args: argparse.Namespace) -> dict:
    base = Settings.from_env().with_overrides(scheduler_enabled=False)
    out: dict = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": round(os.getloadavg()[0], 1)},
        "nlu_embeddings": base.use_embeddings,
    }
    async with temporary_database(base) as dsn:
        settings = base.with_overrides(database_url=dsn)
        ctx = await build_context(settings)
        runner, url = await serve_on_loopback(create_app(settings, context=ctx))
        try:
            async with ctx.pool.acquire() as conn:
                key = await open311_keys.add(conn, "bench", ctx.clock.now())
            async with aiohttp.ClientSession() as http:
                await file_one(http, url, key, 99_999)  # warm-up: first NLU calls, pools
                samples: list[float] = []
                numbers = [
                    await timed(samples, file_one(http, url, key, i)) for i in range(args.requests)
                ]
                out["post_request_one_at_a_time"] = summary(samples)
                samples = []
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        timed(samples, file_one(http, url, key, 1000 + i))
                        for i in range(args.concurrent)
                    )
                )
                elapsed = time.perf_counter() - started
                out["post_request_concurrent"] = {
                    **summary(samples),
                    "clients": args.concurrent,
                    "requests_per_s": round(args.concurrent / elapsed, 1),
                }
                for name, path in (
                    ("get_request", lambda i: f"/open311/v2/requests/{numbers[i]}.json"),
                    ("get_requests_list", lambda i: "/open311/v2/requests.json"),
                    ("get_services", lambda i: "/open311/v2/services.json"),
                    ("metrics_scrape", lambda i: "/metrics"),
                ):
                    samples = []
                    for i in range(args.scrapes):
                        await timed(samples, get(http, url, path(i % len(numbers))))
                    out[name] = summary(samples)
            async with ctx.pool.acquire() as conn:
                out["work_orders"] = dict(
                    await conn.fetch(
                        "SELECT status, count(*) FROM work_orders GROUP BY status ORDER BY 1"
                    )
                )
        finally:
            await runner.cleanup()
            await ctx.pool.close()
    out["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "open311.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
