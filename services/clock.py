"""Time, injectable: the service asks a Clock, tests give it a fixed or moving one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
