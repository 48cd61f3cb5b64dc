"""Time, injectable: the service asks a Clock, tests give it a fixed or moving one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(CHINA_TZ)


@dataclass
class FixedClock:
    """A clock that stands still until a test moves it."""

    current: datetime = field(default_factory=lambda: datetime.now(CHINA_TZ))

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current = self.current + timedelta(**delta)
        return self.current


def next_allowed(moment: datetime, hours: tuple[int, int], tz: tzinfo = CHINA_TZ) -> datetime:
    """`moment` itself when it lies within the daily `hours` [start, end) in `tz`, else the
    start of the next such window: citizens and unit contacts are not called or texted at
    night."""
    start, end = hours
    local = moment.astimezone(tz)
    if start <= local.hour < end:
        return moment
    day = local.date() if local.hour < start else local.date() + timedelta(days=1)
    return datetime.combine(day, time(start), tz)
