"""Faults under traffic, small: bench/load.py's run at the size of a test (docs/load.md).

A PostgreSQL server of the test's own (so that it can be restarted), two real `hotline serve`
processes on it, and citizens filing complaints on both; in the middle PostgreSQL is
restarted (fast shutdown, a few seconds down, started on the same port), then one process is
killed with SIGKILL and started again. Then, from the clients and from the database:

* every answer was a 200, or a JSON 503 with Retry-After (or the killed process could not be
  reached): never a 500, never a request left hanging;
* every message that got a 200 is stored exactly once with the replies it was given, every
  order has one request number and one `filed` event, every resent client_message_id got
  the same answer;
* the surviving process said "database_unavailable" on /healthz while the database was
  away, came back by itself, and its live pushes (the LISTEN connection) work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.agent import agent_socket, login
from tests.support.chat_load import (
    BAD,
    HANG,
    OK,
    REFUSED,
    UNREACHABLE,
    FaultPlan,
    Timeline,
    Traffic,
    check_invariants,
    fault_report,
    run_with_faults,
)
from tests.support.fault_rig import ServeProcess, postgres_server
from tests.support.pg_cluster import Cluster
from tests.support.serve_process import serve_env

pytestmark = pytest.mark.faults

# documented settings, raised for many citizens from one loopback address (docs/load.md)
LOAD_LIMITS = {
    "HOTLINE_RATE_CHAT_SESSION": "120/minute",
    "HOTLINE_RATE_CHAT_ADDRESS": "100000/minute",
}


@dataclass
class Rig:
    cluster: Cluster
    a: ServeProcess  # runs the scheduler; survives
    b: ServeProcess  # killed and restarted


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(postgres_server())
        dsn = cluster.url("hotline")
        a = ServeProcess(serve_env(dsn, tmp_path / "a", **LOAD_LIMITS))
        b = ServeProcess(serve_env(dsn, tmp_path / "b", HOTLINE_SCHEDULER="0", **LOAD_LIMITS))
        for process in (a, b):
            stack.callback(process.stop)
            process.start()
        yield Rig(cluster, a, b)


async def _read_into(ws: aiohttp.ClientWebSocketResponse, frames: asyncio.Queue) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            frames.put_nowait(json.loads(msg.data))


async def test_postgres_restart_and_sigkill_under_traffic(rig: Rig):
    await asyncio.gather(rig.a.wait_ready(), rig.b.wait_ready())
    async with aiohttp.ClientSession() as http:
        # an agent's live socket on the surviving process, LISTENing before the restart
        agent = await login(http, rig.a.url, "agent")
        ws = await agent_socket(http, agent)
        # read all along: the client answers the server's heartbeat pings only while reading
        frames: asyncio.Queue[dict] = asyncio.Queue()
        reader = asyncio.create_task(_read_into(ws, frames))

        traffic = Traffic([rig.a.url, rig.b.url], sessions=40, think_s=(0.3, 1.0), resend_share=0.1)
        timeline = Timeline()
        probe = await run_with_faults(
            rig.cluster,
            [rig.a, rig.b],
            traffic,
            FaultPlan(before_s=8, pg_down_s=4, between_s=5, after_s=8),
            timeline,
        )
        invariants = await check_invariants(rig.cluster.url("hotline"), traffic)
        report = fault_report(traffic, timeline, probe, invariants)
        print(report)
        phases, everything = report["phases"], report["phases"]["all"]

        # only 200s, JSON 503s with Retry-After, and the killed process unreachable
        assert everything["failures"] == [], report
        assert set(everything["attempts"]) <= {OK, REFUSED, UNREACHABLE}, report
        assert BAD not in everything["attempts"] and HANG not in everything["attempts"]
        # the faults were felt: refusals while the database was away, the killed process
        assert phases["during"]["attempts"].get(REFUSED, 0) > 0, report
        assert phases["during"]["attempts"].get(UNREACHABLE, 0) > 0, report
        # traffic flowed before and after, on both processes after
        assert phases["before"]["messages_answered"] > 0, report
        assert phases["after"]["messages_answered"] > 0, report
        after = timeline.marks["all_serving"]
        served_after = {
            a.process
            for m in traffic.messages
            for a in m.attempts
            if a.outcome == OK and a.sent > after
        }
        assert served_after == {0, 1}, report
        assert everything["messages_given_up"] == 0, report
        assert everything["orders_filed"] > 0 and everything["resent_on_purpose"] > 0, report

        # the invariants, against the database
        assert invariants["broken"] == {}, report
        assert invariants["orders_in_database"] >= everything["orders_filed"], report

        # the surviving process: "database down" on /healthz, then back by itself
        health = report["healthz_of_the_surviving_process"]
        assert health["while_postgresql_down"], report
        assert all(k == "503 database_unavailable" for k in health["while_postgresql_down"])
        assert health["200_again_after_postgresql_start_s"] is not None, report

        # its LISTEN connection came back: a new handoff reaches the agent's socket
        session = f"after-faults-{traffic.run_id}"
        async with http.post(
            rig.a.url + "/api/chat/messages",
            json={"session_id": session, "client_message_id": "h1", "text": "我要转人工客服"},
        ) as resp:
            handoff = await resp.json()
            assert resp.status == 200 and handoff["mode"] == "waiting_agent", handoff
        convo = handoff["conversation_id"]
        # the hub re-listens with a backoff of up to 5 s; a loaded CI machine is slow
        deadline = time.monotonic() + 40
        while True:
            remaining = deadline - time.monotonic()
            try:
                got = await asyncio.wait_for(frames.get(), max(remaining, 0.01))
            except TimeoutError:
                listen = [
                    line
                    for line in rig.a.log_text().splitlines()
                    if any(
                        k in line for k in ("LISTEN", "listening", "agent event", "Task exception")
                    )
                ]
                raise AssertionError(
                    "the handoff never reached the agent's socket on process A; socket closed: "
                    f"{ws.closed}, reader done: {reader.done()}; its log:\n" + "\n".join(listen)
                ) from None
            if got.get("type") == "queue" and got["item"]["conversation_id"] == convo:
                break
        reader.cancel()
        await ws.close()

    for process in (rig.a, rig.b):
        assert "unhandled error" not in process.log_text(), process.log_tail()
