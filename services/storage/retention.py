"""Retention: personal data past the configured period, removed or anonymised in place, so
that every count the figures make stays as it was (orders, their events, their statuses,
units, channels and dates are kept; only texts, phones, openids and recordings go). Each
table's SQL is in its own module; this is the order they run in, in one transaction.

A conversation is purged when it is closed, or has been idle since before the cut-off, and
no work order of it is still open. The work-order history (`work_order_events`) is
append-only and is not touched; the consent events (退订/STOP) are kept, since an opt-out
must be honoured for as long as the service sends texts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from services.storage import (
    citizens,
    conversations,
    login_failures,
    messages,
    outbound,
    revisits,
    voice_calls,
    work_orders,
)

PURGED = "purged"


@dataclass
class Purged:
    conversations: int = 0
    messages: int = 0
    order_contacts: int = 0
    citizens: int = 0
    identities: int = 0
    calls: int = 0
    recordings: int = 0
    revisits: int = 0
    outbound: int = 0
    login_failures: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge(conn: asyncpg.Connection, before: datetime) -> Purged:
    """Anonymise everything personal older than `before`, in one transaction."""
    done = Purged()
    async with conn.transaction():
        ids = await conversations.purgeable(conn, before)
        if ids:
            done.conversations = await conversations.anonymise(conn, ids)
            done.messages = await messages.blank(conn, ids)
        done.order_contacts = await work_orders.forget_contacts(conn, before)
        done.citizens, done.identities = await citizens.forget(conn, before)
        done.calls, done.recordings = await voice_calls.forget(conn, before)
        done.revisits = await revisits.forget(conn, before)
        done.outbound = await outbound.forget(conn, before, PURGED)
        done.login_failures = await login_failures.forget(conn, before)
    return done
