"""The aiohttp application: every object built once, in dependency order; the background
tasks started and stopped in one place; the routes of every channel and API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from channels import open311, twilio_revisit, twilio_sms, twilio_voice, wechat
from channels import web as web_channel
from knowledgebase.service import KnowledgeBase
from nlu.types import Engine
from services.agents.actions import AgentActions
from services.agents.hub import AgentHub
from services.agents.suggest import OrderIndexer
from services.api import admin as admin_api
from services.api import agent as agent_api
from services.api import audit as audit_api
from services.api import auth as auth_api
from services.api import dispatch as dispatch_api
from services.api import figures as figures_api
from services.api import kb as kb_api
from services.api import metrics as metrics_api
from services.api import reads
from services.api import staff as staff_api
from services.api import suggestion as suggestion_api
from services.config import (
    Settings,
    StartRefused,
    demo_accounts_wanted,
    is_loopback,
    public_bind_problems,
)
from services.context import CONTEXT, Context
from services.conversation.service import ConversationService
from services.core.clock import Clock, SystemClock
from services.core.metrics import TimedEngine
from services.core.pii import install_log_masking
from services.core.unit_directory import load_units, sync_units
from services.desk import build_desk
from services.http import openapi, security
from services.http.errors import json_errors
from services.http.observe import http_metrics, request_ids
from services.http.ratelimit import RATE_LIMITS, RateLimits, rate_limits
from services.jobs.scheduler import Scheduler
from services.nlu_loading import load_builtin, load_embedder_from_settings
from services.outbound.outbox import build_outbox
from services.revisits.service import RevisitService
from services.staff import accounts
from services.storage import db
from services.storage.replica import Reader

log = logging.getLogger(__name__)


async def build_context(
    settings: Settings,
    clock: Clock | None = None,
    *,
    nlu: Engine | None = None,
    embedder: object | None = None,
) -> Context:
    """Each service gets what it needs when it is made; nothing is wired in afterwards."""
    clock = clock or SystemClock()
    units = load_units(settings.units_file)
    dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
    pool = await db.connect(
        dsn,
        max_size=settings.db_pool_size,
        acquire_timeout=settings.db_acquire_timeout_seconds,
    )
    try:
        await sync_units(pool, units)
        # before the models load: a refusal to start comes at once
        if demo_accounts_wanted(settings) and await accounts.ensure_demo_users(pool):
            log.warning(
                "created the demo staff accounts (README); HOTLINE_DEMO_DATA=0 in production"
            )
        await _refuse_public_exposure(settings, pool)
        if nlu is None:
            nlu = await asyncio.to_thread(load_builtin, settings)
        nlu = TimedEngine(nlu)  # every parse timed for /metrics
        if embedder is None:
            embedder = await asyncio.to_thread(_shared_embedder, settings, nlu)
        kb = KnowledgeBase(pool, settings.kb_answer_threshold, embedder)
        loaded = await kb.load_demo_if_empty(clock.now()) if settings.load_demo_data else 0
        if loaded:  # loading refreshed the index already
            log.info("loaded %d demo knowledge-base entries", loaded)
        else:
            await kb.refresh()
        # the senders (Twilio SMS and calls, WeChat), then the one outbox over them
        outbox = build_outbox(settings, pool, clock)
        # texts to units go out like every other SMS
        desk = await build_desk(settings, pool, clock, units, outbox)
        await outbox.ensure_recurring()
    except BaseException:
        await pool.close()
        raise
    revisits = RevisitService(settings, pool, clock, outbox, desk.clocks, desk.supervision)
    conversation = ConversationService(
        pool,
        nlu,
        kb,
        units,
        clock,
        max_message_chars=settings.max_message_chars,
        dispatcher=desk.dispatcher,
        revisits=revisits,  # web citizens answer the revisit in their chat
        kb_choice_floor=settings.kb_choice_floor,
    )
    encoder = kb.encoder
    replica = (
        await db.connect_replica(settings.database_replica_url)
        if settings.database_replica_url
        else None
    )
    return Context(
        settings,
        clock,
        pool,
        units,
        nlu,
        kb,
        conversation,
        outbox=outbox,
        desk=desk,
        revisits=revisits,
        hub=AgentHub(pool),
        agents=AgentActions(pool, clock, units, outbox, desk.dispatcher),
        # the raw model: the knowledge base's text cache is for what citizens ask
        indexer=None
        if encoder is None
        else OrderIndexer(pool, getattr(encoder, "embedder", encoder), clock),
        reader=Reader(pool, replica, max_lag_seconds=settings.replica_max_lag_seconds),
    )


async def _refuse_public_exposure(settings: Settings, pool: object) -> None:
    """On an address reachable from elsewhere: no published demo password (unless
    HOTLINE_DEMO_ACCOUNTS=1 says this is a demo on purpose), and the providers' secrets
    set as the providers issue them. Raises StartRefused with one line saying what to do."""
    if is_loopback(settings.host):
        return
    problems = public_bind_problems(settings)
    if settings.demo_accounts is True:
        log.warning("HOTLINE_DEMO_ACCOUNTS=1 on %s: the demo accounts are open", settings.host)
    else:
        async with pool.acquire() as conn:
            holders = await accounts.demo_password_holders(conn)
        if holders:
            problems.append(
                f"accounts still have the published demo password ({', '.join(holders)}): "
                "run `hotline users rotate-demo`"
            )
    if problems:
        raise StartRefused(
            f"refusing to listen on {settings.host} (not a loopback address): "
            + "; ".join(problems)
        )


def _shared_embedder(settings: Settings, nlu: Engine) -> object | None:
    """The e5 model once per process: the NLU's own when it has one, else from settings."""
    features = getattr(nlu, "features", None)
    if getattr(features, "embedder", None) is not None:
        return features.embedder
    try:
        return load_embedder_from_settings(settings)
    except ImportError as exc:
        log.warning("no sentence embeddings (%s): the knowledge base matches words only", exc)
        return None


