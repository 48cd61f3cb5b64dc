"""Throughput with one and two processes on the same cores, with fresh texts: NLU parses/s
and whole-chat messages/s, the thread settings before and after the thread plan
(docs/configuration.md#threads), and Rasa 3.6 on the same texts.

    python bench/throughput.py [--seconds 20] [--repeats 2] [--old-rev cd0222bf]
                               [--parts nlu,chat,rasa] [--rasa-models DIR]

Fresh texts: every text sent in the whole run is different (no encoder or profile cache can
serve one twice). They come from the held-out and blind files' texts (measuring on blind
texts is allowed; nothing here trains on them) and, past those, from joining the first clause
of one to another ("A，B"); the pool is shuffled with a fixed seed and each run takes the next
unused slice, so every run sees the same mix.

* NLU: separate OS processes, each loading the NLU as `hotline serve` does (the e5 int8
  encoder beside the n-grams) and parsing through the event loop's default executor
  (asyncio.to_thread, as the chat handler does) with 16 parses in flight, for 1 and for 2
  processes started together.
* chat: `hotline serve` processes (1 or 2) on one PostgreSQL, citizens posting to
  /api/chat/messages (sessions of three fresh messages), spread over the processes by the
  load generator itself (no nginx); the generator runs on the same cores.
* "whole_machine_each" (with --variants): this checkout with every process sized for all
  the cores (HOTLINE_NLU_THREADS=1: one parse at a time on every core), i.e. what a process
  count left out of the settings does.
* "old" is the code at --old-rev (before the thread plan, exported with `git archive`),
  "new" this checkout with HOTLINE_PROCESSES_PER_HOST set to the number of processes, and
  "new_half_share" one process of the two-process deployment (HOTLINE_PROCESSES_PER_HOST=2)
  running alone: what each process adds.
* Rasa: both servers of bench/nlu.py (rasa_servers); parses/s of its intents server alone
  and of a whole parse (both servers, nlu/rasa_engine.py), 16 in flight.

The machine may be shared: the 1-minute load average before and after every run is beside its
figure. Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu import cpu_of, pid_listening_on, postgres_pids  # noqa: E402
from bench.nlu import RasaUnavailable, rasa_servers  # noqa: E402
from services.config import Settings  # noqa: E402
from services.core.threads import ENV_CAPS  # noqa: E402
from tests.support.chat_load import percentile  # noqa: E402
from tests.support.pg_cluster import remove, start_primary  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.serve_process import default_nlu_env, serve_env, serving  # noqa: E402
from tests.support.service import EMBEDDING_MODEL_DIR  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "throughput.json"
SOURCES = [
    ROOT / "nlu" / "data" / "heldout.jsonl",
    ROOT / "nlu" / "data" / "heldout_conversation.jsonl",
    ROOT / "nlu" / "data" / "heldout_emergency.jsonl",
    ROOT / "tests" / "data" / "blind" / "routing.jsonl",
    ROOT / "tests" / "data" / "blind" / "emergency.jsonl",
    ROOT / "tests" / "data" / "blind" / "faq_queries.jsonl",
    ROOT / "tests" / "data" / "blind" / "dialogues.jsonl",
]
IN_FLIGHT = 16  # parses waiting per NLU process: many chat sessions at once
SESSION_MESSAGES = 3
# no per-address limit for the load generator (every citizen here is 127.0.0.1)
NO_LIMITS = {
    "HOTLINE_RATE_CHAT_ADDRESS": "1000000/minute",
    "HOTLINE_RATE_ADDRESS": "1000000/minute",
}


# -- fresh texts -----------------------------------------------------------------------------


def base_texts() -> list[str]:
    texts: list[str] = []
    for path in SOURCES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            texts.extend(row.get("turns") or [row.get("text") or row.get("query") or ""])
    seen: set[str] = set()
    return [t for t in (t.strip() for t in texts) if t and not (t in seen or seen.add(t))]


class FreshTexts:
    """Distinct texts, handed out once each: the base texts, then "first clause of A，B"."""

    def __init__(self, seed: int = 16) -> None:
        base = base_texts()
        rng = random.Random(seed)
        heads = [re.split(r"[，。,.！？!?\s]", t, maxsplit=1)[0][:20] for t in base]
        pool = set(base)
        while len(pool) < 400_000:
            text = f"{rng.choice(heads)}，{rng.choice(base)}"
            pool.add(text)
        self.pool = sorted(pool)
        rng.shuffle(self.pool)
        self.base = len(base)
        self.next = 0

    def take(self, n: int) -> list[str]:
        if self.next + n > len(self.pool):
            raise RuntimeError("out of fresh texts: lower --seconds")
        out = self.pool[self.next : self.next + n]
        self.next += n
        return out


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# -- the code trees: this checkout and the old one --------------------------------------------


@contextlib.contextmanager
def old_tree(rev: str) -> Iterator[Path]:
    """The code at `rev`, exported (no git worktree): the thread settings before the plan."""
    target = Path(tempfile.mkdtemp(prefix="hl-bench-old-", dir="/tmp"))
    try:
        archive = subprocess.run(
            ["git", "archive", rev], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)


def tree_env(tree: Path, settings: dict[str, str], nlu_env: dict[str, str]) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_") and k not in ENV_CAPS
    }
    env.update(nlu_env, PYTHONPATH=str(tree), HOTLINE_EMBEDDING_MODEL_DIR=str(EMBEDDING_MODEL_DIR))
    env.update(settings)  # the thread settings (ignored by the old code)
    return env


# -- NLU in separate processes ----------------------------------------------------------------

# Run with `python -c` inside either tree: it does what `hotline serve` does up to the parse.
_NLU_WORKER = r"""
import asyncio, json, os, sys, time
import services.cli  # the new code caps the native pools here, before numpy; the old does not
from services.config import Settings
from services.nlu_loading import load_builtin
settings = Settings.from_env()
engine = load_builtin(settings)
loop = asyncio.new_event_loop()
try:
    from services.config import thread_plan
    from services.core.threads import install_executor
    install_executor(loop, thread_plan(settings))
    executor = "plan"
