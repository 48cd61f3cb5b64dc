"""SQL of the knowledge-base tables: entries with their versions and phrasings, providers,
feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from knowledgebase.models import FaqEntry, Provider

_ENTRY_COLUMNS = "id, question, alternatives, answer, unit, tags, valid_from, valid_until, status"


def entry_from_row(row: asyncpg.Record) -> FaqEntry:
    return FaqEntry(**{k: row[k] for k in _ENTRY_COLUMNS.split(", ")})


async def save_entry(
    conn: asyncpg.Connection,
    entry: FaqEntry,
    *,
    actor: str,
    action: str,
    at: datetime,
    embeddings: list[Any] | None = None,
) -> int:
    """Insert or update an entry, keep a version snapshot and replace its phrasings.
    Call inside a transaction. Returns the new version number."""
    version = await conn.fetchval(
        """INSERT INTO kb_entries (id, question, alternatives, answer, unit, tags, valid_from,
               valid_until, status, version, updated_by, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)
           ON CONFLICT (id) DO UPDATE SET question = EXCLUDED.question,
               alternatives = EXCLUDED.alternatives, answer = EXCLUDED.answer,
               unit = EXCLUDED.unit, tags = EXCLUDED.tags, valid_from = EXCLUDED.valid_from,
               valid_until = EXCLUDED.valid_until, status = EXCLUDED.status,
               version = kb_entries.version + 1, updated_by = EXCLUDED.updated_by,
               updated_at = EXCLUDED.updated_at
           RETURNING version""",
        entry.id,
        entry.question,
        entry.alternatives,
        entry.answer,
        entry.unit,
        entry.tags,
        entry.valid_from,
        entry.valid_until,
        entry.status,
        actor,
        at,
    )
    await conn.execute(
        """INSERT INTO kb_entry_versions (entry_id, version, action, snapshot, changed_by, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        entry.id,
        version,
        action,
        entry.model_dump(mode="json"),
        actor,
        at,
    )
    await conn.execute("DELETE FROM kb_phrasings WHERE entry_id = $1", entry.id)
    phrasings = entry.phrasings()
    vectors = embeddings if embeddings is not None else [None] * len(phrasings)
    await conn.executemany(
        "INSERT INTO kb_phrasings (entry_id, text, embedding) VALUES ($1, $2, $3)",
        [(entry.id, text, vec) for text, vec in zip(phrasings, vectors, strict=True)],
    )
    return version


async def get_entry(conn: asyncpg.Connection, entry_id: str) -> FaqEntry | None:
    row = await conn.fetchrow(f"SELECT {_ENTRY_COLUMNS} FROM kb_entries WHERE id = $1", entry_id)
    return entry_from_row(row) if row else None


async def all_entries(conn: asyncpg.Connection) -> list[FaqEntry]:
    rows = await conn.fetch(f"SELECT {_ENTRY_COLUMNS} FROM kb_entries ORDER BY id")
    return [entry_from_row(r) for r in rows]


async def history(conn: asyncpg.Connection, entry_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, action, snapshot, changed_by, changed_at FROM kb_entry_versions
           WHERE entry_id = $1 ORDER BY version""",
        entry_id,
    )


async def count_entries(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM kb_entries")


async def save_providers(conn: asyncpg.Connection, providers: list[Provider], at: datetime) -> None:
    await conn.executemany(
        """INSERT INTO kb_providers (id, name, category, phone, area, hours, keywords, active, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
               phone = EXCLUDED.phone, area = EXCLUDED.area, hours = EXCLUDED.hours,
               keywords = EXCLUDED.keywords, active = true, updated_at = EXCLUDED.updated_at""",
        [(p.id, p.name, p.category, p.phone, p.area, p.hours, p.keywords, at) for p in providers],
    )


async def active_providers(conn: asyncpg.Connection) -> list[Provider]:
    rows = await conn.fetch(
        "SELECT id, name, category, phone, area, hours, keywords FROM kb_providers WHERE active ORDER BY id"
    )
    return [Provider(**dict(r)) for r in rows]


async def record_feedback(
    conn: asyncpg.Connection,
    entry_id: str,
    conversation_id: int | None,
    helpful: bool | None,
    at: datetime,
) -> int:
    return await conn.fetchval(
        """INSERT INTO kb_feedback (entry_id, conversation_id, helpful, created_at)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        entry_id,
        conversation_id,
        helpful,
        at,
    )


async def set_feedback(conn: asyncpg.Connection, feedback_id: int, helpful: bool) -> None:
    await conn.execute("UPDATE kb_feedback SET helpful = $2 WHERE id = $1", feedback_id, helpful)
