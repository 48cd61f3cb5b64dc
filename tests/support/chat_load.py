"""Chat traffic with faults in the middle, and what must hold afterwards (bench/load.py at
full size, tests/test_faults.py small).

Each simulated citizen is an aiohttp client that files complaints over the web chat's HTTP
API, three messages an order (the complaint, a phone number, the confirmation), with a
pause between messages as a person typing. It talks to one service process (its "home"),
and behaves as the widget should:

* 200: the answer; now and then (`resend_share`) the same message is sent again with its
  client_message_id, as a widget does when it missed an answer, and that answer is kept too;
* 503 with a JSON body and Retry-After: wait that long, send the same message again;
* 429: the same, after Retry-After;
* the process cannot be reached (refused, connection dropped: SIGKILL): send the same
  message to the other process;
* anything else (a 500, a 503 without JSON or Retry-After, no answer within
  `request_timeout`) is a failure of the service, counted and reported.

Every attempt is kept with its times, so the figures can be cut before, during and after the
faults, and every answer is checked against the database afterwards (`check_invariants`).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

COMPLAINTS = [
    "我要投诉，湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户，天天呛得不行",
    "新华路的井盖丢了，晚上很危险，请尽快处理",
    "宝盖镇菜市场门口的路灯坏了一个星期了，晚上很黑",
    "灵秀镇有工地半夜还在施工，噪音太大睡不着",
    "凤里街道小区垃圾好几天没人清运，臭气熏天",
]

OK, REFUSED, RATE_LIMITED, UNREACHABLE, BAD, HANG = (
    "ok",
    "refused_503",
    "rate_limited_429",
    "unreachable",
    "bad",
    "hang",
)


@dataclass
class Attempt:
    sent: float  # time.monotonic()
    done: float
    outcome: str
    status: int | None = None
    process: int = 0
    detail: str = ""


@dataclass
class Message:
    session: str
    client_message_id: str
    text: str
    attempts: list[Attempt] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # every 200 body
    resent: bool = False  # sent again on purpose after its 200

    @property
    def answered(self) -> dict[str, Any] | None:
        return self.answers[0] if self.answers else None


@dataclass
class Traffic:
    """`sessions` citizens over `urls` (session i's home is urls[i % len(urls)])."""

    urls: list[str]
    sessions: int
    think_s: tuple[float, float] = (1.0, 3.0)
    resend_share: float = 0.05
    request_timeout: float = 30.0
    give_up_after_s: float = 120.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    messages: list[Message] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    def session_prefix(self) -> str:
        return f"load-{self.run_id}-"

    async def run(self, stop: asyncio.Event) -> None:
        """Every citizen until `stop` is set (a message under way is finished first)."""
        self.started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(self._citizen(http, i, stop) for i in range(self.sessions)))
        self.stopped = time.monotonic()

    async def _citizen(self, http: aiohttp.ClientSession, i: int, stop: asyncio.Event) -> None:
        rng = random.Random(i)
        # spread the first messages over the first pause, not all at once
        await asyncio.sleep(rng.uniform(0, self.think_s[1]))
        k = 0
        while not stop.is_set():
            session = f"{self.session_prefix()}{i}-{k}"
            flow = (COMPLAINTS[(i + k) % len(COMPLAINTS)], f"1385990{(i * 7 + k) % 10000:04d}")
            for text in (*flow, "确认"):
                if stop.is_set():
                    return
                msg = await self._send(http, Message(session, uuid.uuid4().hex, text), i)
                if msg.answered is None:
                    break  # gave up on this conversation: a new one
                if rng.random() < self.resend_share:
                    msg.resent = True
                    await self._send(http, msg, i)
                await asyncio.sleep(rng.uniform(*self.think_s))
            k += 1

    async def _send(self, http: aiohttp.ClientSession, msg: Message, home: int) -> Message:
        """Until one 200 more, or until it is time to give up."""
        if not msg.attempts:
            self.messages.append(msg)
        wanted = len(msg.answers) + 1
        process = home % len(self.urls)
        first = time.monotonic()
        payload = {"session_id": msg.session, "client_message_id": msg.client_message_id}
        payload["text"] = msg.text
        while len(msg.answers) < wanted and time.monotonic() - first < self.give_up_after_s:
            sent = time.monotonic()
            wait = 0.0
            try:
                async with http.post(
                    self.urls[process] + "/api/chat/messages",
                    json=payload,
                    timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                ) as resp:
                    raw = await resp.read()
                    status, headers = resp.status, resp.headers
                outcome, detail, body = _judge(status, headers, raw)
                if outcome == OK:
                    msg.answers.append(body)
                elif outcome in (REFUSED, RATE_LIMITED):
                    wait = float(headers["Retry-After"])
                else:
                    wait = 1.0
            except TimeoutError:
                outcome, status, detail = HANG, None, f"no answer in {self.request_timeout:g} s"
            except aiohttp.ClientConnectionError as exc:
                # refused, or dropped mid-request (SIGKILL): the other process
                outcome, status, detail = UNREACHABLE, None, type(exc).__name__
                process = (process + 1) % len(self.urls)
                wait = 0.2
            msg.attempts.append(Attempt(sent, time.monotonic(), outcome, status, process, detail))
            if wait:
                await asyncio.sleep(wait)
        return msg


