"""A scheduler worker in its own process, for tests/test_scheduler.py.

    python -m tests.support.scheduler_worker DSN OUT --mode hang|record --lease SECONDS --worker ID

It runs the real `Scheduler` with the real job handlers against the database, with a test
double for the outbox: `record` appends one line per text to OUT and returns; `hang`
writes "sending <key>" and then never returns (the test kills the process there).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from services.config import Settings
from services.core.clock import SystemClock
from services.core.unit_directory import load_units
from services.desk import build_desk
from services.jobs.scheduler import Scheduler
from services.storage import db


class FileNotifier:
    def __init__(self, path: str, hang: bool, delay: float) -> None:
        self.path = path
        self.hang = hang
        self.delay = delay

    def _write(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def send(self, channel: str, to: str, body: str, purpose: str, **kwargs: object) -> None:
        key = kwargs.get("idempotency_key")
        if self.hang:
            self._write(f"sending {key}")
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        self._write(f"{key}\t{to}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("hang", "record"), required=True)
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    settings = Settings(database_url=args.dsn, notify_hours=(0, 24))
    pool = await db.connect(args.dsn, min_size=1, max_size=4)
    try:
        notifier = FileNotifier(args.out, args.mode == "hang", args.delay)
        desk = await build_desk(
            settings, pool, SystemClock(), load_units(settings.units_file), notifier
        )
        scheduler = Scheduler(
            pool, SystemClock(), desk.handlers(), worker_id=args.worker, lease_seconds=args.lease
        )
        scheduler.concurrency = 1
        scheduler.batch = 4
        while (await scheduler.run_once()).ran:
            pass
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
