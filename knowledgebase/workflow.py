"""The editorial life of an entry: draft -> published -> retired, as an explicit table.

    draft ──publish──▶ published ──retire──▶ retired
      ▲                    │                    │
      └──────withdraw──────┴──────withdraw──────┘     (back to draft for rework)
    draft ──retire──▶ retired ──publish──▶ published  (discarding a draft, re-issuing)

Only published entries answer citizens, and only inside their validity dates. Content edits
are allowed in draft and published; a retired entry must be withdrawn to draft first, so an
edit can never silently bring back a notice that was taken down.
"""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "publish": (frozenset({"draft", "retired"}), "published"),
    "retire": (frozenset({"draft", "published"}), "retired"),
    "withdraw": (frozenset({"published", "retired"}), "draft"),
}
EDITABLE = frozenset({"draft", "published"})


class TransitionError(ValueError):
    def __init__(self, action: str, status: str) -> None:
        allowed = sorted(TRANSITIONS[action][0]) if action in TRANSITIONS else []
        super().__init__(
            f"cannot {action} an entry that is {status}"
            + (f" (only from {', '.join(allowed)})" if allowed else "")
        )
        self.action = action
        self.status = status


def next_status(action: str, status: str) -> str:
    if action not in TRANSITIONS:
        raise TransitionError(action, status)
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise TransitionError(action, status)
    return target


def check_editable(status: str) -> None:
    if status not in EDITABLE:
        raise TransitionError("edit", status)
