"""Consultations answered from the knowledge base, referrals to providers, on the web chat."""

from __future__ import annotations

import json

from knowledgebase.service import DEMO_FAQ
from tests.support.chat import ChatClient


def demo_entry(entry_id: str) -> dict:
    for line in DEMO_FAQ.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["id"] == entry_id:
            return row
    raise KeyError(entry_id)


async def test_consultation_is_answered_and_feedback_stored(service, conn):
    client = ChatClient(service.url)
    result = await client.say("医保卡丢了怎么办")
    entry = demo_entry("faq-0078")
    assert result["replies"][0] == entry["answer"]
    assert result["request_number"] is None
    feedback = await client.say("是的")
    assert any("感谢您的反馈" in r for r in feedback["replies"])
    row = await conn.fetchrow("SELECT entry_id, helpful FROM kb_feedback")
    assert tuple(row) == ("faq-0078", True)
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_expired_entry_never_answers(service, conn):
    expired = [
        json.loads(line)
        for line in DEMO_FAQ.read_text(encoding="utf-8").splitlines()
        if json.loads(line).get("valid_until") and json.loads(line)["valid_until"] < "2026-11-23"
    ]
    assert expired, "the demo base has expired notices"
    client = ChatClient(service.url)
    for entry in expired:
        result = await client.say(entry["question"])
        assert entry["answer"] not in result["replies"], entry["id"]
        await client.say("取消")
    # the same entry answers while it was valid
    service.ctx.clock.current = service.ctx.clock.current.replace(year=2026, month=10, day=15)
    retrieval = service.ctx.kb.ask(expired[0]["question"], service.ctx.clock.now().date())
    assert retrieval.answer is not None and retrieval.answer.entry.id == expired[0]["id"]


async def test_locksmith_is_referred_to_a_provider_without_an_order(service, conn):
    client = ChatClient(service.url)
    result = await client.say("找个开锁师傅")
    text = "\n".join(result["replies"])
    assert "开锁" in text and "电话" in text, text
    assert result["request_number"] is None
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_an_unsure_base_offers_its_candidates_and_the_citizen_picks(service, conn):
    question = "社保卡丢了怎么补办"
    retrieval = service.ctx.kb.ask(question, service.ctx.clock.now().date())
    # the demo base holds both 社保卡 and 医保卡 entries: close, and not sure which
    assert retrieval.answer is None and retrieval.confidence >= 0.3
    offered = [c.entry.id for c in retrieval.candidates[:3]]
    assert "faq-0048" in offered  # 社保卡丢了怎么挂失补办？

    client = ChatClient(service.url)
    result = await client.say(question)
    text = "\n".join(result["replies"])
    assert demo_entry("faq-0048")["question"] in text and "都不是" in text
    picked = await client.say(f"第{offered.index('faq-0048') + 1}个")
    assert picked["replies"][0] == demo_entry("faq-0048")["answer"]
    await client.say("是")
    row = await conn.fetchrow("SELECT entry_id, helpful, question FROM kb_feedback")
    assert tuple(row) == ("faq-0048", True, question)
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0

    # none of them: what was asked goes on as a request (the draft asks for a phone)
    other = ChatClient(service.url)
    await other.say(question)
    filed = await other.say("都不是")
    assert not any(demo_entry("faq-0048")["answer"] == r for r in filed["replies"])
    convo = await conn.fetchval(
        "SELECT dialogue FROM conversations WHERE id = $1", filed["conversation_id"]
    )
    assert convo["state"] in ("await_phone", "await_location", "await_confirm"), convo
    assert convo["draft"]["content"] == question

    # something else entirely is handled as a new message, and 取消 just cancels
    third = ChatClient(service.url)
    await third.say(question)
    cancelled = await third.say("取消")
    assert (
        await conn.fetchval(
            "SELECT dialogue->>'state' FROM conversations WHERE id = $1",
            cancelled["conversation_id"],
        )
        == "idle"
    )