@contextlib.asynccontextmanager
async def background_tasks(ctx: Context) -> AsyncIterator[None]:
    """What a service process runs beside its requests: the scheduler's worker (when
    enabled), the similar-order indexer and the live-push hub. Stopped in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        if ctx.hub is not None:
            stack.push_async_callback(ctx.hub.stop)  # it LISTENs once the first socket opens
        if ctx.indexer is not None:
            await stack.enter_async_context(_running(ctx.indexer.run_forever()))
        if ctx.settings.scheduler_enabled and ctx.desk is not None:
            scheduler = Scheduler(
                ctx.pool,
                ctx.clock,
                ctx.job_handlers(),
                lease_seconds=ctx.settings.job_lease_seconds,
            )
            await ctx.desk.supervision.ensure_recurring()
            stop = asyncio.Event()
            work = scheduler.run_forever(stop, ctx.settings.scheduler_poll_seconds)
            await stack.enter_async_context(_running(work, stop))
            log.info("scheduler %s started", scheduler.worker_id)
        yield


@contextlib.asynccontextmanager
async def _running(
    work: Coroutine[Any, Any, None], stop: asyncio.Event | None = None
) -> AsyncIterator[None]:
    """`work` as a task while the block runs. At the end a task with a `stop` event is asked
    to stop and given 30 s to finish what it is doing (the scheduler's current jobs); any
    other is cancelled at once."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        if stop is not None:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
            except TimeoutError:
                log.warning("a background task did not stop within 30 s: cancelled")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def create_app(
    settings: Settings, clock: Clock | None = None, context: Context | None = None
) -> web.Application:
    install_log_masking()  # phones and openids never reach a log in clear
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # outermost first: the request id is set before anything logs, the metrics see the
        # status the error middleware answered with, errors become JSON around everything,
        # and foreign origins and floods are refused before a handler runs
        middlewares=[request_ids, http_metrics, json_errors, security.origin_guard, rate_limits],
    )
    app[RATE_LIMITS] = RateLimits(settings)

    async def lifecycle(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        ctx = context or await build_context(settings, clock)
        app[CONTEXT] = ctx
        async with background_tasks(ctx):
            yield
        if ctx.outbox is not None:  # its background sends, then every sender
            await ctx.outbox.aclose()
        if context is None:
            if ctx.reader is not None and ctx.reader.replica is not None:
                await ctx.reader.replica.close()
            await ctx.pool.close()

    app.cleanup_ctx.append(lifecycle)
    app.on_response_prepare.append(reads.read_headers)
    for routes in (
        web_channel,
        kb_api,
        twilio_voice,
        twilio_sms,
        twilio_revisit,
        wechat,
        open311,
        auth_api,
        dispatch_api,
        suggestion_api,
        figures_api,
        agent_api,
        metrics_api,
        audit_api,
        admin_api,
        staff_api,
    ):
        routes.add_routes(app)
    app.router.add_get("/healthz", health)
    openapi.add_routes(app)  # after every other route: the document is built from them
    security.install(app, settings)
    return app


async def health(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    async with ctx.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    body = {"ok": True, "units": len(ctx.units), "kb_entries": len(ctx.kb.index)}
    if ctx.reader is not None:  # where reads go now, and why (services/storage/replica.py)
        body["replica"] = ctx.reader.health(await ctx.reader.check())
    return web.json_response(body)
