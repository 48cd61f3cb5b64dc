"""Where a chat message's CPU goes: the service built as `hotline serve` builds it (e5 int8
NLU, the demo knowledge base) on a PostgreSQL of its own, citizens' sessions of three fresh
messages sent straight to ConversationService.handle (no HTTP: bench/throughput.py measures
the whole request), and per message:

* CPU of this process (all threads) and of PostgreSQL (its server processes, from /proc);
* CPU per stage (thread time, nested stages subtracted): the parse (in the executor, as the
  handler runs it), dialogue acts, the knowledge base's ask, the dispatcher, and the rest of
  the event loop's work (asyncpg, the dialogue, JSON);
* database round trips: every query asyncpg sends (execute, fetch, fetchrow, fetchval,
  executemany) and every transaction, counted and timed, by statement.

    python bench/profile_chat.py [--sessions 60] [--in-flight 1] [--nlu-dir DIR]
                                 [--cprofile 30] [--out FILE] [--label NAME]

The machine may be shared: CPU times are the figures to compare; the load average is
written beside them. Writes bench/results/profile_chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.core.threads import cap_threads_from_env  # noqa: E402

os.environ.setdefault("HOTLINE_PROCESSES_PER_HOST", "1")
cap_threads_from_env()

import asyncpg  # noqa: E402

from bench.cpu import children_of, cpu_of, pid_listening_on  # noqa: E402
from bench.profile_parse import DEFAULT_NLU_DIR, Stages  # noqa: E402
from bench.throughput import SESSION_MESSAGES, FreshTexts  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "profile_chat.json"


class Queries:
    """Every statement asyncpg sends, counted and timed (wall) per normalised text."""

    METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.wall: dict[str, float] = defaultdict(float)
        self.total = 0
        self.transactions = 0

    def install(self) -> None:
        from asyncpg.transaction import Transaction

        for name in self.METHODS:
            original = getattr(asyncpg.Connection, name)
            setattr(asyncpg.Connection, name, self._wrap(original))
        start = Transaction.start

        async def counted_start(tx: Any) -> Any:
            self.transactions += 1
            return await start(tx)

        Transaction.start = counted_start

    def _wrap(self, original: Any) -> Any:
        queries = self

        async def timed(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            key = re.sub(r"\s+", " ", query).strip()[:110]
            started = time.perf_counter()
            try:
                return await original(conn, query, *args, **kwargs)
            finally:
                queries.count[key] += 1
                queries.total += 1
                queries.wall[key] += time.perf_counter() - started

        return timed

    def reset(self) -> None:
        self.count.clear()
        self.wall.clear()
        self.total = 0
        self.transactions = 0


def instrument(ctx: Any, stages: Stages) -> None:
    """Stages of a chat turn (services/conversation/service.py)."""
    convo = ctx.conversation
    engine = convo.nlu._engine  # under metrics.TimedEngine
    stages.patch(engine, "parse", "NLU parse")
    stages.patch(convo.acts, "classify", "dialogue acts")
    stages.patch(convo.kb, "ask", "knowledge base ask")
    stages.patch(convo.kb, "refer", "knowledge base refer")
    stages.patch(convo.dispatcher, "decide", "dispatcher decide")


async def run(args: argparse.Namespace, work: Path) -> dict:
    from services.app import build_context
    from services.config import Settings
    from services.conversation.service import Inbound
    from tests.support.pg_cluster import remove, start_primary
    from tests.support.processes import free_port
    from tests.support.service import EMBEDDING_MODEL_DIR

    primary = start_primary(work / "pg", free_port())
    try:
        postmaster = int((primary.data / "postmaster.pid").read_text().split()[0])
        settings = Settings(
            database_url=primary.url("hotline"),
            data_dir=work / "data",
            nlu_model_dir=args.nlu_dir,
            embedding_model_dir=EMBEDDING_MODEL_DIR,
            use_embeddings=True,
        )
        loop = asyncio.get_running_loop()
        from services.config import thread_plan
        from services.core.threads import install_executor

        install_executor(loop, thread_plan(settings))
        ctx = await build_context(settings)
        try:
            import nlu.emergency as emergency

            emergency.classifier(ctx.nlu.features.embedder)  # trained before timing
            texts = FreshTexts()
            queries = Queries()
            queries.install()
            stages = Stages()
            instrument(ctx, stages)

            async def session(supply: list[str]) -> list[dict]:
                key = f"pc-{uuid.uuid4().hex[:12]}"
                out = []
                for text in supply:
                    w0, q0 = time.perf_counter(), queries.total
                    result = await ctx.conversation.handle(
                        Inbound("web", key, text, uuid.uuid4().hex)
                    )
                    out.append(
                        {
                            "queries": queries.total - q0,
                            "wall": time.perf_counter() - w0,
                            "filed": result.request_number is not None,
                        }
                    )
                return out

            # warm-up: first-use costs (jieba, cpca, KB index, prepared statements)
            for _ in range(3):
                await session(texts.take(SESSION_MESSAGES))
            queries.reset()
            stages.reset()

            load_before = os.getloadavg()[0]
            pg_pids = children_of(postmaster)
            pg0, me0, loop0 = cpu_of(pg_pids), time.process_time(), time.thread_time()
            ru0 = resource.getrusage(resource.RUSAGE_THREAD)
            w0 = time.perf_counter()
            prof = None
            if args.cprofile:
                import cProfile

                # the event loop thread's CPU, not its waits
                prof = cProfile.Profile(time.thread_time)
                prof.enable()
            turns: list[dict] = []
            for start in range(0, args.sessions, args.in_flight):
                batch = min(args.in_flight, args.sessions - start)
                results = await asyncio.gather(
                    *(session(texts.take(SESSION_MESSAGES)) for _ in range(batch))
                )
                for r in results:
                    turns.extend(r)
            if prof is not None:
                prof.disable()
            wall = time.perf_counter() - w0
            me = time.process_time() - me0
            loop_cpu = time.thread_time() - loop0
            ru = resource.getrusage(resource.RUSAGE_THREAD)
            loop_sys = ru.ru_stime - ru0.ru_stime
            switches = (ru.ru_nvcsw - ru0.ru_nvcsw) + (ru.ru_nivcsw - ru0.ru_nivcsw)
            pg = cpu_of(children_of(postmaster)) - pg0
            load_after = os.getloadavg()[0]
            n = len(turns)
            parse_cpu = stages.incl_cpu.get("NLU parse", 0.0)
            per_msg = {
                "service_process_cpu_ms": round(1000 * me / n, 2),
                "event_loop_thread_cpu_ms": round(1000 * loop_cpu / n, 2),
                "event_loop_thread_system_cpu_ms": round(1000 * loop_sys / n, 2),
                "event_loop_context_switches": round(switches / n, 1),
                "executor_threads_cpu_ms": round(1000 * (me - loop_cpu) / n, 2),
                "postgresql_cpu_ms": round(1000 * pg / n, 2),
                "total_cpu_ms": round(1000 * (me + pg) / n, 2),
                "wall_ms": round(1000 * wall / n, 2),
                "parses": round(stages.calls.get("NLU parse", 0) / n, 2),
                "parse_cpu_ms": round(1000 * parse_cpu / n, 2),
                "queries": round(queries.total / n, 2),
                "transactions": round(queries.transactions / n, 2),
            }
            table = [
                {
                    "stage": name,
                    "cpu_ms": round(1000 * stages.self_cpu[name] / n, 3),
                    "calls_per_message": round(stages.calls[name] / n, 2),
                }
                for name in stages.order
                if stages.calls[name]
            ]
            by_query = [
                {
                    "query": q,
                    "per_message": round(c / n, 2),
                    "wall_ms_each": round(1000 * queries.wall[q] / c, 2),
                }
                for q, c in queries.count.most_common()
            ]
            summary = {
                "label": args.label,
                "messages": n,
                "sessions": args.sessions,
                "in_flight": args.in_flight,
                "filed_orders": sum(t["filed"] for t in turns),
                "load_1min": [round(load_before, 2), round(load_after, 2)],
                "per_message": per_msg,
                "stages": table,
                "queries": by_query,
            }
            print(f"{n} messages ({args.in_flight} sessions at once); load {load_before:.2f} -> "
                  f"{load_after:.2f}")  # fmt: skip
            for key, value in per_msg.items():
                print(f"  {key:34} {value}")
            print(f"\n{'stage (thread CPU, self)':40} {'ms/msg':>8} {'calls':>6}")
            for row in table:
                print(f"{row['stage']:40} {row['cpu_ms']:8.3f} {row['calls_per_message']:6.2f}")
            print(f"\n{'per msg':>7} {'ms each':>7}  query")
            for row in by_query:
                print(f"{row['per_message']:7.2f} {row['wall_ms_each']:7.2f}  {row['query']}")
            if prof is not None:
                import io
                import pstats

                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.cprofile)
                print(out.getvalue())
            return summary
        finally:
            await ctx.pool.close()
    finally:
        remove(primary)


async def run_http(args: argparse.Namespace, work: Path) -> dict:
    """The same sessions through `hotline serve` over loopback HTTP, one message at a time:
    CPU per message of the service process, of PostgreSQL and of this client."""
    import aiohttp

    from bench.throughput import NO_LIMITS
    from tests.support.pg_cluster import remove, start_primary
    from tests.support.processes import free_port
    from tests.support.serve_process import serve_env, serving

    primary = start_primary(work / "pg", free_port())
    try:
        postmaster = int((primary.data / "postmaster.pid").read_text().split()[0])
        env = serve_env(primary.url("hotline"), work / "serve")
        env.update(
            NO_LIMITS,
            HOTLINE_EMBEDDINGS="1",
            HOTLINE_NLU_MODEL_DIR=str(args.nlu_dir),
            HOTLINE_PROCESSES_PER_HOST="1",
        )
        with serving(env) as url:
            server = pid_listening_on(int(url.rsplit(":", 1)[1]))
            texts = FreshTexts()
            async with aiohttp.ClientSession() as http:

                async def session(supply: list[str]) -> int:
                    key = f"ph-{uuid.uuid4().hex[:12]}"
                    for text in supply:
                        body = {"session_id": key, "client_message_id": uuid.uuid4().hex,
                                "text": text}  # fmt: skip
                        async with http.post(url + "/api/chat/messages", json=body) as resp:
                            await resp.read()
                            assert resp.status == 200, resp.status
                    return len(supply)

                for _ in range(3):
                    await session(texts.take(SESSION_MESSAGES))
                load_before = os.getloadavg()[0]
                pg_pids = children_of(postmaster)
                s0, pg0, me0 = cpu_of([server]), cpu_of(pg_pids), time.process_time()
                w0 = time.perf_counter()
                n = 0
                for start in range(0, args.sessions, args.in_flight):
                    batch = min(args.in_flight, args.sessions - start)
                    done = await asyncio.gather(
                        *(session(texts.take(SESSION_MESSAGES)) for _ in range(batch))
                    )
                    n += sum(done)
                wall = time.perf_counter() - w0
                srv = cpu_of([server]) - s0
                pg = cpu_of(children_of(postmaster)) - pg0
                me = time.process_time() - me0
                load_after = os.getloadavg()[0]
        per_msg = {
            "service_process_cpu_ms": round(1000 * srv / n, 2),
            "postgresql_cpu_ms": round(1000 * pg / n, 2),
            "client_cpu_ms": round(1000 * me / n, 2),
            "total_cpu_ms": round(1000 * (srv + pg + me) / n, 2),
            "wall_ms": round(1000 * wall / n, 2),
        }
        print(f"HTTP: {n} messages ({args.in_flight} sessions at once); load "
              f"{load_before:.2f} -> {load_after:.2f}")  # fmt: skip
        for key, value in per_msg.items():
            print(f"  {key:34} {value}")
        return {
            "label": args.label,
            "mode": "http",
            "messages": n,
            "in_flight": args.in_flight,
            "load_1min": [round(load_before, 2), round(load_after, 2)],
            "per_message": per_msg,
        }
    finally:
        remove(primary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--in-flight", type=int, default=1, help="sessions at once")
    parser.add_argument("--nlu-dir", type=Path, default=DEFAULT_NLU_DIR)
    parser.add_argument("--cprofile", type=int, default=0, help="the event loop's top N")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="latest")
    parser.add_argument(
        "--http", action="store_true", help="through `hotline serve` over HTTP instead"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hl-bench-pc-", dir="/tmp"))
    work.chmod(0o755)
    try:
        summary = asyncio.run(run_http(args, work) if args.http else run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    existing = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    existing[args.label + (" http" if args.http else "")] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
