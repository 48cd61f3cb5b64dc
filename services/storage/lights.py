"""supervision_lights: the yellow and red lights of the supervision points, and the scan.

The scan is set-based and incremental. It remembers how far it has got (scan_watermarks); a
scan up to `now` takes, for each threshold column, the running clocks whose threshold lies in
(last scan, now] — an index range scan over a partial index that holds only the orders whose
clock runs (migration 005) — raises their lights (the unique key makes a light appear once,
whatever runs twice) and queues one notification job per new light, and moves the watermark,
all in one statement. It never writes to work_orders, so a tick costs what crossed in it,
whatever the number of open orders.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.orders import states
from services.storage import jobs

TIMED_POINTS = tuple(states.CLOCK_POINTS)
EVENT_POINTS = ("returned", "dissatisfied")
POINTS = TIMED_POINTS + EVENT_POINTS
COLORS = ("yellow", "red")
WATERMARK = "lights"
THRESHOLDS = tuple(
    (point, color, f"{point}_{'yellow' if color == 'yellow' else 'due'}_at")
    for point in TIMED_POINTS
    for color in COLORS
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _crossings() -> str:
    branches = []
    for point, color, column in THRESHOLDS:
        running = _quoted(states.CLOCK_POINTS[point])
        unit = "NULL::text" if point == "dispatch" else "o.lead_unit"
        branches.append(
            f"""SELECT o.id, {unit} AS unit, o.clock_seq, '{point}' AS point, '{color}' AS color,
           o.{point}_due_at AS due
    FROM work_orders o
    WHERE o.status IN ({running}) AND o.{column} > $1 AND o.{column} <= $2"""
        )
    return "\n    UNION ALL\n    ".join(branches)


SCAN_SQL = f"""
WITH crossed AS (
    {_crossings()}
), raised AS (
    -- a yellow light whose deadline has passed too (a scan after downtime) is recorded but
    -- not texted: the red one says it all
    INSERT INTO supervision_lights (work_order_id, point, color, cycle, unit_code, due_at,
                                    raised_at, notify_result)
    SELECT id, point, color, clock_seq, unit, due, $3,
           CASE WHEN color = 'yellow' AND due <= $3 THEN 'superseded_by_red' END
    FROM crossed
    ON CONFLICT DO NOTHING
    RETURNING id, notify_result
), queued AS (
    INSERT INTO scheduler_jobs (kind, dedupe_key, payload, run_at)
    SELECT 'notify_light', 'light:' || id, jsonb_build_object('light_id', id), $3 FROM raised
    WHERE notify_result IS NULL
    ON CONFLICT DO NOTHING
    RETURNING id
), moved AS (
    INSERT INTO scan_watermarks (name, at) VALUES ('{WATERMARK}', $2)
    ON CONFLICT (name) DO UPDATE SET at = greatest(scan_watermarks.at, EXCLUDED.at)
    RETURNING at
)
SELECT (SELECT count(*) FROM crossed) AS crossed, (SELECT count(*) FROM raised) AS lights,
       (SELECT count(*) FROM queued) AS jobs, (SELECT at FROM moved) AS watermark
