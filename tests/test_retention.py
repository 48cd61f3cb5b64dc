"""`hotline purge`: closed (or idle) conversations, citizens' phones and openids and call
recordings past the period are anonymised; what is still in use is kept; the public figures
and hot topics are exactly the same before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import aiohttp

from services.core.clock import CHINA_TZ
from tests.test_figures import PERIOD, seed

PHONE, OPENID = "13859907001", "oAbcDefGhiJklMnoPqrStuVwxYz1"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


async def public(url: str) -> dict:
    out = {}
    async with aiohttp.ClientSession() as http:
        for by in ("unit", "channel", "matter", "week"):
            async with http.get(f"{url}/api/public/figures?by={by}&{PERIOD}") as resp:
                assert resp.status == 200
                out[by] = await resp.json()
        async with http.get(f"{url}/api/public/hot-topics?{PERIOD}") as resp:
            out["topics"] = await resp.json()
    return out


async def add_personal_data(conn) -> dict[str, int]:  # noqa: ANN001
    """A WeChat conversation closed in November, an SMS one idle since November whose order
    is still open, a web one from last week; a recorded call; a finished revisit; a text."""
    citizen = await conn.fetchval(
        "INSERT INTO citizens (phone, created_at) VALUES ($1, $2) RETURNING id",
        PHONE,
        at(2026, 11, 1),
    )
    await conn.execute(
        """INSERT INTO citizen_identities (channel, external_id, citizen_id, created_at)
           VALUES ('wechat', $1, $2, $3), ('sms', $4, $2, $3)""",
        OPENID,
        citizen,
        at(2026, 11, 1),
        "+86" + PHONE,
    )
    ids = {}
    for name, channel, key, mode, when in (
        ("old", "wechat", OPENID, "closed", at(2026, 11, 2)),
        ("in_use", "sms", "+86" + PHONE, "bot", at(2026, 11, 2)),
        ("recent", "web", "w-recent", "bot", at(2026, 12, 8)),
    ):
        ids[name] = await conn.fetchval(
            """INSERT INTO conversations (channel, session_key, citizen_id, mode, dialogue,
                   created_at, updated_at) VALUES ($1, $2, $3, $4, '{"phone": "x"}', $5, $5)
               RETURNING id""",
            channel,
            key,
            citizen,
            mode,
            when,
        )
        await conn.execute(
            """INSERT INTO messages (conversation_id, direction, text, created_at)
               VALUES ($1, 'in', $2, $3)""",
            ids[name],
            f"我的电话{PHONE}，楼下噪音",
            when,
        )
    # the SMS conversation's order is still being handled
    await conn.execute(
        """UPDATE work_orders SET conversation_id = $1
           WHERE id = (SELECT min(id) FROM work_orders WHERE status <> 'closed')""",
        ids["in_use"],
    )
    await conn.execute(
        """INSERT INTO voice_calls (call_sid, conversation_id, from_number, caller_phone, state,
               recording_sid, recording_url, started_at, updated_at)
           VALUES ('CA1', $1, $2, $2, 'ended', 'RE1', 'https://api.twilio.com/RE1', $3, $3)""",
        ids["old"],
        "+86" + PHONE,
        at(2026, 11, 2),
    )
    await conn.execute(
        """INSERT INTO revisits (work_order_id, round, channel, phone, status, max_call_attempts,
               comment, created_at, updated_at)
           VALUES ((SELECT min(id) FROM work_orders WHERE status = 'closed'), 9, 'sms', $1,
                   'done', 3, '挺好', $2, $2)""",
        PHONE,
        at(2026, 11, 24),
    )
    await conn.execute(
        """INSERT INTO outbound_messages (channel, recipient, body, purpose, status, created_at,
               updated_at) VALUES ('sms', $1, '您的诉求编号…', 'request_number', 'sent', $2, $2)""",
        "+86" + PHONE,
        at(2026, 11, 2),
    )
    # someone who wrote on WeChat once in October and never since
    gone = await conn.fetchval(
        "INSERT INTO citizens (phone, created_at) VALUES ($1, $2) RETURNING id",
        "13859907002",
        at(2026, 10, 1),
    )
    await conn.execute(
        """INSERT INTO citizen_identities (channel, external_id, citizen_id, created_at)
           VALUES ('wechat', 'oGoneGoneGoneGoneGoneGoneGone', $1, $2)""",
        gone,
        at(2026, 10, 1),
    )
    ids["gone"] = await conn.fetchval(
        """INSERT INTO conversations (channel, session_key, citizen_id, mode, created_at,
               updated_at) VALUES ('wechat', 'oGoneGoneGoneGoneGoneGoneGone', $1, 'bot', $2, $2)
           RETURNING id""",
        gone,
        at(2026, 10, 1),
    )
    ids["gone_citizen"] = gone
    return ids


async def test_purge_anonymises_and_keeps_the_figures(desk_service, clock, database_url, tmp_path):
    svc = desk_service
    await seed(svc, clock)
    clock.current = at(2026, 12, 20, 9)
    async with svc.pool.acquire() as conn:
        ids = await add_personal_data(conn)
        closed_contacts = await conn.fetchval(
            "SELECT count(*) FROM work_orders WHERE status = 'closed' AND contact_phone IS NOT NULL"
        )
        open_contacts = await conn.fetchval(
            "SELECT count(*) FROM work_orders WHERE status <> 'closed' AND contact_phone IS NOT NULL"
        )
    assert closed_contacts >= 1 and open_contacts >= 1
    before = await public(svc.url)
    assert before["unit"]["rows"], before

    env = dict(os.environ, DATABASE_URL=database_url, HOTLINE_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "purge", "--older-than", "3", "--as-of",
         "2026-12-10", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["conversations"] == 2 and report["messages"] == 1
    assert report["order_contacts"] == closed_contacts
    assert report["recordings"] == 1 and report["calls"] == 1
    assert report["revisits"] == 1 and report["outbound"] == 1

    assert await public(svc.url) == before, "the figures changed"
    async with svc.pool.acquire() as conn:
        rows = {
            r["id"]: r
            for r in await conn.fetch("SELECT id, session_key, mode, dialogue FROM conversations")
        }
        texts = {
            r["conversation_id"]: r["text"]
            for r in await conn.fetch("SELECT conversation_id, text FROM messages")
        }
        old = rows[ids["old"]]
        assert old["session_key"] == f"purged-{ids['old']}" and old["dialogue"] == {}
        assert texts[ids["old"]] == ""
        # still in use (an open order), or recent: untouched
        assert rows[ids["in_use"]]["session_key"] == "+86" + PHONE and PHONE in texts[ids["in_use"]]
        assert rows[ids["recent"]]["session_key"] == "w-recent"
        call = await conn.fetchrow("SELECT * FROM voice_calls WHERE call_sid = 'CA1'")
        assert call["recording_url"] is None and call["caller_phone"] is None
        assert call["from_number"] is None
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM work_orders WHERE status = 'closed' AND contact_phone IS NOT NULL"
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM work_orders WHERE status <> 'closed' AND contact_phone IS NOT NULL"
            )
            == open_contacts
        )
        assert await conn.fetchval("SELECT phone FROM revisits WHERE round = 9") is None
        assert await conn.fetchval("SELECT recipient FROM outbound_messages") == "purged"
        # nothing of the October citizen is in use: phone and openid gone
        assert (
            await conn.fetchval("SELECT phone FROM citizens WHERE id = $1", ids["gone_citizen"])
            is None
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM citizen_identities WHERE citizen_id = $1", ids["gone_citizen"]
            )
            == 0
        )
        assert rows[ids["gone"]]["session_key"] == f"purged-{ids['gone']}"
        # the citizen still has a conversation in use: their phone stays
        assert await conn.fetchval("SELECT count(*) FROM citizens WHERE phone = $1", PHONE) == 1

    # a second run finds nothing more; a long period touches nothing
    again = subprocess.run(
        [sys.executable, "-m", "services.cli", "purge", "--older-than", "3", "--as-of",
         "2026-12-10", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert set(json.loads(again.stdout).values()) - {json.loads(again.stdout)["before"]} == {0}
    bad = subprocess.run(
        [sys.executable, "-m", "services.cli", "purge", "--older-than", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "at least 1" in bad.stderr