except ImportError:  # the old code: Python's default executor (cores + 4 workers)
    executor = "default"
texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
warm, texts = texts[:20], texts[20:]
for t in warm:
    engine.parse(t)
print("ready", flush=True)
seconds = float(sys.stdin.readline())
it = iter(texts)
done = 0
async def one_session(stop):
    global done
    while time.perf_counter() < stop:
        text = next(it, None)
        if text is None:
            raise SystemExit("out of texts")
        await asyncio.to_thread(engine.parse, text)
        if time.perf_counter() <= stop:
            done += 1
async def main():
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(one_session(stop) for _ in range(IN_FLIGHT)))
t0, c0 = time.perf_counter(), time.process_time()
loop.run_until_complete(main())
elapsed = time.perf_counter() - t0
print(json.dumps({"parses": done, "seconds": round(elapsed, 2), "executor": executor,
                  "cpu_cores_used": round((time.process_time() - c0) / elapsed, 2),
                  "threads": len(os.listdir("/proc/self/task"))}), flush=True)
""".replace("IN_FLIGHT", str(IN_FLIGHT))


def nlu_run(
    tree: Path,
    processes: int,
    settings: dict[str, str],
    seconds: float,
    texts: FreshTexts,
    nlu_env: dict,
    work: Path,
) -> dict:
    per_process = int(seconds * 150) + 40  # more than a process can parse
    procs = []
    for _ in range(processes):
        file = work / f"texts-{uuid.uuid4().hex[:8]}.json"
        file.write_text(json.dumps(texts.take(per_process), ensure_ascii=False), encoding="utf-8")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _NLU_WORKER, str(file)],
                cwd=tree,
                env=tree_env(tree, settings, nlu_env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    try:
        for p in procs:  # every process loaded and warm before any starts
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"NLU worker failed: {line!r}")
        load_before = load1()
        for p in procs:
            p.stdin.write(f"{seconds}\n")
            p.stdin.flush()
        outs = [json.loads(p.stdout.readline()) for p in procs]
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
            p.wait()
    total = sum(o["parses"] / o["seconds"] for o in outs)
    return {
        "parses_per_s": round(total, 1),
        "per_process": outs,
        "load_1min_before": load_before,
        "load_1min_after": load1(),
    }


# -- whole chat through `hotline serve` -------------------------------------------------------


async def chat_load(
    urls: list[str],
    seconds: float,
    sessions: int,
    texts: FreshTexts,
    servers: list[int] | None = None,
    pg_data: Path | None = None,
) -> dict:
    """`servers`, `pg_data`: the service processes' ids and PostgreSQL's data directory, whose
    CPU over the measured seconds is reported beside this load generator's own."""
    out: dict[str, Any] = {"messages": 0, "errors": {}, "latencies": []}
    need = int(seconds * 150) + sessions * SESSION_MESSAGES * 4
    supply = iter(texts.take(need))

    async def citizen(http: aiohttp.ClientSession, url: str, stop: float, counted: bool) -> None:
        while time.monotonic() < stop:
            session = f"tp-{uuid.uuid4().hex[:12]}"
            for _ in range(SESSION_MESSAGES):
                payload = {
                    "session_id": session,
                    "client_message_id": uuid.uuid4().hex,
                    "text": next(supply),
                }
                started = time.monotonic()
                async with http.post(url + "/api/chat/messages", json=payload) as resp:
                    await resp.read()
                if time.monotonic() > stop or not counted:
                    break
                if resp.status != 200:
                    out["errors"][resp.status] = out["errors"].get(resp.status, 0) + 1
                    break
                out["latencies"].append(time.monotonic() - started)
                out["messages"] += 1

    connector = aiohttp.TCPConnector(limit=sessions + 4)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        warm_stop = time.monotonic() + 4
        await asyncio.gather(
            *(citizen(http, urls[i % len(urls)], warm_stop, False) for i in range(sessions))
        )
        load_before = load1()
        pg = postgres_pids(pg_data) if pg_data else []
        cpu0 = (cpu_of(servers or []), cpu_of(pg), time.process_time())
        started = time.monotonic()
        await asyncio.gather(
            *(citizen(http, urls[i % len(urls)], started + seconds, True) for i in range(sessions))
        )
        elapsed = time.monotonic() - started
        cpu1 = (cpu_of(servers or []), cpu_of(pg), time.process_time())
    lat = sorted(out["latencies"])
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    n = max(1, out["messages"])
    return {
        # cores used over the run and CPU ms per message answered, by whom: the service
        # processes, PostgreSQL, this load generator
        "cpu_cores_used": {
            who: round(u / elapsed, 2)
            for who, u in zip(("services", "postgresql", "load_generator"), used, strict=True)
        },
        "cpu_ms_per_message": {
            who: round(1000 * u / n, 2)
            for who, u in zip(("services", "postgresql", "load_generator"), used, strict=True)
        },
        "messages_per_s": round(out["messages"] / elapsed, 1),
        "messages": out["messages"],
        "errors": out["errors"],
        "latency_ms": {
            "p50": round(1000 * statistics.median(lat), 1) if lat else None,
            "p99": round(1000 * percentile(lat, 0.99), 1) if lat else None,
        },
        "sessions": sessions,
        "load_1min_before": load_before,
        "load_1min_after": load1(),
    }


