"""`hotline users ...`, `hotline calendar ...` and `hotline scheduler`.

hotline users add NAME --role ROLE [--unit CODE] [--display-name TEXT] [--password-file F]
    the password is the first line of F, or of standard input (asked twice on a terminal)
hotline users passwd NAME [--password-file F]
    a new password (read the same way); the account's sessions end
hotline users rotate-demo
    a new random password for every demo account still on the published one, printed once
hotline calendar list [--year 2027]
hotline calendar add 2027-01-01 --holiday|--workday [--name 元旦]
hotline calendar remove 2027-01-01
hotline scheduler [--once] [--json]
    run the durable scheduler (light scan, unit SMS, recomputations) in this process
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg

from services.cli.common import CliError, emit, settings_from_env
from services.config import Settings
from services.core import logs
from services.core.unit_directory import UnitDirectoryError, load_units, sync_units
from services.staff import accounts
from services.storage import db


@contextlib.asynccontextmanager
async def _pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    try:
        units = load_units(settings.units_file)
        dsn = await db.resolve_dsn(settings.database_url, settings.pgdata_dir)
        pool = await db.connect(dsn, min_size=1, max_size=6)
    except (UnitDirectoryError, OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc
    try:
        await sync_units(pool, units)
        yield pool
    finally:
        await pool.close()


# -- users ---------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the password file: {exc}") from exc
        return text.splitlines()[0] if text else ""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise CliError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


async def _add_user(args: argparse.Namespace) -> dict:
    password = _read_password(args)
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        try:
            user = await accounts.create_user(
                conn, args.name, password, args.role, args.unit, args.display_name
            )
        except accounts.AccountError as exc:
            raise CliError(str(exc)) from exc
    return user.to_dict()


def cmd_users_add(args: argparse.Namespace) -> int:
    emit(asyncio.run(_add_user(args)), args.json)
    return 0


async def _passwd(args: argparse.Namespace) -> dict:
    password = _read_password(args)
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        try:
            user = await accounts.set_password(conn, args.name, password)
        except accounts.AccountError as exc:
            raise CliError(str(exc)) from exc
    return {"user": user.username, "password": "changed", "sessions": "ended"}


def cmd_users_passwd(args: argparse.Namespace) -> int:
    emit(asyncio.run(_passwd(args)), args.json)
    return 0


async def _rotate_demo() -> dict:
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        return await accounts.rotate_demo_passwords(conn)


def cmd_users_rotate_demo(args: argparse.Namespace) -> int:
    fresh = asyncio.run(_rotate_demo())
    if not fresh and not args.json:
        print("no account has the demo password")
        return 0
    emit(fresh, args.json)
    return 0


# -- calendar ------------------------------------------------------------------------------


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date like 2027-01-01: {raw!r}") from exc


async def _calendar(args: argparse.Namespace) -> dict:
    from services.core.clock import SystemClock
    from services.deadlines.workdays import CalendarDay, WorkCalendar
    from services.storage import calendar_days, jobs

    settings = settings_from_env()
    async with _pool(settings) as pool, pool.acquire() as conn:
        if args.calendar_command == "add":
            row = await calendar_days.put(conn, args.day, args.workday, args.name or "", "cli")
            # clocks already running across that day are recomputed by the scheduler
            now = SystemClock().now()
            await jobs.enqueue(
                conn,
                "recompute_deadlines",
                {"from_day": args.day.isoformat()},
                now,
                dedupe_key=f"recompute:{args.day.isoformat()}:{now.isoformat()}",
            )
            return {k: str(v) for k, v in dict(row).items()}
        if args.calendar_command == "remove":
            if not await calendar_days.remove(conn, args.day):
                raise CliError(f"nothing entered for {args.day}")
            return {"removed": str(args.day)}
        rows = await calendar_days.all_days(conn)
        year = args.year or date.today().year
        calendar = WorkCalendar([CalendarDay(r["day"], r["workday"], r["name"]) for r in rows])
        entered = [
            f"{r['day']} {'working day' if r['workday'] else 'holiday'} {r['name']}".strip()
            for r in rows
            if r["day"].year == year
        ]
        first, last = date(year, 1, 1), date(year, 12, 31)
        return {
            "year": year,
            "source": calendar.source(year),
            "working_days": len(calendar.workdays_between(first, last)),
            "entered": entered,
        }


def cmd_calendar(args: argparse.Namespace) -> int:
    emit(asyncio.run(_calendar(args)), args.json)
    return 0


# -- scheduler -----------------------------------------------------------------------------


async def _scheduler(args: argparse.Namespace) -> dict:
    from services.core.clock import SystemClock
    from services.desk import build_desk
    from services.jobs.scheduler import Scheduler
    from services.outbound.outbox import build_outbox
    from services.revisits.service import RevisitService

    settings = settings_from_env()
    clock = SystemClock()
    async with _pool(settings) as pool:
        # as services/app.build_context: the senders and their outbox, then the desk
        outbox = build_outbox(settings, pool, clock)
        try:
            desk = await build_desk(settings, pool, clock, load_units(settings.units_file), outbox)
            revisits = RevisitService(settings, pool, clock, outbox, desk.clocks, desk.supervision)
            scheduler = Scheduler(
                pool,
                clock,
                {**desk.handlers(), **outbox.handlers(), **revisits.handlers()},
                lease_seconds=settings.job_lease_seconds,
            )
            await desk.supervision.ensure_recurring()
            await outbox.ensure_recurring()
            if args.once:
                report = await scheduler.run_once()
                return {"worker": scheduler.worker_id, **report.__dict__, "ran": report.ran}
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            print(f"scheduler {scheduler.worker_id} running; Ctrl-C stops it", flush=True)
            await scheduler.run_forever(stop, settings.scheduler_poll_seconds)
            return {"worker": scheduler.worker_id, "stopped": True}
        finally:
            await outbox.aclose()


def cmd_scheduler(args: argparse.Namespace) -> int:
    logs.configure(settings_from_env().log_format)
    emit(asyncio.run(_scheduler(args)), args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="staff accounts").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="create a staff account (password on stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("--unit", help="the unit code of a unit handler")
    add.add_argument("--display-name")
    add.add_argument("--password-file", help="read the password from the first line of a file")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_users_add)
    passwd = users.add_parser("passwd", help="set a new password (on stdin); sessions end")
    passwd.add_argument("name")
    passwd.add_argument("--password-file", help="read the password from the first line of a file")
    passwd.add_argument("--json", action="store_true")
    passwd.set_defaults(func=cmd_users_passwd)
    rotate = users.add_parser(
        "rotate-demo", help="new random passwords for the demo accounts still on demo12345"
    )
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_users_rotate_demo)

    cal = sub.add_parser("calendar", help="holidays and working days").add_subparsers(
        dest="calendar_command", required=True
    )
    listing = cal.add_parser("list", help="a year's calendar and the days entered")
    listing.add_argument("--year", type=int)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_calendar)
    put = cal.add_parser("add", help="enter a holiday or an adjusted working day")
    put.add_argument("day", type=_date)
    kind = put.add_mutually_exclusive_group(required=True)
    kind.add_argument("--holiday", dest="workday", action="store_false")
    kind.add_argument("--workday", dest="workday", action="store_true")
    put.add_argument("--name")
    put.add_argument("--json", action="store_true")
    put.set_defaults(func=cmd_calendar)
    remove = cal.add_parser("remove", help="remove a day entered before")
    remove.add_argument("day", type=_date)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(func=cmd_calendar)

    sched = sub.add_parser("scheduler", help="run the durable job scheduler")
    sched.add_argument("--once", action="store_true", help="run the due jobs once and exit")
    sched.add_argument("--json", action="store_true")
    sched.set_defaults(func=cmd_scheduler)