def _judge(status: int, headers: Any, raw: bytes) -> tuple[str, str, dict[str, Any]]:
    import json

    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict):
        return OK, "", body
    is_error = isinstance(body, dict) and "error" in body and "reason" in body
    if status == 503 and is_error and headers.get("Retry-After", "").isdigit():
        return REFUSED, body["error"], body
    if status == 429 and is_error and headers.get("Retry-After", "").isdigit():
        return RATE_LIMITED, body["error"], body
    return BAD, f"{status}: {raw[:300].decode(errors='replace')}", {}


# -- figures ------------------------------------------------------------------------------


@dataclass
class Timeline:
    """When the faults happened (time.monotonic()), for cutting the figures."""

    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (share 0.99: p99) the load benches report; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _pct(values: list[float], share: float) -> float | None:
    """percentile() of seconds, in milliseconds."""
    p = percentile(values, share)
    return None if p is None else round(1000 * p, 1)


def figures(traffic: Traffic, fault_start: float, fault_end: float) -> dict[str, Any]:
    """Messages/s and latencies before the first fault, during the faults (from the first
    one until everything serves again), and after; every attempt's outcome."""
    phases = {
        "before": (traffic.started, fault_start),
        "during": (fault_start, fault_end),
        "after": (fault_end, traffic.stopped),
    }
    out: dict[str, Any] = {}
    for name, (lo, hi) in phases.items():
        answered = []  # time from the first attempt to the first 200: what a citizen waits
        request_ms = []  # one request that got a 200
        outcomes: Counter[str] = Counter()
        for msg in traffic.messages:
            ok = [a for a in msg.attempts if a.outcome == OK]
            for a in msg.attempts:
                if lo <= a.sent < hi:
                    outcomes[a.outcome] += 1
                    if a.outcome == OK:
                        request_ms.append(a.done - a.sent)
            if ok and lo <= ok[0].done < hi:
                answered.append(ok[0].done - msg.attempts[0].sent)
        seconds = max(hi - lo, 1e-9)
        out[name] = {
            "seconds": round(seconds, 1),
            "messages_answered": len(answered),
            "messages_per_s": round(len(answered) / seconds, 1),
            "message_latency_ms": {"p50": _pct(answered, 0.5), "p99": _pct(answered, 0.99)},
            "request_latency_ms": {"p50": _pct(request_ms, 0.5), "p99": _pct(request_ms, 0.99)},
            "attempts": dict(outcomes),
        }
    everything: Counter[str] = Counter(a.outcome for m in traffic.messages for a in m.attempts)
    out["all"] = {
        "seconds": round(traffic.stopped - traffic.started, 1),
        "messages": len(traffic.messages),
        "messages_answered": sum(1 for m in traffic.messages if m.answers),
        "messages_given_up": sum(1 for m in traffic.messages if not m.answers),
        "resent_on_purpose": sum(1 for m in traffic.messages if m.resent),
        "orders_filed": len({m.answered["request_number"] for m in traffic.messages if _number(m)}),
        "attempts": dict(everything),
        "failures": _failures(traffic),
    }
    return out


def _number(msg: Message) -> str | None:
    return msg.answered.get("request_number") if msg.answered else None


def _failures(traffic: Traffic, keep: int = 10) -> list[str]:
    """What the service must never do: a 500 or another non-JSON answer, or a hang."""
    found = [
        f"{a.outcome} {a.detail}"
        for m in traffic.messages
        for a in m.attempts
        if a.outcome in (BAD, HANG)
    ]
    return found[:keep] + ([f"... {len(found) - keep} more"] if len(found) > keep else [])


