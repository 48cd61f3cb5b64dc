"""Opening the knowledge base outside the web service (commands, benchmarks): on the
configured database, or on an isolated temporary database that is dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from knowledgebase.service import KnowledgeBase
from services.config import Settings
from services.core.clock import SystemClock
from services.core.unit_directory import load_units, sync_units
from services.storage import db


def database_dsn(server_dsn: str, database: str) -> str:
    """The same server, another database (both URI forms in use end in /db or /db?...)."""
    head, sep, query = server_dsn.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + database
    return head + (sep + query if sep else "")


@asynccontextmanager
async def temporary_database(settings: Settings) -> AsyncIterator[str]:
    """A fresh database on the configured (or embedded) server, dropped on the way out."""
    server = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
    name = f"hotline_tmp_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield database_dsn(server, name)
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def open_kb(
    settings: Settings, dsn: str, embedder: object | None, *, demo: bool
) -> AsyncIterator[KnowledgeBase]:
    """A migrated pool with the unit directory and a refreshed knowledge base on `dsn`."""
    pool = await db.connect(dsn, min_size=1, max_size=4)
    try:
        await sync_units(pool, load_units(settings.units_file))
        kb = KnowledgeBase(pool, settings.kb_answer_threshold, embedder)  # type: ignore[arg-type]
        loaded = demo and await kb.load_demo_if_empty(SystemClock().now())
        if not loaded:
            await kb.refresh()
        yield kb
    finally:
        await pool.close()
