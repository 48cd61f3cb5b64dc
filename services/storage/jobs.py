"""scheduler_jobs: durable jobs, claimed under a lease with FOR UPDATE SKIP LOCKED.

A claim is its own short transaction: the row lock only decides who gets the job, the lease
(locked_by, lease_until) says who holds it while it runs. Finishing is fenced by locked_by,
so a process whose lease was taken over cannot finish (or reschedule) the job any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    lease_until: datetime


async def enqueue(
    conn: asyncpg.Connection,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime,
    *,
    dedupe_key: str | None = None,
    max_attempts: int = 8,
) -> int | None:
    """Add a job; with a dedupe_key already present nothing is added and None comes back."""
    return await conn.fetchval(
        """INSERT INTO scheduler_jobs (kind, dedupe_key, payload, run_at, max_attempts)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
        kind,
        dedupe_key,
        payload,
        run_at,
        max_attempts,
    )


async def claim(
    conn: asyncpg.Connection,
    worker: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    kinds: list[str],
) -> list[Job]:
    """Due jobs of `kinds` (the ones this worker can run: a job another process knows how
    to run is left for it, not failed here)."""
    rows = await conn.fetch(
        """UPDATE scheduler_jobs j SET locked_by = $1, lease_until = $3, attempts = j.attempts + 1
           FROM (SELECT id FROM scheduler_jobs
                 WHERE done_at IS NULL AND failed_at IS NULL AND run_at <= $2
                   AND (lease_until IS NULL OR lease_until < $2)
                   AND kind = ANY($5::text[])
                 ORDER BY run_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED) free
           WHERE j.id = free.id
           RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at, j.lease_until""",
        worker,
        now,
        lease_until,
        limit,
        kinds,
    )
    return [Job(**dict(r)) for r in rows]


async def extend(
    conn: asyncpg.Connection, ids: list[int], worker: str, lease_until: datetime
) -> list[int]:
    """Prolong the leases this worker still holds; returns the ids it still holds."""
    rows = await conn.fetch(
        """UPDATE scheduler_jobs SET lease_until = $3
           WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND done_at IS NULL RETURNING id""",
        ids,
        worker,
        lease_until,
    )
    return [r["id"] for r in rows]


async def finish(conn: asyncpg.Connection, job_id: int, worker: str, now: datetime) -> bool:
    return (
        await conn.fetchval(
            """UPDATE scheduler_jobs SET done_at = $3, locked_by = NULL, lease_until = NULL
               WHERE id = $1 AND locked_by = $2 AND done_at IS NULL RETURNING true""",
            job_id,
            worker,
            now,
        )
        is True
    )


async def reschedule(
    conn: asyncpg.Connection,
    job_id: int,
    worker: str,
    run_at: datetime,
    *,
    error: str | None = None,
    reset_attempts: bool = False,
) -> bool:
    return (
        await conn.fetchval(
            """UPDATE scheduler_jobs SET run_at = $3, locked_by = NULL, lease_until = NULL,
                   last_error = COALESCE($4, last_error),
                   attempts = CASE WHEN $5 THEN 0 ELSE attempts END
               WHERE id = $1 AND locked_by = $2 AND done_at IS NULL RETURNING true""",
            job_id,
            worker,
            run_at,
            error,
            reset_attempts,
        )
        is True
    )


async def fail(
    conn: asyncpg.Connection, job_id: int, worker: str, now: datetime, error: str
) -> bool:
    return (
        await conn.fetchval(
            """UPDATE scheduler_jobs SET failed_at = $3, last_error = $4, locked_by = NULL,
                   lease_until = NULL
               WHERE id = $1 AND locked_by = $2 AND done_at IS NULL RETURNING true""",
            job_id,
            worker,
            now,
            error,
        )
        is True
    )


async def by_id(conn: asyncpg.Connection, job_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM scheduler_jobs WHERE id = $1", job_id)


async def summary(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL) AS pending,
                  count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL
                                   AND lease_until IS NOT NULL) AS leased,
                  count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed,
                  count(*) FILTER (WHERE done_at IS NOT NULL) AS done
           FROM scheduler_jobs"""
    )
    return dict(row)


async def due_summary(conn: asyncpg.Connection, now: datetime) -> tuple[int, datetime | None]:
    """(how many jobs are due and not done, the oldest one's run_at) for the /metrics gauges."""
    row = await conn.fetchrow(
        """SELECT count(*) AS n, min(run_at) AS oldest FROM scheduler_jobs
           WHERE done_at IS NULL AND failed_at IS NULL AND run_at <= $1""",
        now,
    )
    return row["n"], row["oldest"]
