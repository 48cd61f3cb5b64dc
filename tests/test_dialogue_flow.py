"""How a conversation uses what it was told (issue 13): the unit is chosen on the matter told
over the turns (not on the slot replies, not on the words of a place), details said with an
emergency are not lost, a message taken for an emergency can still become a request, the
phone path answers from the base without a list, and a consultation the base answered without
helping goes to the unit that answers that question."""

from __future__ import annotations

import uuid

from services.conversation.details import (
    add_matter,
    routing_text,
    thin_matter,
    without_opener,
)
from services.conversation.service import Inbound
from tests.support.chat import ChatClient

MARRIAGE = "办理结婚登记需要带什么证件"


async def dialogue_of(conn, conversation_id: int) -> dict:
    return await conn.fetchval("SELECT dialogue FROM conversations WHERE id = $1", conversation_id)


async def order(conn, number: str):
    return await conn.fetchrow("SELECT * FROM work_orders WHERE request_number = $1", number)


async def sms_question_then(service, conn, reply: str, phone: str):
    """A question the base cannot answer, texted by SMS, then `reply`: the state the draft
    was in (its read-back) and the reply's result."""
    talk = service.ctx.conversation
    session = f"sms-{uuid.uuid4().hex[:8]}"
    state = "idle"
    for text in ("我想问一下退休返聘的人发生工伤怎么算", reply):
        result = await talk.handle(Inbound("sms", session, text, phone=phone))
        convo = await dialogue_of(conn, result.conversation_id)
        if convo.get("draft"):
            state = convo["state"]
    return state, result


# -- the text a draft is routed on ---------------------------------------------------------


def test_slot_replies_and_phone_numbers_do_not_route_a_draft():
    draft = {"content": "路口的红绿灯坏了，一直闪黄灯", "matter": ["路口的红绿灯坏了，一直闪黄灯"]}
    # a reply to "where?" with many words: kept for the agents, not routed
    add_matter(draft, "就在那个 古井社区 后面那条小路 叫什么来着 对 就那条", routed=False)
    # more about the matter (a correction at the read-back): routed
    add_matter(draft, "晚上车开得很快，差点撞到人，电话 138 5990 1234")
    draft["address"] = {"text": "灵秀镇古井社区", "area": "灵秀镇"}
    text = routing_text(draft)
    assert "小路" in draft["content"] and "小路" not in text
    assert "差点撞到人" in text and "1234" not in text
    # the place's area only (known place names are masked by the classifier), once
    assert text.endswith(" 灵秀镇") and "古井社区" not in text
    draft["address"] = {"text": "灵秀镇", "area": "灵秀镇"}
    draft["matter"][0] = "灵秀镇的路口红绿灯坏了"
    assert routing_text(draft).count("灵秀镇") == 1


def test_a_callers_opening_words_do_not_route():
    assert (
        without_opener("喂 喂 听得到吗 我跟你讲啊 我们巷子口的水管爆了") == "我们巷子口的水管爆了"
    )
    assert without_opener("我要反映一下啊，楼下饭店天天吵") == "楼下饭店天天吵"
    assert without_opener("请问一下社保怎么交") == "社保怎么交"
    assert without_opener("喂") == "喂"  # nothing left: the words as they were
    assert without_opener("就是那个路灯不亮") == "路灯不亮"


def test_a_request_that_named_only_its_kind_is_thin():
    assert thin_matter(
        {"content": "喂 我要投诉 投诉一个医生", "matter": ["喂 我要投诉 投诉一个医生"]}
    )
    assert not thin_matter({"matter": ["楼下饭店的油烟天天往我家窗户里灌"]})


async def test_a_slot_reply_is_kept_in_the_order_but_does_not_route(service, conn):
    client = ChatClient(service.url)
    first = await client.say("我们这边的路灯坏了好几天了，晚上黑乎乎的")
    assert any("地点" in r for r in first["replies"]), first
    where = await client.say("在灵秀镇华山村 那个 后面那条巷子 叫什么 对 就那条巷子")
    phone = await client.say("13859901234")
    assert any("请确认" in r for r in phone["replies"]), (where, phone)
    draft = (await dialogue_of(conn, phone["conversation_id"]))["draft"]
    assert "巷子" in draft["content"], draft  # the agents read every word
    assert "巷子" not in draft["routed_on"] and "路灯" in draft["routed_on"]
    assert draft["routed_on"].endswith("灵秀镇")
    done = await client.say("对")
    row = await order(conn, done["request_number"])
    assert "巷子" in row["content"] and row["location"].startswith("灵秀镇华山村")


