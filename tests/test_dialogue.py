"""Ordinary replies understood in context (issue 13), through the real web chat API: every
failure the issue lists, as a citizen would meet it."""

from __future__ import annotations

from tests.support.chat import COMPLAINT, ChatClient

# The issue's own examples of a "yes" at the confirmation step that used to be appended to
# the complaint text, with the confirmation asked again.
CONFIRMATIONS = [
    "对，确认提交",
    "可以，提交吧",
    "嗯，对的",
    "好的，确认",
    "确认无误",
    "对的没错",
    "提交吧",
    "对，就这样提交",
]
MARRIAGE = "办理结婚登记需要带什么证件"


async def order(conn, number: str):
    return await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)


async def to_confirmation(client: ChatClient) -> dict:
    await client.say(COMPLAINT)
    reply = await client.say("13859901234")
    assert any("请确认" in r for r in reply["replies"]), reply
    return reply


async def test_ordinary_yes_at_the_confirmation_files_the_order(service, conn):
    for text in CONFIRMATIONS:
        client = ChatClient(service.url)
        await to_confirmation(client)
        done = await client.say(text)
        assert done["request_number"], (text, done["replies"])
        row = await order(conn, done["request_number"])
        assert text not in row["content"], text
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == len(CONFIRMATIONS)


async def test_cancel_and_a_bare_no_at_the_confirmation(service, conn):
    client = ChatClient(service.url)
    await to_confirmation(client)
    no = await client.say("不对")
    assert any("修改" in r for r in no["replies"]), no
    gone = await client.say("算了，不弄了")
    assert any("已取消" in r for r in gone["replies"]), gone
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_corrections_at_the_confirmation_are_read_back_and_filed(service, conn):
    client = ChatClient(service.url)
    await to_confirmation(client)
    place = await client.say("地点改成宝盖镇塘后村新村路28号")
    readback = place["replies"][-1]
    assert "请确认" in readback and "宝盖镇塘后村" in readback, readback
    phone = await client.say("电话不对，是13906071234")
    readback = phone["replies"][-1]
    assert "139****1234" in readback, readback
    done = await client.say("好的没问题")
    row = await order(conn, done["request_number"])
    assert row["location"].startswith("宝盖镇塘后村")
    assert row["contact_phone"] == "13906071234"
    assert "地点改成" not in row["content"] and "电话不对" not in row["content"]


async def test_thanks_after_a_kb_answer_is_no_praise_order(service, conn):
    for thanks in ("谢谢，有用", "解决了，谢谢你", "好的，知道了谢谢"):
        client = ChatClient(service.url)
        answer = await client.say(MARRIAGE)
        assert any("是否解决" in r for r in answer["replies"]), answer
        done = await client.say(thanks)
        assert done["request_number"] is None, (thanks, done["replies"])
        assert any("感谢您的反馈" in r for r in done["replies"]), done
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0
    rated = await conn.fetch("SELECT helpful FROM kb_feedback WHERE helpful IS NOT NULL")
    assert [r["helpful"] for r in rated] == [True, True, True]


async def test_not_solved_offers_filing_and_files_the_original_question(service, conn):
    client = ChatClient(service.url)
    await client.say(MARRIAGE)
    offer = await client.say("没解决")
    text = offer["replies"][-1]
    assert "登记" in text and "人工" in text, text  # not the greeting
    assert "12345市民服务热线智能客服" not in text
    ask = await client.say("好的，帮我登记")
    assert any("电话" in r for r in ask["replies"]), ask
    await client.say("13859901234")
    done = await client.say("确认")
    row = await order(conn, done["request_number"])
    assert row["request_type"] == "consult"
    assert row["content"] == MARRIAGE
    helpful = await conn.fetchval("SELECT helpful FROM kb_feedback")
    assert helpful is False


async def test_not_solved_then_an_agent(service, conn):
    client = ChatClient(service.url)
    await client.say(MARRIAGE)
    await client.say("还是不清楚")
    agent = await client.say("转人工")
    assert agent["mode"] == "waiting_agent"
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_a_complaint_announced_alone_takes_the_next_turn_as_its_text(service, conn):
    for opening in ("我要投诉", "投诉一下"):
        client = ChatClient(service.url)
        first = await client.say(opening)
        assert first["mode"] == "bot"
        assert any("情况" in r for r in first["replies"]), first
        await client.say("湖滨街道长福路那家川菜馆的油烟天天排到我家窗户")
        await client.say("13859901234")
        done = await client.say("对的")
        assert done["request_number"], done
        row = await order(conn, done["request_number"])
        assert row["request_type"] == "complain"
        assert "川菜馆" in row["content"] and opening not in row["content"]
        assert "长福路" in row["location"]


async def test_a_place_given_when_the_phone_was_asked_is_used(service, conn):
    client = ChatClient(service.url)
    first = await client.say("我们小区的路灯坏了好几天了，晚上黑乎乎的")
    assert any("地点" in r for r in first["replies"]), first
    # the citizen skips ahead: a phone inside a sentence while the place is asked for
    second = await client.say("我的手机是13859901234，有事打我")
    assert any("地点" in r for r in second["replies"]), second
    third = await client.say("在凤里街道新华路中段")
    assert any("请确认" in r for r in third["replies"]), third
    done = await client.say("嗯嗯好的")
    row = await order(conn, done["request_number"])
    assert row["contact_phone"] == "13859901234"
    assert row["location"].startswith("凤里街道新华路")


async def test_a_place_in_reply_to_the_phone_question_is_not_refused(service, conn):
    client = ChatClient(service.url)
    first = await client.say("我要投诉一家工厂晚上排放刺鼻的废气，熏得人头疼")
    assert any("地点" in r for r in first["replies"]), first
    await client.say("宝盖镇")
    # asked for the phone, the citizen says more exactly where: used, and the phone asked again
    again = await client.say("具体是宝盖镇塘后村新村路28号后面")
    assert not any("没有识别到有效的电话号码" in r for r in again["replies"]), again
    assert any("电话" in r for r in again["replies"]), again
    await client.say("13859901234")
    done = await client.say("确认")
    row = await order(conn, done["request_number"])
    assert "塘后村新村路" in row["location"]


async def test_a_phone_in_chinese_digits(service, conn):
    client = ChatClient(service.url)
    await client.say(COMPLAINT)
    done = await client.say("一三九五九五一二三四五")
    assert any("请确认" in r for r in done["replies"]), done


async def test_praise_only_for_a_unit_or_a_person(service, conn):
    client = ChatClient(service.url)
    thanks = await client.say("谢谢你，你们服务挺好的")
    assert thanks["request_number"] is None, thanks
    praise = await client.say("我要表扬湖滨街道的环卫工人，每天天不亮就把我们这条街扫得干干净净")
    assert any("请确认" in r and "表扬" in r for r in praise["replies"]), praise
    done = await client.say("对，帮我转达")
    assert done["request_number"], done
    row = await order(conn, done["request_number"])
    assert row["request_type"] == "praise"
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 1


async def test_an_emergency_in_the_middle_of_a_request_interrupts(service, conn):
    client = ChatClient(service.url)
    await to_confirmation(client)
    alarm = await client.say("等一下，楼下着火了，烟很大")
    assert alarm["emergency"] and "119" in alarm["emergency"], alarm
    assert "119" in alarm["replies"][-1]
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0