"""


async def scan_window(
    conn: asyncpg.Connection, after: datetime, until: datetime, now: datetime
) -> tuple[int, int]:
    """Raise the lights of thresholds in (after, until] (a slice of a scan at `now`);
    returns (crossings, lights raised)."""
    row = await conn.fetchrow(SCAN_SQL, after, until, now)
    return row["crossed"], row["lights"]


async def watermark(conn: asyncpg.Connection) -> datetime | None:
    return await conn.fetchval("SELECT at FROM scan_watermarks WHERE name = $1", WATERMARK)


async def rewind_watermark(conn: asyncpg.Connection, to: datetime) -> None:
    """Scan again from `to` (thresholds moved earlier); lights already raised stay single."""
    await conn.execute(
        "UPDATE scan_watermarks SET at = least(at, $2) WHERE name = $1", WATERMARK, to
    )


async def next_threshold(conn: asyncpg.Connection, after: datetime | None) -> datetime | None:
    """The earliest threshold of a running clock after `after` (None: any); each part is a
    one-row index lookup, so the scan can jump over quiet stretches."""
    parts = [
        f"""(SELECT min({column}) FROM work_orders
             WHERE status IN ({_quoted(states.CLOCK_POINTS[point])})
               AND ($1::timestamptz IS NULL OR {column} > $1))"""
        for point, _, column in THRESHOLDS
    ]
    return await conn.fetchval(f"SELECT least({', '.join(parts)})", after)


async def raise_light(
    conn: asyncpg.Connection,
    order_id: int,
    point: str,
    color: str,
    cycle: int,
    unit: str | None,
    due_at: datetime | None,
    at: datetime,
) -> int | None:
    """Raise one light and queue its notification; None when it was already raised."""
    light_id = await conn.fetchval(
        """INSERT INTO supervision_lights (work_order_id, point, color, cycle, unit_code, due_at,
               raised_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id""",
        order_id,
        point,
        color,
        cycle,
        unit,
        due_at,
        at,
    )
    if light_id is not None:
        await jobs.enqueue(
            conn, "notify_light", {"light_id": light_id}, at, dedupe_key=f"light:{light_id}"
        )
    return light_id


async def for_notification(conn: asyncpg.Connection, light_id: int) -> asyncpg.Record | None:
    """The light with what its message needs, locked until the notification is recorded."""
    return await conn.fetchrow(
        """SELECT l.id, l.work_order_id, l.point, l.color, l.cycle, l.unit_code, l.due_at,
                  l.raised_at, l.notified_at,
                  o.request_number, o.content, u.name AS unit_name, u.contact_phone
           FROM supervision_lights l
           JOIN work_orders o ON o.id = l.work_order_id
           LEFT JOIN units u ON u.code = l.unit_code
           WHERE l.id = $1
           FOR UPDATE OF l""",
        light_id,
    )


async def mark_notified(
    conn: asyncpg.Connection, light_id: int, at: datetime | None, result: str
) -> None:
    await conn.execute(
        "UPDATE supervision_lights SET notified_at = $2, notify_result = $3 WHERE id = $1",
        light_id,
        at,
        result,
    )


def _lit_condition() -> str:
    """A light is lit while its order is open and, for a clock, while that clock still runs;
    of the fifth point's lights (one per dissatisfaction) only the latest."""
    timed = " OR ".join(
        f"(l.point = '{point}' AND o.status IN ({_quoted(running)}))"
        for point, running in states.CLOCK_POINTS.items()
    )
    return (
        f"o.status <> '{states.CLOSED}' AND (l.point = 'returned' "
        "OR (l.point = 'dissatisfied' AND l.cycle = o.dissatisfied_count) "
        f"OR (l.cycle = o.clock_seq AND ({timed})))"
    )


LIT = _lit_condition()


async def board_counts(conn: asyncpg.Connection, lit_only: bool) -> list[asyncpg.Record]:
    where = LIT if lit_only else "true"
    return await conn.fetch(
        f"""SELECT l.unit_code, l.point, l.color, count(*) AS n
            FROM supervision_lights l JOIN work_orders o ON o.id = l.work_order_id
            WHERE {where}
            GROUP BY l.unit_code, l.point, l.color
            ORDER BY l.unit_code NULLS FIRST, l.point, l.color"""
    )


async def board_list(
    conn: asyncpg.Connection,
    *,
    lit_only: bool,
    unit: str | None,
    point: str | None,
    color: str | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    where = LIT if lit_only else "true"
    return await conn.fetch(
        f"""SELECT l.id, l.point, l.color, l.cycle, l.unit_code, l.due_at, l.raised_at,
                   l.notified_at, l.notify_result, o.request_number, o.status, o.lead_unit,
                   o.request_type, o.content, o.repeat_count, ({LIT}) AS lit
            FROM supervision_lights l JOIN work_orders o ON o.id = l.work_order_id
            WHERE {where}
              AND ($1::text IS NULL OR l.unit_code = $1)
              AND ($2::text IS NULL OR l.point = $2)
              AND ($3::text IS NULL OR l.color = $3)
            ORDER BY l.raised_at DESC, l.id DESC
            LIMIT $4 OFFSET $5""",
        unit,
        point,
        color,
        limit,
        offset,
    )


async def of_order(conn: asyncpg.Connection, order_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT l.id, l.point, l.color, l.cycle, l.unit_code, l.due_at, l.raised_at,
                   l.notified_at, l.notify_result, ({LIT}) AS lit
            FROM supervision_lights l JOIN work_orders o ON o.id = l.work_order_id
            WHERE l.work_order_id = $1 ORDER BY l.id""",
        order_id,
    )


async def lit_by_point(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """How many lights are lit now, by point and colour (the /metrics gauges)."""
    return await conn.fetch(
        f"""SELECT l.point, l.color, count(*) AS n
            FROM supervision_lights l JOIN work_orders o ON o.id = l.work_order_id
            WHERE {LIT}
            GROUP BY l.point, l.color"""
    )


async def lit_of_orders(conn: asyncpg.Connection, order_ids: list[int]) -> list[asyncpg.Record]:
    """The lights lit now on some orders (for the lists of the staff pages)."""
    return await conn.fetch(
        f"""SELECT l.work_order_id, l.point, l.color, l.unit_code
            FROM supervision_lights l JOIN work_orders o ON o.id = l.work_order_id
            WHERE l.work_order_id = ANY($1::bigint[]) AND {LIT}
            ORDER BY l.id""",
        order_ids,
    )
