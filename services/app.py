"""The aiohttp application: start-up wiring and routes of every channel and API."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from channels import twilio_revisit, twilio_sms, twilio_voice, wechat
from channels import web as web_channel
from knowledgebase.service import KnowledgeBase
from nlu.types import Engine
from services.api import agent as agent_api
from services.api import dispatch as dispatch_api
from services.api import figures as figures_api
from services.api import kb as kb_api
from services.api import suggestion as suggestion_api
from services.config import Settings
from services.context import CONTEXT, Context
from services.conversation.service import ConversationService
from services.core.clock import Clock, SystemClock
from services.core.unit_directory import load_units, sync_units
from services.desk import build_desk
from services.http.errors import json_errors
from services.nlu_loading import load_builtin, load_embedder_from_settings
from services.outbound.twilio_sender import Notifier
from services.outbound.wechat_client import WeChatApi
from services.revisits import service as revisits
from services.staff import auth
from services.storage import db

log = logging.getLogger(__name__)


async def build_context(
    settings: Settings,
    clock: Clock | None = None,
    *,
    nlu: Engine | None = None,
    embedder: object | None = None,
) -> Context:
    clock = clock or SystemClock()
    units = load_units(settings.units_file)
    dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
    pool = await db.connect(dsn)
    try:
        await sync_units(pool, units)
        if nlu is None:
            nlu = await asyncio.to_thread(load_builtin, settings)
        if embedder is None:
            embedder = await asyncio.to_thread(_shared_embedder, settings, nlu)
        kb = KnowledgeBase(pool, settings.kb_answer_threshold, embedder)
        loaded = await kb.load_demo_if_empty(clock.now()) if settings.load_demo_data else 0
        if loaded:  # loading refreshed the index already
            log.info("loaded %d demo knowledge-base entries", loaded)
        else:
            await kb.refresh()
        if settings.load_demo_data and await auth.ensure_demo_users(pool):
            log.warning(
                "created the demo staff accounts (README); HOTLINE_DEMO_DATA=0 in production"
            )
        desk = await build_desk(settings, pool, clock, units)
    except BaseException:
        await pool.close()
        raise
    conversation = ConversationService(
        pool,
        nlu,
        kb,
        units,
        clock,
        max_message_chars=settings.max_message_chars,
        dispatcher=desk.dispatcher,
        kb_choice_floor=settings.kb_choice_floor,
    )
    context = Context(
        settings,
        clock,
        pool,
        units,
        nlu,
        kb,
        conversation,
        notify=Notifier(settings, pool, clock),
        wechat=WeChatApi(settings, pool, clock),
        desk=desk,
    )
    desk.supervision.notifier = context.notify  # texts to units go out like every other SMS
    desk.extra_handlers.update(context.notify.handlers())
    await context.notify.ensure_recurring()
    revisit = revisits.for_context(context)
    desk.extra_handlers.update(revisit.handlers())
    conversation.revisits = revisit  # web citizens answer the revisit in their chat
    return context


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


def create_app(
    settings: Settings, clock: Clock | None = None, context: Context | None = None
) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors])

    async def lifecycle(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        ctx = context or await build_context(settings, clock)
        app[CONTEXT] = ctx
        yield
        for client in (ctx.notify, ctx.wechat):
            if client is not None:
                await client.aclose()
        if context is None:
            await ctx.pool.close()

    app.cleanup_ctx.append(lifecycle)
    web_channel.add_routes(app)
    kb_api.add_routes(app)
    twilio_voice.add_routes(app)
    twilio_sms.add_routes(app)
    twilio_revisit.add_routes(app)
    wechat.add_routes(app)
    auth.add_routes(app)
    dispatch_api.add_routes(app)
    suggestion_api.add_routes(app)
    figures_api.add_routes(app)
    agent_api.add_routes(app)
    app.router.add_get("/healthz", health)
    return app


async def health(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    async with ctx.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return web.json_response({"ok": True, "units": len(ctx.units), "kb_entries": len(ctx.kb.index)})
