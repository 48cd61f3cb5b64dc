"""Every channel converges on one conversation service: the same complaint filed on the web,
by SMS, by phone and on WeChat (plaintext and safe mode) becomes a work order for the same
lead unit, each citizen hears the request number on their own channel, and a number filed by
phone can be followed by SMS."""

from __future__ import annotations

from tests.support.channels import number_in, spoken_number
from tests.support.chat import COMPLAINT, ChatClient, file_complaint

# what speech recognition makes of the complaint said aloud: no punctuation
SPOKEN_COMPLAINT = "我要投诉湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户天天呛得不行"


async def test_one_complaint_on_every_channel(
    hotline, texter, caller, follower, fake_twilio, fake_wechat
):
    filed: dict[str, str] = {}

    # the web chat
    web = await file_complaint(ChatClient(hotline.url))
    filed["web"] = web["request_number"]

    # SMS: the texter's number is the contact, so the bot only asks to confirm
    sms = texter("+8613859905555")
    first = await sms.send(COMPLAINT)
    assert "请确认" in first.messages[-1] and "138****5555" in first.messages[-1], first.messages
    done = await sms.send("确认")
    number = number_in(done.messages)
    filed["sms"] = number

    # the phone: greeting and menu in Chinese, speech in, spoken answers out
    call = caller("+8613859906666")
    greeting = await call.dial()
    assert greeting.status == 200
    assert greeting.gather["input"] == "speech dtmf" and greeting.gather["language"] == "zh-CN"
    assert "12345" in greeting.spoken and "按0" in greeting.spoken
    confirm = await call.say(SPOKEN_COMPLAINT)
    assert "请确认" in confirm.spoken and "尾号 6 6 6 6" in confirm.spoken, confirm.says
    assert confirm.gather is not None
    filed_call = await call.say("确认")
    number = number_in(filed_call.says)
    filed["voice"] = number
    # read back digit by digit, twice, and the caller is told an SMS follows
    assert filed_call.spoken.count(spoken_number(number)) >= 2, filed_call.says
    assert "短信" in filed_call.spoken
    await hotline.ctx.outbox.drain()
    caller_sms = fake_twilio.bodies_to("+8613859906666")
    assert len(caller_sms) == 1 and number in caller_sms[0], caller_sms

    # WeChat, plaintext mode: no phone number known, the bot asks for one
    plain = follower()
    ask = await plain.send_text(COMPLAINT)
    assert "电话" in ask.messages[0], ask.text
    confirm_wx = await plain.send_text("13859907777")
    assert "请确认" in confirm_wx.messages[0]
    done_wx = await plain.send_text("确认")
    filed["wechat"] = number_in(done_wx.messages)

    # WeChat, safe mode, by voice messages (the recognition text)
    safe = follower(safe=True)
    await safe.subscribe()
    ask = await safe.send_voice(SPOKEN_COMPLAINT)
    assert "电话" in ask.messages[0], ask.text
    await safe.send_voice("我的电话是一三八五九九零八八八八")
    done_safe = await safe.send_voice("确认")
    filed["wechat_safe"] = number_in(done_safe.messages)

    assert len(set(filed.values())) == 5, filed
    async with hotline.ctx.pool.acquire() as conn:
        orders = {
            r["request_number"]: r
            for r in await conn.fetch(
                """SELECT w.*, c.phone AS citizen_phone FROM work_orders w
                   JOIN citizens c ON c.id = w.citizen_id"""
            )
        }
        assert len(orders) == 5
        assert {orders[n]["channel"] for n in filed.values()} == {"web", "sms", "voice", "wechat"}
        assert {orders[n]["lead_unit"] for n in filed.values()} == {"ecology"}
        assert {orders[n]["request_type"] for n in filed.values()} == {"complain"}
        assert all("川菜馆" in orders[n]["content"] for n in filed.values())
        assert orders[filed["voice"]]["contact_phone"] == "13859906666"
        assert orders[filed["sms"]]["contact_phone"] == "13859905555"
        assert orders[filed["wechat_safe"]]["contact_phone"] == "13859908888"

    # the caller texts later: the same citizen, and the number filed by phone is found
    later = texter("+8613859906666")
    progress = await later.send(f"你好，查一下{filed['voice']}办得怎么样了")
    assert any(filed["voice"] in m and "市生态环境局" in m for m in progress.messages)
    async with hotline.ctx.pool.acquire() as conn:
        citizens = await conn.fetch(
            """SELECT DISTINCT citizen_id FROM conversations
               WHERE (channel = 'voice' AND session_key = $1) OR (channel = 'sms' AND session_key = $2)""",
            call.call_sid,
            "13859906666",
        )
        assert len(citizens) == 1
