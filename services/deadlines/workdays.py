"""The statutory working-day calendar, and how a time limit of N working days counts on it.

How a limit counts. The clock runs on working days only and a working day counts 24 hours, so
a limit of N working days ends exactly N working days after it starts, at the same time of
day; rest days and holidays push it on (节假日顺延). This is how 12345 platforms count
"N个工作日" from the moment of dispatch: an order dispatched at 10:00 on a working day must be
signed for by 10:00 of the next working day, whatever the hour it arrived. A clock that starts
on a rest day starts at 00:00 of the next working day, so an order dispatched on Saturday must
be signed for by the end of Monday (Tuesday 00:00). Fractions count the same way: 0.8 of one
working day is 19.2 hours of working-day time.

Which days are working days: an admin's entry for that date first (table calendar_days; it may
correct a year the package knows, e.g. a late State Council change); otherwise the
`chinesecalendar` package, which knows the official holidays and the adjusted working
weekends (调休); for a year it does not know (it raises NotImplementedError from 2027 on),
Monday to Friday, with one logged warning per year, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import asyncpg
import chinese_calendar

from services.core.clock import CHINA_TZ
from services.storage import calendar_days, jobs

log = logging.getLogger(__name__)

DAY_SECONDS = 86400.0
# A stretch this long without one working day means the admin's entries are wrong.
MAX_REST_STRETCH = 400


class CalendarError(ValueError):
    """A calendar in which a limit can never end (no working day for over a year)."""


@dataclass(frozen=True)
class CalendarDay:
    day: date
    workday: bool
    name: str = ""


def _statutory_years() -> frozenset[int]:
    years = {d.year for d in chinese_calendar.holidays} | {
        d.year for d in chinese_calendar.workdays
    }
    return frozenset(years)


STATUTORY_YEARS = _statutory_years()


class WorkCalendar:
    """Working days and working-day arithmetic, in China time."""

    def __init__(self, overrides: Iterable[CalendarDay] = (), tz=CHINA_TZ) -> None:
        self.tz = tz
        self._overrides: dict[date, CalendarDay] = {}
        self._warned: set[int] = set()
        self.replace_overrides(overrides)

    def replace_overrides(self, days: Iterable[CalendarDay]) -> None:
        self._overrides = {d.day: d for d in days}
        self._cache: dict[date, bool] = {}

    @property
    def overrides(self) -> Mapping[date, CalendarDay]:
        return dict(self._overrides)

    def source(self, year: int) -> str:
        """'statutory' when chinesecalendar knows the year, else 'fallback'."""
        return "statutory" if year in STATUTORY_YEARS else "fallback"

    def is_workday(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            known = self._cache[day] = self._decide(day)
        return known

    def _decide(self, day: date) -> bool:
        entered = self._overrides.get(day)
        if entered is not None:
            return entered.workday
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                entered_days = sum(1 for d in self._overrides if d.year == day.year)
                log.warning(
                    "the statutory calendar (chinesecalendar) does not know %d: counting "
                    "Monday-Friday plus %d day(s) entered by an admin; enter that year's "
                    "holidays and adjusted working days with `hotline calendar add`",
                    day.year,
                    entered_days,
                )
            return day.weekday() < 5

    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("working-day arithmetic needs an aware datetime")
        return moment.astimezone(self.tz)

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.tz)

    def add(self, start: datetime, working_days: float) -> datetime:
        """The moment `working_days` of working-day time after `start` (see module doc)."""
        if working_days < 0:
            raise ValueError("a time limit cannot be negative")
        remaining = working_days * DAY_SECONDS
        cursor = self.local(start)
        rest = 0
        while True:
            day = cursor.date()
            next_midnight = self._midnight(day + timedelta(days=1))
            if not self.is_workday(day):
                rest += 1
                if rest > MAX_REST_STRETCH:
                    raise CalendarError(f"no working day for {MAX_REST_STRETCH} days after {start}")
                cursor = next_midnight
                continue
            rest = 0
            available = (next_midnight - cursor).total_seconds()
            if remaining <= available:
                return cursor + timedelta(seconds=remaining)
            remaining -= available
            cursor = next_midnight

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Working days of working-day time between two moments (0 when end is earlier)."""
        start, end = self.local(start), self.local(end)
        if end <= start:
            return 0.0
        total = 0.0
        cursor = start
        while cursor < end:
            day = cursor.date()
            next_midnight = self._midnight(day + timedelta(days=1))
            stop = min(next_midnight, end)
            if self.is_workday(day):
                total += (stop - cursor).total_seconds()
            cursor = stop
        return total / DAY_SECONDS

    def workdays_between(self, first: date, last: date) -> list[date]:
        out = []
        day = first
        while day <= last:
            if self.is_workday(day):
                out.append(day)
            day += timedelta(days=1)
        return out


async def refresh(calendar: WorkCalendar, pool: asyncpg.Pool) -> None:
    """Reload the admin's entries (other processes may have changed them)."""
    async with pool.acquire() as conn:
        days = [
            CalendarDay(r["day"], r["workday"], r["name"])
            for r in await calendar_days.all_days(conn)
        ]
    if {d.day: d for d in days} != dict(calendar.overrides):
        calendar.replace_overrides(days)


async def calendar_changed(
    calendar: WorkCalendar, pool: asyncpg.Pool, day: date, now: datetime
) -> None:
    """After an admin entered or removed a day: reload this process's calendar and have the
    scheduler recompute the deadlines the change may move."""
    await refresh(calendar, pool)
    async with pool.acquire() as conn:
        await jobs.enqueue(
            conn,
            "recompute_deadlines",
            {"from_day": day.isoformat()},
            now,
            dedupe_key=f"recompute:{day.isoformat()}:{now.isoformat()}",
        )
