"""Test fixtures: a real PostgreSQL (embedded, session-wide; or TEST_DATABASE_URL), a fresh
database cloned from a migrated template for every test, the trained NLU once per session,
and the service on a real loopback port."""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from services.app import build_context, create_app
from services.config import Settings
from services.context import Context
from services.core.clock import CHINA_TZ, FixedClock
from services.storage import db
from tests.fakes.loopback import serve_on_loopback

CACHE_DIR = Path(os.environ.get("HOTLINE_TEST_CACHE", Path.home() / ".cache" / "hotline-tests"))
TEMPLATE = "hotline_template"


@pytest.fixture(scope="session")
def server_dsn() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    pgdata = Path(tempfile.mkdtemp(prefix="hotline-test-pg-")) / "pgdata"
    return db.start_embedded_postgres(pgdata)


def _dsn_for(server_dsn: str, database: str) -> str:
    # both URI forms in use here end in "/<db>" or "/<db>?..."
    head, sep, query = server_dsn.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + database
    return head + (sep + query if sep else "")


@pytest.fixture(scope="session")
async def template_dsn(server_dsn: str) -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    dsn = _dsn_for(server_dsn, TEMPLATE)
    conn = await asyncpg.connect(dsn)
    try:
        await db.apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def database_url(server_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield _dsn_for(server_dsn, name)
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def nlu_engine():
    from nlu.engine import load_or_train

    return load_or_train(CACHE_DIR / "nlu")


@functools.cache
def session_embedder():
    """The e5 model, loaded once per test session (rebuilt into the cache folder the first
    time), with the knowledge base's text cache so every test's demo base is encoded once."""
    from knowledgebase.vectors import CachedEncoder
    from nlu.embeddings import load_embedder

    return CachedEncoder(load_embedder(CACHE_DIR / "e5-small"))


@pytest.fixture(scope="session")
def embedder():
    return session_embedder()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=CHINA_TZ))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        nlu_model_dir=CACHE_DIR / "nlu",
        embedding_model_dir=CACHE_DIR / "e5-small",
    )


@dataclass
class Running:
    url: str
    ctx: Context
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_service(
    settings: Settings, clock: FixedClock, nlu_engine, embedder=None
) -> Running:
    if embedder is None and settings.use_embeddings:
        embedder = session_embedder()
    ctx = await build_context(settings, clock, nlu=nlu_engine, embedder=embedder)
    runner, url = await serve_on_loopback(create_app(settings, clock, context=ctx))
    return Running(url, ctx, runner)


@pytest.fixture
async def service(settings: Settings, clock: FixedClock, nlu_engine) -> AsyncIterator[Running]:
    running = await start_service(settings, clock, nlu_engine)
    yield running
    await running.stop()
    await running.ctx.pool.close()


@pytest.fixture
async def conn(service: Running) -> AsyncIterator[asyncpg.Connection]:
    async with service.ctx.pool.acquire() as connection:
        yield connection


# Figures the Rasa tests measured (tests/test_rasa_engine.py), printed in the summary.
RASA_FIGURES = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter) -> None:
    """Skipped Rasa tests are said loudly at the end: they skip only when Rasa cannot be
    installed on this machine, which CI must not hide."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "rasa" in r.keywords]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else ""
        terminalreporter.write_sep(
            "!", f"{len(skipped)} RASA TESTS SKIPPED", yellow=True, bold=True
        )
        terminalreporter.write_line(str(reason), yellow=True, bold=True)
    figures = terminalreporter.config.stash.get(RASA_FIGURES, None)
    if figures:
        terminalreporter.write_line(f"rasa: {figures}")


@pytest.fixture
async def desk_service(settings: Settings, clock: FixedClock):
    """The app with only what dispatch, limits and supervision need (tests/desk_support.py)."""
    from tests.desk_support import start_desk_service

    svc = await start_desk_service(settings, clock)
    yield svc
    await svc.close()
