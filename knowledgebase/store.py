"""SQL of the knowledge-base tables: entries with their versions and phrasings (with e5
vectors), calibrations, providers, feedback and misses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from knowledgebase.models import FaqEntry, Provider
from knowledgebase.retrieval import document

ENTRY_FIELDS = (
    "id",
    "question",
    "alternatives",
    "answer",
    "unit",
    "tags",
    "valid_from",
    "valid_until",
    "status",
)
_ENTRY_COLUMNS = ", ".join(ENTRY_FIELDS)
_META_COLUMNS = "version, created_by, created_at, updated_by, updated_at, published_at"
VECTOR_INDEX = "kb_phrasings_embedding_hnsw"


class VersionConflict(Exception):
    """The entry changed since the editor loaded it."""

    def __init__(self, entry_id: str, expected: int, actual: int) -> None:
        super().__init__(f"{entry_id} is at version {actual}, not {expected}")
        self.entry_id = entry_id
        self.expected = expected
        self.actual = actual


@dataclass
class EntryMeta:
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    published_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }


@dataclass
class SaveResult:
    version: int
    created: bool
    changed_fields: list[str]

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changed_fields)


def entry_from_row(row: asyncpg.Record) -> FaqEntry:
    return FaqEntry(**{k: row[k] for k in ENTRY_FIELDS})


def meta_from_row(row: asyncpg.Record) -> EntryMeta:
    return EntryMeta(**{k: row[k] for k in _META_COLUMNS.split(", ")})


def changed_fields(before: FaqEntry | None, after: FaqEntry) -> list[str]:
    if before is None:
        return []
    old, new = before.model_dump(), after.model_dump()
    return [k for k in ENTRY_FIELDS if old[k] != new[k]]


async def save_entry(
    conn: asyncpg.Connection,
    entry: FaqEntry,
    *,
    actor: str,
    action: str,
    at: datetime,
    embeddings: list[Any] | None = None,
    embedding_model: str | None = None,
    expected_version: int | None = None,
) -> SaveResult:
    """Insert or update one entry; see save_entries."""
    results = await save_entries(
        conn,
        [entry],
        actor=actor,
        action=action,
        at=at,
        embeddings=None if embeddings is None else {entry.id: embeddings},
        embedding_model=embedding_model,
        expected_versions=None if expected_version is None else {entry.id: expected_version},
    )
    return results[0]


async def save_entries(
    conn: asyncpg.Connection,
    entries: list[FaqEntry],
    *,
    actor: str,
    action: str,
    at: datetime,
    embeddings: dict[str, list[Any]] | None = None,
    embedding_model: str | None = None,
    expected_versions: dict[str, int] | None = None,
) -> list[SaveResult]:
    """Insert or update entries, keep a version snapshot (with the changed fields) of each
    one that changed, and replace the phrasings whose wording changed. Statements are batched,
    so a bulk import costs a few round trips, not a few per entry. Call inside a transaction.
    An entry that would change nothing writes nothing."""
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError("an entry id appears twice in one save")
    rows = await conn.fetch(
        f"""SELECT {_ENTRY_COLUMNS}, version FROM kb_entries WHERE id = ANY($1::text[])
            ORDER BY id FOR UPDATE""",
        ids,
    )
    existing = {r["id"]: (entry_from_row(r), r["version"]) for r in rows}
    results: list[SaveResult] = []
    upserts, versions, rephrase = [], [], []
    for entry in entries:
        before, version = existing.get(entry.id, (None, 0))
        expected = (expected_versions or {}).get(entry.id)
        if expected is not None and expected != version:
            raise VersionConflict(entry.id, expected, version)
        fields = changed_fields(before, entry)
        if before is not None and not fields:
            results.append(SaveResult(version, False, []))
            continue
        published_now = entry.status == "published" and (
            before is None or before.status != "published"
        )
        upserts.append(
            (
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
                published_now,
            )
        )
        versions.append(
            (entry.id, version + 1, action, entry.model_dump(mode="json"), actor, at, fields)
        )
        if (
            before is None
            or before.phrasings() != entry.phrasings()
            or document(before) != document(entry)
            or (embeddings and entry.id in embeddings)
        ):
            rephrase.append(entry)
        results.append(SaveResult(version + 1, before is None, fields))
    if upserts:
        await conn.executemany(
            """INSERT INTO kb_entries (id, question, alternatives, answer, unit, tags,
                   valid_from, valid_until, status, version, created_by, created_at, updated_by,
                   updated_at, published_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $10, $11,
                       CASE WHEN $12 THEN $11::timestamptz END)
               ON CONFLICT (id) DO UPDATE SET question = EXCLUDED.question,
                   alternatives = EXCLUDED.alternatives, answer = EXCLUDED.answer,
                   unit = EXCLUDED.unit, tags = EXCLUDED.tags, valid_from = EXCLUDED.valid_from,
                   valid_until = EXCLUDED.valid_until, status = EXCLUDED.status,
                   version = kb_entries.version + 1, updated_by = EXCLUDED.updated_by,
                   updated_at = EXCLUDED.updated_at,
                   published_at = COALESCE(EXCLUDED.published_at, kb_entries.published_at)""",
            upserts,
        )
        await conn.executemany(
            """INSERT INTO kb_entry_versions
                   (entry_id, version, action, snapshot, changed_by, changed_at, changed_fields)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            versions,
        )
    if rephrase:
        await conn.execute(
            "DELETE FROM kb_phrasings WHERE entry_id = ANY($1::text[])", [e.id for e in rephrase]
        )
        records = []
        for entry in rephrase:
            vectors = (embeddings or {}).get(entry.id)
            model = embedding_model if vectors is not None else None
            texts = [("phrasing", i, t) for i, t in enumerate(entry.phrasings())]
            texts.append(("document", 0, document(entry)))
            for n, (kind, i, text) in enumerate(texts):
                vec = None if vectors is None else vectors[n]
                records.append((entry.id, kind, i, text, vec, model))
        await conn.copy_records_to_table(
            "kb_phrasings",
            records=records,
            columns=["entry_id", "kind", "position", "text", "embedding", "embedding_model"],
        )
    return results


