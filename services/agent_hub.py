"""Live pushes for the agent workspace, across service processes.

The database triggers of migration 007 NOTIFY `agent_events` in the transaction that changes a
conversation or writes a message. Each process holds one LISTEN connection (opened when the
first socket connects) and fans each event out to its own sockets: agents' workspace sockets
get queue changes and new messages; a citizen's web-chat socket gets what an agent wrote.
Events are handled one at a time, in the order PostgreSQL delivered them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from aiohttp import web

from services.api_common import jsonable
from services.storage import agent_workspace as store

log = logging.getLogger(__name__)

CHANNEL = "agent_events"


def _dumps(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)


def queue_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "conversation_id": row["id"],
        "channel": row["channel"],
        "mode": row["mode"],
        "handoff_reason": row["handoff_reason"],
        "flags": list(row["flags"]),
        "agent": row["agent"],
        "agent_user_id": row["agent_user_id"],
        "last_text": row["last_text"],
        "updated_at": row["updated_at"],
    }


def message_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "direction": row["direction"],
        "author": row["author"],
        "text": row["text"],
        "nlu": row["nlu"],
        "created_at": row["created_at"],
    }


class AgentHub:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.agents: set[web.WebSocketResponse] = set()
        self.citizens: dict[str, set[web.WebSocketResponse]] = {}
        self._conn: asyncpg.Connection | None = None
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """LISTEN once per process; returns when notifications are being received."""
        async with self._lock:
            if self._conn is not None:
                return
            conn = await self.pool.acquire()
            await conn.add_listener(CHANNEL, self._on_notify)
            self._conn = conn
            self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.remove_listener(CHANNEL, self._on_notify)
            finally:
                await self.pool.release(conn)
        for ws in list(self.agents) + [w for s in self.citizens.values() for w in s]:
            await ws.close()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._events.put_nowait(payload)

    async def _run(self) -> None:
        while True:
            payload = await self._events.get()
            try:
                await self._handle(json.loads(payload))
            except Exception:  # one bad event must not stop the pushes
                log.exception("agent event %s failed", payload)

    async def _handle(self, event: dict[str, Any]) -> None:
        convo_id = int(event["conversation_id"])
        kind = event["kind"]
        if kind == "message" and event.get("author") == "agent":
            await self._to_citizen(int(event["message_id"]))
        if not self.agents:
            return
        async with self.pool.acquire() as conn:
            item = await store.queue_item(conn, convo_id)
            msg = await store.message(conn, int(event["message_id"])) if kind == "message" else None
        frames: list[dict[str, Any]] = []
        if item is not None:
            frames.append({"type": "queue", "item": queue_json(item)})
        elif kind == "conversation":
            frames.append({"type": "queue_remove", "conversation_id": convo_id})
        if msg is not None:
            frames.append(
                {"type": "message", "conversation_id": convo_id, "message": message_json(msg)}
            )
        for frame in frames:
            await self._send(self.agents, frame)

    async def _to_citizen(self, message_id: int) -> None:
        async with self.pool.acquire() as conn:
            msg = await store.message(conn, message_id)
        if msg is None or msg["channel"] != "web":
            return
        sockets = self.citizens.get(msg["session_key"], set())
        await self._send(sockets, {"type": "agent_message", "text": msg["text"], "id": msg["id"]})

    async def _send(self, sockets: set[web.WebSocketResponse], frame: dict[str, Any]) -> None:
        text = _dumps(frame)
        for ws in list(sockets):
            if ws.closed:
                sockets.discard(ws)
                continue
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                sockets.discard(ws)

    # -- sockets --------------------------------------------------------------------------

    async def add_agent(self, ws: web.WebSocketResponse) -> None:
        await self.start()
        self.agents.add(ws)

    def remove_agent(self, ws: web.WebSocketResponse) -> None:
        self.agents.discard(ws)

    async def add_citizen(self, session_key: str, ws: web.WebSocketResponse) -> None:
        await self.start()
        self.citizens.setdefault(session_key, set()).add(ws)

    def remove_citizen(self, ws: web.WebSocketResponse) -> None:
        for key, sockets in list(self.citizens.items()):
            sockets.discard(ws)
            if not sockets:
                del self.citizens[key]


HUB = web.AppKey("agent_hub", AgentHub)


def install(app: web.Application) -> None:
    """One hub per process, made once the Context (and its pool) exists."""
    from services.context import CONTEXT

    async def lifecycle(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        hub = AgentHub(app[CONTEXT].pool)
        app[HUB] = hub
        yield
        await hub.stop()

    app.cleanup_ctx.append(lifecycle)


def hub_of(app: web.Application) -> AgentHub:
    return app[HUB]
