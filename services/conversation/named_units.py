"""Units a citizen names by the names people use ("工信局", "人社局", "总工会", "妇联"):
"帮我转给总工会" asks for the matter to go to that unit, not for an agent, and says which unit
should answer it.

The names come from the unit directory: the full name, the name without its "市" or "石狮市"
prefix, and the unit's `aliases` (the customary short forms, "人社局", "妇联", which a
deployment's own directory can extend).
"""

from __future__ import annotations

import re

from services.conversation.details import compact
from services.core.unit_directory import UnitDirectory

# Who the citizen wants when they ask for a person at the hotline itself.
_A_PERSON_HERE = re.compile(r"人工|客服|坐席|座席|接线员|真人|话务员|值班")


class NamedUnits:
    """Finds the unit a text names, longest name first ("市场监督管理局" before "工会")."""

    def __init__(self, units: UnitDirectory) -> None:
        names: dict[str, str] = {}
        for unit in units.units:
            for name in (unit.name, *_without_city(unit.name), *unit.aliases):
                if len(name) >= 2:
                    names.setdefault(name, unit.code)
        ordered = sorted(names, key=len, reverse=True)
        self._codes = names
        self._pattern = re.compile("|".join(re.escape(n) for n in ordered)) if ordered else None

    def named(self, text: str) -> str | None:
        """The unit the text names, if exactly one is named."""
        if self._pattern is None:
            return None
        found = {self._codes[m.group(0)] for m in self._pattern.finditer(compact(text))}
        return found.pop() if len(found) == 1 else None

    def forwarding_to(self, text: str) -> str | None:
        """The unit a request for someone names ("帮我转给工信局", "让人社局的人给我回个电话"),
        None when the citizen asks for an agent of the hotline ("转人工")."""
        if _A_PERSON_HERE.search(text):
            return None
        return self.named(text)


def _without_city(name: str) -> tuple[str, ...]:
    for prefix in ("石狮市", "市"):
        if name.startswith(prefix) and len(name) - len(prefix) >= 2:
            return (name[len(prefix) :],)
    return ()
