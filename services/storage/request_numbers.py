"""request_number_counters: a request number is the day (China time), a dash and a daily
sequence, e.g. 20261123-0042; `nlu.entities` finds them in what citizens write."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.core.clock import CHINA_TZ


async def next_number(conn: asyncpg.Connection, at: datetime) -> str:
    day = at.astimezone(CHINA_TZ).date()
    seq = await conn.fetchval(
        """INSERT INTO request_number_counters (day, last) VALUES ($1, 1)
           ON CONFLICT (day) DO UPDATE SET last = request_number_counters.last + 1
           RETURNING last""",
        day,
    )
    return f"{day:%Y%m%d}-{seq:04d}"