async def get_entry(conn: asyncpg.Connection, entry_id: str) -> FaqEntry | None:
    row = await conn.fetchrow(f"SELECT {_ENTRY_COLUMNS} FROM kb_entries WHERE id = $1", entry_id)
    return entry_from_row(row) if row else None


async def get_entry_with_meta(
    conn: asyncpg.Connection, entry_id: str
) -> tuple[FaqEntry, EntryMeta] | None:
    row = await conn.fetchrow(
        f"SELECT {_ENTRY_COLUMNS}, {_META_COLUMNS} FROM kb_entries WHERE id = $1", entry_id
    )
    return (entry_from_row(row), meta_from_row(row)) if row else None


async def all_entries(conn: asyncpg.Connection) -> list[FaqEntry]:
    rows = await conn.fetch(f"SELECT {_ENTRY_COLUMNS} FROM kb_entries ORDER BY id")
    return [entry_from_row(r) for r in rows]


async def list_entries(
    conn: asyncpg.Connection,
    *,
    status: str | None = None,
    unit: str | None = None,
    text: str | None = None,
    ids: list[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[FaqEntry, EntryMeta]], int]:
    """Entries matching the filters (text: a substring of question, alternatives or answer),
    newest change first, and how many match in all."""
    where, args = [], []
    if status:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if unit:
        args.append(unit)
        where.append(f"unit = ${len(args)}")
    if text:
        args.append(f"%{text}%")
        n = len(args)
        where.append(
            f"(question ILIKE ${n} OR answer ILIKE ${n} OR array_to_string(alternatives, ' ') ILIKE ${n})"
        )
    if ids is not None:
        args.append(ids)
        where.append(f"id = ANY(${len(args)}::text[])")
    clause = " WHERE " + " AND ".join(where) if where else ""
    total = await conn.fetchval(f"SELECT count(*) FROM kb_entries{clause}", *args)
    rows = await conn.fetch(
        f"""SELECT {_ENTRY_COLUMNS}, {_META_COLUMNS} FROM kb_entries{clause}
            ORDER BY updated_at DESC, id LIMIT {int(limit)} OFFSET {int(offset)}""",
        *args,
    )
    return [(entry_from_row(r), meta_from_row(r)) for r in rows], total