def chat_run(
    tree: Path,
    processes: int,
    settings: dict[str, str],
    dsn: str,
    work: Path,
    seconds: float,
    sessions: int,
    texts: FreshTexts,
    nlu_env: dict,
    pg_data: Path | None = None,
) -> dict:
    with contextlib.ExitStack() as stack:
        urls = []
        for i in range(processes):
            env = serve_env(dsn, work / f"serve-{uuid.uuid4().hex[:6]}")
            env.update(tree_env(tree, settings, nlu_env), **NO_LIMITS)
            env.update(DATABASE_URL=dsn, HOTLINE_SCHEDULER="1" if i == 0 else "0")
            urls.append(stack.enter_context(serving(env, cwd=tree)))
        servers = [pid_listening_on(int(url.rsplit(":", 1)[1])) for url in urls]
        return asyncio.run(chat_load(urls, seconds, sessions, texts, servers, pg_data))


# -- Rasa ------------------------------------------------------------------------------------


def rasa_run(settings: Settings, models: Path, seconds: float, texts: FreshTexts) -> dict:
    from nlu.rasa_engine import RasaClient, RasaEngine

    try:
        with rasa_servers(settings, models) as (urls, info):
            intents = RasaClient(urls["intents"], timeout=30)
            engine = RasaEngine(urls["intents"], urls["routing"], timeout=30)
            try:
                for text in texts.take(20):  # warm both
                    engine.parse(text)
                info["intents_server_alone"] = _threaded_rate(intents.parse, seconds, texts)
                info["whole_parse_both_servers"] = _threaded_rate(engine.parse, seconds, texts)
            finally:
                intents.close()
                engine.close()
            info.pop("server_pids", None)
            return info
    except RasaUnavailable as exc:
        return {"available": False, "reason": str(exc)}


