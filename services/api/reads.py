"""Reads a handler may send to the replica (figures, the public page's data, exports, search),
and the headers that tell the caller which database answered:

    X-Hotline-Read-From: replica | primary
    X-Hotline-Replica-Lag: seconds behind the primary (when measured)
    X-Hotline-Replica-Fallback: why the primary answered although a replica is configured
                                (replica_behind, replica_unreachable, replica_not_in_recovery)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiohttp import web

from services.context import context_of
from services.storage.replica import NO_REPLICA, PRIMARY, ReadSource

T = TypeVar("T")
_SOURCE = web.RequestKey("hotline_read_source", ReadSource)


async def replica_read(
    request: web.Request, read: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """`read(conn)` through the context's reader (the primary pool when there is none); the
    response to `request` will carry where it was answered from."""
    ctx = context_of(request)
    if ctx.reader is None:
        async with ctx.pool.acquire() as conn:
            result = await read(conn)
        source = ReadSource(PRIMARY, reason=NO_REPLICA)
    else:
        result, source = await ctx.reader.run(read)
    request[_SOURCE] = source
    return result


async def read_headers(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp on_response_prepare: the read's source as headers, on any response."""
    source: ReadSource | None = request.get(_SOURCE)
    if source is None:
        return
    response.headers["X-Hotline-Read-From"] = source.source
    if source.lag_seconds is not None:
        response.headers["X-Hotline-Replica-Lag"] = f"{source.lag_seconds:g}"
    if source.reason is not None and source.reason != NO_REPLICA:
        response.headers["X-Hotline-Replica-Fallback"] = source.reason
