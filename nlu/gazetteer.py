"""The default city's own gazetteer: subdistricts, towns, communities, villages, roads.

cpca knows provinces, prefectures and districts; below that every city keeps its own list,
which also says which territorial unit (块) owns a place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

GAZETTEER_FILE = Path(__file__).resolve().parent / "data" / "gazetteer.yaml"


@dataclass(frozen=True)
class Place:
    name: str
    level: str  # subdistrict, town, zone, community, village, road, landmark
    area: str | None  # the subdistrict/town/zone it lies in, None when it spans several
    unit: str | None  # the territorial unit of that area


@dataclass(frozen=True)
class Hit:
    place: Place
    start: int
    end: int


class Gazetteer:
    def __init__(self, city: str, places: list[Place], aliases: dict[str, Place]) -> None:
        self.city = city
        self.places = places
        self._lookup = dict(aliases)
        for place in places:
            self._lookup.setdefault(place.name, place)
        names = sorted(self._lookup, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in names)) if names else None

    @classmethod
    def load(cls, path: Path = GAZETTEER_FILE) -> Gazetteer:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        area_unit: dict[str, str | None] = {}
        places: list[Place] = []
        aliases: dict[str, Place] = {}
        for area in doc.get("areas") or []:
            place = Place(area["name"], area.get("level", "town"), area["name"], area.get("unit"))
            area_unit[area["name"]] = area.get("unit")
            places.append(place)
            for alias in area.get("aliases") or []:
                aliases[str(alias)] = place
        for entry in doc.get("places") or []:
            area = entry.get("area")
            place = Place(
                entry["name"],
                entry.get("level", "place"),
                area,
                area_unit.get(area) if area else None,
            )
            places.append(place)
            for alias in [entry.get("qualified"), *(entry.get("aliases") or [])]:
                if alias:
                    aliases[str(alias)] = place
        return cls(doc.get("city", ""), places, aliases)

    def find(self, text: str) -> list[Hit]:
        if self._pattern is None:
            return []
        return [
            Hit(self._lookup[m.group(0)], m.start(), m.end()) for m in self._pattern.finditer(text)
        ]

    def names(self) -> list[str]:
        return list(self._lookup)

    @property
    def territorial_units(self) -> frozenset[str]:
        return frozenset(
            p.unit for p in self.places if p.unit and p.level in ("subdistrict", "town", "zone")
        )

    def mask(self, text: str, token: str = "") -> str:
        """The text with every known place replaced by one token: what a matter is about
        decides the duty unit; where it is decides the territorial unit, separately."""
        return self._pattern.sub(token, text) if self._pattern is not None else text
