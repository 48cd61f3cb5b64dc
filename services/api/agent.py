"""The agent workspace: HTTP API, live WebSocket and the /agent page.

GET  /agent                                          the page (static/agent.html, agent.js)
GET  /api/agent/queue                                conversations needing a person
GET  /api/agent/ws                                   live pushes; first frame {"token": ...}
GET  /api/agent/conversations/{id}                   the conversation with every message and
                                                     the bot's reading of it
POST /api/agent/conversations/{id}/take              mode 'agent': the bot keeps quiet
POST /api/agent/conversations/{id}/reply   {"text"}  answered on the citizen's own channel
POST /api/agent/conversations/{id}/release           back to the bot
POST /api/agent/conversations/{id}/close
GET  /api/agent/conversations/{id}/suggestions       ranked suggestions, reading and draft
POST /api/agent/conversations/{id}/work-order        file and dispatch a work order
POST /api/agent/suggestions/feedback   {"conversation_id","source","ref","rank","used"}
GET  /api/agent/stats?from=&to=                      suggestion acceptance rate, per source

Only staff with the role agent or supervisor get in (services/api/auth.require_role). What
is done with a conversation (taking it over, replying on the citizen's channel, filing an
order) is services/agents/actions.py; these handlers parse the request and answer.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from nlu.types import REQUEST_TYPES
from services.agents import suggest as agent_suggest
from services.agents.actions import AgentActions, OrderDraft
from services.agents.hub import message_json, queue_json
from services.api.audit import record_read
from services.api.auth import current_user, require_role, socket_user
from services.context import Context, context_of
from services.core.clock import CHINA_TZ
from services.core.errors import Unavailable, json_exception
from services.http.pages import HTML, JAVASCRIPT, static_file
from services.http.requests import day_param, read_json, respond, text_field
from services.http.ws_frames import serve_json_frames
from services.staff.accounts import AGENT, SUPERVISOR
from services.storage import agent_workspace as store
from services.storage import messages

STATIC = Path(__file__).resolve().parent / "static"
ROLES = (AGENT, SUPERVISOR)
SOURCES = ("kb", "similar_order", "template")
staff = require_role(*ROLES)


def _convo_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise json_exception(400, "bad_id", "the conversation id is a positive number")
    return int(raw)


def _actions(ctx: Context) -> AgentActions:
    if ctx.agents is None:
        raise Unavailable("the agent workspace is not set up in this process")
    return ctx.agents


@staff
async def get_queue(request: web.Request) -> web.Response:
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        rows = await store.queue(conn)
    items = [queue_json(r) for r in rows]
    await record_read(request, "conversation_list", [i["conversation_id"] for i in items])
    return respond({"items": items})


@staff
async def get_conversation(request: web.Request) -> web.Response:
    ctx = context_of(request)
    convo = await _actions(ctx).conversation(_convo_id(request))
    async with ctx.pool.acquire() as conn:
        history = await messages.history(conn, convo["id"])
        item = await store.queue_item(conn, convo["id"])
    await record_read(request, "conversation", [convo["id"]])
    return respond(
        {
            "conversation_id": convo["id"],
            "channel": convo["channel"],
            "mode": convo["mode"],
            "handoff_reason": convo["handoff_reason"],
            "agent_user_id": convo["agent_user_id"],
            "flags": list(item["flags"]) if item else [],
            "messages": [message_json(m) for m in history],
        }
    )


@staff
async def post_take(request: web.Request) -> web.Response:
    convo_id = _convo_id(request)
    await _actions(context_of(request)).take(convo_id, current_user(request))
    return respond({"conversation_id": convo_id, "mode": "agent"})


@staff
async def post_release(request: web.Request) -> web.Response:
    convo_id = _convo_id(request)
    await _actions(context_of(request)).release(convo_id, current_user(request))
    return respond({"conversation_id": convo_id, "mode": "bot"})


@staff
async def post_close(request: web.Request) -> web.Response:
    convo_id = _convo_id(request)
    await _actions(context_of(request)).close(convo_id, current_user(request))
    return respond({"conversation_id": convo_id, "mode": "closed"})


@staff
async def post_reply(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    text = text_field(body, "text", max_chars=ctx.settings.max_message_chars)
    reply = await _actions(ctx).reply(_convo_id(request), current_user(request), text)
    return respond(
        {"message_id": reply.message_id, "channel": reply.channel, "delivery": reply.delivery}
    )


@staff
async def get_suggestions(request: web.Request) -> web.Response:
    ctx = context_of(request)
    convo_id = _convo_id(request)
    result = await agent_suggest.suggest(ctx.pool, ctx.kb, ctx.clock, convo_id)
    if result is None:
        raise json_exception(404, "not_found", f"no conversation {convo_id}")
    await record_read(request, "conversation", [convo_id])
    return respond(result)


@staff
async def post_work_order(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    convo_id = _convo_id(request)
    request_type = body.get("request_type")
    if request_type not in REQUEST_TYPES:
        raise json_exception(400, "bad_request_type", f"request_type is one of {REQUEST_TYPES}")
    draft = OrderDraft(
        request_type=request_type,
        content=text_field(body, "content"),
        location=text_field(body, "location", required=False, max_chars=200),
        contact_phone=text_field(body, "contact_phone", required=False, max_chars=32),
        lead_unit=text_field(body, "lead_unit", required=False, max_chars=64),
        address=body.get("address") if isinstance(body.get("address"), dict) else None,
    )
    filed = await _actions(ctx).file_work_order(convo_id, current_user(request), draft)
    lead_unit = filed.lead_unit
    return respond(
        {
            "request_number": filed.request_number,
            "lead_unit": lead_unit,
            "lead_unit_name": ctx.units.name(lead_unit) if lead_unit else None,
            "dispatched": lead_unit is not None,
        },
        status=201,
    )


@staff
async def post_feedback(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await read_json(request)
    convo_id = body.get("conversation_id")
    source = body.get("source")
    rank = body.get("rank")
    used = body.get("used")
    if not isinstance(convo_id, int) or isinstance(convo_id, bool):
        raise json_exception(400, "bad_conversation_id", "conversation_id must be a number")
    if source not in SOURCES:
        raise json_exception(400, "bad_source", f"source is one of {SOURCES}")
    ref = text_field(body, "ref", max_chars=200)
    if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= 100:
        raise json_exception(400, "bad_rank", "rank is a number from 1")
    if not isinstance(used, bool):
        raise json_exception(400, "bad_used", "used must be true or false")
    fid = await _actions(ctx).record_feedback(
        current_user(request), convo_id, source, ref, rank, used
    )
    return respond({"id": fid}, status=201)


@staff
async def get_stats(request: web.Request) -> web.Response:
    """How often agents used what was suggested: of the suggestions they marked used or not,
    the share used, overall and per source, for the days from..to (China time, inclusive)."""
    ctx = context_of(request)
    first = day_param(request.query.get("from"), "from")
    last = day_param(request.query.get("to"), "to")
    if first and last and first > last:
        raise json_exception(400, "bad_period", "from is after to")
    since = datetime.combine(first, time(0), CHINA_TZ) if first else None
    until = datetime.combine(last + timedelta(days=1), time(0), CHINA_TZ) if last else None
    async with ctx.pool.acquire() as conn:
        rows = await store.acceptance(conn, since, until)
    rated = sum(r["shown_rated"] for r in rows)
    used = sum(r["used"] for r in rows)
    for r in rows:
        r["acceptance_rate"] = round(r["used"] / r["shown_rated"], 4)
    return respond(
        {
            "from": first,
            "to": last,
            "rated": rated,
            "used": used,
            "acceptance_rate": round(used / rated, 4) if rated else None,
            "by_source": rows,
        }
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Queue changes for every agent; {"type": "watch", "conversation_id": N} adds the
    messages of conversation N as they arrive (the one open on the agent's screen)."""
    ctx = context_of(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    user = await socket_user(request, ws, ROLES)
    if user is None:
        return ws
    hub = context_of(request).hub

    async def on_frame(body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("type")
        if kind not in ("watch", "unwatch"):
            return {"error": "bad_type", "reason": "frames are watch or unwatch"}
        convo_id = body.get("conversation_id")
        if not isinstance(convo_id, int) or isinstance(convo_id, bool) or convo_id < 1:
            return {"error": "bad_conversation_id", "reason": "conversation_id is a number"}
        if kind == "watch":
            async with ctx.pool.acquire() as conn:
                if await store.conversation(conn, convo_id) is None:
                    return {"error": "not_found", "reason": f"no conversation {convo_id}"}
            # its messages are pushed to this screen from now on
            await record_read(request, "conversation", [convo_id], user, "WS watch")
        hub.watch(ws, convo_id, kind == "watch")
        return {"type": "watching" if kind == "watch" else "unwatched", "conversation_id": convo_id}

    await hub.add_agent(ws)
    try:
        await ws.send_json({"type": "ready", "user": user.to_dict()})
        await serve_json_frames(ws, on_frame)
    finally:
        hub.remove_agent(ws)
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/agent", static_file(STATIC / "agent.html", HTML))
    app.router.add_get("/agent.js", static_file(STATIC / "agent.js", JAVASCRIPT))
    app.router.add_get("/api/agent/queue", get_queue)
    app.router.add_get("/api/agent/ws", websocket)
    app.router.add_get("/api/agent/conversations/{id}", get_conversation)
    app.router.add_post("/api/agent/conversations/{id}/take", post_take)
    app.router.add_post("/api/agent/conversations/{id}/reply", post_reply)
    app.router.add_post("/api/agent/conversations/{id}/release", post_release)
    app.router.add_post("/api/agent/conversations/{id}/close", post_close)
    app.router.add_get("/api/agent/conversations/{id}/suggestions", get_suggestions)
    app.router.add_post("/api/agent/conversations/{id}/work-order", post_work_order)
    app.router.add_post("/api/agent/suggestions/feedback", post_feedback)
    app.router.add_get("/api/agent/stats", get_stats)
