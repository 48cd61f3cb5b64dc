"""The directory of linked units: loaded from a YAML file, mirrored into the units table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import yaml

KINDS = ("department", "territorial", "enterprise", "organization")


class UnitDirectoryError(ValueError):
    pass


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str
    duties: tuple[str, ...] = ()
    contact_phone: str | None = None
    aliases: tuple[str, ...] = ()  # the short names people call it by ("人社局")


@dataclass(frozen=True)
class UnitDirectory:
    units: tuple[Unit, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {u.code: u for u in self.units})

    def __len__(self) -> int:
        return len(self.units)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code  # type: ignore[attr-defined]

    def get(self, code: str) -> Unit | None:
        return self._by_code.get(code)  # type: ignore[attr-defined]

    def name(self, code: str | None) -> str:
        unit = self.get(code) if code else None
        return unit.name if unit else "待分派"

    @property
    def codes(self) -> list[str]:
        return [u.code for u in self.units]


def load_units(path: Path) -> UnitDirectory:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UnitDirectoryError(f"cannot read unit directory {path}: {exc}") from exc
    entries = raw.get("units") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UnitDirectoryError(f"{path}: expected a top-level 'units' list")
    units: list[Unit] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not entry.get("code") or not entry.get("name"):
            raise UnitDirectoryError(f"{path}: unit #{i} needs a code and a name")
        code = str(entry["code"])
        if code in seen:
            raise UnitDirectoryError(f"{path}: unit code {code!r} appears twice")
        kind = entry.get("kind", "department")
        if kind not in KINDS:
            raise UnitDirectoryError(f"{path}: unit {code!r} has unknown kind {kind!r}")
        seen.add(code)
        units.append(
            Unit(
                code=code,
                name=str(entry["name"]),
                kind=kind,
                duties=tuple(str(d) for d in entry.get("duties") or ()),
                contact_phone=entry.get("contact_phone"),
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
            )
        )
    return UnitDirectory(tuple(units))


async def sync_units(pool: asyncpg.Pool, directory: UnitDirectory) -> None:
    """Make the units table match the directory; units dropped from it become inactive."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """INSERT INTO units (code, name, kind, duties, contact_phone, active, updated_at)
               VALUES ($1, $2, $3, $4, $5, true, now())
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                   duties = EXCLUDED.duties,
                   contact_phone = COALESCE(EXCLUDED.contact_phone, units.contact_phone),
                   active = true, updated_at = now()""",
            [(u.code, u.name, u.kind, list(u.duties), u.contact_phone) for u in directory.units],
        )
        await conn.execute(
            "UPDATE units SET active = false WHERE NOT (code = ANY($1::text[]))", directory.codes
        )


async def set_contact_phone(conn: asyncpg.Connection, code: str, phone: str) -> bool:
    """The phone a unit is texted on (supervision lights); kept across directory reloads."""
    return (
        await conn.fetchval(
            "UPDATE units SET contact_phone = $2, updated_at = now() WHERE code = $1 RETURNING true",
            code,
            phone,
        )
        is True
    )


async def contact_phones(conn: asyncpg.Connection) -> dict[str, str | None]:
    """Each active unit's phone as entered now (the admin page edits them)."""
    rows = await conn.fetch("SELECT code, contact_phone FROM units WHERE active")
    return {r["code"]: r["contact_phone"] for r in rows}
