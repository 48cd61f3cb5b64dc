"""The Open311 services: one per matter category, derived from the unit directory.

Every duty of services/data/units.yaml is a category (违章停车, 路灯不亮, 拖欠工资 ...). A duty
of one unit names that unit as its default; a duty several units share (社区服务, 邻里纠纷,
村居服务 of the subdistricts and towns) leaves the unit to the place: the territorial unit of
the address, else the NLU, else the dispatch desk. One more service, 其他诉求 (`other`), leaves
the unit to the NLU altogether.

A service code is the first 8 hex digits of the SHA-256 of the category's name: it stays the
same whatever the order of the directory, and when a category moves to another unit; it
changes only when the category is renamed (two names with one code are refused at load).
Attributes (the GeoReport service definition) come from channels/data/open311_attributes.yaml
for the categories that need them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.core.unit_directory import UnitDirectory

ATTRIBUTES_FILE = Path(__file__).resolve().parent / "data" / "open311_attributes.yaml"
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LISTS = ("singlevaluelist", "multivaluelist")
OTHER = "other"
_KIND_GROUPS = {
    "department": "政府部门",
    "territorial": "街道镇",
    "enterprise": "公用企业",
    "organization": "群团组织",
}


class CatalogueError(ValueError):
    pass


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: str
    required: bool
    description: str
    order: int
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    group: str
    keywords: tuple[str, ...]
    # the default unit; None when the place or the NLU decides
    unit: str | None
    # the units that may handle it (all of them for `other`: empty)
    units: tuple[str, ...]
    attributes: tuple[Attribute, ...] = ()

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)

    def attribute(self, code: str) -> Attribute | None:
        return next((a for a in self.attributes if a.code == code), None)


def service_code(category: str) -> str:
    return hashlib.sha256(category.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class Catalogue:
    services: tuple[Service, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {s.code: s for s in self.services})

    def get(self, code: str) -> Service | None:
        return self._by_code.get(code)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.services)


def _attributes(category: str, raw: Any) -> tuple[Attribute, ...]:
    if not isinstance(raw, list) or not raw:
        raise CatalogueError(f"{category}: attributes must be a non-empty list")
    found = []
    for order, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not item.get("code") or not item.get("description"):
            raise CatalogueError(f"{category}: attribute #{order} needs a code and a description")
        datatype = item.get("datatype", "string")
        if datatype not in DATATYPES:
            raise CatalogueError(
                f"{category}: attribute {item['code']!r} has datatype {datatype!r}"
            )
        values = tuple((str(k), str(v)) for k, v in (item.get("values") or {}).items())
        if (datatype in LISTS) != bool(values):
            raise CatalogueError(f"{category}: attribute {item['code']!r}: values go with lists")
        found.append(
            Attribute(
                code=str(item["code"]),
                datatype=datatype,
                required=bool(item.get("required", False)),
                description=str(item["description"]),
                order=order,
                values=values,
            )
        )
    if len({a.code for a in found}) != len(found):
        raise CatalogueError(f"{category}: two attributes with one code")
    return tuple(found)


def load_attributes(path: Path = ATTRIBUTES_FILE) -> dict[str, tuple[Attribute, ...]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    table = raw.get("attributes") if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise CatalogueError(f"{path}: expected a top-level 'attributes' mapping")
    return {str(category): _attributes(str(category), spec) for category, spec in table.items()}


def build_catalogue(
    units: UnitDirectory, attributes: dict[str, tuple[Attribute, ...]] | None = None
) -> Catalogue:
    """The services of a unit directory, in the directory's order, `other` last."""
    attributes = load_attributes() if attributes is None else attributes
    owners: dict[str, list[str]] = {}
    for unit in units.units:
        for duty in unit.duties:
            owners.setdefault(duty, []).append(unit.code)
    unknown = sorted(set(attributes) - set(owners))
    if unknown:
        raise CatalogueError(f"attributes for categories no unit has: {', '.join(unknown)}")
    services = []
    for category, codes in owners.items():
        first = units.get(codes[0])
        assert first is not None
        shared = len(codes) > 1
        names = "、".join(units.name(c) for c in codes)
        services.append(
            Service(
                code=service_code(category),
                name=category,
                description=f"{category}（由事发地所在的{names}之一承办）"
                if shared
                else f"{category}（承办单位：{first.name}）",
                group=_KIND_GROUPS[first.kind] if shared else first.name,
                keywords=(category, *(units.name(c) for c in codes)),
                unit=None if shared else first.code,
                units=tuple(codes),
                attributes=attributes.get(category, ()),
            )
        )
    services.append(
        Service(
            code=OTHER,
            name="其他诉求",
            description="以上类别都不符合的诉求：热线按内容分派承办单位",
            group="其他",
            keywords=("其他",),
            unit=None,
            units=(),
        )
    )
    codes = [s.code for s in services]
    if len(set(codes)) != len(codes):
        raise CatalogueError("two categories have one service code; rename one of them")
    return Catalogue(tuple(services))
