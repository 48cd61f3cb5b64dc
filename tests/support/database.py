"""The test databases on the session's PostgreSQL server: a migrated template, and a fresh copy
of it for every test, dropped afterwards."""

from __future__ import annotations

import asyncpg

TEMPLATE = "hotline_template"


def dsn_for(server_dsn: str, database: str) -> str:
    """The server's DSN with another database in it."""
    # both URI forms in use here end in "/<db>" or "/<db>?..."
    head, sep, query = server_dsn.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + database
    return head + (sep + query if sep else "")


async def run_sql(dsn: str, *statements: str) -> None:
    """Run statements on one connection of their own, closed whatever happens."""
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def drop_database(server_dsn: str, name: str) -> None:
    """The one teardown of a test's database: dropped even with connections still open."""
    await run_sql(server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