# -- emergencies ---------------------------------------------------------------------------


async def test_a_phone_given_with_an_emergency_is_kept_and_the_draft_goes_on(service, conn):
    client = ChatClient(service.url)
    first = await client.say("我们小区门口的路灯坏了好几天了，在湖滨街道长福路")
    assert any("电话" in r for r in first["replies"]), first
    # the number said together with words the emergency detector takes for a danger
    both = await client.say("楼下着火了，我电话13859901234")
    assert "119" in both["replies"][0]
    assert any("请确认" in r and "138****1234" in r for r in both["replies"]), both
    done = await client.say("确认")
    row = await order(conn, done["request_number"])
    assert row["contact_phone"] == "13859901234"


async def test_after_emergency_advice_an_acknowledgement_ends_it(service, conn):
    client = ChatClient(service.url)
    advice = await client.say("有人拿刀在小区门口砍人")
    assert "110" in advice["replies"][0]
    ack = await client.say("好，我马上报警")
    assert ack["request_number"] is None and "安全" in ack["replies"][0], ack
    assert (await dialogue_of(conn, ack["conversation_id"]))["state"] == "idle"
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_the_place_after_emergency_advice_makes_the_first_message_a_request(service, conn):
    client = ChatClient(service.url)
    first = "隔壁仓库着火了，烟很大"
    advice = await client.say(first)
    assert "119" in advice["replies"][0]
    where = await client.say("湖滨街道长福路28号")
    convo = await dialogue_of(conn, where["conversation_id"])
    # not a knowledge-base question about 湖滨街道: the matter is the first message
    assert convo["state"] in ("await_phone", "await_confirm"), (convo, where)
    assert convo["draft"]["content"] == first
    assert convo["draft"]["location"].startswith("湖滨街道长福路")
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0  # not before a yes


# -- the knowledge base ----------------------------------------------------------------------


async def test_on_the_phone_the_closest_entry_is_named_and_answered(service, conn):
    question = "社保卡丢了怎么补办"  # the base is close but not sure (test_kb_chat.py)
    session = f"call-{uuid.uuid4().hex[:8]}"
    talk = service.ctx.conversation

    async def say(text: str):
        return await talk.handle(Inbound("voice", session, text, phone="13859900001"))

    answer = await say(question)
    assert answer.replies[0].startswith("您问的可能是：")
    assert "是否解决" in answer.replies[-1] and len(answer.replies) == 3
    thanks = await say("好的 知道了 谢谢")
    assert thanks.request_number is None
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0


async def test_an_unhelpful_answer_is_filed_for_the_unit_of_its_entry(service, conn):
    client = ChatClient(service.url)
    answer = await client.say(MARRIAGE)
    assert any("是否解决" in r for r in answer["replies"]), answer
    await client.say("没解决")
    await client.say("好的，帮我登记")
    await client.say("13859901234")
    done = await client.say("确认")
    row = await order(conn, done["request_number"])
    assert row["request_type"] == "consult" and row["content"] == MARRIAGE
    # the marriage entry (结婚登记需要带什么材料？) is answered by civil affairs
    assert row["lead_unit"] == "civil-affairs"


async def test_understood_thanks_at_a_consultations_read_back_files_nothing(service, conn):
    # a question the base could not answer goes on as a consultation; a citizen who says
    # they understand now takes it as settled: no order. A complaint read back with
    # "好的，谢谢" is still filed.
    state, result = await sms_question_then(service, conn, "哦 我懂了 多谢", "13859900002")
    assert state == "await_confirm", "the question went on as a consultation, read back"
    assert result.request_number is None and "不登记" in result.replies[0]
    assert await conn.fetchval("SELECT count(*) FROM work_orders") == 0
    client = ChatClient(service.url)
    await client.say("我要投诉，湖滨街道长福路口那家川菜馆厨房油烟直接排到我家窗户")
    await client.say("13859901234")
    done = await client.say("好的，谢谢")
    assert done["request_number"], (state, done)


# -- replies that used to end a dialogue without an order -----------------------------------

LAMP = "我们小区门口的路灯坏了好几天了，在湖滨街道长福路"


