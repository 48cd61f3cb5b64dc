"""voice_calls, voice_turns and voice_call_events: a phone call, each webhook's answer, and
the provider's status and recording callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass
class CallRow:
    call_sid: str
    conversation_id: int | None
    caller_phone: str | None
    state: str
    last_turn: int
    silences: int
    last_prompt: str | None


def _call(record: asyncpg.Record) -> CallRow:
    return CallRow(
        call_sid=record["call_sid"],
        conversation_id=record["conversation_id"],
        caller_phone=record["caller_phone"],
        state=record["state"],
        last_turn=record["last_turn"],
        silences=record["silences"],
        last_prompt=record["last_prompt"],
    )


async def open_call(
    conn: asyncpg.Connection,
    call_sid: str,
    from_number: str | None,
    to_number: str | None,
    caller_phone: str | None,
    call_status: str | None,
    at: datetime,
) -> CallRow:
    """The call's row, created by the first webhook that names it."""
    await conn.execute(
        """INSERT INTO voice_calls (call_sid, from_number, to_number, caller_phone, call_status,
               started_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           ON CONFLICT (call_sid) DO NOTHING""",
        call_sid,
        from_number,
        to_number,
        caller_phone,
        call_status,
        at,
    )
    return _call(await conn.fetchrow("SELECT * FROM voice_calls WHERE call_sid = $1", call_sid))


async def get(conn: asyncpg.Connection, call_sid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM voice_calls WHERE call_sid = $1", call_sid)


async def turn_twiml(conn: asyncpg.Connection, call_sid: str, turn: int) -> str | None:
    return await conn.fetchval(
        "SELECT twiml FROM voice_turns WHERE call_sid = $1 AND turn = $2", call_sid, turn
    )


@dataclass
class TurnRecord:
    call_sid: str
    turn: int
    kind: str
    twiml: str
    heard: str | None = None
    confidence: float | None = None
    message_id: int | None = None
    conversation_id: int | None = None
    # the call after this turn
    state: str = "ivr"
    silences: int = 0
    last_prompt: str | None = None
    transferred_to: str | None = None


async def record_turn(conn: asyncpg.Connection, rec: TurnRecord, at: datetime) -> str:
    """Keep a turn's answer and the call's state after it; the TwiML to send back. When the
    same turn was recorded meanwhile (a concurrent retry), that answer wins and the call is
    left as that turn left it."""
    async with conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO voice_turns (call_sid, turn, kind, heard, confidence, message_id,
                   twiml, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (call_sid, turn) DO NOTHING RETURNING turn""",
            rec.call_sid,
            rec.turn,
            rec.kind,
            rec.heard,
            rec.confidence,
            rec.message_id,
            rec.twiml,
            at,
        )
        if inserted is None:
            return await turn_twiml(conn, rec.call_sid, rec.turn)
        await conn.execute(
            """UPDATE voice_calls SET
                   conversation_id = COALESCE($2, conversation_id),
                   state = CASE WHEN state = 'ended' THEN state ELSE $3 END,
                   last_turn = GREATEST(last_turn, $4), silences = $5,
                   last_prompt = COALESCE($6, last_prompt),
                   transferred_to = COALESCE($7, transferred_to), updated_at = $8
               WHERE call_sid = $1""",
            rec.call_sid,
            rec.conversation_id,
            rec.state,
            rec.turn,
            rec.silences,
            rec.last_prompt,
            rec.transferred_to,
            at,
        )
    return rec.twiml


async def add_event(
    conn: asyncpg.Connection,
    call_sid: str,
    kind: str,
    dedupe_key: str,
    data: dict[str, Any],
    at: datetime,
) -> bool:
    """Store a callback with the call's conversation. False when it was stored before."""
    inserted = await conn.fetchval(
        """INSERT INTO voice_call_events (call_sid, conversation_id, kind, dedupe_key, data, created_at)
           VALUES ($1, (SELECT conversation_id FROM voice_calls WHERE call_sid = $1), $2, $3, $4, $5)
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
        call_sid,
        kind,
        dedupe_key,
        data,
        at,
    )
    return inserted is not None


async def apply_status(
    conn: asyncpg.Connection,
    call_sid: str,
    call_status: str,
    duration: int | None,
    ended: bool,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE voice_calls SET call_status = $2,
               duration_seconds = COALESCE($3, duration_seconds),
               state = CASE WHEN $4 THEN 'ended' ELSE state END,
               ended_at = CASE WHEN $4 THEN COALESCE(ended_at, $5) ELSE ended_at END,
               updated_at = $5
           WHERE call_sid = $1""",
        call_sid,
        call_status,
        duration,
        ended,
        at,
    )


async def apply_recording(
    conn: asyncpg.Connection,
    call_sid: str,
    recording_sid: str,
    url: str | None,
    duration: int | None,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE voice_calls SET recording_sid = $2, recording_url = $3,
               recording_duration = $4, updated_at = $5
           WHERE call_sid = $1""",
        call_sid,
        recording_sid,
        url,
        duration,
        at,
    )


async def events(conn: asyncpg.Connection, call_sid: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM voice_call_events WHERE call_sid = $1 ORDER BY id", call_sid
    )


_ENDED_BEFORE = "SELECT call_sid FROM voice_calls WHERE updated_at < $1 AND state = 'ended'"


async def forget(conn: asyncpg.Connection, before: datetime) -> tuple[int, int]:
    """Calls ended before `before`: their recordings' references, the caller's number, what
    was heard and what Twilio reported; (calls, recordings) changed."""
    recordings = await conn.execute(
        f"""UPDATE voice_calls SET recording_sid = NULL, recording_url = NULL
            WHERE recording_url IS NOT NULL AND call_sid IN ({_ENDED_BEFORE})""",
        before,
    )
    calls = await conn.execute(
        f"""UPDATE voice_calls SET from_number = NULL, caller_phone = NULL,
                last_prompt = NULL, transferred_to = NULL
            WHERE (from_number IS NOT NULL OR caller_phone IS NOT NULL)
              AND call_sid IN ({_ENDED_BEFORE})""",
        before,
    )
    await conn.execute(
        f"UPDATE voice_turns SET heard = NULL WHERE heard IS NOT NULL AND call_sid IN ({_ENDED_BEFORE})",
        before,
    )
    await conn.execute(
        f"""UPDATE voice_call_events SET data = '{{}}'
            WHERE data <> '{{}}' AND call_sid IN ({_ENDED_BEFORE})""",
        before,
    )
    return int(calls.split()[-1]), int(recordings.split()[-1])
