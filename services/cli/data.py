"""`hotline purge`, `hotline backup` and `hotline restore`: the data the service keeps.

hotline purge [--older-than DAYS] [--as-of DATE] [--json]
    anonymise closed (or idle) conversations, citizens' phones and openids and call
    recordings older than DAYS (default HOTLINE_RETENTION_DAYS), keeping every figure
hotline backup FILE
    the whole database (embedded or DATABASE_URL) into FILE, pg_dump's custom format
hotline restore FILE [--replace]
    FILE into the database (which must hold no work orders unless --replace); stop the
    service first
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime, time, timedelta
from pathlib import Path

import asyncpg

from services.cli.common import CliError, emit, settings_from_env
from services.config import Settings
from services.core.clock import CHINA_TZ, SystemClock
from services.storage import db, pg_tools, retention


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a number of days of at least 1, not {raw!r}")
    return value


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date like 2027-01-01: {raw!r}") from exc


async def _dsn(settings: Settings) -> str:
    try:
        return await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
    except OSError as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc


# -- purge ---------------------------------------------------------------------------------


async def _purge(args: argparse.Namespace) -> dict:
    settings = settings_from_env()
    days = args.older_than or settings.retention_days
    now = datetime.combine(args.as_of, time(), CHINA_TZ) if args.as_of else SystemClock().now()
    before = now - timedelta(days=days)
    pool = await db.connect(await _dsn(settings), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            done = await retention.purge(conn, before)
    finally:
        await pool.close()
    return {"before": before.isoformat(), **done.to_dict()}


def cmd_purge(args: argparse.Namespace) -> int:
    emit(asyncio.run(_purge(args)), args.json)
    return 0


# -- backup and restore --------------------------------------------------------------------


async def _tools(settings: Settings) -> tuple[str, pg_tools.Tools]:
    dsn = await _dsn(settings)
    conn = await _connect(dsn)
    try:
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    try:
        return dsn, pg_tools.choose(settings.database_url is None, server_major)
    except pg_tools.ToolError as exc:
        raise CliError(str(exc)) from exc


async def _counts(dsn: str) -> dict[str, int]:
    conn = await _connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('public.work_orders') IS NOT NULL"):
            return {"work_orders": 0, "work_order_events": 0}
        return {
            "work_orders": await conn.fetchval("SELECT count(*) FROM work_orders"),
            "work_order_events": await conn.fetchval("SELECT count(*) FROM work_order_events"),
        }
    finally:
        await conn.close()


async def _backup(args: argparse.Namespace) -> dict:
    file = Path(args.file)
    if not file.parent.is_dir():
        raise CliError(f"no folder {file.parent} to write the backup into")
    dsn, tools = await _tools(settings_from_env())
    try:
        await asyncio.to_thread(pg_tools.dump, tools, dsn, file)
    except pg_tools.ToolError as exc:
        raise CliError(str(exc)) from exc
    return {
        "file": str(file),
        "bytes": file.stat().st_size,
        "tools": tools.source,
        **await _counts(dsn),
    }


async def _restore(args: argparse.Namespace) -> dict:
    file = Path(args.file)
    if not file.is_file():
        raise CliError(f"no backup file {file}")
    dsn, tools = await _tools(settings_from_env())
    held = (await _counts(dsn))["work_orders"]
    if held and not args.replace:
        raise CliError(f"the database holds {held} work orders; add --replace to overwrite them")
    try:
        await asyncio.to_thread(pg_tools.restore, tools, dsn, file)
    except pg_tools.ToolError as exc:
        raise CliError(str(exc)) from exc
    return {"restored": str(file), "tools": tools.source, **await _counts(dsn)}


def cmd_backup(args: argparse.Namespace) -> int:
    emit(asyncio.run(_backup(args)), args.json)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    emit(asyncio.run(_restore(args)), args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    purge = sub.add_parser(
        "purge", help="anonymise personal data past the retention period, keeping the figures"
    )
    purge.add_argument(
        "--older-than",
        type=_positive_int,
        metavar="DAYS",
        help="days to keep (default: HOTLINE_RETENTION_DAYS)",
    )
    purge.add_argument(
        "--as-of", type=_day, metavar="DATE", help="count the days back from DATE, not today"
    )
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(func=cmd_purge)

    backup = sub.add_parser("backup", help="the whole database into a file (pg_dump)")
    backup.add_argument("file")
    backup.add_argument("--json", action="store_true")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="a backup file into the database (pg_restore)")
    restore.add_argument("file")
    restore.add_argument(
        "--replace", action="store_true", help="overwrite a database that holds work orders"
    )
    restore.add_argument("--json", action="store_true")
    restore.set_defaults(func=cmd_restore)
