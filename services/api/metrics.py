"""GET /metrics: the process's Prometheus metrics (services/core/metrics.py) in the text format.

Who may read them: loopback, the addresses and networks of HOTLINE_METRICS_ALLOW (the client
address as services/http/client_address.py reads it, through trusted proxies only), or anyone
with `Authorization: Bearer <HOTLINE_METRICS_TOKEN>`. Everyone else gets 403 with a JSON
reason. The gauges of what is stored (dispatch queue, scheduler lag, lit supervision lights)
are read from the database at scrape time (the lights at most once per light-scan interval),
with a statement timeout so a slow database makes a scrape keep the last values rather than
hang.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.config import Settings
from services.context import Context, context_of
from services.core import metrics
from services.core.errors import DatabaseUnavailable, Forbidden
from services.http.client_address import LOOPBACK, Network, of_request, parse_networks, within
from services.orders import states
from services.storage import jobs, lights, work_orders

log = logging.getLogger(__name__)

# The counts of the queues and of due jobs each match an index: milliseconds.
READ_TIMEOUT_MS = 2000
# Counting lit lights joins every light with its order: about 2 s with 1,000,000 open orders
# and 450,000 lights (bench/dispatch.py, the lights board). Lights only change when the scan
# runs or an order moves, so that count is read at most once per light-scan interval.
LIGHTS_TIMEOUT_MS = 8000


@dataclass
class LightsCache:
    read_at: float = -math.inf


_LIGHTS = web.AppKey("metrics_lights_cache", LightsCache)


def allowed_networks(settings: Settings) -> tuple[Network, ...]:
    return LOOPBACK + parse_networks(",".join(settings.metrics_allow))


def may_read(request: web.Request, settings: Settings) -> bool:
    """Whether this request may read the metrics (see the module's docstring)."""
    token = settings.metrics_token
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        if hmac.compare_digest(given.removeprefix("Bearer ").strip().encode(), token.encode()):
            return True
    trusted = parse_networks(",".join(settings.trusted_proxies))
    return within(of_request(request, trusted), allowed_networks(settings))


async def read_gauges(ctx: Context) -> None:
    """Set the queue and scheduler gauges, from one short read-only transaction."""
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL statement_timeout = {READ_TIMEOUT_MS}")
        for queue, n in (await work_orders.queue_lengths(conn)).items():
            metrics.DISPATCH_QUEUE.labels(queue=queue).set(n)
        due, oldest = await jobs.due_summary(conn, now)
    metrics.SCHEDULER_DUE.set(due)
    metrics.SCHEDULER_LAG.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


async def read_lights(ctx: Context, cache: LightsCache) -> None:
    """Set the lit-lights gauges, when the last count is older than a light-scan interval."""
    if time.monotonic() - cache.read_at < ctx.settings.light_scan_seconds:
        return
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL statement_timeout = {LIGHTS_TIMEOUT_MS}")
        lit = {(r["point"], r["color"]): r["n"] for r in await lights.lit_by_point(conn)}
    cache.read_at = time.monotonic()
    # every point and colour, so a light that went out reads 0 rather than its last count
    for point in (*states.CLOCK_POINTS, "returned", "dissatisfied"):
        for color in ("yellow", "red"):
            metrics.OPEN_LIGHTS.labels(point=point, color=color).set(lit.get((point, color), 0))


async def get_metrics(request: web.Request) -> web.Response:
    ctx = context_of(request)
    if not may_read(request, ctx.settings):
        raise Forbidden(
            "metrics are open to loopback, HOTLINE_METRICS_ALLOW and the metrics token only",
            code="metrics_forbidden",
        )
    for read in (read_gauges(ctx), read_lights(ctx, request.app[_LIGHTS])):
        try:
            await read
        except (asyncpg.PostgresError, OSError, TimeoutError, DatabaseUnavailable) as exc:
            metrics.METRICS_READ_ERRORS.inc()
            log.warning("metrics: database gauges could not be read: %s", exc)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app[_LIGHTS] = LightsCache()
    app.router.add_get("/metrics", get_metrics)
