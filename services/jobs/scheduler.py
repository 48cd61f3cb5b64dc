"""The durable scheduler: jobs in PostgreSQL, run by any number of service processes.

Every process runs a `Scheduler` (in the aiohttp app as a background task, or alone with
`hotline scheduler`). A worker claims due jobs with FOR UPDATE SKIP LOCKED under a lease,
keeps the lease alive while it works, and finishes the job fenced by its own id. A process
that dies (SIGKILL, power cut) leaves leases that expire; another worker then claims those
jobs again, so nothing is lost. Only one worker holds a job at a time, so two live processes
never run the same job. Times come from the injected clock (the same clock as the business
rules), which lets tests move time; processes of one deployment share the system clock.

A handler returns None when the job is done, or `Later(run_at)` to run it again (recurring
jobs, or waiting for allowed hours). An exception retries the job with backoff until
max_attempts, then marks it failed with the error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from services.core.clock import Clock
from services.storage import jobs
from services.storage.db import DATABASE_DOWN
from services.storage.jobs import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Later:
    run_at: datetime
    # recurring jobs start every run afresh; a deferred one keeps its attempt count
    reset_attempts: bool = False


Handler = Callable[[Job], Awaitable[Later | None]]


@dataclass
class RunReport:
    done: int = 0
    rescheduled: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # lease taken over by another worker while running
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def ran(self) -> int:
        return self.done + self.rescheduled + self.retried + self.failed + self.lost


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        handlers: dict[str, Handler],
        *,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        batch: int = 16,
        concurrency: int = 4,
        retry_base_seconds: float = 30.0,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("the lease must be positive")
        self.pool = pool
        self.clock = clock
        self.handlers = handlers
        self.worker_id = worker_id or default_worker_id()
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.retry_base = timedelta(seconds=retry_base_seconds)
        self._held: set[int] = set()

    async def run_once(self, *, max_jobs: int = 10_000) -> RunReport:
        """Run the jobs that are due now, until none is left (or max_jobs have run)."""
        report = RunReport()
        heartbeat = asyncio.create_task(self._heartbeat())
        gate = asyncio.Semaphore(self.concurrency)

        async def run(job: Job) -> None:
            async with gate:
                await self._run(job, report)

        try:
            while report.ran < max_jobs:
                claimed = await self._claim(min(self.batch, max_jobs - report.ran))
                if not claimed:
                    break
                await asyncio.gather(*(run(job) for job in claimed))
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        return report

    async def run_forever(self, stop: asyncio.Event, interval: float) -> None:
        """Poll for due jobs every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.run_once()
            except DATABASE_DOWN as exc:
                # the database may be restarting; the jobs stay where they are
                log.warning("scheduler %s: %s; retrying in %.0fs", self.worker_id, exc, interval)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def _claim(self, limit: int) -> list[Job]:
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            claimed = await jobs.claim(
                conn, self.worker_id, now, now + self.lease, limit, sorted(self.handlers)
            )
        self._held.update(job.id for job in claimed)
        return claimed

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.lease.total_seconds() / 3))
            if not self._held:
                continue
            try:
                async with self.pool.acquire() as conn:
                    await jobs.extend(
                        conn, sorted(self._held), self.worker_id, self.clock.now() + self.lease
                    )
            except DATABASE_DOWN as exc:
                log.warning("scheduler %s: cannot extend leases: %s", self.worker_id, exc)

    async def _run(self, job: Job, report: RunReport) -> None:
        handler = self.handlers.get(job.kind)
        outcome: Later | None = None
        error: str | None = None
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            outcome = await handler(job)
        except Exception as exc:  # noqa: BLE001 - any failure of a job is retried, never fatal
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %d (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, error)
        now = self.clock.now()
        try:
            async with self.pool.acquire() as conn:
                if error is not None:
                    if job.attempts >= job.max_attempts:
                        ok = await jobs.fail(conn, job.id, self.worker_id, now, error)
                        kind = "failed"
                    else:
                        delay = min(self.retry_base * 2 ** (job.attempts - 1), timedelta(hours=1))
                        ok = await jobs.reschedule(
                            conn, job.id, self.worker_id, now + delay, error=error
                        )
                        kind = "retried"
                elif outcome is not None:
                    ok = await jobs.reschedule(
                        conn,
                        job.id,
                        self.worker_id,
                        outcome.run_at,
                        reset_attempts=outcome.reset_attempts,
                    )
                    kind = "rescheduled"
                else:
                    ok = await jobs.finish(conn, job.id, self.worker_id, now)
                    kind = "done"
        finally:
            self._held.discard(job.id)
        if not ok:
            log.warning("job %d (%s): lease lost to another worker", job.id, job.kind)
            kind = "lost"
        setattr(report, kind, getattr(report, kind) + 1)
        report.by_kind[job.kind] = report.by_kind.get(job.kind, 0) + 1
