"""The SMS channel and outbound notifications: signed Twilio Messaging webhooks on loopback,
and the real twilio library (async client) against the fake REST API."""

from __future__ import annotations

import pytest

from services.outbound.outbox import InvalidRecipient, Outbox
from services.outbound.sms_text import segments, split_message
from tests.support.channels import number_in
from tests.support.chat import COMPLAINT


async def test_texted_complaint_is_filed_and_the_number_is_texted_back(hotline, texter):
    sms = texter("+8613859902001")
    first = await sms.send(COMPLAINT)
    assert len(first.messages) == 1 and "请确认" in first.messages[0]
    done = await sms.send("确认")
    number = number_in(done.messages)
    async with hotline.ctx.pool.acquire() as conn:
        order = await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)
        assert order["channel"] == "sms" and order["contact_phone"] == "13859902001"
        phone = await conn.fetchval("SELECT phone FROM citizens WHERE id = $1", order["citizen_id"])
        assert phone == "13859902001"


async def test_resent_message_sid_is_processed_once(hotline, texter):
    sms = texter("+8613859902002")
    await sms.send(COMPLAINT)
    first = await sms.send("确认", sid="SM" + "c" * 32)
    again = await sms.send("确认", sid="SM" + "c" * 32)
    assert again.messages == first.messages
    async with hotline.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM work_orders") == 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE client_message_id = $1", "SM" + "c" * 32
            )
            == 1
        )


async def test_long_replies_are_split_at_sentence_ends(hotline, texter):
    long_complaint = (
        COMPLAINT
        + "。"
        + "。".join(
            f"第{i}次反映了，晚上七点到十点油烟最重，窗户都不敢开，家里老人孩子咳嗽不止"
            for i in range(1, 12)
        )
    )
    assert len(long_complaint) > 400
    reply = await texter("+8613859902003").send(long_complaint)
    assert len(reply.messages) >= 2
    assert all(len(m) <= 300 for m in reply.messages)
    assert [m[: len(f"({i}/")] for i, m in enumerate(reply.messages, 1)] == [
        f"({i}/" for i in range(1, len(reply.messages) + 1)
    ]
    # every message but the last ends a sentence
    assert all(m[-1] in "。！？；\n" for m in reply.messages[:-1]), reply.messages
    assert "请确认" in reply.messages[0] and "确认" in reply.messages[-1]


def test_split_and_segment_arithmetic():
    assert split_message("短短一句。", 300) == ["短短一句。"]
    parts = split_message("一二三四五六七八九十。" * 40, 100)
    assert all(len(p) <= 100 for p in parts) and "".join(p[5:] for p in parts).count("。") == 40
    assert segments("中" * 70) == 1 and segments("中" * 71) == 2 and segments("中" * 300) == 5
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2


async def test_stop_opts_out_of_notifications_and_start_opts_back_in(hotline, texter, fake_twilio):
    phone = "+8613859902004"
    sms = texter(phone)
    notifier: Outbox = hotline.ctx.outbox
    stop = await sms.send("退订")
    assert "已退订" in stop.messages[0]
    # Twilio retries the STOP webhook: recorded once
    again = await sms.send("STOP", sid="SM" + "d" * 32)
    await sms.send("STOP", sid="SM" + "d" * 32)
    assert again.status == 200
    result = await notifier.send_sms(phone, "您的诉求已办结。", "progress")
    assert result.status == "opted_out" and not result.ok
    assert fake_twilio.bodies_to(phone) == []
    start = await sms.send("订阅")
    assert "恢复" in start.messages[0]
    result = await notifier.send_sms(phone, "您的诉求已办结。", "progress")
    assert result.ok and fake_twilio.bodies_to(phone) == ["您的诉求已办结。"]
    async with hotline.ctx.pool.acquire() as conn:
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM sms_consent_events WHERE phone = '13859902004' ORDER BY id"
            )
        ]
        assert actions == ["opt_out", "opt_out", "opt_in"]
        # a STOP is not a request: no conversation was opened for it
        assert await conn.fetchval("SELECT count(*) FROM conversations") == 0