def _threaded_rate(call, seconds: float, texts: FreshTexts) -> dict:
    supply = iter(texts.take(int(seconds * 400)))
    counts = [0] * IN_FLIGHT
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            call(next(supply))
            if time.monotonic() <= stop:
                counts[i] += 1

    load_before = load1()
    started = time.monotonic()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(worker, range(IN_FLIGHT)))
    elapsed = time.monotonic() - started
    return {
        "parses_per_s": round(sum(counts) / elapsed, 1),
        "in_flight": IN_FLIGHT,
        "load_1min_before": load_before,
        "load_1min_after": load1(),
    }


# -- the report ------------------------------------------------------------------------------


def best(runs: list[dict], key: str) -> float:
    return max(r[key] for r in runs)


def summarise(part: dict, key: str) -> dict:
    """Per variant: the best and median of its runs; two processes over one (old, new) and
    over one process of the two-process deployment alone (new_half_share)."""

    def med(runs: list[dict]) -> float:
        return statistics.median(r[key] for r in runs)

    out: dict = {}
    for variant, by_n in part.items():
        out[variant] = {
            f"{n}_process{'es' if n == '2' else ''}": {"best": best(runs, key), "median": med(runs)}
            for n, runs in by_n.items()
        }
    for variant, by_n in part.items():
        if "1" in by_n and "2" in by_n:
            out[variant]["two_over_one_median"] = round(med(by_n["2"]) / med(by_n["1"]), 2)
    if "new_half_share" in part and "new" in part:
        half = part["new_half_share"]["1"]
        out["new"]["two_over_one_half_share_process_median"] = round(
            med(part["new"]["2"]) / med(half), 2
        )
    return out


