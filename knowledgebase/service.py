"""The knowledge base as the rest of the service sees it: ask, refer, edit, import, refresh.

The search index lives in memory and is rebuilt from the database after every change, then
swapped in whole, so a question is never answered from a half-built index. Vectors are
stored with the phrasings (kb_phrasings.embedding), so a restart does not re-encode the base;
phrasings without a vector of the current model are encoded on refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from knowledgebase import bulk, calibration, store, workflow
from knowledgebase.feedback import failure_stats
from knowledgebase.models import FaqEntry, Provider
from knowledgebase.referral import ProviderDirectory
from knowledgebase.retrieval import (
    LEXICAL_ONLY,
    Calibration,
    KnowledgeIndex,
    Retrieval,
    base_template,
    document,
)
from knowledgebase.store import EntryMeta
from knowledgebase.vectors import CachedEncoder, Embedder, cached, load_shipped

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_FAQ = DATA_DIR / "faq.jsonl"
DEMO_PROVIDERS = DATA_DIR / "providers.jsonl"
# Calibrations fitted on the demo base, per feature set: used for a base that has too few
# alternative phrasings to calibrate on itself (written by `hotline kb calibrate --default`).
DEFAULT_CALIBRATIONS = DATA_DIR / "calibration.json"
ONE_QUESTION_SUFFIX = "#one-question"
# e5 vectors of the demo base's phrasings and entries (written by the same command).
DEMO_VECTORS = DATA_DIR / "demo_vectors.npz"
# Labelled questions the answer decision of one-question bases is learnt from (data/README.md);
# the blind sets under tests/data/blind/ are never among them.
TUNING_QUERIES = (
    DATA_DIR / "eval_queries.jsonl",
    DATA_DIR / "heldout_queries.jsonl",
    DATA_DIR / "dev_queries_outside.jsonl",
)
# Below this many changed entries an import keeps the stored calibration.
RECALIBRATE_SHARE = 0.1


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class EntryNotFound(LookupError):
    pass


class InvalidEntry(ValueError):
    pass


@dataclass
class ImportReport:
    kind: str
    format: str
    rows: int
    valid: int
    errors: list[bulk.RowError]
    ignored_columns: list[str] = field(default_factory=list)
    committed: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": self.format,
            "rows": self.rows,
            "valid": self.valid,
            "committed": self.committed,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "error_count": len(self.errors),
            "errors": [e.to_dict() for e in self.errors[: bulk.MAX_ERRORS_SHOWN]],
            "ignored_columns": self.ignored_columns,
        }


class KnowledgeBase:
    def __init__(
        self,
        pool: asyncpg.Pool,
        threshold: float | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.pool = pool
        self.threshold = threshold
        self.encoder: CachedEncoder | None = cached(embedder)
        if self.encoder is not None:
            # the demo's vectors ship with it: an empty service starts in seconds, not minutes
            shipped = load_shipped(DEMO_VECTORS, self.encoder.name)
            if shipped is not None:
                self.encoder.prime(*shipped)
        self.index = KnowledgeIndex([], None, threshold=threshold)
        self.providers = ProviderDirectory([])
        self._refresh_lock = asyncio.Lock()

    @property
    def signature(self) -> str:
        return calibration.signature_of(self.encoder.name if self.encoder else None)

    @property
    def calibration(self) -> Calibration | None:
        return self.index.calibration

    # -- the index -------------------------------------------------------------------------

    async def refresh(self, *, recalibrate: bool = False) -> None:
        """Rebuild the index from the database (encoding phrasings that lack a vector of the
        current model), fit a calibration if asked or if none is stored, and swap it in."""
        async with self._refresh_lock:
            async with self.pool.acquire() as conn:
                entries = await store.all_entries(conn)
                providers = await store.active_providers(conn)
                phrasings = await store.all_phrasings(conn) if self.encoder else []
                stored = (
                    None if recalibrate else await store.latest_calibration(conn, self.signature)
                )
            vectors = doc_vectors = None
            if self.encoder is not None and entries:
                vectors, doc_vectors, fresh = await asyncio.to_thread(
                    self._vectors, entries, phrasings
                )
                if fresh:
                    async with self.pool.acquire() as conn:
                        await store.set_embeddings(conn, fresh, self.encoder.name)
            index = await asyncio.to_thread(
                KnowledgeIndex,
                entries,
                None,
                vectors=vectors,
                doc_vectors=doc_vectors,
                encoder=self.encoder,
                threshold=self.threshold,
            )
            if stored is not None:
                index.calibration = Calibration.from_params(
                    self.signature, stored["params"], stored["report"]
                )
            elif entries:
                index.calibration = await self._fit(index)
            self.index = index
            self.providers = ProviderDirectory(providers)
            _settle_garbage()

    def _vectors(
        self, entries: list[FaqEntry], phrasings: list[store.PhrasingRow]
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, np.ndarray]]]:
        """Vectors of every phrasing and every whole entry in index order (entries by id),
        from the database where it has them for the current model, else freshly encoded;
        and the fresh ones by row id, to store."""
        assert self.encoder is not None
        known = {(p.entry_id, p.kind, p.position): p for p in phrasings}
        ordered = sorted(entries, key=lambda e: e.id)
        # scored without the base's reply template, as the index scores it
        template = base_template(ordered)
        wanted = [
            (e.id, "phrasing", i, t) for e in ordered for i, t in enumerate(e.phrasings())
        ] + [(e.id, "document", 0, document(e, template)) for e in ordered]
        out = np.zeros((len(wanted), self.encoder.dim), dtype=np.float32)
        todo: list[int] = []
        for row, (entry_id, kind, position, text) in enumerate(wanted):
            p = known.get((entry_id, kind, position))
            if (
                p is not None
                and p.text == text
                and p.embedding is not None
                and p.embedding_model == self.encoder.name
            ):
                out[row] = p.embedding
            else:
                todo.append(row)
        fresh: list[tuple[int, str, np.ndarray]] = []
        if todo:
            encoded = self.encoder.encode([wanted[r][3] for r in todo])
            for r, vec in zip(todo, encoded, strict=True):
                out[r] = vec
                p = known.get(wanted[r][:3])
                # a whole-entry row stored with the template (as saved) gets the scored text
                if p is not None and (p.text == wanted[r][3] or p.kind == "document"):
                    fresh.append((p.id, wanted[r][3], vec))
        n_rows = len(wanted) - len(ordered)
        return out[:n_rows], out[n_rows:], fresh

    async def _fit(self, index: KnowledgeIndex) -> Calibration | None:
        try:
            fitted = await asyncio.to_thread(calibration.fit, index, self.signature)
        except calibration.NotEnoughData as exc:
            # fitted for a base like this one: questions only, no alternatives to learn from
            default = default_calibration(self.signature, one_question=True)
            log.info("knowledge base: %s; using the one-question default calibration", exc)
            return default
        async with self.pool.acquire() as conn:
            await store.save_calibration(
                conn, fitted.signature, fitted.params(), fitted.report, datetime.now().astimezone()
            )
        log.info("knowledge base calibrated: %s", fitted.report)
        return fitted

    async def recalibrate(self) -> Calibration | None:
        await self.refresh(recalibrate=True)
        return self.index.calibration

    # -- questions ---------------------------------------------------------------------------

    def ask(self, question: str, day: date, k: int = 3) -> Retrieval:
        """What a citizen gets: only published entries valid on `day` take part."""
        return self.index.search(question, day, k)

    def entry(self, entry_id: str) -> FaqEntry | None:
        """An entry of the current index (drafts and retired ones too: check before answering)."""
        return self.index.get(entry_id)

    def candidates(self, question: str, day: date | None, k: int = 5) -> Retrieval:
        """For agents and editors; without a day every entry, drafts and retired included."""
        return self.index.search(question, day, k)

    def refer(self, text: str, area: str | None = None) -> list[Provider]:
        return self.providers.match(text, area)

    # -- demo content ------------------------------------------------------------------------

    async def load_demo_if_empty(self, at: datetime) -> int:
        async with self.pool.acquire() as conn:
            if await store.count_entries(conn):
                return 0
        entries = [FaqEntry(**row) for row in read_jsonl(DEMO_FAQ)] if DEMO_FAQ.exists() else []
        providers = (
            [Provider(**row) for row in read_jsonl(DEMO_PROVIDERS)]
            if DEMO_PROVIDERS.exists()
            else []
        )
        await self.save_bulk(entries, actor="demo", action="import", at=at)
        async with self.pool.acquire() as conn:
            await store.save_providers(conn, providers, at)
        await self.refresh(recalibrate=True)
        return len(entries)

    async def save_bulk(
        self, entries: list[FaqEntry], *, actor: str, action: str, at: datetime
    ) -> list[store.SaveResult]:
        """Write many entries in one transaction with their vectors; the HNSW index is dropped
        before and built after, which is far faster than growing it row by row."""
        vectors = await asyncio.to_thread(self._encode_entries, entries)
        async with self.pool.acquire() as conn, conn.transaction():
            # serialise bulk loads: two at once would fight over the index
            await conn.execute("LOCK TABLE kb_phrasings IN SHARE ROW EXCLUSIVE MODE")
            await store.drop_vector_index(conn)
            results = await store.save_entries(
                conn,
                entries,
                actor=actor,
                action=action,
                at=at,
                embeddings=vectors,
                embedding_model=self.encoder.name if self.encoder else None,
            )
            await store.ensure_vector_index(conn)
        return results

    def _encode_entries(self, entries: list[FaqEntry]) -> dict[str, list[np.ndarray]] | None:
        if self.encoder is None:
            return None
        # per entry: its phrasings, then the whole entry (the order store.save_entries expects)
        texts = [t for e in entries for t in (*e.phrasings(), document(e))]
        encoded = self.encoder.encode(texts) if texts else np.zeros((0, self.encoder.dim))
        out, i = {}, 0
        for e in entries:
            n = len(e.phrasings()) + 1
            out[e.id] = list(encoded[i : i + n])
            i += n
        return out

    # -- editors -------------------------------------------------------------------------------

    async def get(self, entry_id: str) -> tuple[FaqEntry, EntryMeta]:
        async with self.pool.acquire() as conn:
            found = await store.get_entry_with_meta(conn, entry_id)
        if found is None:
            raise EntryNotFound(entry_id)
        return found

    async def unit_codes(self) -> tuple[set[str], dict[str, str]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT code, name FROM units WHERE active")
        return {r["code"] for r in rows}, {r["name"]: r["code"] for r in rows}

    async def _check_unit(self, entry: FaqEntry) -> None:
        if entry.unit is not None:
            codes, _ = await self.unit_codes()
            if entry.unit not in codes:
                raise InvalidEntry(f"unit: unknown unit {entry.unit!r}")

    async def create(
        self, data: dict[str, Any], *, actor: str, at: datetime
    ) -> tuple[FaqEntry, EntryMeta]:
        """A new entry; a draft unless the editor says otherwise."""
        data = {"status": "draft", **data}
        data.setdefault("id", f"kb-{uuid.uuid4().hex[:10]}")
        entry = FaqEntry(**data)
        await self._check_unit(entry)
        await self._save_one(entry, actor=actor, action="create", at=at, expected_version=0)
        return await self.get(entry.id)

    async def update(
        self,
        entry_id: str,
        changes: dict[str, Any],
        *,
        actor: str,
        at: datetime,
        expected_version: int | None = None,
    ) -> tuple[FaqEntry, EntryMeta]:
        """Edit the content of an entry (its status changes only through `transition`)."""
        current, meta = await self.get(entry_id)
        workflow.check_editable(current.status)
        for key in ("id", "status"):
            if key in changes and changes[key] != getattr(current, key):
                raise InvalidEntry(
                    f"{key}: cannot be changed by an edit"
                    + ("; use publish, retire or withdraw" if key == "status" else "")
                )
        entry = FaqEntry(**{**current.model_dump(), **changes})
        await self._check_unit(entry)
        await self._save_one(
            entry,
            actor=actor,
            action="edit",
            at=at,
            expected_version=meta.version if expected_version is None else expected_version,
        )
        return await self.get(entry_id)

    async def transition(
        self,
        entry_id: str,
        action: str,
        *,
        actor: str,
        at: datetime,
        expected_version: int | None = None,
    ) -> tuple[FaqEntry, EntryMeta]:
        current, meta = await self.get(entry_id)
        status = workflow.next_status(action, current.status)
        entry = current.model_copy(update={"status": status})
        await self._save_one(
            entry,
            actor=actor,
            action=action,
            at=at,
            expected_version=meta.version if expected_version is None else expected_version,
        )
        return await self.get(entry_id)

    async def _save_one(
        self, entry: FaqEntry, *, actor: str, action: str, at: datetime, expected_version: int
    ) -> None:
        vectors = await asyncio.to_thread(self._encode_entries, [entry])
        async with self.pool.acquire() as conn, conn.transaction():
            await store.save_entries(
                conn,
                [entry],
                actor=actor,
                action=action,
                at=at,
                embeddings=vectors,
                embedding_model=self.encoder.name if self.encoder else None,
                expected_versions={entry.id: expected_version},
            )
        await self.refresh()

    async def history(self, entry_id: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await store.history(conn, entry_id)
        if not rows:
            raise EntryNotFound(entry_id)
        return [
            {
                "version": r["version"],
                "action": r["action"],
                "changed_by": r["changed_by"],
                "changed_at": r["changed_at"].isoformat(),
                "changed_fields": list(r["changed_fields"]),
                "snapshot": r["snapshot"],
            }
            for r in rows
        ]

    async def search(
        self,
        text: str | None,
        *,
        status: str | None = None,
        unit: str | None = None,
        limit: int = 20,
        offset: int = 0,
        conn: asyncpg.Connection | None = None,
    ) -> tuple[list[tuple[FaqEntry, EntryMeta, float | None]], int]:
        """The editors' search over every entry. With a text: the hybrid ranking (so "医保卡
        掉了" finds "医保卡丢了怎么办"), then literal substring matches it missed; without one,
        the latest changes first. `conn`: read there (a replica) instead of the pool."""
        if not text or not text.strip():
            async with self._connection(conn) as conn:
                found, total = await store.list_entries(
                    conn, status=status, unit=unit, limit=limit, offset=offset
                )
            return [(e, m, None) for e, m in found], total
        index = self.index
        allowed = np.array(
            [
                (not status or e.status == status) and (not unit or e.unit == unit)
                for e in index.entries
            ],
            dtype=bool,
        )
        ranked = await asyncio.to_thread(index.search, text, None, offset + limit, allowed=allowed)
        scores = {c.entry.id: c.score for c in ranked.candidates}
        async with self._connection(conn) as conn:
            literal, _ = await store.list_entries(
                conn, status=status, unit=unit, text=text.strip(), limit=offset + limit
            )
            ids = list(scores) + [e.id for e, _ in literal if e.id not in scores]
            page = ids[offset : offset + limit]
            found, _ = await store.list_entries(conn, ids=page, limit=len(page) or 1)
        by_id = {e.id: (e, m) for e, m in found}
        rows = [(*by_id[i], scores.get(i)) for i in page if i in by_id]
        return rows, len(ids)

    @contextlib.asynccontextmanager
    async def _connection(
        self, given: asyncpg.Connection | None
    ) -> AsyncIterator[asyncpg.Connection]:
        """`given` (a caller's connection, e.g. on a replica), else one from the pool."""
        if given is not None:
            yield given
            return
        async with self.pool.acquire() as conn:
            yield conn

    async def feedback_stats(
        self, since: datetime | None, *, min_ratings: int = 3, flag_share: float = 0.25
    ) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await store.feedback_counts(conn, since)
        return failure_stats(rows, min_ratings=min_ratings, flag_share=flag_share)

    async def misses(self, since: datetime | None, limit: int = 100) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await store.recent_misses(conn, since, limit)
        return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]

    # -- bulk import and export -------------------------------------------------------------

    async def import_file(
        self,
        data: bytes,
        fmt: str,
        *,
        actor: str,
        at: datetime,
        partial: bool = False,
        kind: bulk.Kind | None = None,
    ) -> ImportReport:
        """Validate every row; write nothing if any row is bad, unless `partial` (then the
        good rows are written and the bad ones reported). Raises bulk.ImportFileError when the
        file as a whole is unreadable."""
        codes, names = await self.unit_codes()
        parsed = await asyncio.to_thread(
            bulk.parse, data, fmt, kind=kind, unit_codes=codes, unit_names=names
        )
        report = ImportReport(
            kind=parsed.kind,
            format=parsed.format,
            rows=parsed.rows,
            valid=len(parsed.records),
            errors=parsed.errors,
            ignored_columns=parsed.ignored_columns,
        )
        if (parsed.errors and not partial) or not parsed.records:
            return report
        items = [item for _, item in parsed.records]
        if parsed.kind == "entries":
            results = await self.save_bulk(items, actor=actor, action="import", at=at)
            report.created = sum(r.created for r in results)
            report.updated = sum(1 for r in results if r.changed and not r.created)
            report.unchanged = sum(1 for r in results if not r.changed)
            changed = report.created + report.updated
            total = len(self.index) + report.created
            await self.refresh(recalibrate=changed >= max(1, RECALIBRATE_SHARE * total))
        else:
            async with self.pool.acquire() as conn, conn.transaction():
                existing = await store.provider_ids(conn)
                await store.save_providers(conn, items, at)
            report.created = sum(1 for p in items if p.id not in existing)
            report.updated = len(items) - report.created
            await self.refresh()
        report.committed = True
        return report

    async def export(
        self,
        kind: bulk.Kind,
        fmt: str,
        status: str | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> bytes:
        async with self._connection(conn) as conn:
            if kind == "entries":
                items: list[Any] = await store.all_entries(conn)
                if status:
                    items = [e for e in items if e.status == status]
            else:
                items = await store.all_providers(conn)
        return bulk.export(items, kind, fmt)


def _settle_garbage() -> None:
    """Exempt everything alive from the cyclic garbage collector.

    With a few thousand entries the process holds a few hundred thousand long-lived objects;
    a full collection, which allocation can trigger in the middle of any question, then takes
    15-20 ms (measured: p90 of an answer went from 2 to 15 ms at 5,000 entries). Frozen
    objects are still freed by reference counting, and an old index holds no reference
    cycles (checked: collecting after dropping one finds nothing), so swapping indexes does
    not leak. A full collection here would cost over a second with torch loaded.
    """
    gc.collect(1)
    gc.freeze()


def default_calibration(signature: str, *, one_question: bool = False) -> Calibration | None:
    """The shipped calibration for `signature`; with `one_question`, the one fitted for bases
    without alternative phrasings (calibration.fit_one_question) when there is one."""
    if not DEFAULT_CALIBRATIONS.exists():
        return None
    shipped = json.loads(DEFAULT_CALIBRATIONS.read_text(encoding="utf-8"))
    stored = shipped.get(signature)
    if one_question:
        stored = shipped.get(one_question_key(signature), stored)
    if stored is None:
        return None
    return Calibration.from_params(signature, stored["params"], stored.get("report"))


def tuning_queries() -> list[tuple[str, str | None]]:
    """Every labelled question of TUNING_QUERIES: text and the entry that answers it (None
    when the demo base holds no answer)."""
    return [(row["query"], row["faq_id"]) for path in TUNING_QUERIES for row in read_jsonl(path)]


def one_question_key(signature: str) -> str:
    """Where the one-question default of `signature` is kept in DEFAULT_CALIBRATIONS."""
    return f"{signature}{ONE_QUESTION_SUFFIX}"


__all__ = [
    "LEXICAL_ONLY",
    "TUNING_QUERIES",
    "KnowledgeBase",
    "default_calibration",
    "one_question_key",
    "tuning_queries",
]