async def history(conn: asyncpg.Connection, entry_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, action, snapshot, changed_by, changed_at, changed_fields
           FROM kb_entry_versions WHERE entry_id = $1 ORDER BY version""",
        entry_id,
    )


async def count_entries(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM kb_entries")


# -- phrasings and their vectors ---------------------------------------------------------------


@dataclass
class PhrasingRow:
    id: int
    entry_id: str
    kind: str
    position: int
    text: str
    embedding: np.ndarray | None
    embedding_model: str | None


async def all_phrasings(conn: asyncpg.Connection) -> list[PhrasingRow]:
    rows = await conn.fetch(
        """SELECT id, entry_id, kind, position, text, embedding, embedding_model
           FROM kb_phrasings ORDER BY entry_id, kind, position"""
    )
    return [PhrasingRow(**{**dict(r), "embedding": _array(r["embedding"])}) for r in rows]


def _array(value: Any) -> np.ndarray | None:
    """pgvector hands back its own Vector type (or, in older versions, an array)."""
    if value is None:
        return None
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


async def set_embeddings(
    conn: asyncpg.Connection, rows: list[tuple[int, str, np.ndarray]], model: str
) -> None:
    """Vectors of rows by id, with the text they encode (a whole-entry row is scored without
    the base's reply template, see knowledgebase/boilerplate.py)."""
    await conn.executemany(
        "UPDATE kb_phrasings SET text = $2, embedding = $3, embedding_model = $4 WHERE id = $1",
        [(pid, text, vec, model) for pid, text, vec in rows],
    )


async def drop_vector_index(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP INDEX IF EXISTS {VECTOR_INDEX}")


async def ensure_vector_index(conn: asyncpg.Connection) -> None:
    """The HNSW index over phrasing vectors; built after bulk loads, kept up by single edits."""
    await conn.execute(
        f"""CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON kb_phrasings
            USING hnsw (embedding vector_cosine_ops)"""
    )


async def nearest_phrasings(
    conn: asyncpg.Connection, vector: np.ndarray, limit: int = 20
) -> list[asyncpg.Record]:
    """Nearest phrasings by cosine through the HNSW index (editors' semantic search)."""
    return await conn.fetch(
        """SELECT entry_id, kind, text, 1 - (embedding <=> $1) AS cosine FROM kb_phrasings
           WHERE embedding IS NOT NULL ORDER BY embedding <=> $1 LIMIT $2""",
        vector,
        limit,
    )


# -- calibration ---------------------------------------------------------------------------------


async def save_calibration(
    conn: asyncpg.Connection,
    signature: str,
    params: dict[str, Any],
    report: dict[str, Any],
    at: datetime,
) -> int:
    return await conn.fetchval(
        """INSERT INTO kb_calibrations (signature, params, report, created_at)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        signature,
        params,
        report,
        at,
    )


async def latest_calibration(conn: asyncpg.Connection, signature: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, params, report, created_at FROM kb_calibrations WHERE signature = $1
           ORDER BY id DESC LIMIT 1""",
        signature,
    )


# -- providers -----------------------------------------------------------------------------------

PROVIDER_FIELDS = ("id", "name", "category", "phone", "area", "hours", "keywords", "active")
_PROVIDER_COLUMNS = ", ".join(PROVIDER_FIELDS)


async def save_providers(conn: asyncpg.Connection, providers: list[Provider], at: datetime) -> None:
    await conn.executemany(
        """INSERT INTO kb_providers (id, name, category, phone, area, hours, keywords, active, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, category = EXCLUDED.category,
               phone = EXCLUDED.phone, area = EXCLUDED.area, hours = EXCLUDED.hours,
               keywords = EXCLUDED.keywords, active = EXCLUDED.active,
               updated_at = EXCLUDED.updated_at""",
        [
            (p.id, p.name, p.category, p.phone, p.area, p.hours, p.keywords, p.active, at)
            for p in providers
        ],
    )


async def active_providers(conn: asyncpg.Connection) -> list[Provider]:
    rows = await conn.fetch(
        f"SELECT {_PROVIDER_COLUMNS} FROM kb_providers WHERE active ORDER BY id"
    )
    return [Provider(**dict(r)) for r in rows]


async def all_providers(conn: asyncpg.Connection) -> list[Provider]:
    rows = await conn.fetch(f"SELECT {_PROVIDER_COLUMNS} FROM kb_providers ORDER BY id")
    return [Provider(**dict(r)) for r in rows]


async def provider_ids(conn: asyncpg.Connection) -> set[str]:
    return {r["id"] for r in await conn.fetch("SELECT id FROM kb_providers")}


# -- feedback and misses -------------------------------------------------------------------------


async def record_feedback(
    conn: asyncpg.Connection,
    entry_id: str,
    conversation_id: int | None,
    helpful: bool | None,
    at: datetime,
    *,
    question: str | None = None,
    confidence: float | None = None,
) -> int:
    """One automatic answer; `helpful` stays NULL until the citizen says whether it helped."""
    return await conn.fetchval(
        """INSERT INTO kb_feedback (entry_id, conversation_id, helpful, created_at, question,
               confidence, answered_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $3::boolean IS NULL THEN NULL ELSE $4::timestamptz END)
           RETURNING id""",
        entry_id,
        conversation_id,
        helpful,
        at,
        question,
        confidence,
    )


async def set_feedback(
    conn: asyncpg.Connection, feedback_id: int, helpful: bool, at: datetime | None = None
) -> None:
    await conn.execute(
        "UPDATE kb_feedback SET helpful = $2, answered_at = COALESCE($3, now()) WHERE id = $1",
        feedback_id,
        helpful,
        at,
    )


async def feedback_counts(
    conn: asyncpg.Connection, since: datetime | None = None
) -> list[asyncpg.Record]:
    """Per entry: automatic answers, and how citizens rated them."""
    return await conn.fetch(
        """SELECT f.entry_id, e.question, e.unit, e.status,
                  count(*) AS answers,
                  count(*) FILTER (WHERE f.helpful) AS helpful,
                  count(*) FILTER (WHERE NOT f.helpful) AS not_helpful,
                  max(f.created_at) AS last_answer
           FROM kb_feedback f JOIN kb_entries e ON e.id = f.entry_id
           WHERE $1::timestamptz IS NULL OR f.created_at >= $1
           GROUP BY f.entry_id, e.question, e.unit, e.status""",
        since,
    )


async def record_miss(
    conn: asyncpg.Connection,
    question: str,
    top_entry_id: str | None,
    confidence: float | None,
    conversation_id: int | None,
    at: datetime,
) -> int:
    return await conn.fetchval(
        """INSERT INTO kb_misses (question, top_entry_id, confidence, conversation_id, created_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        question,
        top_entry_id,
        confidence,
        conversation_id,
        at,
    )


async def recent_misses(
    conn: asyncpg.Connection, since: datetime | None = None, limit: int = 100
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, question, top_entry_id, confidence, conversation_id, created_at
           FROM kb_misses WHERE $1::timestamptz IS NULL OR created_at >= $1
           ORDER BY created_at DESC, id DESC LIMIT $2""",
        since,
        limit,
    )
