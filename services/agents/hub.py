"""Live pushes for the agent workspace, across service processes.

The database triggers of migration 007 NOTIFY `agent_events` in the transaction that changes a
conversation or writes a message. Each process holds one LISTEN connection (opened when the
first socket connects) and fans each event out to its own sockets: every agent's workspace
socket gets queue changes; the messages of a conversation (a chat line, an SMS, a phone
call's transcript turn, the bot's reading of each) go to the agent sockets watching that
conversation; a citizen's web-chat socket gets what an agent wrote, and what the bot wrote
unasked (the revisit question). Events are handled one at a time, in the order PostgreSQL
delivered them.

The same connection LISTENs on `order_events` (migration 012_staff_pages): a work
order filed, its status or lead unit changed, an assisting unit added, a light raised. Those go
to the staff pages' sockets (dispatch desk, supervision board: everything; a unit's page: only
its own orders, and only the request number). Lights come one event per statement that raised
them ({"kind": "lights", "count", "units"}), however many a scan raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from aiohttp import web

from services.http.requests import jsonable
from services.http.ws_frames import dumps
from services.storage import agent_workspace as store
from services.storage.db import DATABASE_DOWN

log = logging.getLogger(__name__)

CHANNEL = "agent_events"
ORDER_CHANNEL = "order_events"
# waits between attempts to LISTEN again after the database went away
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 5.0


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
        # each agent socket with the conversations it watches
        self.agents: dict[web.WebSocketResponse, set[int]] = {}
        self.citizens: dict[str, set[web.WebSocketResponse]] = {}
        # each staff page socket with the one unit it may hear about (None: every order)
        self.staff: dict[web.WebSocketResponse, str | None] = {}
        self._conn: asyncpg.Connection | None = None
        self._events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._worker: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._reconnecting: asyncio.Task | None = None

    async def start(self) -> None:
        """LISTEN once per process; returns when notifications are being received."""
        async with self._lock:
            if self._conn is not None or self._reconnecting is not None:
                return
            await self._listen()
            if self._worker is None:
                self._worker = asyncio.create_task(self._run())

    async def _listen(self) -> None:
        conn = await self.pool.acquire()
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            await conn.add_listener(ORDER_CHANNEL, self._on_notify)
        except BaseException:
            await self.pool.release(conn)
            raise
        conn.add_termination_listener(self._on_lost)
        self._conn = conn

    def _on_lost(self, _conn: object) -> None:
        """PostgreSQL dropped the LISTEN connection (a restart): listen again on a new one as
        soon as the database is back. What was notified in between is not replayed; the
        sockets stay open and get the events from then on."""
        if self._conn is None:
            return  # stop() closed it
        # asyncpg has already given the connection's slot back to the pool
        self._conn = None
        log.warning("the LISTEN connection was lost; listening again once the database is back")
        self._reconnecting = asyncio.create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay = RECONNECT_FIRST_S
        try:
            while True:
                try:
                    async with self._lock:
                        await self._listen()
                    log.info("listening for live events again")
                    return
                except Exception as exc:  # noqa: BLE001 - this loop must outlive any failure
                    # not only DATABASE_DOWN: a connection dropped mid-LISTEN can surface as
                    # another asyncpg error, and a dead loop would leave the sockets deaf
                    log.warning(
                        "LISTEN not possible yet (%s: %s); retrying in %.1f s",
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            self._reconnecting = None

    async def stop(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.remove_termination_listener(self._on_lost)
            try:
                await conn.remove_listener(CHANNEL, self._on_notify)
                await conn.remove_listener(ORDER_CHANNEL, self._on_notify)
            except DATABASE_DOWN:
                pass  # the connection is going anyway
            finally:
                await self.pool.release(conn)
        sockets = list(self.agents) + list(self.staff)
        for ws in sockets + [w for s in self.citizens.values() for w in s]:
            await ws.close()

    def _on_notify(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self._events.put_nowait((channel, payload))

    async def _run(self) -> None:
        while True:
            channel, payload = await self._events.get()
            try:
                if channel == ORDER_CHANNEL:
                    await self._to_staff(json.loads(payload))
                else:
                    await self._handle(json.loads(payload))
            except DATABASE_DOWN as exc:  # the database restarting: this push is lost
                log.warning("agent event %s not pushed: %s", payload, exc)
            except Exception:  # one bad event must not stop the pushes
                log.exception("agent event %s failed", payload)

    async def _handle(self, event: dict[str, Any]) -> None:
        convo_id = int(event["conversation_id"])
        kind = event["kind"]
        if kind == "message" and event.get("direction") == "out" and self.citizens:
            await self._to_citizen(int(event["message_id"]))
        if not self.agents:
            return
        watchers = {ws for ws, watched in self.agents.items() if convo_id in watched}
        async with self.pool.acquire() as conn:
            item = await store.queue_item(conn, convo_id)
            msg = None
            if kind == "message" and watchers:
                msg = await store.message(conn, int(event["message_id"]))
        if item is not None:
            await self._send(set(self.agents), {"type": "queue", "item": queue_json(item)})
        elif kind == "conversation":
            frame = {"type": "queue_remove", "conversation_id": convo_id}
            await self._send(set(self.agents), frame)
        if msg is not None:
            frame = {"type": "message", "conversation_id": convo_id, "message": message_json(msg)}
            await self._send(watchers, frame)

    async def _to_citizen(self, message_id: int) -> None:
        async with self.pool.acquire() as conn:
            msg = await store.message(conn, message_id)
        if msg is None or msg["channel"] != "web":
            return
        # the bot's replies come back as the answer to the citizen's own message; what came
        # unasked (an agent's words, the revisit question) is pushed
        if msg["author"] != "agent" and msg["reply_to"] is not None:
            return
        sockets = self.citizens.get(msg["session_key"], set())
        frame = {"type": "agent_message", "text": msg["text"], "id": msg["id"]}
        await self._send(sockets, {**frame, "author": msg["author"]})

    async def _to_staff(self, event: dict[str, Any]) -> None:
        if not self.staff:
            return
        full = {k: v for k, v in event.items() if k not in ("kind", "old_lead_unit")}
        full["type"] = event["kind"]
        everyone = {ws for ws, unit in self.staff.items() if unit is None}
        await self._send(everyone, full)
        concerned = {event.get("lead_unit"), event.get("old_lead_unit"), event.get("unit")}
        concerned.update(event.get("units") or ())
        units = {ws for ws, unit in self.staff.items() if unit is not None and unit in concerned}
        short = {"type": event["kind"], "request_number": event.get("request_number")}
        await self._send(units, short)

    async def _send(self, sockets: set[web.WebSocketResponse], frame: dict[str, Any]) -> None:
        """Send to each open socket; a closed one is forgotten (its handler may not have
        noticed yet)."""
        text = dumps(jsonable(frame))
        for ws in list(sockets):
            if not ws.closed:
                try:
                    await ws.send_str(text)
                    continue
                except (ConnectionError, RuntimeError):
                    pass
            self.remove_agent(ws)
            self.remove_citizen(ws)
            self.remove_staff(ws)

    # -- sockets --------------------------------------------------------------------------

    async def add_agent(self, ws: web.WebSocketResponse) -> None:
        await self.start()
        self.agents.setdefault(ws, set())

    def watch(self, ws: web.WebSocketResponse, conversation_id: int, on: bool = True) -> None:
        """The socket gets (or stops getting) the conversation's messages as they arrive."""
        watched = self.agents.get(ws)
        if watched is None:
            return
        if on:
            watched.add(conversation_id)
        else:
            watched.discard(conversation_id)

    def remove_agent(self, ws: web.WebSocketResponse) -> None:
        self.agents.pop(ws, None)

    async def add_staff(self, ws: web.WebSocketResponse, unit: str | None) -> None:
        """A staff page's socket: every order change, or with `unit` only that unit's."""
        await self.start()
        self.staff[ws] = unit

    def remove_staff(self, ws: web.WebSocketResponse) -> None:
        self.staff.pop(ws, None)

    async def add_citizen(self, session_key: str, ws: web.WebSocketResponse) -> None:
        await self.start()
        self.citizens.setdefault(session_key, set()).add(ws)

    def remove_citizen(self, ws: web.WebSocketResponse) -> None:
        for key, sockets in list(self.citizens.items()):
            sockets.discard(ws)
            if not sockets:
                del self.citizens[key]