def latency_summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": round(1000 * statistics.median(values), 1) if values else None,
        "p99": _pct(values, 0.99),
    }


# -- the invariants -----------------------------------------------------------------------


async def check_invariants(dsn: str, traffic: Traffic) -> dict[str, Any]:
    """Checked against the database after the run; each list names what broke (empty: held).

    * every message that got a 200 is stored exactly once, as the message the answer named,
      and the bot's replies to it exactly once, the ones the answer gave;
    * every filed order has one request number (unique) and exactly one `filed` event, and
      every request number a citizen was given is the order filed from that message;
    * every client_message_id answered more than once got the same answer each time.
    """
    conn = await asyncpg.connect(dsn)
    try:
        inbound = await conn.fetch(
            """SELECT c.session_key, m.client_message_id, m.id
               FROM messages m JOIN conversations c ON c.id = m.conversation_id
               WHERE c.channel = 'web' AND m.direction = 'in' AND c.session_key LIKE $1""",
            traffic.session_prefix() + "%",
        )
        replies = await conn.fetch(
            """SELECT m.reply_to, m.text FROM messages m
               JOIN conversations c ON c.id = m.conversation_id
               WHERE c.channel = 'web' AND m.direction = 'out' AND m.reply_to IS NOT NULL
                 AND c.session_key LIKE $1 ORDER BY m.id""",
            traffic.session_prefix() + "%",
        )
        orders = await conn.fetch(
            """SELECT o.id, o.request_number, o.source_message_id,
                      (SELECT count(*) FROM work_order_events e
                       WHERE e.work_order_id = o.id AND e.kind = 'filed') AS filed_events
               FROM work_orders o"""
        )
    finally:
        await conn.close()

    stored: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in inbound:
        stored[(row["session_key"], row["client_message_id"])].append(row["id"])
    replies_of: dict[int, list[str]] = defaultdict(list)
    for row in replies:
        replies_of[row["reply_to"]].append(row["text"])
    by_number: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in orders:
        by_number[row["request_number"]].append(row)

    broken: dict[str, list[str]] = defaultdict(list)
    for msg in traffic.messages:
        key = (msg.session, msg.client_message_id)
        ids = stored.get(key, [])
        if not msg.answers:
            if len(ids) > 1:
                broken["stored_more_than_once"].append(f"{key}: {ids}")
            continue
        answer = msg.answers[0]
        if ids != [answer["message_id"]]:
            broken["not_stored_exactly_once"].append(f"{key}: answer {answer['message_id']}, {ids}")
            continue
        if replies_of.get(answer["message_id"], []) != answer["replies"]:
            broken["replies_not_stored_as_answered"].append(
                f"{key}: {answer['replies']} vs {replies_of.get(answer['message_id'])}"
            )
        for later in msg.answers[1:]:
            if _same(later) != _same(answer):
                broken["retry_answered_differently"].append(f"{key}: {answer} vs {later}")
        number = answer.get("request_number")
        if number:
            rows = by_number.get(number, [])
            if len(rows) != 1 or rows[0]["source_message_id"] != answer["message_id"]:
                broken["request_number_not_the_message_order"].append(f"{key}: {number}")
    for row in orders:
        if not row["request_number"]:
            broken["order_without_request_number"].append(str(row["id"]))
        if row["filed_events"] != 1:
            broken["order_filed_events_not_one"].append(f"{row['id']}: {row['filed_events']}")
    for number, rows in by_number.items():
        if number and len(rows) > 1:
            broken["request_number_shared"].append(number)
    return {
        "orders_in_database": len(orders),
        "messages_checked": sum(1 for m in traffic.messages if m.answers),
        "answered_more_than_once": sum(1 for m in traffic.messages if len(m.answers) > 1),
        "broken": {k: v[:10] for k, v in broken.items()},
        "broken_counts": {k: len(v) for k, v in broken.items()},
    }


def _same(answer: dict[str, Any]) -> tuple:
    """What a resent message must get again: the same message, replies and request number."""
    return (
        answer["message_id"],
        answer["conversation_id"],
        tuple(answer["replies"]),
        answer["request_number"],
    )


# -- the faults ---------------------------------------------------------------------------


