"""Per-unit performance, computed from the event history (work_order_events).

A cycle is one stretch of an order with one lead unit: it starts with `dispatched`,
`reassigned` or `arbitrated` (whose data carries the deadlines then set) and ends at the next
of them. For each cycle that started in the period: was it signed for, the citizen contacted
and the order resolved by the deadline, and was it returned. A step counts once it is done or
its deadline has passed; a cycle returned before a deadline does not count for that step.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

PERFORMANCE_SQL = """
WITH cycles AS (
    SELECT e.work_order_id, e.id, e.unit, e.created_at AS started_at,
           (e.data->'deadlines'->>'sign_for_due_at')::timestamptz AS sign_due,
           (e.data->'deadlines'->>'contact_due_at')::timestamptz AS contact_due,
           (e.data->'deadlines'->>'handling_due_at')::timestamptz AS handling_due,
           (SELECT min(n.id) FROM work_order_events n
             WHERE n.work_order_id = e.work_order_id AND n.id > e.id
               AND n.kind IN ('dispatched', 'reassigned', 'arbitrated')) AS next_id
    FROM work_order_events e
    WHERE e.kind IN ('dispatched', 'reassigned', 'arbitrated')
      AND e.created_at >= $1 AND e.created_at < $2 AND e.unit IS NOT NULL
), steps AS (
    SELECT c.*, s.signed_at, s.contacted_at, s.resolved_at, s.returned_at
    FROM cycles c
    LEFT JOIN LATERAL (
        SELECT min(x.created_at) FILTER (WHERE x.kind = 'signed') AS signed_at,
               min(x.created_at) FILTER (WHERE x.kind = 'contacted') AS contacted_at,
               min(x.created_at) FILTER (WHERE x.kind = 'resolved') AS resolved_at,
               min(x.created_at) FILTER (WHERE x.kind = 'returned') AS returned_at
        FROM work_order_events x
        WHERE x.work_order_id = c.work_order_id AND x.id > c.id
          AND (c.next_id IS NULL OR x.id < c.next_id)
    ) s ON true
), judged AS (
    SELECT unit, returned_at,
        -- counts: done, or deadline passed without a return before it
        (signed_at IS NOT NULL OR (sign_due <= $3 AND (returned_at IS NULL OR returned_at >= sign_due))) AS sign_counts,
        (signed_at <= sign_due) AS sign_on_time,
        (contacted_at IS NOT NULL OR (contact_due <= $3 AND (returned_at IS NULL OR returned_at >= contact_due))) AS contact_counts,
        (contacted_at <= contact_due) AS contact_on_time,
        (resolved_at IS NOT NULL OR (handling_due <= $3 AND (returned_at IS NULL OR returned_at >= handling_due))) AS handling_counts,
        (resolved_at <= handling_due) AS handling_on_time,
        resolved_at IS NOT NULL AS resolved
    FROM steps
)
SELECT unit,
       count(*) AS received,
       count(*) FILTER (WHERE sign_counts) AS sign_for_counted,
       count(*) FILTER (WHERE sign_counts AND sign_on_time) AS sign_for_on_time,
       count(*) FILTER (WHERE contact_counts) AS contact_counted,
       count(*) FILTER (WHERE contact_counts AND contact_on_time) AS contact_on_time,
       count(*) FILTER (WHERE handling_counts) AS handling_counted,
       count(*) FILTER (WHERE handling_counts AND handling_on_time) AS handling_on_time,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE returned_at IS NOT NULL) AS returned
FROM judged
GROUP BY unit
ORDER BY unit
"""


async def by_unit(
    conn: asyncpg.Connection, start: datetime, end: datetime, now: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(PERFORMANCE_SQL, start, end, now)


async def red_lights(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT unit_code AS unit, point, count(*) AS n FROM supervision_lights
           WHERE color = 'red' AND raised_at >= $1 AND raised_at < $2 AND unit_code IS NOT NULL
           GROUP BY unit_code, point""",
        start,
        end,
    )
