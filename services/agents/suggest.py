"""Suggested replies for an agent, ranked on one scale and each with the reason it is there.

Three sources: knowledge-base answers (the retrieval's confidence), what was done for similar
resolved work orders (cosine similarity of e5 vectors, searched by pgvector's HNSW index), and
reply templates (keywords and request type). Also the bot's best reading of the request (type
and unit with their confidence) and a work-order draft built from the conversation.

Resolved orders are embedded in the background (`OrderIndexer`, every 30 s in each service
process, one process at a time under an advisory lock), never on the request path: finding the
orders not embedded yet is a scan of every resolved order, which at 100,000 orders took longer
than the whole suggestion may.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import numpy as np

from knowledgebase.service import KnowledgeBase
from nlu.types import REQUEST_TYPE_LABELS, REQUEST_TYPES
from services.core.clock import Clock
from services.storage import agent_workspace as store

log = logging.getLogger(__name__)

# e5 cosine similarities of unrelated Chinese sentences sit around 0.75; rescale so that
# an unrelated order lands near 0 and a near-duplicate near 1
_SIM_FLOOR = 0.80
_SIM_SPAN = 0.17
MIN_ORDER_SCORE = 0.15
INDEX_BATCH = 256
# how soon an order resolved now can be suggested to agents
INDEX_EVERY = timedelta(seconds=30)
# pg_try_advisory_lock key: one process embeds at a time, the others skip that round
INDEX_LOCK = 0x12345_0008


@dataclass
class Suggestion:
    source: str  # kb, similar_order, template
    ref: str
    text: str
    score: float
    why: str
    rank: int = 0


def citizen_texts(history: list[asyncpg.Record], last: int = 3) -> list[str]:
    return [m["text"] for m in history if m["direction"] == "in"][-last:]


def reading(history: list[asyncpg.Record]) -> dict[str, Any] | None:
    """The bot's reading of the request: the latest citizen message read as a request type."""
    readings = [m["nlu"] for m in history if m["direction"] == "in" and m["nlu"]]
    if not readings:
        return None
    best = next((r for r in reversed(readings) if r.get("intent") in REQUEST_TYPES), readings[-1])
    return {
        "intent": best.get("intent"),
        "intent_confidence": best.get("intent_confidence"),
        "request_type": best.get("request_type"),
        "request_type_label": REQUEST_TYPE_LABELS.get(best.get("request_type") or ""),
        "request_type_confidence": best.get("request_type_confidence"),
        "units": best.get("units") or [],
        "unit_confident": best.get("unit_confident"),
    }


def draft(history: list[asyncpg.Record], convo: asyncpg.Record) -> dict[str, Any]:
    """A work order pre-filled from the conversation; the agent edits it before filing."""
    read = reading(history) or {}
    texts = [m for m in history if m["direction"] == "in"]
    requests = [m for m in texts if (m["nlu"] or {}).get("intent") in REQUEST_TYPES]
    content = "；".join(m["text"].strip() for m in (requests or texts[-1:]))
    location = address = phone = None
    for m in reversed(texts):
        ents = (m["nlu"] or {}).get("entities") or {}
        if location is None and ents.get("address"):
            address = {k: v for k, v in ents["address"].items() if v is not None}
            location = address.get("text")
        if phone is None and ents.get("phones"):
            phone = ents["phones"][0]
    units = read.get("units") or []
    return {
        "request_type": read.get("request_type") or "consult",
        "content": content[:2000],
        "location": location,
        "address": address,
        "contact_phone": phone or convo["phone"],
        "lead_unit": units[0]["code"] if units else None,
    }


async def index_resolved(
    pool: asyncpg.Pool, encoder: Any, clock: Clock, limit: int = INDEX_BATCH
) -> int:
    """Embed resolved orders not yet embedded (what was asked and what was done)."""
    async with pool.acquire() as conn:
        rows = await store.unindexed_resolved(conn, limit)
    if not rows or encoder is None:
        return 0
    texts = [f"{r['content']} {r['result'] or ''}".strip() for r in rows]
    vectors = await asyncio.to_thread(encoder.encode, texts)
    async with pool.acquire() as conn:
        await store.store_embeddings(
            conn, [(r["id"], vectors[i], r["result"]) for i, r in enumerate(rows)], clock.now()
        )
    return len(rows)


