"""/metrics, request ids and structured logs: the real service on loopback, real PostgreSQL;
the scrape is read with Prometheus's own text parser."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from services.config import Settings
from services.core import logs
from services.http.client_address import LOOPBACK, client_address, parse_networks, within
from services.storage import jobs
from tests.support.chat import ChatClient, file_complaint
from tests.support.service import start_service

TOKEN = "metrics-token-0123456789"


async def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    """Every sample of the scrape as {(name, sorted labels): value}."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics", headers=headers or {}) as resp:
            text = await resp.text()
            assert resp.status == 200, text
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_when_citizens_chat_and_an_order_is_filed(service, conn):
    before = await scrape(service.url)
    client = ChatClient(service.url)
    result = await file_complaint(client)  # three chat messages, one order filed and dispatched
    await ChatClient(service.url).say("医保卡丢了怎么办")  # the knowledge base answers it
    after = await scrape(service.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chat = {"route": "/api/chat/messages", "method": "POST"}
    assert moved("hotline_http_requests_total", status="200", **chat) == 4
    assert moved("hotline_http_request_duration_seconds_count", **chat) == 4
    # the route's canonical path is the label, never the raw URL
    assert not any("request_number" in dict(k[1]).get("route", "") for k in after)
    assert moved("hotline_orders_filed_total", channel="web") == 1
    assert moved("hotline_orders_intake_total", decision="nlu") == 1
    assert moved("hotline_kb_questions_total", outcome="answered") == 1
    assert moved("hotline_kb_answer_seconds_count") == 1
    # each message parsed once, and the draft routed once before confirming
    assert moved("hotline_nlu_parse_seconds_count", engine="builtin") >= 4
    # the gauges read from the database at scrape time
    assert value(after, "hotline_dispatch_queue_orders", queue="dispatch") == 0
    assert value(after, "hotline_supervision_lights_open", point="sign_for", color="red") == 0
    order = await conn.fetchrow(
        "SELECT status FROM work_orders WHERE request_number = $1", result["request_number"]
    )
    assert order["status"] == "dispatched"
    # the process collector of prometheus-client is there too
    assert value(after, "process_cpu_seconds_total") > 0


async def test_queue_lights_and_scheduler_lag_are_read_at_scrape_time(service, conn, clock):
    from tests.support.desk import file_order

    svc = type("Svc", (), {"pool": service.ctx.pool, "desk": service.ctx.desk})()
    unsure = [{"code": "ecology", "probability": 0.4, "confident": False}]
    await file_order(svc, clock.now(), suggestions=unsure)
    await file_order(svc, clock.now(), suggestions=unsure)
    await jobs.enqueue(conn, "nothing_to_do", {}, clock.now() - timedelta(seconds=90))
    # a light as the scan raises it: the dispatch limit of an order still in the queue
    order_id = await conn.fetchval("SELECT min(id) FROM work_orders")
    await conn.execute(
        """INSERT INTO supervision_lights (work_order_id, point, color, cycle, raised_at)
           VALUES ($1, 'dispatch', 'yellow', 0, now())""",
        order_id,
    )
    samples = await scrape(service.url)
    assert value(samples, "hotline_dispatch_queue_orders", queue="dispatch") == 2
    assert value(samples, "hotline_dispatch_queue_orders", queue="arbitration") == 0
    assert value(samples, "hotline_supervision_lights_open", point="dispatch", color="yellow") == 1
    assert value(samples, "hotline_scheduler_lag_seconds") >= 90
    assert value(samples, "hotline_scheduler_due_jobs") >= 1


@pytest.fixture
async def guarded(settings: Settings, clock, nlu_engine):
    """The service with a metrics token and one allowed network."""
    running = await start_service(
        settings.with_overrides(metrics_token=TOKEN, metrics_allow=("203.0.113.0/24",)),
        clock,
        nlu_engine,
    )
    yield running
    await running.stop()


async def test_metrics_are_refused_to_others_and_open_to_the_token_and_allowed(guarded):
    url = guarded.url
    async with aiohttp.ClientSession() as http:
        # through the (trusted, loopback) proxy for an outside client: refused, as JSON
        outside = {"X-Forwarded-For": "198.51.100.7"}
        async with http.get(f"{url}/metrics", headers=outside) as resp:
            assert resp.status == 403
            body = await resp.json()
            assert body["error"] == "metrics_forbidden" and "loopback" in body["reason"]
            assert resp.headers["X-Request-Id"]
        wrong = {**outside, "Authorization": "Bearer not-the-token-at-all"}
        async with http.get(f"{url}/metrics", headers=wrong) as resp:
            assert resp.status == 403
        # the token opens it from anywhere
        async with http.get(
            f"{url}/metrics", headers={**outside, "Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            assert resp.status == 200
        # an address of HOTLINE_METRICS_ALLOW, and loopback itself
        async with http.get(f"{url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
            assert resp.status == 200
        async with http.get(f"{url}/metrics") as resp:
            assert resp.status == 200
        # a client cannot pass itself off as loopback by adding hops before the proxy's
        spoof = {"X-Forwarded-For": "127.0.0.1, 198.51.100.7"}
        async with http.get(f"{url}/metrics", headers=spoof) as resp:
            assert resp.status == 403


def test_client_address_believes_only_trusted_proxies():
    trusted = LOOPBACK
    # not through a proxy: the socket's address, whatever the header says
    assert str(client_address("198.51.100.7", "127.0.0.1", trusted)) == "198.51.100.7"
    # through nginx on loopback: the address nginx appended, the rightmost untrusted hop
    assert str(client_address("127.0.0.1", "10.9.9.9, 198.51.100.7", trusted)) == "198.51.100.7"
    assert str(client_address("::1", "2001:db8::5", trusted)) == "2001:db8::5"
    assert str(client_address("127.0.0.1", None, trusted)) == "127.0.0.1"
    assert client_address("127.0.0.1", "garbage", trusted) is None
    assert client_address(None, None, trusted) is None
    allowed = LOOPBACK + parse_networks("10.1.0.0/16, 192.0.2.4")
    assert within(client_address("10.1.200.3", None, trusted), allowed)
    assert within(client_address("192.0.2.4", None, trusted), allowed)
    assert not within(client_address("192.0.2.5", None, trusted), allowed)
    assert not within(None, allowed)
    with pytest.raises(ValueError, match="not an IP"):
        parse_networks("10.0.0.0/8, example.org")


def test_metrics_settings_are_read_and_checked():
    env = {
        "HOTLINE_METRICS_ALLOW": "10.0.0.5, 192.168.1.0/24",
        "HOTLINE_METRICS_TOKEN": TOKEN,
        "HOTLINE_LOG_FORMAT": "json",
    }
    s = Settings.from_env(env)
    assert s.metrics_allow == ("10.0.0.5/32", "192.168.1.0/24")
    assert s.metrics_token == TOKEN and s.log_format == "json"
    with pytest.raises(ValueError, match="HOTLINE_METRICS_TOKEN must be at least 16"):
        Settings.from_env({"HOTLINE_METRICS_TOKEN": "short"})
    with pytest.raises(ValueError, match="HOTLINE_METRICS_ALLOW"):
        Settings.from_env({"HOTLINE_METRICS_ALLOW": "localhost"})
    with pytest.raises(ValueError, match="HOTLINE_LOG_FORMAT"):
        Settings.from_env({"HOTLINE_LOG_FORMAT": "xml"})


async def test_request_id_is_in_every_log_line_and_in_the_response(service):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    handler = logs.configure("json")  # as `hotline serve` does with HOTLINE_LOG_FORMAT=json
    handler.setStream(stream)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{service.url}/api/chat/messages",
                json={"session_id": "s-log", "text": "x" * 5000},  # too long: refused
                headers={"X-Request-Id": "req-from-nginx-42"},
            ) as resp:
                assert resp.status == 413
                assert resp.headers["X-Request-Id"] == "req-from-nginx-42"
            async with http.get(f"{service.url}/healthz") as resp:
                generated = resp.headers["X-Request-Id"]
                assert len(generated) == 32
            # a caller's id that is not a sensible token is replaced
            async with http.get(
                f"{service.url}/healthz", headers={"X-Request-Id": "bad id\u00e9"}
            ) as resp:
                assert resp.headers["X-Request-Id"] != "bad id\u00e9"
        # a line written while handling a request carries its id
        token = logs.REQUEST_ID.set("req-inside")
        try:
            logging.getLogger("services.test").warning("inside a request")
        finally:
            logs.REQUEST_ID.reset(token)
        logging.getLogger("services.test").warning("outside any request")
    finally:
        root.removeHandler(handler)
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    inside = [x for x in lines if x["message"] == "inside a request"]
    outside = [x for x in lines if x["message"] == "outside any request"]
    assert inside[0]["request_id"] == "req-inside" and outside[0]["request_id"] == "-"
    assert all({"time", "level", "logger", "request_id", "message"} <= set(x) for x in lines)


def test_access_log_lines_carry_the_request_id_of_their_response():
    from aiohttp.test_utils import make_mocked_request

    from services.http.observe import AccessLogger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("test.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        request = make_mocked_request("GET", "/open311/v2/services.json?x=1")
        response = web.Response(status=200, headers={"X-Request-Id": "abc-123"})
        AccessLogger(logger, "").log(request, response, 0.0123)
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "abc-123"
    assert '"GET /open311/v2/services.json?x=1" 200 12.3 ms' in line["message"]


async def test_websockets_are_gauged_and_routes_labelled_by_their_pattern(service):
    # the metrics are the process's: other tests' requests count too, so deltas are compared
    ws_route = {"route": "/api/chat/ws"}
    open311 = {"route": "/open311/v2/requests/{id}.{format}", "method": "GET", "status": "404"}
    before = await scrape(service.url)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{service.url}/api/chat/ws") as ws:
            await ws.send_json({"type": "subscribe", "session_id": "s-ws-metrics"})
            samples = await scrape(service.url)
            assert (
                value(samples, "hotline_websocket_connections", **ws_route)
                == value(before, "hotline_websocket_connections", **ws_route) + 1
            )
        for _ in range(50):  # the handler ends just after the socket closes
            samples = await scrape(service.url)
            if value(samples, "hotline_websocket_connections", **ws_route) == value(
                before, "hotline_websocket_connections", **ws_route
            ):
                break
            await asyncio.sleep(0.05)
        assert value(samples, "hotline_websocket_connections", **ws_route) == value(
            before, "hotline_websocket_connections", **ws_route
        )
        for number in ("20990101-0001", "20990101-0002"):
            async with http.get(f"{service.url}/open311/v2/requests/{number}.json") as resp:
                assert resp.status == 404
        async with http.get(f"{service.url}/no/such/page") as resp:
            assert resp.status == 404
    after = await scrape(service.url)
    moved = value(after, "hotline_http_requests_total", **open311) - value(
        before, "hotline_http_requests_total", **open311
    )
    assert moved == 2
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "hotline_http_requests_total", **unmatched)
        - value(before, "hotline_http_requests_total", **unmatched)
        == 1
    )