@dataclass
class FaultPlan:
    """Seconds of steady traffic before the first fault, PostgreSQL's time down, the time
    between the database's return and the SIGKILL, and steady traffic after everything
    serves again."""

    before_s: float
    pg_down_s: float
    between_s: float
    after_s: float


@dataclass
class HealthProbe:
    """/healthz of each process every `every` seconds: what it says while the database is
    away, and when it says 200 again. Each answer keeps when it was asked and when it came,
    so an answer asked while the database was away but answered after it came back is not
    read as "healthy while down"."""

    urls: list[str]
    every: float = 0.5
    seen: list[tuple[float, float, int, int | None, str]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                for i, url in enumerate(self.urls):
                    status, error = None, ""
                    asked = time.monotonic()
                    try:
                        async with http.get(
                            url + "/healthz", timeout=aiohttp.ClientTimeout(total=5)
                        ) as resp:
                            status = resp.status
                            body = await resp.json(content_type=None)
                            error = body.get("error", "") if isinstance(body, dict) else ""
                    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                        error = type(exc).__name__
                    self.seen.append((asked, time.monotonic(), i, status, error))
                await asyncio.sleep(self.every)

    def first_ok_after(self, process: int, t: float) -> float | None:
        for _, when, i, status, _ in self.seen:
            if i == process and when >= t and status == 200:
                return when
        return None

    def answers_between(self, process: int, lo: float, hi: float) -> Counter[str]:
        """The answers asked and answered wholly within [lo, hi)."""
        return Counter(
            f"{status} {error}".strip()
            for asked, when, i, status, error in self.seen
            if i == process and lo <= asked and when < hi
        )


async def run_with_faults(
    cluster: Any,  # tests/support/pg_cluster.Cluster
    processes: list[Any],  # tests/support/fault_rig.ServeProcess, started and ready
    traffic: Traffic,
    plan: FaultPlan,
    timeline: Timeline,
    log: Any = print,
) -> HealthProbe:
    """Traffic on every process; in the middle PostgreSQL restarted once (fast shutdown,
    `pg_down_s` down, started on the same port), then the last process killed with SIGKILL
    and started again at once (as a supervisor would); traffic goes on until `after_s` past
    the moment every process answers /healthz 200 again."""
    stop = asyncio.Event()
    probe = HealthProbe([p.url for p in processes])
    victim = processes[-1]

    async def faults() -> None:
        try:
            await asyncio.sleep(plan.before_s)
            log("PostgreSQL: fast shutdown")
            timeline.mark("pg_stop")
            await asyncio.to_thread(cluster.stop)
            timeline.mark("pg_down")
            await asyncio.sleep(plan.pg_down_s)
            timeline.mark("pg_starting")
            await asyncio.to_thread(cluster.start)
            timeline.mark("pg_started")
            log("PostgreSQL: started again")
            await asyncio.sleep(plan.between_s)
            log(f"SIGKILL to the process on port {victim.port}")
            timeline.mark("kill")
            victim.kill()
            victim.start()
            await victim.wait_ready()
            timeline.mark("restarted")
            log(f"restarted on port {victim.port}")
            for process in processes:
                await process.wait_ready(timeout=120)
            timeline.mark("all_serving")
            await asyncio.sleep(plan.after_s)
        finally:
            stop.set()

    await asyncio.gather(traffic.run(stop), probe.run(stop), faults())
    return probe


def fault_report(
    traffic: Traffic, timeline: Timeline, probe: HealthProbe, invariants: dict[str, Any]
) -> dict[str, Any]:
    """The figures of one run with faults, and what the processes said while it happened."""
    marks = timeline.marks
    rel = {k: round(v - traffic.started, 1) for k, v in sorted(marks.items(), key=lambda x: x[1])}
    survivor = 0
    back = probe.first_ok_after(survivor, marks["pg_started"])
    return {
        "timeline_s": rel,
        "phases": figures(traffic, marks["pg_stop"], marks["all_serving"]),
        "healthz_of_the_surviving_process": {
            "while_postgresql_down": dict(
                probe.answers_between(survivor, marks["pg_down"], marks["pg_starting"])
            ),
            "200_again_after_postgresql_start_s": None
            if back is None
            else round(back - marks["pg_started"], 1),
        },
        "restart_after_sigkill_s": round(marks["restarted"] - marks["kill"], 1),
        "invariants": invariants,
    }
