"""The time limits of an order and the clocks that follow its events.

The "125" limits run from the moment the order reaches its lead unit (dispatch, reassignment,
arbitration): sign for within 1 working day, contact the citizen within 2, resolve and report
within 5. The centre's own limit, dispatch within 1 working day, runs from arrival and again
from a return. A citizen dissatisfied at the revisit restarts the contact and handling clocks.
Working days and how a limit counts: services/deadlines/workdays.py.

`OrderClocks.record` is how the dispatch desk, the units and the supervisors record an event:
it appends the event through the state machine and, in the same transaction, stores the
deadlines and yellow instants the event starts (and puts them in the event's data, for the
performance figures). Which clocks run follows from the status (CLOCK_POINTS), so an event
that stops a clock needs to write nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.deadlines.workdays import WorkCalendar
from services.orders import states
from services.storage import work_orders
from services.storage.work_orders import Actor

UNIT_POINTS = ("sign_for", "contact", "handling")
REOPEN_POINTS = ("contact", "handling")


@dataclass(frozen=True)
class TimeLimits:
    """Limits in working days, and the share of a limit after which its light turns yellow."""

    dispatch: float = 1.0
    sign_for: float = 1.0
    contact: float = 2.0
    handling: float = 5.0
    yellow_share: float = 0.8

    def __post_init__(self) -> None:
        for point in states.CLOCK_POINTS:
            if self.days(point) <= 0:
                raise ValueError(f"the {point} limit must be positive")
        if not 0 < self.yellow_share < 1:
            raise ValueError("the yellow share must be between 0 and 1")

    def days(self, point: str) -> float:
        return float(getattr(self, point))


class OrderClocks:
    def __init__(self, calendar: WorkCalendar, limits: TimeLimits) -> None:
        self.calendar = calendar
        self.limits = limits

    def thresholds(self, point: str, start: datetime) -> tuple[datetime, datetime]:
        """(yellow instant, deadline) of a clock started at `start`."""
        days = self.limits.days(point)
        return (
            self.calendar.add(start, days * self.limits.yellow_share),
            self.calendar.add(start, days),
        )

    def _start(self, points: tuple[str, ...], at: datetime) -> dict[str, datetime]:
        values: dict[str, datetime] = {}
        for point in points:
            values[f"{point}_yellow_at"], values[f"{point}_due_at"] = self.thresholds(point, at)
        return values

    def changes_for(self, kind: str, state: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """The clock columns an event of `kind` at `at` sets (before the next check)."""
        seq = state["clock_seq"]
        if kind == "filed":
            return {"dispatch_clock_at": at, **self._start(("dispatch",), at)}
        if kind == "returned":
            return {
                "clock_seq": seq + 1,
                "dispatch_clock_at": at,
                "return_count": state["return_count"] + 1,
                **self._start(("dispatch",), at),
            }
        if kind in states.CYCLE_EVENTS:
            return {"clock_seq": seq + 1, "unit_clock_at": at, **self._start(UNIT_POINTS, at)}
        if kind == "revisit_dissatisfied":
            return {
                "clock_seq": seq + 1,
                "unit_clock_at": at,
                "dissatisfied_count": state["dissatisfied_count"] + 1,
                "sign_for_yellow_at": None,
                "sign_for_due_at": None,
                **self._start(REOPEN_POINTS, at),
            }
        return {}

    async def record(
        self,
        conn: asyncpg.Connection,
        order_id: int,
        kind: str,
        actor: Actor,
        at: datetime,
        *,
        unit: str | None = None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
        lead_unit: str | None = None,
    ) -> str:
        """Append an event and move the order's clocks with it. Call inside a transaction.

        Raises LookupError for a missing order and TransitionError for an event its status
        does not allow (nothing is written then)."""
        state = await work_orders.clock_state(conn, order_id)
        if state is None:
            raise LookupError(f"work order {order_id} does not exist")
        changes = self.changes_for(kind, state, at)
        data = dict(data or {})
        deadlines = {
            k: v.isoformat() for k, v in changes.items() if k.endswith("_due_at") and v is not None
        }
        if deadlines:
            data["deadlines"] = deadlines
        if kind in states.CYCLE_EVENTS and state["status"] in states.CLOCK_POINTS["dispatch"]:
            # the centre's own deadline that this dispatch met or missed (public figures)
            due = state["dispatch_due_at"]
            data["dispatch_due_at"] = due.isoformat() if due is not None else None
        status = await work_orders.record_event(
            conn, order_id, kind, actor, at, unit=unit, note=note, data=data, lead_unit=lead_unit
        )
        await work_orders.set_clocks(conn, order_id, changes)
        return status

    async def restart_all(self, conn: asyncpg.Connection, order_id: int) -> None:
        """Recompute the running clocks from their start (after the calendar changed)."""
        state = await work_orders.clock_state(conn, order_id)
        if state is None:
            return
        changes: dict[str, Any] = {}
        if state["dispatch_clock_at"] is not None:
            changes.update(self._start(("dispatch",), state["dispatch_clock_at"]))
        if state["unit_clock_at"] is not None:
            points = UNIT_POINTS if state["sign_for_due_at"] is not None else REOPEN_POINTS
            changes.update(self._start(points, state["unit_clock_at"]))
        await work_orders.set_clocks(conn, order_id, changes)
