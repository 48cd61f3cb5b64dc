"""The dispatch and supervision desk of one process: calendar, clocks, dispatcher, lights.
Built once at start-up from the settings (services/app.py), or alone by `hotline scheduler`
and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.config import Settings
from services.core.clock import Clock
from services.core.unit_directory import UnitDirectory
from services.deadlines import workdays
from services.deadlines.timelimits import OrderClocks, TimeLimits
from services.deadlines.workdays import WorkCalendar
from services.dispatch.dispatcher import Dispatcher
from services.dispatch.repeats import RepeatPolicy
from services.jobs.scheduler import Handler
from services.supervision.lights import Outbound, Supervision


def limits_from(settings: Settings) -> TimeLimits:
    return TimeLimits(
        dispatch=settings.limit_dispatch_days,
        sign_for=settings.limit_sign_for_days,
        contact=settings.limit_contact_days,
        handling=settings.limit_handling_days,
        yellow_share=settings.yellow_share,
    )


@dataclass(frozen=True)
class Desk:
    calendar: WorkCalendar
    clocks: OrderClocks
    dispatcher: Dispatcher
    supervision: Supervision

    def handlers(self) -> dict[str, Handler]:
        """The scheduler's jobs of the desk (lights, escalations, calendar refresh)."""
        return self.supervision.handlers(self.calendar)


async def build_desk(
    settings: Settings,
    pool: asyncpg.Pool,
    clock: Clock,
    units: UnitDirectory,
    outbox: Outbound | None = None,
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
        outbox=outbox,  # texts to units go out like every other SMS
        supervision_phone=settings.supervision_phone,
        notify_hours=settings.notify_hours,
        scan_interval=settings.light_scan_seconds,
    )
    return Desk(calendar, clocks, dispatcher, supervision)