async def at_the_read_back(service) -> ChatClient:
    """A web chat at the read-back of the street-lamp complaint, its phone given."""
    client = ChatClient(service.url)
    await client.say(LAMP)
    read_back = await client.say("13859901234")
    assert any("请确认" in r for r in read_back["replies"]), read_back
    return client


async def test_an_urgent_yes_at_the_read_back_is_a_yes_not_an_alarm(service, conn):
    # the message classifier fires on pleading words; the reply names no danger and reads
    # as a yes at the read-back: the order is filed and no emergency advice is given
    client = await at_the_read_back(service)
    done = await client.say("是的没错 快来人啊 帮帮忙")
    assert done["request_number"], done
    assert not done.get("emergency") and "120" not in " ".join(done["replies"]), done


async def test_a_danger_named_at_the_read_back_still_gets_the_advice(service, conn):
    client = await at_the_read_back(service)
    alarm = await client.say("对，可是楼下厨房着火了，烟好大")
    assert "119" in alarm["replies"][0] and alarm["request_number"] is None, alarm


async def test_a_yes_with_a_remark_at_the_read_back_files_with_the_remark(service, conn):
    client = await at_the_read_back(service)
    done = await client.say("行 确认 还有就是上次反映的也没人管")
    assert done["request_number"], done
    row = await order(conn, done["request_number"])
    assert "上次反映的也没人管" in row["content"]


async def test_asking_for_a_named_unit_is_no_handoff_and_the_unit_leads(service, conn):
    client = ChatClient(service.url)
    first = await client.say("厂里拖欠我们工资三个月了，老板一直说没钱")
    assert any("地点" in r for r in first["replies"]), first
    ask = await client.say("能不能帮我转给人社局处理")
    assert ask["mode"] == "bot" and any("地点" in r for r in ask["replies"]), ask
    await client.say("宝盖镇塘边村的工业区")
    await client.say("13859901234")
    done = await client.say("确认")
    row = await order(conn, done["request_number"])
    assert row["lead_unit"] == "hrss", row
    # "转人工" is still a hand-over
    other = ChatClient(service.url)
    await other.say("厂里拖欠我们工资三个月了，老板一直说没钱")
    assert (await other.say("我要转人工"))["mode"] == "waiting_agent"


async def test_a_question_the_base_answered_goes_to_the_unit_the_citizen_names(service, conn):
    client = ChatClient(service.url)
    answer = await client.say(MARRIAGE)
    assert any("是否解决" in r for r in answer["replies"]), answer
    ask = await client.say("我还是不清楚，能让民政局的人给我回个电话吗")
    assert ask["mode"] == "bot", ask
    phone = await client.say("13859901234")
    done = await client.say("确认提交")
    assert done["request_number"], (ask, phone, done)
    row = await order(conn, done["request_number"])
    assert row["request_type"] == "consult" and row["lead_unit"] == "civil-affairs", row


async def test_a_number_that_cannot_be_a_phone_is_kept_as_said(service, conn):
    # twelve digits read out: no valid number; the citizen's yes files the order anyway,
    # with the digits as said for the agents
    client = ChatClient(service.url)
    await client.say(LAMP)
    bad = await client.say("电话是一三八 五九九 零一二 三四五 六")
    assert any("没有识别到有效的电话号码" in r for r in bad["replies"]), bad
    done = await client.say("是的 号码没错")
    assert done["request_number"], done
    row = await order(conn, done["request_number"])
    assert row["contact_phone"] is None and "一三八 五九九 零一二 三四五 六" in row["content"]


async def test_what_follows_emergency_advice_stays_with_the_matter(service, conn):
    client = ChatClient(service.url)
    first = "昨晚隔壁又在打老婆 哭喊声很大"
    advice = await client.say(first)
    assert "110" in advice["replies"][0], advice
    await client.say("现在已经安静了 是昨晚的事")
    where = await client.say("湖滨街道长福路12号")
    convo = await dialogue_of(conn, where["conversation_id"])
    assert convo["state"] in ("await_phone", "await_confirm"), (convo, where)
    assert first in convo["draft"]["content"] and "昨晚的事" in convo["draft"]["content"]


# -- when the router abstains ----------------------------------------------------------------


