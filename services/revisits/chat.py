"""Revisits in the web chat: the question is posted into the citizen's own conversation, and
the conversation remembers which revisits wait for an answer there (`dialogue["revisits"]`,
newest last); the conversation service hands the next reply to the revisit service."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.storage import conversations, messages

REVISITS_KEY = "revisits"


async def ask_revisit(
    conn: asyncpg.Connection, conversation_id: int, revisit_id: int, question: str, at: datetime
) -> int:
    """Post the revisit question into the citizen's chat as a bot message nobody asked for
    (no `reply_to`: services/agents/hub.py pushes such messages to the widget's socket) and
    remember it in the dialogue. The conversation that filed the order gets it, or the
    session's open one when that was closed meanwhile. Returns the conversation's id."""
    convo = await conversations.lock(conn, conversation_id)
    if convo.mode == "closed":
        current = await conversations.open_for_session(
            conn, convo.channel, convo.session_key, convo.citizen_id, at
        )
        convo = await conversations.lock(conn, current.id)
    dialogue = {**convo.dialogue, REVISITS_KEY: [*convo.dialogue.get(REVISITS_KEY, []), revisit_id]}
    await messages.store_replies(conn, convo.id, None, [question], "bot", at)
    await conversations.save_turn(conn, convo.id, dialogue, convo.mode, None, at)
    return convo.id
