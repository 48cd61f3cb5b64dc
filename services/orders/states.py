"""The work-order state machine: which event may happen in which status, and what follows.

The status of an order is never set directly: an event is appended to its history and the
status follows from the event by this table. Events that do not move the order (a note, a
linked repeat report) keep the status as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import Conflict

AWAITING_DISPATCH = "awaiting_dispatch"
DISPATCHED = "dispatched"
SIGNED = "signed"
CONTACTED = "contacted"
RESOLVED = "resolved"
RETURNED = "returned"
ARBITRATION = "arbitration"
CLOSED = "closed"

STATUSES = (
    AWAITING_DISPATCH,
    DISPATCHED,
    SIGNED,
    CONTACTED,
    RESOLVED,
    RETURNED,
    ARBITRATION,
    CLOSED,
)
OPEN_STATUSES = tuple(s for s in STATUSES if s != CLOSED)

# Plain-Chinese names, for citizens asking about progress.
STATUS_LABELS = {
    AWAITING_DISPATCH: "已受理，正在分派承办单位",
    DISPATCHED: "已派发至承办单位，等待签收",
    SIGNED: "承办单位已签收，正在办理",
    CONTACTED: "承办单位已与您联系核实，正在办理",
    RESOLVED: "承办单位已办结，等待回访确认",
    RETURNED: "承办单位认为不属其职责已退回，中心正在重新分派",
    ARBITRATION: "承办单位存在争议，中心正在裁定承办单位",
    CLOSED: "已办结归档",
}


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[str] | None  # None: the order does not exist yet
    to: str | None  # None: the status stays as it is


def _t(sources: tuple[str, ...] | None, to: str | None) -> Transition:
    return Transition(frozenset(sources) if sources is not None else None, to)


_ANY_OPEN = OPEN_STATUSES
TRANSITIONS: dict[str, Transition] = {
    "filed": _t(None, AWAITING_DISPATCH),
    "dispatched": _t((AWAITING_DISPATCH, RETURNED), DISPATCHED),
    "reassigned": _t((DISPATCHED, SIGNED, CONTACTED), DISPATCHED),
    "signed": _t((DISPATCHED,), SIGNED),
    "contacted": _t((SIGNED,), CONTACTED),
    "resolved": _t((SIGNED, CONTACTED), RESOLVED),
    "returned": _t((DISPATCHED, SIGNED, CONTACTED), RETURNED),
    # disputed ownership: even before a first dispatch, when the desk cannot tell the owner
    "sent_to_arbitration": _t(
        (AWAITING_DISPATCH, RETURNED, DISPATCHED, SIGNED, CONTACTED), ARBITRATION
    ),
    "arbitrated": _t((ARBITRATION,), DISPATCHED),
    "revisit_satisfied": _t((RESOLVED,), CLOSED),
    "revisit_no_answer": _t((RESOLVED,), CLOSED),
    "revisit_dissatisfied": _t((RESOLVED,), SIGNED),
    "note": _t(_ANY_OPEN + (CLOSED,), None),
    "repeat_linked": _t(_ANY_OPEN + (CLOSED,), None),
    "escalated": _t(_ANY_OPEN, None),
    "assist_added": _t(_ANY_OPEN, None),
    # the lead unit's decision on a suggestion (建言): adopted or not, with the reason
    "suggestion_adopted": _t((SIGNED, CONTACTED, RESOLVED, CLOSED), None),
    "suggestion_not_adopted": _t((SIGNED, CONTACTED, RESOLVED, CLOSED), None),
}


class TransitionError(Conflict):
    """An event that the order's current status does not allow."""

    code = "bad_state"


def next_status(current: str | None, kind: str) -> str:
    transition = TRANSITIONS.get(kind)
    if transition is None:
        raise TransitionError(f"unknown event {kind!r}")
    if transition.allowed_from is None:
        if current is not None:
            raise TransitionError(f"{kind!r} only starts an order")
    elif current not in transition.allowed_from:
        raise TransitionError(f"{kind!r} is not allowed when the order is {current!r}")
    if transition.to is None:
        assert current is not None
        return current
    return transition.to


def replay(kinds: list[str]) -> str | None:
    """The status that a history of events leads to."""
    status: str | None = None
    for kind in kinds:
        status = next_status(status, kind)
    return status


# The clocks of the time limits ("125" and the centre's own dispatch limit) and the statuses in
# which each one runs: a clock stops by itself when the order leaves those statuses.
CLOCK_POINTS: dict[str, tuple[str, ...]] = {
    "dispatch": (AWAITING_DISPATCH, RETURNED),
    "sign_for": (DISPATCHED,),
    "contact": (DISPATCHED, SIGNED),
    "handling": (DISPATCHED, SIGNED, CONTACTED),
}
# Events that hand the order to a (new) lead unit and so restart the unit's clocks.
CYCLE_EVENTS = frozenset({"dispatched", "reassigned", "arbitrated"})
# Statuses in which the order waits for the centre to name a lead unit.
DISPATCH_QUEUE = (AWAITING_DISPATCH, RETURNED)