def _second_look(units: list[tuple[str, float]], text: str, town: str | None) -> str | None:
    from pathlib import Path
    from types import SimpleNamespace

    from services.conversation.named_units import NamedUnits
    from services.conversation.service import _Dialogue
    from services.core.unit_directory import load_units

    directory = load_units(Path(__file__).resolve().parents[1] / "services/data/units.yaml")
    service = SimpleNamespace(
        named_units=NamedUnits(directory),
        nlu=SimpleNamespace(unit_threshold=0.5, abstain_rule="probability"),
    )
    draft = {
        "units": [{"code": c, "probability": p, "confident": False} for c, p in units],
        "address": {"territorial_unit": town} if town else None,
    }
    return _Dialogue.second_look(SimpleNamespace(s=service), draft, text)


def test_a_second_look_when_the_router_abstains():
    # the town's name (appended for the town's own matters) took a share from the department
    assert _second_look([("sanitation", 0.45), ("fengli", 0.2)], "垃圾没人收", "fengli") == (
        "sanitation"
    )
    # the town on top is the town's matter, or the dispatcher's call: no second look
    assert _second_look([("fengli", 0.45), ("sanitation", 0.4)], "垃圾没人收", "fengli") is None
    # without the town the department is still too unsure
    assert _second_look([("water-supply", 0.25), ("hubin", 0.2)], "没水", "hubin") is None
    # no town among the guesses
    assert _second_look([("sanitation", 0.45), ("ecology", 0.3)], "垃圾", "fengli") is None
    # a unit the citizen names, ranked by the router
    named = _second_look([("transport", 0.4), ("traffic-police", 0.35)], "交警不管违停", None)
    assert named == "traffic-police"
    assert _second_look([("transport", 0.4), ("bus", 0.35)], "交警不管", None) is None


async def test_a_yes_word_with_i_will_see_to_it_myself_files_no_consultation(service, conn):
    # the texter's number is known, so the consultation is read back at once; "行，那我自己
    # 找人问问" settles it: nothing is filed (a plain yes still files: the test above)
    state, result = await sms_question_then(service, conn, "行 那我自己找人问问", "13859900003")
    assert state == "await_confirm"
    assert result.request_number is None and "不登记" in result.replies[0], result


async def test_a_place_given_after_an_answer_makes_the_question_a_request(service, conn):
    # the citizen answers "did it help?" with where it is: they want it dealt with there
    client = ChatClient(service.url)
    answer = await client.say(MARRIAGE)
    assert any("是否解决" in r for r in answer["replies"]), answer
    where = await client.say("湖滨街道长福路12号")
    convo = await dialogue_of(conn, where["conversation_id"])
    assert convo["state"] in ("await_phone", "await_confirm"), (convo, where)
    assert convo["draft"]["content"] == MARRIAGE
    assert convo["draft"]["location"].startswith("湖滨街道长福路")


async def test_a_yes_then_a_threat_naming_the_city_files_and_keeps_the_place(service, conn):
    # the remark names a place ("全石狮") and reads as a correction as a whole; its first
    # part alone is a yes, and nothing after it takes the read-back back
    client = await at_the_read_back(service)
    done = await client.say("对，再拖下去我就把照片发到石狮的论坛上，让大家评评理")
    assert done["request_number"], done
    row = await order(conn, done["request_number"])
    assert "湖滨街道" in row["location"], row["location"]
    assert "评评理" in row["content"]


async def test_a_yes_then_a_correction_is_still_a_correction(service, conn):
    client = await at_the_read_back(service)
    again = await client.say("对，不过地址写错了，是湖滨街道石泉新村")
    assert again["request_number"] is None, again
    assert "湖滨街道" in again["replies"][-1], again


async def test_a_repeat_complaint_quoting_an_unknown_old_number_is_a_new_request(service, conn):
    # numbers of earlier requests the centre does not hold (another system, last year)
    # do not turn a complaint into a progress question that loses the complaint
    client = ChatClient(service.url)
    first = await client.say(
        "又是那个路口的红绿灯，坏了一个月了，上次打电话的编号是20240311-0097，"
        "回复说已经报修，到现在还是不亮，凤里街道宝岛路和八七路交叉口"
    )
    assert not any("没有查到" in r for r in first["replies"]), first
    read_back = await client.say("13859901234")
    assert any("请确认" in r for r in read_back["replies"]), read_back
    done = await client.say("确认")
    assert done["request_number"], done
    row = await order(conn, done["request_number"])
    assert "20240311-0097" in row["content"]


async def test_a_number_the_centre_holds_is_answered_with_its_progress(service, conn):
    client = await at_the_read_back(service)
    filed = await client.say("确认")
    number = filed["request_number"]
    other = ChatClient(service.url)
    asked = await other.say(f"我上次反映的那个路灯不亮的事情，编号{number}，现在到底有没有人去修了")
    assert any(number in r for r in asked["replies"]), asked
    assert asked["request_number"] is None, asked


