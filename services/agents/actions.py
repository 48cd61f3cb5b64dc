"""What an agent does with a conversation, apart from HTTP: take it over from the bot, hand it
back, close it, reply on the citizen's own channel, file a work order from it, and say
whether a suggestion was used. services/api/agent.py parses the requests and checks the
role; refusals are ServiceErrors (services/core/errors.py), which the JSON error middleware
answers.

Only the agent who took a conversation over (or a supervisor) speaks in it, releases or
closes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.core.clock import Clock
from services.core.errors import Conflict, NotFound, ServiceError
from services.core.unit_directory import UnitDirectory
from services.dispatch.dispatcher import Dispatcher
from services.outbound.outbox import InvalidRecipient, Outbox, citizen_route
from services.staff.accounts import SUPERVISOR, StaffUser
from services.storage import agent_workspace as store
from services.storage import citizens, work_orders
from services.storage.work_orders import Actor, NewWorkOrder


@dataclass(frozen=True)
class Reply:
    message_id: int
    channel: str  # the conversation's channel, where the reply went
    delivery: dict[str, Any]  # {"status": ..., "error": ...} (services/outbound/outbox.py)


@dataclass(frozen=True)
class OrderDraft:
    """A work order as the agent filled it in."""

    request_type: str
    content: str
    location: str | None = None
    contact_phone: str | None = None
    lead_unit: str | None = None
    address: dict[str, Any] | None = None


@dataclass(frozen=True)
class Filed:
    request_number: str
    lead_unit: str | None  # None: not dispatched (no desk in this process, or no unit fits)


def _holds(convo: asyncpg.Record, user: StaffUser) -> None:
    """Only the agent who took the conversation (or a supervisor) speaks in it."""
    if convo["mode"] != "agent":
        raise Conflict("take the conversation over first", code="not_taken")
    if convo["agent_user_id"] != user.id and user.role != SUPERVISOR:
        raise Conflict("another agent has this conversation", code="taken_by_other")


class AgentActions:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        units: UnitDirectory,
        outbox: Outbox | None,
        dispatcher: Dispatcher | None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.units = units
        self.outbox = outbox
        self.dispatcher = dispatcher

    async def conversation(self, convo_id: int) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            convo = await store.conversation(conn, convo_id)
        if convo is None:
            raise NotFound(f"no conversation {convo_id}")
        return convo

    # -- who has the conversation ------------------------------------------------------------

    async def take(self, convo_id: int, user: StaffUser) -> None:
        """The agent takes the conversation over: the bot keeps quiet."""
        await self._move(convo_id, user, "agent", ("bot", "waiting_agent"))

    async def release(self, convo_id: int, user: StaffUser) -> None:
        """Back to the bot."""
        await self._move(convo_id, user, "bot", ("agent",))

    async def close(self, convo_id: int, user: StaffUser) -> None:
        await self._move(convo_id, user, "closed", ("agent",))

    async def _move(
        self, convo_id: int, user: StaffUser, mode: str, from_modes: tuple[str, ...]
    ) -> None:
        convo = await self.conversation(convo_id)
        if mode != "agent":
            _holds(convo, user)
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await store.set_mode(
                conn,
                convo["id"],
                mode,
                user.id if mode == "agent" else None,
                self.clock.now(),
                from_modes=from_modes,
            )
        if not moved:
            raise Conflict(
                f"the conversation is '{convo['mode']}', it cannot become '{mode}'",
                code="bad_state",
            )

    # -- replying ----------------------------------------------------------------------------

    async def reply(self, convo_id: int, user: StaffUser, text: str) -> Reply:
        """The agent's message, stored with the conversation, then sent on the citizen's own
        channel."""
        convo = await self.conversation(convo_id)
        _holds(convo, user)
        async with self.pool.acquire() as conn, conn.transaction():
            message_id = await store.store_agent_message(conn, convo["id"], text, self.clock.now())
        delivery = await self.deliver(convo, text, message_id)
        return Reply(message_id, convo["channel"], delivery)

    async def deliver(self, convo: asyncpg.Record, text: str, message_id: int) -> dict[str, Any]:
        """Send on the citizen's own channel. The message is stored first, whatever happens
        here."""
        route = citizen_route(convo["channel"], convo["session_key"], convo["phone"])
        if route is None:
            # the NOTIFY of the stored message reaches the widget's socket in whichever process
            return {"status": "pushed"}
        if not route.recipient:
            return {"status": "no_phone"}
        if self.outbox is None:
            return {"status": "not_configured"}
        try:
            result = await self.outbox.send(
                route.channel,
                route.recipient,
                text,
                "agent_reply",
                idempotency_key=f"agent-reply-{message_id}",
                conversation_id=convo["id"],
            )
        except InvalidRecipient:
            # a texter known only by a short code or a name: there is no number to write to
            return {"status": "no_phone"}
        return {"status": result.status, "error": result.error}

    # -- a work order from the conversation ---------------------------------------------------

    async def file_work_order(self, convo_id: int, user: StaffUser, draft: OrderDraft) -> Filed:
        """File the order for the conversation's citizen and dispatch it like any other; the
        agent's lead unit is checked by the dispatcher like a suggestion."""
        convo = await self.conversation(convo_id)
        if draft.lead_unit and draft.lead_unit not in self.units:
            raise ServiceError(f"unknown unit {draft.lead_unit!r}", code="bad_lead_unit")
        now = self.clock.now()
        actor = Actor(user.username, user.actor_role)
        lead = draft.lead_unit
        async with self.pool.acquire() as conn, conn.transaction():
            citizen_id = convo["citizen_id"]
            if draft.contact_phone:
                citizen_id = await citizens.attach_phone(conn, citizen_id, draft.contact_phone)
            order = await work_orders.create(
                conn,
                NewWorkOrder(
                    citizen_id=citizen_id,
                    conversation_id=convo["id"],
                    source_message_id=None,
                    channel=convo["channel"],
                    request_type=draft.request_type,
                    content=draft.content,
                    location=draft.location,
                    address=draft.address,
                    contact_phone=draft.contact_phone,
                    suggestions=[{"code": lead, "probability": 1.0, "confident": True}]
                    if lead
                    else [],
                ),
                actor,
                now,
            )
            intake = await self.dispatcher.intake(conn, order, now) if self.dispatcher else None
        return Filed(order["request_number"], intake.decision.lead if intake else None)

    # -- suggestions -------------------------------------------------------------------------

    async def record_feedback(
        self, user: StaffUser, convo_id: int, source: str, ref: str, rank: int, used: bool
    ) -> int:
        """Whether the agent used the suggestion ranked `rank` (services/agents/suggest.py)."""
        await self.conversation(convo_id)
        async with self.pool.acquire() as conn:
            return await store.record_feedback(
                conn, convo_id, user.id, source, ref, rank, used, self.clock.now()
            )