async def test_notifier_sends_through_twilio_and_stores_every_message(hotline, fake_twilio):
    notifier: Outbox = hotline.ctx.outbox
    long_text = "您反映的问题已由承办单位办理完毕。" * 30
    result = await notifier.send_sms(
        "13859902005", long_text, "progress", idempotency_key="progress:test:1"
    )
    assert result.ok and len(result.provider_ids) == len(split_message(long_text, 300)) > 1
    sent = fake_twilio.messages
    assert [m["to"] for m in sent] == ["+8613859902005"] * len(result.provider_ids)
    assert all(m["from"] == "+15005550006" for m in sent)
    assert sent[0]["status_callback"] == "https://12345.shishi.example.gov.cn/twilio/sms/status"
    # the same key again: nothing more is sent
    repeat = await notifier.send_sms(
        "13859902005", long_text, "progress", idempotency_key="progress:test:1"
    )
    assert repeat.duplicate and repeat.message_ids == result.message_ids
    assert len(fake_twilio.messages) == len(result.provider_ids)
    async with hotline.ctx.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM outbound_messages ORDER BY id")
    assert [r["status"] for r in rows] == ["sent"] * len(rows)
    assert [r["provider_id"] for r in rows] == result.provider_ids
    assert all(r["segments"] >= 1 and r["recipient"] == "13859902005" for r in rows)


async def test_delivery_reports_update_the_status_and_never_go_back(hotline, twilio_hooks):
    notifier: Outbox = hotline.ctx.outbox
    result = await notifier.send_sms(
        "+8613859902006", "编号20261123-0009已受理。", "request_number"
    )
    sid = result.provider_ids[0]

    async def report(status: str, **extra: str) -> int:
        params = {
            "AccountSid": twilio_hooks.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": "+8613859902006",
            "From": "+15005550006",
            "ApiVersion": "2010-04-01",
            **extra,
        }
        return (await twilio_hooks.post("/twilio/sms/status", params)).status

    assert await report("delivered") == 204
    assert await report("sent") == 204  # late and out of order
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM outbound_messages WHERE provider_id = $1", sid)
    assert (row["status"], row["provider_status"]) == ("delivered", "delivered")


async def test_provider_refusals_are_stored_not_raised(hotline, fake_twilio):
    notifier: Outbox = hotline.ctx.outbox
    fake_twilio.unsubscribed.add("+8613859902007")
    refused = await notifier.send_sms("13859902007", "通知", "progress")
    assert refused.status == "opted_out" and "21610" in refused.error
    assert await notifier.is_opted_out("+8613859902007")
    fake_twilio.fail_next = 1
    failed = await notifier.send_sms("13859902008", "通知", "progress")
    assert failed.status == "failed"
    with pytest.raises(InvalidRecipient):
        await notifier.send_sms("anonymous", "通知", "progress")
    async with hotline.ctx.pool.acquire() as conn:
        statuses = [
            r["status"]
            for r in await conn.fetch("SELECT status FROM outbound_messages ORDER BY id")
        ]
    assert statuses == ["opted_out", "failed"]


async def test_notifier_without_twilio_settings_stores_the_message_unsent(
    settings, clock, nlu_engine
):
    from tests.support.service import start_service

    running = await start_service(settings, clock, nlu_engine)
    try:
        result = await running.ctx.outbox.send_sms("13859902009", "通知", "progress")
        assert result.status == "not_configured"
        async with running.ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT status FROM outbound_messages") == "not_configured"
    finally:
        await running.stop()


async def test_picture_only_mms_is_answered_and_nothing_stored(hotline, texter):
    sms = texter("+8613859902010")
    params = sms.params("")
    params.update(
        NumMedia="1", MediaUrl0="https://api.twilio.com/media/x.jpg", MediaContentType0="image/jpeg"
    )
    reply = await sms.hooks.post("/twilio/sms", params)
    assert reply.status == 200 and "文字" in reply.messages[0]
    async with hotline.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 0