async def test_a_yes_to_file_where_the_phone_was_asked_files_without_one(service, conn):
    # on the web the bot asks for a phone; a citizen who answers "确认，提交" goes on without
    # one: filed, and told that the unit cannot call back
    client = ChatClient(service.url)
    asked = await client.say(LAMP)
    assert any("联系电话" in r for r in asked["replies"]), asked
    done = await client.say("确认，就这样提交")
    assert done["request_number"], done
    assert any("没有留联系电话" in r for r in done["replies"]), done
    row = await order(conn, done["request_number"])
    assert row["content"].startswith("我们小区门口的路灯坏了")


async def test_a_bare_ok_where_the_phone_was_asked_waits_for_the_number(service, conn):
    client = ChatClient(service.url)
    await client.say(LAMP)
    ok = await client.say("好的")
    assert ok["request_number"] is None and any("不留" in r for r in ok["replies"]), ok
    read_back = await client.say("13859901234")
    assert any("请确认" in r for r in read_back["replies"]), read_back


async def test_a_part_of_the_place_said_again_keeps_the_whole_place(service, conn):
    # the village alone, said again in anger, must not replace the town and village given
    # first (the gazetteer may place a village of that name in another town)
    client = ChatClient(service.url)
    await client.say("祥芝镇大堡村村口的垃圾桶满了一个星期没人清运，臭气熏天")
    again = await client.say("我刚才说了，大堡村！")
    assert again["request_number"] is None, again
    read_back = await client.say("13859901234")
    assert any("祥芝镇大堡村" in r for r in read_back["replies"]), read_back


async def test_a_yes_with_a_remark_that_contrasts_still_files(service, conn):
    client = await at_the_read_back(service)
    done = await client.say("对，这回要派人晚上来看，不是白天走一圈就算了")
    assert done["request_number"], done


async def test_a_phone_alone_after_a_filing_files_nothing_more(service, conn):
    client = await at_the_read_back(service)
    filed = await client.say("确认")
    assert filed["request_number"], filed
    noted = await client.say("电话 一三九 零五九八 六六二五")
    assert noted["request_number"] is None and "请确认" not in " ".join(noted["replies"]), noted
    assert any("已记下您的联系方式" in r for r in noted["replies"]), noted
    stray = await conn.fetchval(
        "SELECT count(*) FROM work_orders WHERE content LIKE $1", "%一三九 零五九八%"
    )
    assert stray == 0


async def test_thanks_told_at_length_to_a_town_are_praise_not_thanks_to_the_bot(service, conn):
    client = ChatClient(service.url)
    first = await client.say(
        "我要感谢灵秀镇政府的工作人员，上个月帮我们村把那条烂泥路修成了水泥路，老人走路方便多了"
    )
    assert "不客气" not in " ".join(first["replies"]), first


def test_a_town_named_with_its_village_is_the_area():
    from nlu.entities import EntityExtractor
    from nlu.gazetteer import Gazetteer

    found = EntityExtractor(Gazetteer.load()).extract("锦尚镇港边村的路灯坏了").address
    assert found is not None and found.territorial_unit == "jinshang", found


# -- replies of the fifth round (classes read off the v4 analysis set, in our words) -------


async def test_this_number_on_the_web_reads_back_without_one_and_files(service, conn):
    # the citizen takes it that the centre sees the number they write from: on the web it
    # does not, so the request goes on without a phone, and the citizen is told so
    client = ChatClient(service.url)
    await client.say(LAMP)
    seen = await client.say("你们就打我这个号码吧")
    assert any("看不到您的电话号码" in r for r in seen["replies"]), seen
    assert any("请确认" in r for r in seen["replies"]), seen
    done = await client.say("对")
    assert done["request_number"], done
    assert (await order(conn, done["request_number"]))["contact_phone"] is None


async def test_a_yes_after_the_phone_was_asked_twice_files_without_one(service, conn):
    client = ChatClient(service.url)
    await client.say(LAMP)
    again = await client.say("嗯 好")
    assert again["request_number"] is None and any("不留" in r for r in again["replies"]), again
    done = await client.say("嗯嗯 可以的")
    assert done["request_number"], done
    assert any("没有留联系电话" in r for r in done["replies"]), done