class OrderIndexer:
    """Embeds resolved orders in the background of a service process."""

    def __init__(self, pool: asyncpg.Pool, encoder: Any, clock: Clock) -> None:
        self.pool = pool
        self.encoder = encoder
        self.clock = clock

    async def run_once(self) -> int | None:
        """Embed every order waiting, a batch at a time; None when another process is at it."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", INDEX_LOCK):
                return None
            try:
                total = 0
                while True:
                    done = await index_resolved(self.pool, self.encoder, self.clock)
                    total += done
                    if done < INDEX_BATCH:
                        return total
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", INDEX_LOCK)

    async def run_forever(self, every: timedelta = INDEX_EVERY) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the database restarting, a bad text: the next round retries
                log.exception("embedding resolved orders failed")
            await asyncio.sleep(every.total_seconds())


def _kb(kb: KnowledgeBase, question: str, day: date) -> list[Suggestion]:
    result = kb.ask(question, day, k=3)
    if not result.candidates:
        return []
    top = max(result.candidates[0].score, 1e-9)
    out = []
    for c in result.candidates:
        score = result.confidence * max(c.score, 0.0) / top
        out.append(
            Suggestion(
                "kb",
                c.entry.id,
                c.entry.answer,
                round(score, 3),
                f"知识库条目「{c.entry.question}」与市民所说「{c.matched}」相近，"
                f"答对把握 {result.confidence:.0%}",
            )
        )
    return out


def _templates(rows: list[asyncpg.Record], text: str, request_type: str | None) -> list[Suggestion]:
    out = []
    for t in rows:
        hits = [k for k in t["keywords"] if k and k in text]
        score, reasons = 0.1, []
        if hits:
            score += 0.2 + 0.1 * len(hits)
            reasons.append("命中关键词：" + "、".join(hits))
        if t["request_type"] and t["request_type"] == request_type:
            score += 0.2
            reasons.append(f"适用于{REQUEST_TYPE_LABELS.get(request_type, request_type)}")
        if t["keywords"] and not hits and t["request_type"] != request_type:
            continue  # a specific template with nothing in its favour
        why = "；".join(reasons) or "通用模板"
        out.append(Suggestion("template", str(t["id"]), t["body"], round(score, 3), why))
    return out


async def suggest(
    pool: asyncpg.Pool,
    kb: KnowledgeBase,
    clock: Clock,
    conversation_id: int,
    *,
    limit: int = 8,
) -> dict[str, Any] | None:
    started = time.perf_counter()
    async with pool.acquire() as conn:
        convo = await store.conversation(conn, conversation_id)
        if convo is None:
            return None
        history = await conn.fetch(
            """SELECT id, direction, author, text, nlu FROM messages
               WHERE conversation_id = $1 ORDER BY id""",
            conversation_id,
        )
        templates = await store.templates(conn)
    texts = citizen_texts(history)
    question = " ".join(texts)
    read = reading(history)
    items: list[Suggestion] = []
    if question:
        items += await asyncio.to_thread(_kb, kb, question, clock.now().date())
        if kb.encoder is not None:
            vector = (await asyncio.to_thread(kb.encoder.encode, [question]))[0]
            async with pool.acquire() as conn:
                similar = await store.similar_orders(conn, np.asarray(vector), 5)
            for o in similar:
                score = (float(o["similarity"]) - _SIM_FLOOR) / _SIM_SPAN
                if score < MIN_ORDER_SCORE or not o["result"]:
                    continue
                items.append(
                    Suggestion(
                        "similar_order",
                        o["request_number"],
                        o["result"],
                        round(min(score, 1.0), 3),
                        f"相似的已办结工单 {o['request_number']}（相似度 {float(o['similarity']):.2f}）"
                        f"：「{o['content'][:40]}」的办理结果",
                    )
                )
    items += _templates(templates, question, (read or {}).get("request_type"))
    items.sort(key=lambda s: s.score, reverse=True)
    items = items[:limit]
    for i, s in enumerate(items, 1):
        s.rank = i
    return {
        "conversation_id": conversation_id,
        "suggestions": [asdict(s) for s in items],
        "reading": read,
        "draft": draft(history, convo),
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }
