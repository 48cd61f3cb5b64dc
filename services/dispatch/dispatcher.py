"""Dispatch: who handles a work order. The one place where that is decided.

On arrival (`intake`, called by the conversation service in the transaction that files the
order) the order's dispatch clock starts (1 working day), repeat reports are linked, and then:

* a close arbitration precedent (a supervisor decided the owner of a very similar order)
  names the lead unit;
* otherwise the NLU's top unit does, when the NLU is confident and no similar precedent
  names another unit;
* otherwise the order waits in the manual dispatch queue with the top-3 suggestions
  (precedents first, then the NLU's, then the territorial unit of the place).

When the lead is a department (条) and the matter is local (the address names its territorial
unit, 块), the territorial unit assists. Agents dispatch from the queue, change the lead and add
assisting units. A unit may return an order with a reason: it goes back to the queue without
that unit among the suggestions (lighting 退回重派 yellow when it is dispatched again); returned
a second time, or disputed, it goes to arbitration (red), where a supervisor decides the owner.
The decision is kept as a precedent for similar orders, and an owner decided by arbitration
cannot return the order again.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services.core import metrics
from services.core.errors import ServiceError
from services.core.textsim import Profile
from services.core.unit_directory import UnitDirectory
from services.deadlines.timelimits import OrderClocks, TimeLimits
from services.deadlines.workdays import WorkCalendar
from services.dispatch import repeats
from services.dispatch.repeats import RepeatLink, RepeatPolicy
from services.orders import states
from services.storage import assists, nlu_examples, precedents, work_orders
from services.storage.work_orders import Actor
from services.supervision.lights import Supervision

log = logging.getLogger(__name__)

AUTO = Actor("dispatch", "system")
SUGGESTIONS = 3


class DispatchError(ServiceError):
    """A dispatch action that cannot be done; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason, code=code, status=status)


@dataclass(frozen=True)
class DispatchPolicy:
    # similarity (services/core/textsim.py, without the place) from which a precedent decides the
    # lead by itself, and from which it is shown first among the suggestions
    precedent_decides: float = 0.55
    precedent_suggests: float = 0.3


@dataclass
class Suggestion:
    code: str
    probability: float | None
    source: str  # nlu, precedent, territorial
    precedent_id: int | None = None


@dataclass
class Decision:
    lead: str | None
    assists: list[str]
    suggestions: list[Suggestion]
    reason: str  # precedent, nlu, queue
    precedent_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IntakeResult:
    decision: Decision
    repeat: RepeatLink | None


@dataclass
class _Precedent:
    id: int
    unit: str
    rejected: frozenset[str]
    profile: Profile
    request_number: str


@dataclass
class PrecedentIndex:
    """The active precedents with their n-gram profiles, reloaded when the table changes."""

    _version: tuple[int, int] | None = None
    _items: list[_Precedent] = field(default_factory=list)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        version = await precedents.version(conn)
        if version == self._version:
            return
        rows = await precedents.active(conn)
        self._items = [
            _Precedent(
                r["id"],
                r["unit_code"],
                frozenset(r["rejected_units"]),
                Profile.of(r["text"]),
                r["request_number"],
            )
            for r in rows
        ]
        self._version = version

    def nearest(self, profile: Profile) -> tuple[_Precedent | None, float]:
        best: _Precedent | None = None
        score = 0.0
        for item in self._items:
            s = item.profile.cosine(profile)
            if s > score:
                best, score = item, s
        return best, score


def _territorial(address: dict[str, Any] | None) -> str | None:
    return address.get("territorial_unit") if address else None