async def test_more_of_the_matter_with_submit_where_the_phone_was_asked_files_it(service, conn):
    client = ChatClient(service.url)
    await client.say(LAMP)
    done = await client.say("晚上八点以后整条路黑漆漆的 你们直接登记提交吧")
    assert done["request_number"], done
    assert "八点以后" in (await order(conn, done["request_number"]))["content"]


async def test_a_wish_for_a_person_at_the_end_of_a_correction_hands_over(service, conn):
    client = await at_the_read_back(service)
    handed = await client.say("不对，你没弄明白我的意思，算了算了，转人工吧")
    assert handed["mode"] == "waiting_agent" and handed["request_number"] is None, handed


async def test_no_need_for_a_person_is_no_hand_over(service, conn):
    client = await at_the_read_back(service)
    done = await client.say("不用转人工了，就这样提交")
    assert done["mode"] == "bot" and done["request_number"], done


async def test_a_remark_with_submit_at_the_read_back_files_with_the_remark(service, conn):
    client = await at_the_read_back(service)
    done = await client.say("你把晚上十点以后也写进去，写完就提交")
    assert done["request_number"], done
    assert "晚上十点以后" in (await order(conn, done["request_number"]))["content"]


async def test_the_number_the_citizen_names_is_advised_first(service, conn):
    client = ChatClient(service.url)
    alarm = await client.say("楼道里煤气味特别冲，我这就打119，先把老人带下楼")
    advice = alarm["replies"][0]
    assert "119" in advice and advice.index("119") < min(
        (advice.index(n) for n in ("110", "120") if n in advice), default=len(advice)
    ), alarm


async def test_nobody_hurt_where_the_phone_was_asked_is_no_alarm(service, conn):
    client = ChatClient(service.url)
    await client.say("台风过后我们巷口一棵大树倒了，横在路中间，在凤里街道宝岛中路")
    calm = await client.say("没有没有 没人受伤 就是横在那里过不去")
    assert not any("紧急" in r for r in calm["replies"]), calm


async def test_calling_the_fire_brigade_after_the_advice_files_nothing(service, conn):
    # the place of a fire told after the advice starts a draft (it might have been a matter
    # for 12345); "我马上打119" to the next question ends it: nothing is filed
    client = ChatClient(service.url)
    alarm = await client.say("对面那栋楼冒出好大的火，窗户都烧红了")
    assert "119" in alarm["replies"][0], alarm
    await client.say("凤里街道 宝岛中路 那排店面")
    ends = await client.say("好好 我马上打119")
    assert ends["request_number"] is None, ends
    assert "draft" not in await dialogue_of(conn, ends["conversation_id"]), ends
    assert await conn.fetchval("SELECT count(*) FROM work_orders WHERE content LIKE '%烧红%'") == 0


async def test_more_words_after_the_advice_stay_with_the_first_message(service, conn):
    # the advice was given (petrol is a sign of arson); the reply says more of the same
    # matter: it joins the first message instead of starting a question of its own
    client = ChatClient(service.url)
    alarm = await client.say(
        "我们楼下小卖部后面堆了好多桶汽油在散卖，楼上全住着人，在凤里街道长福路"
    )
    assert "110" in alarm["replies"][0] or "119" in alarm["replies"][0], alarm
    more = await client.say("大概二十几桶 都是塑料桶装的")
    draft = (await dialogue_of(conn, more["conversation_id"])).get("draft")
    assert draft and "汽油" in draft["content"] and "塑料桶" in draft["content"], more
    assert draft["request_type"] != "consult", draft


async def test_a_hurried_reply_naming_no_danger_is_no_alarm(service, conn):
    client = ChatClient(service.url)
    await client.say("台风过后我们巷口一棵大树倒了，横在路中间，在凤里街道宝岛中路")
    hurry = await client.say("嗯 对 赶紧派人来锯掉")
    assert not any("紧急" in r for r in hurry["replies"]), hurry


async def test_putting_the_filing_off_at_the_read_back_files_nothing(service, conn):
    client = await at_the_read_back(service)
    later = await client.say("先不提交了，我回去跟家里人商量一下")
    assert later["request_number"] is None, later


def test_telling_whom_one_told_before_is_no_wish_for_a_person():
    from services.conversation.details import asks_for_person

    assert not asks_for_person("这事我跟人说了好几次都没用，跟物业也说过")
    assert asks_for_person("你听不懂，我要跟人讲，转人工")
