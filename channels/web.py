"""The web channel: a REST endpoint and a WebSocket for the chat widget, and the widget itself.

POST /api/chat/messages  {"session_id", "client_message_id", "text"}
    -> {"replies": [...], "request_number": "20261123-0001" | null, ...}
GET  /api/chat/messages?session_id=...  the session's open conversation, as the widget shows
    it on load (with what was written while the widget was closed: an agent's words, the
    revisit question)
GET  /api/chat/ws        the same messages as JSON frames, both ways
GET  /widget.js          the embeddable widget: <script src=".../widget.js"></script>
GET  /                   the demo portal page
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from services.context import context_of
from services.conversation.service import Inbound, TurnResult
from services.core.errors import ServiceError
from services.http.errors import as_service_error
from services.http.openapi import documented
from services.http.pages import HTML, JAVASCRIPT, static_file
from services.http.ratelimit import RATE_LIMITS, client_address
from services.http.requests import refuse_nul, respond
from services.http.ws_frames import serve_json_frames
from services.storage import messages

CHANNEL = "web"
STATIC = Path(__file__).resolve().parent / "static"
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class BadRequest(ServiceError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code=code)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("bad_encoding", f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("bad_json", f"the body is not valid JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise BadRequest("bad_json", "the body must be a JSON object")
    refuse_nul(body)
    return body


def to_inbound(body: dict[str, Any]) -> Inbound:
    session_id = body.get("session_id")
    if not isinstance(session_id, str) or not _ID.match(session_id):
        raise BadRequest("bad_session_id", "session_id must be 1-128 letters, digits or _.:-")
    client_id = body.get("client_message_id")
    if client_id is not None and (not isinstance(client_id, str) or not _ID.match(client_id)):
        raise BadRequest(
            "bad_client_message_id", "client_message_id must be 1-128 letters, digits or _.:-"
        )
    text = body.get("text")
    if not isinstance(text, str):
        raise BadRequest("bad_text", "text must be a string")
    return Inbound(channel=CHANNEL, session_key=session_id, text=text, client_message_id=client_id)


def result_json(result: TurnResult) -> dict[str, Any]:
    return {
        "replies": result.replies,
        "request_number": result.request_number,
        "conversation_id": result.conversation_id,
        "message_id": result.message_id,
        "duplicate": result.duplicate,
        "mode": result.mode,
        "emergency": result.emergency,
    }


HISTORY_MESSAGES = 200
ID_PATTERN = _ID.pattern


class ChatMessage(BaseModel):
    """What the widget sends (checked by to_inbound; this is its description)."""

    session_id: str = Field(pattern=ID_PATTERN)
    client_message_id: str | None = Field(default=None, pattern=ID_PATTERN)
    text: str


class ChatAnswer(BaseModel):
    replies: list[str]
    request_number: str | None
    conversation_id: int
    message_id: int
    duplicate: bool
    mode: str
    emergency: list[str] | None


class ChatHistory(BaseModel):
    session_id: str
    messages: list[dict[str, Any]]


@documented("A citizen's chat message and the hotline's replies", ChatMessage, {200: ChatAnswer})
async def post_message(request: web.Request) -> web.Response:
    service = context_of(request).conversation
    inbound = to_inbound(parse_body(await request.read()))
    # the address was counted by the middleware; the session here, once its id is known
    await request.app[RATE_LIMITS].hit("chat_session", inbound.session_key)
    result = await service.handle(inbound)
    return web.json_response(result_json(result))


@documented(
    "The session's open conversation, as the widget shows it on load",
    responses={200: ChatHistory},
    query={"session_id": {"type": "string", "pattern": ID_PATTERN}},
)
async def get_messages(request: web.Request) -> web.Response:
    ctx = context_of(request)
    session = to_inbound({"session_id": request.query.get("session_id"), "text": ""})
    async with ctx.pool.acquire() as conn:
        rows = await messages.of_open_session(conn, CHANNEL, session.session_key, HISTORY_MESSAGES)
    return respond({"session_id": session.session_key, "messages": [dict(r) for r in rows]})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ctx = context_of(request)
    # the Origin was checked against the allow-list (services/http/security.origin_guard)
    # and the connection counted against the address's chat limit before this handler
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=ctx.settings.max_body_bytes)
    await ws.prepare(request)
    hub = ctx.hub
    limits = request.app[RATE_LIMITS]
    address = client_address(request)

    async def on_frame(body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            if body.get("type") == "subscribe":
                # what an agent writes to this session is pushed here (services/agents/hub.py)
                await hub.add_citizen(to_inbound({**body, "text": ""}).session_key, ws)
                return None
            inbound = to_inbound(body)
            # every message frame counts like a REST message: address and session
            await limits.hit("chat_address", address)
            await limits.hit("chat_session", inbound.session_key)
            await hub.add_citizen(inbound.session_key, ws)
            reply = result_json(await ctx.conversation.handle(inbound))
        except Exception as exc:
            # the HTTP API's errors, as frames (a database restart: database_unavailable)
            error = as_service_error(exc)
            if error is None:
                raise
            reply = error.body()
        reply["client_message_id"] = body.get("client_message_id")
        return reply

    try:
        await serve_json_frames(ws, on_frame)
    finally:
        hub.remove_citizen(ws)
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/chat/messages", post_message)
    app.router.add_get("/api/chat/messages", get_messages)
    app.router.add_get("/api/chat/ws", websocket)
    app.router.add_get("/widget.js", static_file(STATIC / "widget.js", JAVASCRIPT))
    app.router.add_get("/", static_file(STATIC / "portal.html", HTML))
