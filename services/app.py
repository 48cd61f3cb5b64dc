"""The aiohttp application: start-up wiring and routes of every channel and API."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from channels import web as web_channel
from knowledgebase.service import KnowledgeBase
from nlu.types import Engine
from services import db
from services.clock import Clock, SystemClock
from services.config import Settings
from services.context import CONTEXT, Context
from services.conversation import ConversationService
from services.http_errors import json_errors
from services.nlu_loading import load_builtin
from services.units import load_units, sync_units

log = logging.getLogger(__name__)


async def build_context(
    settings: Settings, clock: Clock | None = None, *, nlu: Engine | None = None
) -> Context:
    clock = clock or SystemClock()
    units = load_units(settings.units_file)
    dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
    pool = await db.connect(dsn)
    try:
        await sync_units(pool, units)
        if nlu is None:
            nlu = await asyncio.to_thread(load_builtin, settings)
        kb = KnowledgeBase(pool, settings.kb_answer_threshold)
        if settings.load_demo_data:
            loaded = await kb.load_demo_if_empty(clock.now())
            if loaded:
                log.info("loaded %d demo knowledge-base entries", loaded)
        await kb.refresh()
    except BaseException:
        await pool.close()
        raise
    conversation = ConversationService(
        pool, nlu, kb, units, clock, max_message_chars=settings.max_message_chars
    )
    return Context(settings, clock, pool, units, nlu, kb, conversation)


def create_app(
    settings: Settings, clock: Clock | None = None, context: Context | None = None
) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors])

    async def lifecycle(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        ctx = context or await build_context(settings, clock)
        app[CONTEXT] = ctx
        yield
        if context is None:
            await ctx.pool.close()

    app.cleanup_ctx.append(lifecycle)
    web_channel.add_routes(app)
    app.router.add_get("/healthz", health)
    return app


async def health(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    async with ctx.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return web.json_response({"ok": True, "units": len(ctx.units), "kb_entries": len(ctx.kb.index)})