async def test_outbound_call_goes_through_the_rest_api_and_reports_back(
    hotline, fake_twilio, twilio_hooks
):
    notifier: Outbox = hotline.ctx.outbox
    result = await notifier.place_call(
        "13859902011", "/twilio/voice", "revisit", idempotency_key="revisit:1"
    )
    assert result.ok and result.provider_ids[0].startswith("CA")
    call = fake_twilio.calls[0]
    assert call["to"] == "+8613859902011" and call["from"] == "+15005550006"
    assert call["url"] == "https://12345.shishi.example.gov.cn/twilio/voice"
    assert call["status_callback"] == "https://12345.shishi.example.gov.cn/twilio/voice/status"
    again = await notifier.place_call(
        "13859902011", "/twilio/voice", "revisit", idempotency_key="revisit:1"
    )
    assert again.duplicate and len(fake_twilio.calls) == 1
    # Twilio reports on the call it placed: the citizen is the callee
    status = {
        "AccountSid": twilio_hooks.account_sid,
        "CallSid": result.provider_ids[0],
        "CallStatus": "completed",
        "CallDuration": "42",
        "Direction": "outbound-api",
        "From": "+15005550006",
        "To": "+8613859902011",
        "SequenceNumber": "3",
    }
    assert (await twilio_hooks.post("/twilio/voice/status", status)).status == 204
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT caller_phone, state, duration_seconds FROM voice_calls WHERE call_sid = $1",
            result.provider_ids[0],
        )
        stored = await conn.fetchrow("SELECT channel, status, purpose FROM outbound_messages")
    assert tuple(row) == ("13859902011", "ended", 42)
    assert tuple(stored) == ("voice", "sent", "revisit")


@pytest.fixture
async def quiet_hotline(channel_settings, clock, nlu_engine):
    """The service without its background scheduler: the test runs the re-sending itself."""
    from tests.support.service import start_service

    settings = channel_settings.with_overrides(scheduler_enabled=False)
    running = await start_service(settings, clock, nlu_engine)
    yield running
    await running.stop()


async def test_a_text_that_failed_for_a_passing_reason_is_sent_again_in_order(
    quiet_hotline, fake_twilio, clock
):
    hotline = quiet_hotline
    notifier: Outbox = hotline.ctx.outbox
    long_text = "您反映的问题已由承办单位办理完毕，请留意回访。" * 20
    parts = split_message(long_text, 300)
    assert len(parts) > 1
    fake_twilio.fail_next = 1  # Twilio answers 500 once: its trouble, not the text's
    first = await notifier.send_sms("13859902011", long_text, "progress")
    assert first.status == "failed" and fake_twilio.messages == []

    await notifier.retry_due()  # not yet: the first pause is a minute
    assert fake_twilio.messages == []
    clock.advance(minutes=1)
    fake_twilio.fail_next = 1  # and once more: the later parts wait behind the first
    await notifier.retry_due()
    assert fake_twilio.messages == []
    clock.advance(minutes=1)  # the later part is due again, the first (now 2 min) not yet
    await notifier.retry_due()
    assert fake_twilio.messages == []  # the later part does not overtake the first
    clock.advance(minutes=1)
    await notifier.retry_due()
    assert [m["body"] for m in fake_twilio.messages] == parts  # every part, in order, once
    await notifier.retry_due()
    assert len(fake_twilio.messages) == len(parts)
    async with hotline.ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, retries, retry_at FROM outbound_messages ORDER BY id"
        )
    assert [r["status"] for r in rows] == ["sent"] * len(parts)
    assert rows[0]["retries"] == 2 and all(r["retry_at"] is None for r in rows)


async def test_refusals_are_not_retried_and_retries_end(quiet_hotline, fake_twilio, clock):
    hotline = quiet_hotline
    notifier: Outbox = hotline.ctx.outbox
    fake_twilio.unsubscribed.add("+8613859902012")
    await notifier.send_sms("13859902012", "通知", "progress")  # STOP at the carrier: final
    fake_twilio.fail_next = 1_000
    await notifier.send_sms("13859902013", "通知", "progress")
    for _ in range(30):  # far more rounds than tries allowed
        clock.advance(hours=1)
        await notifier.retry_due()
    async with hotline.ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT recipient, status, retries, retry_at FROM outbound_messages ORDER BY id"
        )
    assert [(r["status"], r["retries"], r["retry_at"]) for r in rows] == [
        ("opted_out", 0, None),
        ("failed", 10, None),  # sent again RETRY_MAX times, then it stays failed
    ]
    assert fake_twilio.messages == []
