"""GET /metrics: the process's Prometheus metrics (services/core/metrics.py) in the text format.

Who may read them: loopback, the addresses and networks of HOTLINE_METRICS_ALLOW (the client
address as services/http/client_address.py reads it, through trusted proxies only), or anyone
with `Authorization: Bearer <HOTLINE_METRICS_TOKEN>`. Everyone else gets 403 with a JSON
reason. The gauges of what is stored (dispatch queue, lit supervision lights, scheduler lag)
are read from the database at scrape time, with a statement timeout so a slow database makes
a scrape keep the last values rather than hang.
"""

from __future__ import annotations

import hmac
import logging

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.config import Settings
from services.context import Context, context_of
from services.core import metrics
from services.core.errors import Forbidden
from services.http.client_address import LOOPBACK, Network, of_request, parse_networks, within
from services.orders import states
from services.storage import jobs, lights, work_orders

log = logging.getLogger(__name__)

# The scrape's database reads together may take this long; Prometheus times out at 10 s.
READ_TIMEOUT_MS = 2000


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
    """Set the gauges of what is stored, from one short read-only transaction."""
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL statement_timeout = {READ_TIMEOUT_MS}")
        for queue, n in (await work_orders.queue_lengths(conn)).items():
            metrics.DISPATCH_QUEUE.labels(queue=queue).set(n)
        lit = {(r["point"], r["color"]): r["n"] for r in await lights.lit_by_point(conn)}
        due, oldest = await jobs.due_summary(conn, now)
    # every point and colour, so a light that went out reads 0 rather than its last count
    for point in (*states.CLOCK_POINTS, "returned", "dissatisfied"):
        for color in ("yellow", "red"):
            metrics.OPEN_LIGHTS.labels(point=point, color=color).set(lit.get((point, color), 0))
    metrics.SCHEDULER_DUE.set(due)
    metrics.SCHEDULER_LAG.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


async def get_metrics(request: web.Request) -> web.Response:
    ctx = context_of(request)
    if not may_read(request, ctx.settings):
        raise Forbidden(
            "metrics are open to loopback, HOTLINE_METRICS_ALLOW and the metrics token only",
            code="metrics_forbidden",
        )
    try:
        await read_gauges(ctx)
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        metrics.METRICS_READ_ERRORS.inc()
        log.warning("metrics: the database gauges could not be read: %s", exc)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", get_metrics)
