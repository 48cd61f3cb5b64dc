"""The knowledge base as the rest of the service sees it: ask, refer, refresh."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import asyncpg

from knowledgebase import store
from knowledgebase.models import FaqEntry, Provider
from knowledgebase.referral import ProviderDirectory
from knowledgebase.retrieval import KnowledgeIndex, Retrieval

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_FAQ = DATA_DIR / "faq.jsonl"
DEMO_PROVIDERS = DATA_DIR / "providers.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class KnowledgeBase:
    def __init__(self, pool: asyncpg.Pool, threshold: float | None = None) -> None:
        self.pool = pool
        self.threshold = threshold
        self.index = KnowledgeIndex([], threshold)
        self.providers = ProviderDirectory([])

    async def refresh(self) -> None:
        async with self.pool.acquire() as conn:
            entries = await store.all_entries(conn)
            providers = await store.active_providers(conn)
        self.index = KnowledgeIndex(entries, self.threshold)
        self.providers = ProviderDirectory(providers)

    def ask(self, question: str, day: date) -> Retrieval:
        return self.index.search(question, day)

    def refer(self, text: str, area: str | None = None) -> list[Provider]:
        return self.providers.match(text, area)

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
            async with conn.transaction():
                for entry in entries:
                    await store.save_entry(conn, entry, actor="demo", action="import", at=at)
                await store.save_providers(conn, providers, at)
        await self.refresh()
        return len(entries)
