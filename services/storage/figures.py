"""Public performance figures, computed in SQL from the orders and their event history.

Orders count in the period they were filed ([start, end), local time for the periods). For
each group (a unit, a channel, a matter type, or a day/week/month):

- volume: orders filed
- completed: orders the unit reported resolved at least once (办结)
- replied: orders whose citizen heard back from the unit (contacted or resolved; 回复)
- dispatch on time: the centre's own limit, first dispatch by the deadline that ran from
  arrival (recorded with the dispatch event; for an order still waiting, the order's own)
- sign_for/contact/handling on time: by the deadlines set at the first dispatch; a step
  counts once it is done or its deadline has passed (`now`)
- revisits: outcomes of the revisits of these orders; satisfaction is satisfied (incl.
  basically) over all finished revisits, so an unanswered revisit is never counted as satisfied
- suggestions decided and adopted
- repeats: orders linked as a repeat report of an earlier one

By unit means the order's current lead unit; orders never dispatched are under "" (none).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

GROUPS = {
    "unit": "COALESCE(o.lead_unit, '')",
    "channel": "o.channel",
    "matter": "o.request_type",
    "day": "to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')",
    "week": "to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'IYYY-\"W\"IW')",
    "month": "to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
}

_FIGURES_SQL = """
WITH orders AS (
    SELECT o.id, {group} AS key, o.repeat_of, o.dispatch_due_at
    FROM work_orders o
    WHERE o.created_at >= $1 AND o.created_at < $2
), first_cycle AS (
    SELECT DISTINCT ON (e.work_order_id) e.work_order_id, e.id, e.created_at AS dispatched_at,
           (e.data->>'dispatch_due_at')::timestamptz AS dispatch_due,
           (e.data->'deadlines'->>'sign_for_due_at')::timestamptz AS sign_due,
           (e.data->'deadlines'->>'contact_due_at')::timestamptz AS contact_due,
           (e.data->'deadlines'->>'handling_due_at')::timestamptz AS handling_due
    FROM work_order_events e JOIN orders ON orders.id = e.work_order_id
    WHERE e.kind IN ('dispatched', 'reassigned', 'arbitrated')
    ORDER BY e.work_order_id, e.id
), facts AS (
    SELECT orders.key, orders.repeat_of, c.dispatched_at,
           CASE WHEN c.id IS NULL THEN orders.dispatch_due_at ELSE c.dispatch_due END
               AS dispatch_due,
           c.sign_due, c.contact_due, c.handling_due, x.*
    FROM orders
    LEFT JOIN first_cycle c ON c.work_order_id = orders.id
    LEFT JOIN LATERAL (
        SELECT min(e.created_at) FILTER (WHERE e.kind = 'signed') AS signed_at,
               min(e.created_at) FILTER (WHERE e.kind = 'contacted') AS contacted_at,
               min(e.created_at) FILTER (WHERE e.kind = 'resolved') AS resolved_at,
               count(*) FILTER (WHERE e.kind = 'revisit_satisfied') AS satisfied,
               count(*) FILTER (WHERE e.kind = 'revisit_dissatisfied') AS dissatisfied,
               count(*) FILTER (WHERE e.kind = 'revisit_no_answer') AS no_answer,
               count(*) FILTER (WHERE e.kind = 'suggestion_adopted') AS adopted,
               count(*) FILTER (WHERE e.kind = 'suggestion_not_adopted') AS not_adopted
        FROM work_order_events e WHERE e.work_order_id = orders.id
    ) x ON true
)
SELECT key,
       count(*) AS volume,
       count(*) FILTER (WHERE resolved_at IS NOT NULL) AS completed,
       count(*) FILTER (WHERE contacted_at IS NOT NULL OR resolved_at IS NOT NULL) AS replied,
       count(*) FILTER (WHERE dispatch_due IS NOT NULL
                          AND (dispatched_at IS NOT NULL OR dispatch_due <= $3)) AS dispatch_counted,
       count(*) FILTER (WHERE dispatched_at <= dispatch_due) AS dispatch_on_time,
       count(*) FILTER (WHERE signed_at IS NOT NULL OR sign_due <= $3) AS sign_for_counted,
       count(*) FILTER (WHERE signed_at <= sign_due) AS sign_for_on_time,
       count(*) FILTER (WHERE contacted_at IS NOT NULL OR contact_due <= $3) AS contact_counted,
       count(*) FILTER (WHERE contacted_at <= contact_due) AS contact_on_time,
       count(*) FILTER (WHERE resolved_at IS NOT NULL OR handling_due <= $3) AS handling_counted,
       count(*) FILTER (WHERE resolved_at <= handling_due) AS handling_on_time,
       COALESCE(sum(satisfied), 0)::int AS revisit_satisfied,
       COALESCE(sum(dissatisfied), 0)::int AS revisit_dissatisfied,
       COALESCE(sum(no_answer), 0)::int AS revisit_no_answer,
       COALESCE(sum(adopted), 0)::int AS suggestions_adopted,
       COALESCE(sum(adopted + not_adopted), 0)::int AS suggestions_decided,
       count(*) FILTER (WHERE repeat_of IS NOT NULL) AS repeats
FROM facts
GROUP BY key
ORDER BY key
"""

_HOT_TOPICS_SQL = """
SELECT to_char(o.created_at AT TIME ZONE 'Asia/Shanghai', 'IYYY-"W"IW') AS week,
       COALESCE(NULLIF(o.address->>'area', ''), '未知区域') AS area,
       COALESCE(o.suggestions->0->>'code', o.request_type) AS topic,
       count(*) AS reports
FROM work_orders o
WHERE o.created_at >= $1 AND o.created_at < $2
GROUP BY 1, 2, 3
ORDER BY week, reports DESC, area, topic
"""


async def figures(
    conn: asyncpg.Connection, by: str, start: datetime, end: datetime, now: datetime
) -> list[asyncpg.Record]:
    group = GROUPS.get(by)
    if group is None:
        raise ValueError(f"figures are grouped by one of {', '.join(GROUPS)}, not {by!r}")
    return await conn.fetch(_FIGURES_SQL.format(group=group), start, end, now)


async def hot_topics(
    conn: asyncpg.Connection, start: datetime, end: datetime, per_week: int = 10
) -> list[asyncpg.Record]:
    """The most reported topics (the dispatch suggestion's unit code, else the request type)
    by area and ISO week."""
    rows = await conn.fetch(_HOT_TOPICS_SQL, start, end)
    kept: dict[str, int] = {}
    out = []
    for row in rows:
        if kept.get(row["week"], 0) < per_week:
            kept[row["week"]] = kept.get(row["week"], 0) + 1
            out.append(row)
    return out
