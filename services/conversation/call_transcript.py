"""A phone call's live transcript, in the call's conversation.

While a caller talks with an agent, Twilio's real-time transcription reports each utterance
(channels/twilio_voice.py). Each is stored as a message of the call's conversation: the
caller's as the citizen's, with the bot's reading (intent, type, unit, entities), the agent's
as the agent's. The NOTIFY of migration 007 then pushes it to the agents watching that
conversation as it is said, and the suggested replies follow what the caller says. The bot
does not answer: the caller is talking with a person.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from nlu.types import Engine
from services.core.clock import Clock
from services.storage import agent_workspace, citizens, conversations, messages

CHANNEL = "voice"
SPEAKERS = ("citizen", "agent")


@dataclass(frozen=True)
class Utterance:
    call_sid: str
    speaker: str  # citizen or agent
    text: str
    # the provider's id of the utterance: a retried callback is stored once
    key: str


async def record(pool: asyncpg.Pool, nlu: Engine, clock: Clock, utterance: Utterance) -> int | None:
    """Store the utterance; its message id, or None when it was stored before."""
    if utterance.speaker not in SPEAKERS:
        raise ValueError(f"speaker is one of {SPEAKERS}")
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        # the conversation the call's turns went to (a call is its own session)
        citizen_id = await citizens.for_identity(conn, CHANNEL, utterance.call_sid)
        convo = await conversations.open_for_session(
            conn, CHANNEL, utterance.call_sid, citizen_id, now
        )
        # one writer at a time per conversation, as for a turn: retries cannot both insert
        await conversations.lock(conn, convo.id)
        if utterance.speaker == "citizen":
            stored = await messages.store_inbound(
                conn, convo.id, utterance.text, utterance.key, now
            )
            if not stored.created:
                return None
            message_id = stored.id
        else:
            if await agent_workspace.agent_message_by_client_id(conn, convo.id, utterance.key):
                return None
            message_id = await agent_workspace.store_agent_message(
                conn, convo.id, utterance.text, now, client_message_id=utterance.key
            )
    if utterance.speaker == "citizen":
        parse = await asyncio.to_thread(nlu.parse, utterance.text)
        async with pool.acquire() as conn:
            await messages.set_nlu(conn, message_id, parse.to_dict())
    return message_id
