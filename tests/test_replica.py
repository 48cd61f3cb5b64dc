"""The replica reader's refusals that need no real replica (tests/test_deploy.py has the real
streaming replica: caught up, paused, stopped): no replica, a server that is not in recovery,
one that cannot be reached; and the settings."""

from __future__ import annotations

import time

import aiohttp
import pytest

from services.config import SETTINGS, Settings
from services.storage import db
from services.storage.replica import NO_REPLICA, NOT_A_STANDBY, PRIMARY, UNREACHABLE, Reader


async def test_without_a_replica_reads_say_they_came_from_the_primary(service):
    async with aiohttp.ClientSession() as http:
        async with http.get(service.url + "/api/public/figures?by=channel") as resp:
            assert resp.status == 200
            assert resp.headers["X-Hotline-Read-From"] == "primary"
            assert "X-Hotline-Replica-Fallback" not in resp.headers
        async with http.get(service.url + "/healthz") as resp:
            replica = (await resp.json())["replica"]
    assert replica["configured"] is False and replica["reads_from"] == "primary"
    assert replica["reason"] == NO_REPLICA


async def test_a_server_that_is_not_in_recovery_is_never_read_as_a_replica(database_url):
    """A promoted replica, or a URL naming the primary by mistake: its data may have gone its
    own way, so the primary answers, and says why."""
    primary = await db.connect(database_url, min_size=1, max_size=2)
    not_a_replica = await db.connect_replica(database_url, max_size=2)
    try:
        reader = Reader(primary, not_a_replica, max_lag_seconds=5)
        answer, source = await reader.run(lambda conn: conn.fetchval("SELECT 41 + 1"))
        assert answer == 42
        assert (source.source, source.reason) == (PRIMARY, NOT_A_STANDBY)
        assert reader.fallbacks == 1 and reader.replica_reads == 0
        health = reader.health(await reader.check())
        assert health["reads_from"] == PRIMARY and health["reason"] == NOT_A_STANDBY
    finally:
        await not_a_replica.close()
        await primary.close()


async def test_an_unreachable_replica_is_bypassed_at_once(database_url, tmp_path):
    primary = await db.connect(database_url, min_size=1, max_size=2)
    # a socket folder with no server in it: the service still starts, reads go to the primary
    gone = await db.connect_replica(f"postgresql://postgres@/hotline?host={tmp_path}&port=5999")
    try:
        reader = Reader(primary, gone, max_lag_seconds=5)
        started = time.monotonic()
        answer, source = await reader.run(lambda conn: conn.fetchval("SELECT 7"))
        assert time.monotonic() - started < 3
        assert answer == 7 and (source.source, source.reason) == (PRIMARY, UNREACHABLE)
        assert source.error  # what went wrong, for /healthz and the log
    finally:
        await gone.close()
        await primary.close()


def test_the_replica_settings():
    settings = Settings.from_env(
        {
            "DATABASE_REPLICA_URL": "postgresql://hotline:s3cret@10.0.0.11/hotline",
            "HOTLINE_REPLICA_MAX_LAG_SECONDS": "0.5",
        }
    )
    assert settings.database_replica_url == "postgresql://hotline:s3cret@10.0.0.11/hotline"
    assert settings.replica_max_lag_seconds == 0.5
    assert Settings.from_env({}).database_replica_url is None
    with pytest.raises(ValueError, match="HOTLINE_REPLICA_MAX_LAG_SECONDS"):
        Settings.from_env({"HOTLINE_REPLICA_MAX_LAG_SECONDS": "-1"})
    entry = next(s for s in SETTINGS if s.env == "DATABASE_REPLICA_URL")
    assert (
        entry.shown(settings.database_replica_url) == "postgresql://hotline:****@10.0.0.11/hotline"
    )