def save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=32, help="chat citizens at once")
    parser.add_argument("--old-rev", default="cd0222bf", help="the code before the thread plan")
    parser.add_argument("--parts", default="nlu,chat,rasa")
    parser.add_argument(
        "--variants",
        default="old,new,new_half_share",
        help="also: whole_machine_each (every process sized for all the cores)",
    )
    parser.add_argument("--nlu-dir", type=Path, default=Path("/tmp/hotline-bench-throughput-nlu"))
    parser.add_argument(
        "--rasa-models",
        type=Path,
        default=Path.home() / ".cache" / "hotline-tests" / "rasa" / "ad70d59da4628cd3-920467d6",
        help="trained Rasa models (trained there when missing or stale, ~5 min)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    variants = set(args.variants.split(","))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    nlu_env = default_nlu_env(args.nlu_dir)  # trained once, here, if missing
    texts = FreshTexts()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "shared": "2 cores shared with other engineers' work; load averages beside runs",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "texts": {"base_distinct": texts.base, "pool": len(texts.pool)},
        "old_rev": args.old_rev,
    }
    work = Path(tempfile.mkdtemp(prefix="hl-bench-tp-", dir="/tmp"))
    work.chmod(0o755)
    try:
        with old_tree(args.old_rev) as old:
            # (variant, code, processes started, HOTLINE_PROCESSES_PER_HOST)
            one, two = {"HOTLINE_PROCESSES_PER_HOST": "1"}, {"HOTLINE_PROCESSES_PER_HOST": "2"}
            # each process sized for the whole machine: one parse at a time on every core
            whole = {"HOTLINE_PROCESSES_PER_HOST": "1", "HOTLINE_NLU_THREADS": "1"}
            configs = [
                (variant, tree, n, env)
                for variant, tree, n, env in [
                    ("old", old, 1, {}),
                    ("old", old, 2, {}),
                    ("new", ROOT, 1, one),
                    ("new", ROOT, 2, two),
                    # one process of the two-process deployment, alone: what one adds
                    ("new_half_share", ROOT, 1, two),
                    ("whole_machine_each", ROOT, 1, whole),
                    ("whole_machine_each", ROOT, 2, whole),
                ]
                if variant in variants
            ]
            if "nlu" in parts:
                nlu: dict = {}
                for r in range(args.repeats):
                    for variant, tree, n, env in configs:
                        run = nlu_run(tree, n, env, args.seconds, texts, nlu_env, work)
                        nlu.setdefault(variant, {}).setdefault(str(n), []).append(run)
                        save(args.out, {**results, "nlu": {"runs": nlu}})  # so far
                        print(f"nlu {variant} x{n} #{r + 1}: {run['parses_per_s']}/s "
                              f"(load {run['load_1min_before']})", flush=True)  # fmt: skip
                results["nlu"] = {"in_flight_per_process": IN_FLIGHT, "runs": nlu}
                results["nlu"]["summary"] = summarise(nlu, "parses_per_s")
            if "chat" in parts:
                primary = start_primary(work / "pg", free_port())
                try:
                    dsn = primary.url("hotline")
                    chat: dict = {}
                    for r in range(args.repeats):
                        for variant, tree, n, env in configs:
                            run = chat_run(
                                tree, n, env, dsn, work, args.seconds, args.sessions,
                                texts, nlu_env, primary.data,
                            )  # fmt: skip
                            chat.setdefault(variant, {}).setdefault(str(n), []).append(run)
                            save(args.out, {**results, "chat": {"runs": chat}})  # so far
                            print(f"chat {variant} x{n} #{r + 1}: {run['messages_per_s']} msg/s "
                                  f"p99 {run['latency_ms']['p99']} ms errors {run['errors']} "
                                  f"(load {run['load_1min_before']})", flush=True)  # fmt: skip
                    results["chat"] = {
                        "setup": "hotline serve x1 / x2 -> one PostgreSQL (unix socket); "
                        f"{args.sessions} citizens, {SESSION_MESSAGES} fresh messages a "
                        "session, posted straight to the processes (no nginx); e5 int8 NLU",
                        "runs": chat,
                        "summary": summarise(chat, "messages_per_s"),
                    }
                finally:
                    remove(primary)
        if "rasa" in parts:
            settings = Settings.from_env({"HOTLINE_DATA_DIR": str(work)})
            results["rasa"] = rasa_run(settings, args.rasa_models, args.seconds, texts)
            print(f"rasa: {json.dumps(results['rasa'], ensure_ascii=False)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["texts"]["used"] = texts.next
    save(args.out, results)
    for part in ("nlu", "chat"):
        if part in results:
            print(part, json.dumps(results[part]["summary"], indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
