"""The dispatch and supervision desk of one process: calendar, clocks, dispatcher, lights,
and the scheduler that runs their jobs. Built once at start-up from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from services.config import Settings
from services.core.clock import Clock
from services.core.unit_directory import UnitDirectory
from services.deadlines import workdays
from services.deadlines.timelimits import OrderClocks, TimeLimits
from services.deadlines.workdays import WorkCalendar
from services.dispatch.dispatcher import Dispatcher
from services.dispatch.repeats import RepeatPolicy
from services.jobs.scheduler import Handler, Scheduler
from services.supervision.lights import Notifier, Supervision

log = logging.getLogger(__name__)


def limits_from(settings: Settings) -> TimeLimits:
    return TimeLimits(
        dispatch=settings.limit_dispatch_days,
        sign_for=settings.limit_sign_for_days,
        contact=settings.limit_contact_days,
        handling=settings.limit_handling_days,
        yellow_share=settings.yellow_share,
    )


@dataclass
class Desk:
    calendar: WorkCalendar
    clocks: OrderClocks
    dispatcher: Dispatcher
    supervision: Supervision
    # job handlers of other services run by the same scheduler (revisits)
    extra_handlers: dict[str, Handler] = field(default_factory=dict)

    def scheduler(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        lease_seconds: float | None = None,
    ) -> Scheduler:
        return Scheduler(
            self.supervision.pool,
            self.supervision.clock,
            {**self.supervision.handlers(self.calendar), **self.extra_handlers},
            worker_id=worker_id,
            lease_seconds=lease_seconds or settings.job_lease_seconds,
        )


async def build_desk(
    settings: Settings,
    pool: asyncpg.Pool,
    clock: Clock,
    units: UnitDirectory,
    notifier: Notifier | None = None,
) -> Desk:
    calendar = WorkCalendar()
    await workdays.refresh(calendar, pool)
    clocks = OrderClocks(calendar, limits_from(settings))
    dispatcher = Dispatcher(
        units,
        clocks,
        repeat_policy=RepeatPolicy(
            window_days=settings.repeat_window_days, threshold=settings.repeat_threshold
        ),
    )
    supervision = Supervision(
        pool,
        clock,
        clocks,
        notifier=notifier,
        supervision_phone=settings.supervision_phone,
        notify_hours=settings.notify_hours,
        scan_interval=settings.light_scan_seconds,
    )
    return Desk(calendar, clocks, dispatcher, supervision)


@contextlib.asynccontextmanager
async def running_scheduler(desk: Desk, settings: Settings) -> AsyncIterator[Scheduler | None]:
    """The scheduler as a background task for as long as the block runs (when enabled)."""
    if not settings.scheduler_enabled:
        yield None
        return
    scheduler = desk.scheduler(settings)
    await desk.supervision.ensure_recurring()
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop, settings.scheduler_poll_seconds))
    log.info("scheduler %s started", scheduler.worker_id)
    try:
        yield scheduler
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            task.cancel()
