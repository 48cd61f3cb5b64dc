"""Reads that may go to a streaming replica: the replica while it is close enough behind the
primary, the primary otherwise, and always a record of which one answered and why.

The lag is measured against the primary at the moment of the read, never assumed: the
primary's current WAL position is read first, then the replica's replayed position. A replica
that has replayed up to it is current (lag 0); one that has not is as far behind as the time
since the last transaction it replayed (an overestimate, never an underestimate, since the
first transaction it is missing committed after that one). Paused replay, a stopped replica,
a promoted one and a broken connection all end on the primary, reported, never silently.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import asyncpg

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIMARY = "primary"
REPLICA = "replica"
# why the primary answered a read meant for the replica
NO_REPLICA = "no_replica"
BEHIND = "replica_behind"
UNREACHABLE = "replica_unreachable"
NOT_A_STANDBY = "replica_not_in_recovery"

# a replica must answer its status query this fast, or it counts as unreachable
CHECK_TIMEOUT_S = 2.0
_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)
_PRIMARY_LSN = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
_REPLICA_STATUS = """
    SELECT pg_is_in_recovery() AS standby,
           pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replayed,
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused,
           extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_replay
"""


@dataclass(frozen=True)
class ReadSource:
    """Which database answered a read: `source` is primary or replica; `reason` says why the
    primary answered when a replica is configured (None when the replica did)."""

    source: str
    lag_seconds: float | None = None
    reason: str | None = None
    replay_paused: bool | None = None
    lag_bytes: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Reader:
    """Reads for figures, the public page, exports and search. Without a replica pool every
    read goes to the primary (reason `no_replica`)."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool | None = None,
        *,
        max_lag_seconds: float = 5.0,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        self.fallbacks = 0  # reads meant for the replica that the primary answered
        self.replica_reads = 0
        self.last: ReadSource | None = None

    async def run(self, read: Callable[[asyncpg.Connection], Awaitable[T]]) -> tuple[T, ReadSource]:
        """`read(conn)` on the replica if it is current enough, else on the primary. A replica
        that fails during the read itself is bypassed too: the read is done again on the
        primary (reads only: it must have no effects)."""
        if self.replica is None:
            async with self.primary.acquire() as conn:
                return await read(conn), ReadSource(PRIMARY, reason=NO_REPLICA)
        try:
            async with self.replica.acquire(timeout=CHECK_TIMEOUT_S) as conn:
                source = await self._status(conn)
                if source.source == REPLICA:
                    result = await read(conn)
                    self._record(source)
                    return result, source
        except _FAILURES as exc:
            source = ReadSource(PRIMARY, reason=UNREACHABLE, error=_describe(exc))
        self._record(source)
        async with self.primary.acquire() as conn:
            return await read(conn), source

    async def check(self) -> ReadSource:
        """The replica's state now, for /healthz: where a read would go, and why."""
        if self.replica is None:
            return ReadSource(PRIMARY, reason=NO_REPLICA)
        try:
            async with self.replica.acquire(timeout=CHECK_TIMEOUT_S) as conn:
                source = await self._status(conn)
        except _FAILURES as exc:
            source = ReadSource(PRIMARY, reason=UNREACHABLE, error=_describe(exc))
        self._note_change(source)
        return source

    def health(self, now: ReadSource) -> dict[str, Any]:
        return {
            "configured": self.replica is not None,
            "reads_from": now.source,
            **now.to_dict(),
            "max_lag_seconds": self.max_lag_seconds,
            "replica_reads": self.replica_reads,
            "fallbacks": self.fallbacks,
        }

    async def _status(self, conn: asyncpg.Connection) -> ReadSource:
        async with self.primary.acquire() as primary:
            primary_lsn = await primary.fetchval(_PRIMARY_LSN)
        row = await conn.fetchrow(_REPLICA_STATUS, timeout=CHECK_TIMEOUT_S)
        if not row["standby"]:
            # promoted, or the URL names a server that is not a replica: its data may have
            # gone its own way, so nothing is read from it
            return ReadSource(PRIMARY, reason=NOT_A_STANDBY)
        paused = bool(row["paused"])
        behind = max(0, primary_lsn - (row["replayed"] or 0))
        if behind == 0:
            lag = 0.0
        else:
            since = row["since_replay"]
            lag = math.inf if since is None else max(0.0, float(since))
        if lag > self.max_lag_seconds:
            return ReadSource(
                PRIMARY,
                lag_seconds=None if math.isinf(lag) else round(lag, 3),
                reason=BEHIND,
                replay_paused=paused,
                lag_bytes=behind,
            )
        return ReadSource(REPLICA, round(lag, 3), replay_paused=paused, lag_bytes=behind)

    def _record(self, source: ReadSource) -> None:
        if source.source == REPLICA:
            self.replica_reads += 1
        else:
            self.fallbacks += 1
        self._note_change(source)

    def _note_change(self, source: ReadSource) -> None:
        """Log when reads move between replica and primary (once, not on every read)."""
        before = self.last
        self.last = source
        if before is not None and (before.source, before.reason) == (source.source, source.reason):
            return
        if source.source == PRIMARY and source.reason != NO_REPLICA:
            log.warning(
                "reads go to the primary: %s (lag %s s, limit %s s)%s",
                source.reason,
                source.lag_seconds,
                self.max_lag_seconds,
                f": {source.error}" if source.error else "",
            )
        elif source.source == REPLICA and before is not None:
            log.info("reads go to the replica again (lag %s s)", source.lag_seconds)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
