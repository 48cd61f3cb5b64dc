"""The WeChat official account: URL verification, plaintext and safe mode, voice, the welcome,
MsgId dedupe, and the 5-second rule with the customer-service message API (fake, loopback)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from channels import wechat
from channels.wechat import WECHAT
from services.conversation import replies
from tests.support.channels import WECHAT_TOKEN
from tests.support.fakes.webhooks import Follower, wechat_signature
from tests.support.service import start_service


class SlowEngine:
    """The real NLU, slowed down: a turn that takes longer than WeChat waits."""

    def __init__(self, inner, delay: float) -> None:  # noqa: ANN001
        self.inner = inner
        self.delay = delay

    def parse(self, text: str):  # noqa: ANN201
        time.sleep(self.delay)
        return self.inner.parse(text)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)


async def test_server_url_verification(hotline, clock):
    timestamp, nonce = str(int(clock.now().timestamp())), "n0nce"
    good = {
        "signature": wechat_signature(WECHAT_TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": "4967203410836572113",
    }
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hotline.url}/wechat", params=good) as resp:
            assert resp.status == 200 and await resp.text() == "4967203410836572113"
        bad = dict(good, signature="0" * 40)
        async with http.get(f"{hotline.url}/wechat", params=bad) as resp:
            assert resp.status == 403 and (await resp.json())["error"] == "bad_signature"


async def test_subscribe_gets_a_welcome_and_text_gets_an_answer(hotline, follower):
    for safe in (False, True):
        fan = follower(safe=safe)
        welcome = await fan.subscribe()
        assert welcome.messages == [wechat.WELCOME]
        hello = await fan.send_text("你好")
        assert hello.messages == [replies.GREETING]


async def test_voice_messages_use_the_recognition_text(hotline, follower):
    fan = follower()
    unheard = await fan.send_voice(None)
    assert unheard.messages == [wechat.NO_RECOGNITION]
    heard = await fan.send_voice("我要转人工。")
    assert "人工" in heard.messages[0]
    async with hotline.ctx.pool.acquire() as conn:
        texts = [
            r["text"] for r in await conn.fetch("SELECT text FROM messages WHERE direction = 'in'")
        ]
        mode = await conn.fetchval(
            "SELECT mode FROM conversations WHERE session_key = $1", fan.openid
        )
    assert texts == ["我要转人工。"] and mode == "waiting_agent"


async def test_other_message_types_are_answered_without_storing(hotline, follower):
    fan = follower()
    image = fan.xml("image", {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": "m1"}, fan.next_id())
    reply = await fan.post_xml(image)
    assert reply.messages == [wechat.UNSUPPORTED]
    unsubscribe = await fan.post_xml(fan.xml("event", {"Event": "unsubscribe", "EventKey": ""}))
    assert unsubscribe.text == "success"
    async with hotline.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 0


async def test_a_resent_msg_id_is_processed_once(hotline, follower):
    fan = follower(safe=True)
    first = await fan.send_text("你好，想问一下怎么投诉", msg_id=777001)
    again = await fan.send_text("你好，想问一下怎么投诉", msg_id=777001)
    assert again.messages == first.messages
    async with hotline.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 1


async def test_slow_answer_is_pushed_through_the_customer_service_api(
    channel_settings, clock, nlu_engine, fake_wechat
):
    settings = channel_settings.with_overrides(wechat_reply_deadline=0.3)
    running = await start_service(settings, clock, SlowEngine(nlu_engine, 1.0))
    channel = running.runner.app[WECHAT]
    try:
        fan = Follower(running.url, WECHAT_TOKEN, clock)
        started = time.monotonic()
        first = await fan.send_text("你好", msg_id=880001)
        assert first.status == 200 and first.text == "success"
        assert time.monotonic() - started < 0.9  # answered before the turn was done
        # WeChat retries while the turn is still running: no second turn, no second answer
        retry = await fan.send_text("你好", msg_id=880001)
        assert retry.text == "success"
        await channel.drain()
        assert fake_wechat.texts_to(fan.openid) == [replies.GREETING]
        assert fake_wechat.token_fetches == 1
        # a retry after the push: still nothing new
        late = await fan.send_text("你好", msg_id=880001)
        assert late.text == "success"
        await channel.drain()
        assert len(fake_wechat.sent) == 1

        # the token was revoked meanwhile: the push fetches a new one and goes out
        fake_wechat.expire_tokens()
        second = await fan.send_text("查询 20261123-0042", msg_id=880002)
        assert second.text == "success"
        await channel.drain()
        assert fake_wechat.token_fetches == 2
        assert "20261123-0042" in fake_wechat.texts_to(fan.openid)[-1]
        async with running.ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 2
            rows = await conn.fetch(
                "SELECT status, purpose, recipient FROM outbound_messages ORDER BY id"
            )
        assert [tuple(r) for r in rows] == [("sent", "reply", fan.openid)] * 2
    finally:
        await running.stop()


async def test_concurrent_retries_share_one_turn(channel_settings, clock, nlu_engine, fake_wechat):
    settings = channel_settings.with_overrides(wechat_reply_deadline=2.0)
    running = await start_service(settings, clock, SlowEngine(nlu_engine, 0.5))
    try:
        fan = Follower(running.url, WECHAT_TOKEN, clock)
        answers = await asyncio.gather(*(fan.send_text("你好", msg_id=990001) for _ in range(3)))
        assert [a.messages for a in answers] == [[replies.GREETING]] * 3
        async with running.ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'") == 1
            assert await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'out'") == 1
        assert fake_wechat.sent == []
    finally:
        await running.stop()


async def test_safe_mode_refuses_plaintext(channel_settings, clock, nlu_engine):
    settings = channel_settings.with_overrides(wechat_mode="safe")
    running = await start_service(settings, clock, nlu_engine)
    try:
        plain = Follower(running.url, WECHAT_TOKEN, clock, openid="o" + uuid.uuid4().hex[:27])
        refused = await plain.send_text("你好")
        assert refused.status == 403 and refused.json()["error"] == "plaintext_refused"
        async with running.ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM messages") == 0
            assert await conn.fetchval("SELECT count(*) FROM citizens") == 0
    finally:
        await running.stop()
