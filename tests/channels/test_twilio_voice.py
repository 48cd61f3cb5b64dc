"""The phone channel end to end: signed Twilio Voice webhooks on loopback, TwiML read the way
Twilio reads it, the real twilio library sending the request-number SMS to a fake REST API."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from channels import twilio_voice
from channels.speech import normalize_speech
from channels.twilio_voice import for_speech
from tests.support.channels import AGENT_QUEUE, PUBLIC_URL, number_in, spoken_number
from tests.support.fakes.webhooks import Caller, TwilioWebhooks
from tests.support.service import start_service

SPOKEN_COMPLAINT = "我要投诉湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户天天呛得不行"


async def test_greeting_is_chinese_twiml_with_speech_gather_and_recording(hotline, caller):
    call = caller("+8613859901111")
    reply = await call.dial()
    root = ET.fromstring(reply.text)
    says = list(root.iter("Say"))
    assert says and all(
        s.get("language") == "zh-CN" and s.get("voice") == "Polly.Zhiyu" for s in says
    )
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("input") == "speech dtmf"
    assert gather.get("language") == "zh-CN"
    assert gather.get("speechTimeout") == "auto"
    assert gather.get("action") == "/twilio/voice/gather?turn=1"
    assert gather.get("actionOnEmptyResult") == "true"
    assert "录音" in reply.spoken and "人工" in reply.spoken
    assert reply.recording_callback == f"{PUBLIC_URL}/twilio/voice/recording"
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM voice_calls WHERE call_sid = $1", call.call_sid)
    assert row["caller_phone"] == "13859901111" and row["state"] == "ivr"


async def test_silence_is_repeated_once_then_an_agent_is_offered_and_key_0_transfers(
    hotline, caller
):
    call = caller("+8613859901112")
    greeting = await call.dial()
    first = await call.silence()
    assert twilio_voice.NO_INPUT_REPEAT in first.spoken
    assert twilio_voice.GREETING in first.spoken  # the prompt again
    assert first.gather["action"].endswith("turn=2")
    second = await call.silence()
    assert twilio_voice.NO_INPUT_OFFER in second.spoken and second.gather is not None
    transfer = await call.press("0")
    assert transfer.enqueue == AGENT_QUEUE
    assert transfer.enqueue_action == "/twilio/voice/after-transfer?turn=4"
    assert "人工" in transfer.spoken
    async with hotline.ctx.pool.acquire() as conn:
        convo = await conn.fetchrow(
            "SELECT id, mode, handoff_reason FROM conversations WHERE channel = 'voice' AND session_key = $1",
            call.call_sid,
        )
        assert (convo["mode"], convo["handoff_reason"]) == ("waiting_agent", "asked_for_agent")
        call_row = await conn.fetchrow(
            "SELECT * FROM voice_calls WHERE call_sid = $1", call.call_sid
        )
        assert call_row["state"] == "transferred"
        assert call_row["transferred_to"] == f"queue:{AGENT_QUEUE}"
        assert call_row["conversation_id"] == convo["id"]
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM voice_turns WHERE call_sid = $1 ORDER BY turn", call.call_sid
            )
        ]
        assert kinds == ["greeting", "silence", "silence", "digits"]
    ended = await call.transfer_ends("bridged")
    assert ended.hangup and twilio_voice.THANKS_BYE in ended.spoken
    assert greeting.status == 200


async def test_three_silences_end_the_call(hotline, caller):
    call = caller("+8613859901113")
    await call.dial()
    await call.silence()
    await call.silence()
    last = await call.silence()
    assert last.hangup and last.gather is None
    assert twilio_voice.NO_INPUT_BYE in last.spoken


async def test_saying_rengong_dials_the_agent_number_when_one_is_set(
    channel_settings, clock, nlu_engine
):
    settings = channel_settings.with_overrides(twilio_agent_number="+8659588880000")
    running = await start_service(settings, clock, nlu_engine)
    try:
        hooks = TwilioWebhooks(
            running.url, PUBLIC_URL, settings.twilio_account_sid, settings.twilio_auth_token
        )
        call = Caller(hooks, "+8613859901114", "+15005550006")
        await call.dial()
        reply = await call.say("我要转人工")
        assert reply.dial == "+8659588880000"
        assert reply.dial_action == "/twilio/voice/after-transfer?turn=2"
        assert 'record="record-from-answer-dual"' in reply.text
        unanswered = await call.transfer_ends("no-answer", "DialCallStatus")
        assert twilio_voice.AGENT_UNAVAILABLE in unanswered.spoken and unanswered.hangup
    finally:
        await running.stop()


async def test_unsure_twice_hands_over_to_an_agent(hotline, caller):
    call = caller("+8613859901115")
    await call.dial()
    first = await call.say("你会唱歌吗")
    assert first.gather is not None and first.enqueue is None
    second = await call.say("今天股票涨了吗")
    assert second.enqueue == AGENT_QUEUE, second.text
    async with hotline.ctx.pool.acquire() as conn:
        reason = await conn.fetchval(
            "SELECT handoff_reason FROM conversations WHERE session_key = $1", call.call_sid
        )
    assert reason == "bot_unsure"


async def test_emergency_is_told_and_put_through(channel_settings, clock, nlu_engine):
    settings = channel_settings.with_overrides(
        emergency_dial=(("110", "110"), ("119", "+86595119"), ("120", "120"))
    )
    running = await start_service(settings, clock, nlu_engine)
    try:
        hooks = TwilioWebhooks(
            running.url, PUBLIC_URL, settings.twilio_account_sid, settings.twilio_auth_token
        )
        call = Caller(hooks, "+8613859901116", "+15005550006")
        await call.dial()
        reply = await call.say("救命我们楼下着火了烟很大有人被困在三楼")
        assert "119" in reply.spoken and "转接" in reply.spoken
        assert reply.dial == "+86595119"
        async with running.ctx.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0
            event = await conn.fetchrow(
                "SELECT * FROM voice_call_events WHERE call_sid = $1 AND kind = 'transfer'",
                call.call_sid,
            )
            assert event["data"]["to"] == "+86595119"
    finally:
        await running.stop()


async def test_a_retried_webhook_is_processed_once(hotline, caller, fake_twilio):
    call = caller("+8613859901117")
    await call.dial()
    confirm = await call.say(SPOKEN_COMPLAINT)
    action = call.next_action
    filed = await call.say("确认")
    number = number_in(filed.says)
    # Twilio did not get the answer in time and sends the same webhook again
    again = await call.hooks.post(action, call.params(SpeechResult="确认", Confidence="0.92"))
    assert again.text == filed.text
    # and the turn before, too
    earlier = await call.hooks.post(
        "/twilio/voice/gather?turn=1", call.params(SpeechResult=SPOKEN_COMPLAINT, Confidence="0.9")
    )
    assert earlier.text == confirm.text
    await hotline.ctx.outbox.drain()
    async with hotline.ctx.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM work_orders") == 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE direction = 'in' AND client_message_id LIKE $1",
                call.call_sid + ":%",
            )
            == 2
        )
    assert len(fake_twilio.bodies_to("+8613859901117")) == 1
    assert number in fake_twilio.bodies_to("+8613859901117")[0]


async def test_call_status_and_recording_callbacks_are_stored_with_the_conversation(
    hotline, caller
):
    call = caller("+8613859901118")
    await call.dial()
    await call.say("我要投诉凤里街道新华路那家KTV晚上噪音太大了")
    assert (await call.status("in-progress", seq=0)).status == 204
    assert (await call.recording("RE" + "a" * 32, 95)).status == 204
    assert (await call.status("completed", duration=97, seq=1)).status == 204
    # Twilio retries a callback: stored once
    assert (await call.status("completed", duration=97, seq=1)).status == 204
    assert (await call.recording("RE" + "a" * 32, 95)).status == 204
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM voice_calls WHERE call_sid = $1", call.call_sid)
        assert row["state"] == "ended" and row["call_status"] == "completed"
        assert row["duration_seconds"] == 97
        assert row["recording_sid"] == "RE" + "a" * 32 and row["recording_duration"] == 95
        assert row["recording_url"].endswith("/Recordings/RE" + "a" * 32)
        events = await conn.fetch(
            "SELECT kind, conversation_id FROM voice_call_events WHERE call_sid = $1 ORDER BY id",
            call.call_sid,
        )
        assert [e["kind"] for e in events] == ["status", "recording", "status"]
        assert {e["conversation_id"] for e in events} == {row["conversation_id"]}
        assert row["conversation_id"] is not None


async def test_request_number_sms_respects_opt_out(hotline, caller, texter, fake_twilio):
    phone = "+8613859901119"
    stop = await texter(phone).send("退订")
    assert "已退订" in stop.messages[0]
    call = caller(phone)
    await call.dial()
    await call.say(SPOKEN_COMPLAINT)
    filed = await call.say("确认")
    number_in(filed.says)
    assert "短信" in filed.spoken  # told; the notifier decides whether it may go
    await hotline.ctx.outbox.drain()
    assert fake_twilio.bodies_to(phone) == []
    async with hotline.ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, purpose FROM outbound_messages WHERE recipient = '13859901119'"
        )
    assert tuple(row) == ("opted_out", "request_number")


def test_replies_are_read_the_way_a_caller_understands_them():
    text = "已为您登记投诉，诉求编号：20261123-0001。请确认联系电话：138****1234；确认无误请回复“确认”。"
    spoken = for_speech(text)
    assert spoken_number("20261123-0001") in spoken
    assert "尾号 1 2 3 4" in spoken and "说“确认”" in spoken
    assert normalize_speech("帮我查一下二零二六一一二三杠零零零一") == "帮我查一下20261123-0001"
    assert normalize_speech("电话 138 5990 1234") == "电话 13859901234"
    assert normalize_speech("三楼有两个人") == "三楼有两个人"