class Dispatcher:
    def __init__(
        self,
        units: UnitDirectory,
        clocks: OrderClocks,
        *,
        policy: DispatchPolicy | None = None,
        repeat_policy: RepeatPolicy | None = None,
    ) -> None:
        self.units = units
        self.clocks = clocks
        self.policy = policy or DispatchPolicy()
        self.repeat_policy = repeat_policy or RepeatPolicy()
        self.precedents = PrecedentIndex()

    @classmethod
    def with_defaults(cls, units: UnitDirectory) -> Dispatcher:
        """The statutory calendar and the default limits (for callers without settings)."""
        return cls(units, OrderClocks(WorkCalendar(), TimeLimits()))

    # -- deciding --------------------------------------------------------------------------

    def _known(self, code: str | None) -> bool:
        return bool(code) and code in self.units

    def assists_for(self, lead: str, address: dict[str, Any] | None) -> list[str]:
        """The territorial unit assists a department when the matter is local."""
        unit = self.units.get(lead)
        local = _territorial(address)
        if unit is None or unit.kind != "department" or not self._known(local) or local == lead:
            return []
        return [local]

    def decide(
        self,
        content: str,
        location: str | None,
        address: dict[str, Any] | None,
        nlu_suggestions: list[dict[str, Any]],
        excluded: set[str] | frozenset[str] = frozenset(),
    ) -> Decision:
        """Who should lead, from the NLU's suggestions, the precedents and the place."""
        precedent, score = self.precedents.nearest(Profile.of(content, remove=location))
        ranked: list[Suggestion] = []
        rejected: frozenset[str] = frozenset()
        if precedent is not None and score >= self.policy.precedent_suggests:
            rejected = precedent.rejected
            if self._known(precedent.unit) and precedent.unit not in excluded:
                ranked.append(
                    Suggestion(precedent.unit, round(score, 4), "precedent", precedent.id)
                )
        nlu = [
            s for s in nlu_suggestions if self._known(s.get("code")) and s["code"] not in excluded
        ]
        # units a precedent found not responsible go to the end
        nlu.sort(key=lambda s: s["code"] in rejected)
        for s in nlu:
            if all(r.code != s["code"] for r in ranked):
                ranked.append(Suggestion(s["code"], s.get("probability"), "nlu"))
        local = _territorial(address)
        if self._known(local) and local not in excluded and all(r.code != local for r in ranked):
            ranked.append(Suggestion(local, None, "territorial"))
        ranked = ranked[:SUGGESTIONS]

        lead: str | None = None
        reason = "queue"
        precedent_id = None
        if (
            precedent is not None
            and score >= self.policy.precedent_decides
            and ranked
            and ranked[0].source == "precedent"
        ):
            lead, reason, precedent_id = precedent.unit, "precedent", precedent.id
        else:
            top = nlu_suggestions[0] if nlu_suggestions else None
            # a similar precedent that names another unit makes the NLU's pick doubtful
            contradicted = (
                precedent is not None
                and score >= self.policy.precedent_suggests
                and top is not None
                and precedent.unit != top.get("code")
            )
            if (
                top is not None
                and top.get("confident")
                and not contradicted
                and self._known(top["code"])
                and top["code"] not in excluded
            ):
                lead, reason = top["code"], "nlu"
        assist = self.assists_for(lead, address) if lead else []
        return Decision(lead, assist, ranked, reason, precedent_id)

    async def preview(
        self,
        conn: asyncpg.Connection,
        content: str,
        location: str | None,
        address: dict[str, Any] | None,
        nlu_suggestions: list[dict[str, Any]],
    ) -> str | None:
        """The lead unit an order like this would get now (to tell the citizen beforehand)."""
        await self.precedents.refresh(conn)
        return self.decide(content, location, address, nlu_suggestions).lead

    # -- arrival ---------------------------------------------------------------------------

    async def intake(
        self, conn: asyncpg.Connection, order: asyncpg.Record, at: datetime
    ) -> IntakeResult:
        """A just-filed order: start its dispatch clock, link repeats, dispatch it or queue it.

        Call in the transaction that created the order."""
        changes = self.clocks.changes_for("filed", {"clock_seq": 0}, at)
        await work_orders.set_clocks(conn, order["id"], changes)
        repeat = await repeats.link(conn, order, at, self.repeat_policy, self.clocks)
        await self.precedents.refresh(conn)
        decision = self.decide(
            order["content"], order["location"], order["address"], list(order["suggestions"])
        )
        if decision.lead:
            await self._dispatch(
                conn,
                order["id"],
                decision.lead,
                decision.assists,
                AUTO,
                at,
                data={
                    "auto": True,
                    "reason": decision.reason,
                    "precedent_id": decision.precedent_id,
                    "suggestions": [asdict(s) for s in decision.suggestions],
                    "assists": decision.assists,
                },
            )
        metrics.ORDERS_FILED.labels(channel=order["channel"]).inc()
        metrics.ORDERS_DISPATCHED.labels(decision=decision.reason).inc()
        return IntakeResult(decision, repeat)

    # -- the dispatch desk -----------------------------------------------------------------

    async def _order(self, conn: asyncpg.Connection, order_id: int) -> asyncpg.Record:
        order = await work_orders.staff_view(conn, order_id)
        if order is None:
            raise DispatchError(404, "not_found", "no such work order")
        return order

    def _unit(self, code: object, what: str = "unit") -> str:
        if not isinstance(code, str) or code not in self.units:
            raise DispatchError(400, "unknown_unit", f"{what} {code!r} is not a linked unit")
        return code

    async def _dispatch(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        lead: str,
        assist: list[str],
        actor: Actor,
        at: datetime,
        *,
        note: str | None = None,
        data: dict[str, Any] | None = None,
        kind: str = "dispatched",
    ) -> None:
        before = await work_orders.clock_state(conn, order_id)
        await self.clocks.record(
            conn,
            order_id,
            kind,
            actor,
            at,
            lead_unit=lead,
            note=note,
            data={**(data or {}), "assists": assist},
        )
        if actor.role != "system":
            # a person's decision is a labelled example for retraining the NLU
            # (hotline nlu retrain); the engine's own automatic choice is not
            await nlu_examples.insert_from_order(conn, order_id, lead, kind, actor.name, at)
        await assists.remove(conn, order_id, lead)
        for unit in assist:
            if unit != lead:
                await assists.add(conn, order_id, unit, actor.name, at)
        if before is not None and before["status"] == states.RETURNED:
            await Supervision.raise_event_light(conn, order_id, "returned", "yellow", lead, at)

    def _transition_error(self, exc: states.TransitionError) -> DispatchError:
        return DispatchError(409, "bad_state", str(exc))

    async def dispatch(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        lead: object,
        assist: list[object] | None,
        actor: Actor,
        at: datetime,
        note: str | None = None,
    ) -> None:
        """Dispatch an order from the manual queue (awaiting dispatch, or returned)."""
        lead = self._unit(lead, "lead unit")
        assist_units = [self._unit(u, "assisting unit") for u in (assist or [])]
        order = await self._order(conn, order_id)
        if order["status"] not in states.DISPATCH_QUEUE:
            raise DispatchError(
                409, "bad_state", f"the order is {order['status']}, not waiting for dispatch"
            )
        returned_by = await work_orders.unit_events(conn, order_id, "returned")
        if lead in returned_by:
            raise DispatchError(
                409,
                "returned_by_unit",
                f"{self.units.name(lead)} has returned this order; send it to arbitration to make it the owner",
            )
        if not assist_units:
            assist_units = self.assists_for(lead, order["address"])
        try:
            await self._dispatch(conn, order_id, lead, assist_units, actor, at, note=note)
        except states.TransitionError as exc:
            raise self._transition_error(exc) from exc

    async def change_lead(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        lead: object,
        actor: Actor,
        at: datetime,
        reason: str,
    ) -> None:
        """Give a dispatched order another lead unit; its clocks start again."""
        lead = self._unit(lead, "lead unit")
        order = await self._order(conn, order_id)
        if order["lead_unit"] == lead:
            raise DispatchError(409, "same_unit", "that unit already leads this order")
        current = await assists.of_order(conn, order_id)
        try:
            await self._dispatch(
                conn,
                order_id,
                lead,
                [u for u in current if u != lead],
                actor,
                at,
                note=reason,
                data={"previous_lead": order["lead_unit"]},
                kind="reassigned",
            )
        except states.TransitionError as exc:
            raise self._transition_error(exc) from exc

    async def add_assist(
        self, conn: asyncpg.Connection, order_id: int, unit: object, actor: Actor, at: datetime
    ) -> None:
        unit = self._unit(unit, "assisting unit")
        order = await self._order(conn, order_id)
        if order["lead_unit"] == unit and order["status"] not in states.DISPATCH_QUEUE:
            raise DispatchError(409, "is_lead", "that unit leads this order")
        if await assists.assists(conn, order_id, unit):
            raise DispatchError(409, "already_assists", "that unit already assists")
        try:
            await self.clocks.record(conn, order_id, "assist_added", actor, at, unit=unit)
        except states.TransitionError as exc:
            raise self._transition_error(exc) from exc
        await assists.add(conn, order_id, unit, actor.name, at)

    # -- returns and arbitration -----------------------------------------------------------

    async def unit_return(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        unit: str,
        reason: str,
        actor: Actor,
        at: datetime,
        *,
        dispute: bool = False,
    ) -> str:
        """The lead unit returns the order as not its duty. Returns the status it ends in."""
        order = await self._order(conn, order_id)
        if order["lead_unit"] != unit:
            raise DispatchError(403, "not_lead", "only the lead unit can return an order")
        if await work_orders.last_cycle_event(conn, order_id) == "arbitrated":
            raise DispatchError(
                409,
                "decided_by_arbitration",
                "the owner of this order was decided by arbitration; ask the supervision desk",
            )
        try:
            await self.clocks.record(
                conn,
                order_id,
                "returned",
                actor,
                at,
                unit=unit,
                note=reason,
                data={"dispute": dispute},
            )
        except states.TransitionError as exc:
            raise self._transition_error(exc) from exc
        times = order["return_count"] + 1
        if dispute or times >= 2:
            why = "disputed" if dispute else "returned_twice"
            await self.clocks.record(
                conn, order_id, "sent_to_arbitration", AUTO, at, unit=unit, data={"why": why}
            )
            await Supervision.raise_event_light(conn, order_id, "returned", "red", unit, at)
            return states.ARBITRATION
        return states.RETURNED

    async def send_to_arbitration(
        self, conn: asyncpg.Connection, order_id: int, actor: Actor, at: datetime, reason: str
    ) -> None:
        """An agent or supervisor finds the owner disputed."""
        order = await self._order(conn, order_id)
        try:
            await self.clocks.record(
                conn,
                order_id,
                "sent_to_arbitration",
                actor,
                at,
                note=reason,
                data={"why": "disputed"},
            )
        except states.TransitionError as exc:
            raise self._transition_error(exc) from exc
        await Supervision.raise_event_light(
            conn, order_id, "returned", "red", order["lead_unit"], at
        )

    async def arbitrate(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        unit: object,
        reason: str,
        actor: Actor,
        at: datetime,
        assist: list[object] | None = None,
    ) -> int:
        """A supervisor decides the owner; the decision becomes a precedent. Returns its id."""
        unit = self._unit(unit, "owner")
        assist_units = [self._unit(u, "assisting unit") for u in (assist or [])]
        order = await self._order(conn, order_id)
        if order["status"] != states.ARBITRATION:
            raise DispatchError(
                409, "bad_state", f"the order is {order['status']}, not in arbitration"
            )
        returned_by = await work_orders.unit_events(conn, order_id, "returned")
        if not assist_units:
            assist_units = self.assists_for(unit, order["address"])
        # the place is not part of what the matter is about
        text = order["content"]
        if order["location"]:
            text = text.replace(order["location"], " ")
        precedent_id = await precedents.insert(
            conn,
            order_id,
            text,
            unit,
            sorted(set(returned_by) - {unit}),
            reason,
            actor.name,
            at,
        )
        await self._dispatch(
            conn,
            order_id,
            unit,
            assist_units,
            actor,
            at,
            note=reason,
            data={"precedent_id": precedent_id, "returned_by": returned_by},
            kind="arbitrated",
        )
        return precedent_id

    # -- queues ----------------------------------------------------------------------------

    async def queue_item(self, conn: asyncpg.Connection, order: asyncpg.Record) -> dict[str, Any]:
        """An order of the dispatch or arbitration queue, with fresh suggestions."""
        returned_by = await work_orders.unit_events(conn, order["id"], "returned")
        decision = self.decide(
            order["content"],
            order["location"],
            order["address"],
            list(order["suggestions"]),
            excluded=set(returned_by),
        )
        return {
            "suggestions": [
                {**asdict(s), "name": self.units.name(s.code)} for s in decision.suggestions
            ],
            "returned_by": returned_by,
        }

    async def queue(
        self,
        conn: asyncpg.Connection,
        statuses: tuple[str, ...],
        limit: int,
        offset: int,
    ) -> list[tuple[asyncpg.Record, dict[str, Any]]]:
        await self.precedents.refresh(conn)
        rows = await work_orders.in_status(conn, statuses, limit, offset)
        return [(row, await self.queue_item(conn, row)) for row in rows]
