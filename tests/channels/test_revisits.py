"""Revisits end to end: the unit resolves over HTTP, the scheduler places the revisit call
through the real Twilio client at the local fake Twilio, and Twilio's signed webhooks (the
TwiML requests and the call-status callback) decide the outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import pytest

from services.config import Settings
from services.core.clock import CHINA_TZ, FixedClock
from services.jobs.scheduler import Scheduler
from services.revisits import service as revisits
from services.storage import citizens
from services.storage import revisits as revisit_store
from tests.support.agent import frame
from tests.support.agent import login as agent_login
from tests.support.browser import chromium_page
from tests.support.channels import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CENTRE_NUMBER,
    PUBLIC_URL,
    WECHAT_TOKEN,
)
from tests.support.chat import ChatClient, file_complaint
from tests.support.desk import (
    DeskService,
    RecordingNotifier,
    event_kinds,
    file_order,
    lights_of,
    login,
    make_user,
    order_row,
    scheduler_for,
    start_desk_service,
)
from tests.support.fakes.twilio_api import FakeTwilio
from tests.support.fakes.webhooks import Follower, Texter, TwilioWebhooks
from tests.support.fakes.wechat_api import FakeWeChat
from tests.support.service import start_service

PHONE = "13859901234"
E164 = "+8613859901234"
UNIT = "municipal-works"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


@dataclass
class Rig:
    svc: DeskService
    clock: FixedClock
    twilio: FakeTwilio
    hooks: TwilioWebhooks
    revisits: revisits.RevisitService
    scheduler: Scheduler
    unit_user: str = "h-works"

    async def run_jobs(self) -> None:
        await self.scheduler.run_once()

    async def run_at(self, moment: datetime) -> None:
        """Move the clock to `moment` and run the jobs due then."""
        self.clock.current = moment
        await self.run_jobs()

    async def resolved_order(
        self,
        when: datetime,
        channel: str = "voice",
        openid: str | None = None,
        phone: str = PHONE,
    ) -> str:
        self.clock.current = when
        order, _ = await file_order(self.svc, when, phone=phone)
        async with self.svc.pool.acquire() as conn:
            citizen = order["citizen_id"]
            if openid:  # the order came from this WeChat follower
                citizen = await citizens.for_identity(conn, "wechat", openid)
            await conn.execute(
                "UPDATE work_orders SET channel = $2, citizen_id = $3 WHERE id = $1",
                order["id"],
                channel,
                citizen,
            )
        await self.handle(order["request_number"])
        return order["request_number"]

    async def handle(self, number: str, result: str = "已更换灯泡，路灯恢复照明") -> None:
        async with aiohttp.ClientSession() as http:
            unit = await login(http, self.svc, self.unit_user)
            base = f"/api/unit/orders/{number}"
            status = (await order_row(self.svc, number))["status"]
            if status == "dispatched":
                assert (await unit.post(base + "/sign"))[0] == 200
            code, body = await unit.post(base + "/resolve", {"result": result})
            assert code == 200, body
            assert body["status"] == "resolved"

    async def revisit_of(self, number: str):
        order = await order_row(self.svc, number)
        async with self.svc.pool.acquire() as conn:
            return (await revisit_store.of_order(conn, order["id"]))[-1]

    async def progress(self, number: str) -> tuple[str, int, bool]:
        """(status, calls made, SMS sent) of the order's latest revisit."""
        revisit = await self.revisit_of(number)
        return revisit["status"], revisit["call_attempts"], revisit["sms_sent"]

    async def attempts(self, number: str) -> list[tuple[str, str | None, str | None]]:
        """(channel, result, call SID) of each call or text of the latest revisit."""
        revisit = await self.revisit_of(number)
        async with self.svc.pool.acquire() as conn:
            rows = await revisit_store.attempts(conn, revisit["id"])
        return [(a["channel"], a["result"], a["call_sid"]) for a in rows]

    async def call_params(self, call: dict, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call["sid"],
            "From": CENTRE_NUMBER,
            "To": E164,
            "Direction": "outbound-api",
            **extra,
        }

    async def answer(self, call: dict, **extra: str):
        path = call["url"].removeprefix(PUBLIC_URL)
        return await self.hooks.post(
            path, await self.call_params(call, CallStatus="in-progress", **extra)
        )

    async def post(self, path: str, call: dict, **extra: str):
        return await self.hooks.post(path, await self.call_params(call, **extra))

    async def call_status(self, call: dict, status: str, **extra: str):
        path = call["status_callback"].removeprefix(PUBLIC_URL)
        return await self.post(path, call, CallStatus=status, **extra)


@pytest.fixture
def revisit_settings() -> dict[str, object]:
    """Overrides of the revisit settings; a test parametrizes it to change them."""
    return {}


@pytest.fixture
async def rig(
    channel_settings: Settings,
    clock: FixedClock,
    fake_twilio: FakeTwilio,
    revisit_settings: dict[str, object],
) -> AsyncIterator[Rig]:
    svc = await start_desk_service(
        channel_settings.with_overrides(**revisit_settings), clock, revisits=True
    )
    await make_user(svc, "h-works", "unit_handler", UNIT)
    service = svc.ctx.revisits
    scheduler = Scheduler(svc.pool, clock, service.handlers(), lease_seconds=60)
    hooks = TwilioWebhooks(svc.url, PUBLIC_URL, ACCOUNT_SID, AUTH_TOKEN)
    yield Rig(svc, clock, fake_twilio, hooks, service, scheduler)
    await svc.stop()


async def test_resolve_at_night_waits_then_digit_3_reopens_with_the_fifth_light(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 22, 0))
    await rig.run_jobs()
    assert rig.twilio.calls == [], "no revisit call at 22:00 (quiet hours)"
    await rig.run_at(at(2026, 11, 24, 7, 59))
    assert rig.twilio.calls == []
    await rig.run_at(at(2026, 11, 24, 8, 0))
    assert len(rig.twilio.calls) == 1
    call = rig.twilio.calls[0]
    assert call["to"] == E164
    assert call["status_callback"].endswith("/status")
    assert call["machine_detection"] == "Enable"

    greeting = await rig.answer(call, AnsweredBy="human")
    assert greeting.gather is not None and greeting.gather["numDigits"] == "1"
    assert "满意请按1" in greeting.spoken and "不满意请按3" in greeting.spoken
    asked = await rig.post(greeting.gather["action"], call, Digits="3")
    assert asked.gather is not None and asked.gather["input"] == "speech"
    order = await order_row(rig.svc, number)
    assert order["status"] == "resolved", "waits for the comment"
    await rig.post(asked.gather["action"], call, SpeechResult="路灯还是不亮，晚上很黑")
    order = await order_row(rig.svc, number)
    assert order["status"] == "signed" and order["lead_unit"] == UNIT
    assert (await event_kinds(rig.svc, order["id"]))[-1] == "revisit_dissatisfied"
    async with rig.svc.pool.acquire() as conn:
        note = await conn.fetchval(
            "SELECT note FROM work_order_events WHERE work_order_id = $1 ORDER BY id DESC LIMIT 1",
            order["id"],
        )
    assert note == "路灯还是不亮，晚上很黑"
    # issue 7: digit 3 re-opens the order with a RED fifth light, at once
    assert await lights_of(rig.svc, order["id"]) == [("dissatisfied", "red", 1)]
    # the late final status of the answered call changes nothing
    assert (await rig.call_status(call, "completed")).status == 204
    assert (await rig.revisit_of(number))["outcome"] == "dissatisfied"

    # handled again, and dissatisfied again (said, not keyed): a second red light
    rig.clock.current = at(2026, 11, 24, 15, 0)
    await rig.handle(number, "已联系供电所更换线路")
    await rig.run_jobs()
    second = rig.twilio.calls[1]
    greeting = await rig.answer(second)
    asked = await rig.post(greeting.gather["action"], second, SpeechResult="不满意。")
    await rig.call_status(second, "completed")  # hung up without a comment
    order = await order_row(rig.svc, number)
    assert order["status"] == "signed"
    assert await lights_of(rig.svc, order["id"]) == [
        ("dissatisfied", "red", 1),
        ("dissatisfied", "red", 2),
    ]
    assert asked.gather is not None


async def test_digit_1_closes_and_bad_signatures_are_refused(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0))
    await rig.run_jobs()
    call = rig.twilio.calls[0]
    greeting = await rig.answer(call)
    forged = await rig.hooks.post(
        greeting.gather["action"], await rig.call_params(call, Digits="3"), signature="AAAA"
    )
    assert forged.status == 403
    assert (await order_row(rig.svc, number))["status"] == "resolved"
    thanks = await rig.post(greeting.gather["action"], call, Digits="1")
    assert thanks.hangup and "感谢" in thanks.spoken
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    assert (await event_kinds(rig.svc, order["id"]))[-1] == "revisit_satisfied"
    assert (await rig.revisit_of(number))["outcome"] == "satisfied"
    assert await lights_of(rig.svc, order["id"]) == []
    # the call's final status afterwards changes nothing; no second call, no text
    await rig.call_status(call, "completed")
    await rig.run_jobs()
    assert len(rig.twilio.calls) == 1 and rig.twilio.messages == []
    assert (await order_row(rig.svc, number))["status"] == "closed"


async def test_busy_machine_no_answer_then_sms_fallback_then_reply(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 20, 0))
    await rig.run_jobs()
    first = rig.twilio.calls[0]
    assert (await rig.call_status(first, "busy")).status == 204
    # the retry waits 30 minutes; 20:30 is still allowed
    await rig.run_jobs()
    assert len(rig.twilio.calls) == 1
    await rig.run_at(at(2026, 11, 23, 20, 30))
    second = rig.twilio.calls[1]
    hung_up = await rig.answer(second, AnsweredBy="machine_end_beep")
    assert hung_up.hangup and hung_up.gather is None
    await rig.call_status(second, "completed", AnsweredBy="machine_end_beep")
    # backoff doubles to 60 minutes: 21:30 is quiet, so the third call is at 08:00
    await rig.run_at(at(2026, 11, 23, 21, 30))
    assert len(rig.twilio.calls) == 2
    await rig.run_at(at(2026, 11, 24, 8, 0))
    third = rig.twilio.calls[2]
    await rig.call_status(third, "no-answer")
    await rig.call_status(third, "no-answer")  # a repeated callback is harmless
    await rig.run_jobs()
    assert len(rig.twilio.calls) == 3
    texts = rig.twilio.bodies_to(E164)
    assert len(texts) == 1 and number in texts[0] and "1 满意" in texts[0]
    assert await rig.progress(number) == ("awaiting_reply", 3, True)
    results = [result for _, result, _ in await rig.attempts(number)]
    assert results == ["busy", "machine", "no-answer", "sent"]

    # the watchdog of the third call finds it over
    await rig.run_at(at(2026, 11, 24, 9, 0))
    assert (await rig.revisit_of(number))["status"] == "awaiting_reply"

    reply = await Texter(rig.hooks, E164, CENTRE_NUMBER).send("2")
    assert "感谢" in reply.messages[0]
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    assert (await rig.revisit_of(number))["outcome"] == "basically_satisfied"


async def test_no_answer_three_times_then_an_sms_then_no_reply_is_no_answer(rig: Rig):
    """Issue 7's third case: three unanswered calls (30 then 60 minutes apart), an SMS, and
    when the SMS gets no reply either the revisit is `no_answer`, never satisfied."""
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0))
    placed = []
    for moment in (at(2026, 11, 23, 10, 0), at(2026, 11, 23, 10, 30), at(2026, 11, 23, 11, 30)):
        await rig.run_at(moment - timedelta(minutes=1))
        assert len(rig.twilio.calls) == len(placed), f"no call before {moment:%H:%M}"
        await rig.run_at(moment)
        assert len(rig.twilio.calls) == len(placed) + 1, f"a call at {moment:%H:%M}"
        placed.append(rig.twilio.calls[-1])
        assert rig.twilio.bodies_to(E164) == [], "no SMS while calls remain"
        assert (await rig.call_status(placed[-1], "no-answer")).status == 204
    await rig.run_jobs()
    texts = rig.twilio.bodies_to(E164)
    assert len(texts) == 1 and number in texts[0] and "3 不满意" in texts[0]
    assert await rig.progress(number) == ("awaiting_reply", 3, True)
    assert await rig.attempts(number) == [
        *[("voice", "no-answer", call["sid"]) for call in placed],
        ("sms", "sent", None),
    ]
    # no answer within HOTLINE_REVISIT_REPLY_HOURS (48): recorded as no answer
    await rig.run_at(at(2026, 11, 23, 11, 30) + timedelta(hours=48))
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    kinds = await event_kinds(rig.svc, order["id"])
    assert kinds[-1] == "revisit_no_answer" and "revisit_satisfied" not in kinds
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["rating"]) == ("no_answer", None)
    assert len(rig.twilio.calls) == 3 and len(rig.twilio.bodies_to(E164)) == 1
    # an answer that comes too late is not taken for this revisit
    assert await rig.revisits.answer_sms(PHONE, "1") is None


@pytest.mark.parametrize("revisit_settings", [{"revisit_max_calls": 2, "revisit_hours": (9, 20)}])
async def test_max_calls_and_revisit_hours_follow_the_settings(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 8, 30))
    await rig.run_jobs()
    assert rig.twilio.calls == [], "08:30 is before the configured 09:00"
    await rig.run_at(at(2026, 11, 23, 9, 0))
    await rig.call_status(rig.twilio.calls[0], "busy")
    await rig.run_at(at(2026, 11, 23, 9, 30))
    await rig.call_status(rig.twilio.calls[1], "failed")
    await rig.run_jobs()
    assert len(rig.twilio.calls) == 2, "two calls at most"
    assert len(rig.twilio.bodies_to(E164)) == 1
    assert (await rig.revisit_of(number))["call_attempts"] == 2


@pytest.mark.parametrize(
    ("answer", "status", "outcome", "event", "comment"),
    [
        ("1", "closed", "satisfied", "revisit_satisfied", None),
        ("2 基本解决了", "closed", "basically_satisfied", "revisit_satisfied", "基本解决了"),
        ("3 路灯还是不亮", "signed", "dissatisfied", "revisit_dissatisfied", "路灯还是不亮"),
    ],
)
async def test_sms_reply_1_2_3(rig: Rig, answer, status, outcome, event, comment):
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0), channel="sms")
    await rig.run_jobs()
    assert rig.twilio.calls == [], "SMS citizens are texted, not called"
    [question] = rig.twilio.bodies_to(E164)
    assert "1 满意，2 基本满意，3 不满意" in question
    reply = await Texter(rig.hooks, E164, CENTRE_NUMBER).send(answer)
    assert "感谢" in reply.messages[0]
    order = await order_row(rig.svc, number)
    assert order["status"] == status
    assert (await event_kinds(rig.svc, order["id"]))[-1] == event
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["comment"]) == (outcome, comment)
    expected_lights = [("dissatisfied", "red", 1)] if outcome == "dissatisfied" else []
    assert await lights_of(rig.svc, order["id"]) == expected_lights


async def test_no_reply_to_the_sms_is_no_answer_not_satisfied(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0), channel="web")
    await rig.run_jobs()
    assert rig.twilio.calls == [], "web citizens are texted, not called"
    assert len(rig.twilio.bodies_to(E164)) == 1
    await rig.run_at(at(2026, 11, 25, 9, 59))
    assert (await order_row(rig.svc, number))["status"] == "resolved"
    await rig.run_at(at(2026, 11, 25, 10, 0))
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    assert (await event_kinds(rig.svc, order["id"]))[-1] == "revisit_no_answer"
    assert (await rig.revisit_of(number))["outcome"] == "no_answer"


def test_sms_answers_are_read_with_a_comment():
    assert revisits.read_sms_answer("3 路灯还是不亮") == ("dissatisfied", "路灯还是不亮")
    assert revisits.read_sms_answer("1") == ("satisfied", None)
    assert revisits.read_sms_answer("基本满意") == ("basically_satisfied", None)
    assert revisits.read_sms_answer("12345热线你好") is None
    assert revisits.read_sms_answer("4") is None


async def test_wechat_citizens_get_a_wechat_message_and_answer_there(
    rig: Rig, fake_wechat: FakeWeChat
):
    openid = "o" + "revisit" * 3 + "abcdef"
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0), channel="wechat", openid=openid)
    await rig.run_jobs()
    assert rig.twilio.calls == [] and rig.twilio.messages == []
    asked = fake_wechat.texts_to(openid)
    assert len(asked) == 1 and number in asked[0] and "3 不满意" in asked[0]
    fan = Follower(rig.svc.url, WECHAT_TOKEN, rig.clock, openid=openid)
    reply = await fan.send_text("3，路灯还是不亮")
    assert "转交承办单位" in reply.messages[0]
    order = await order_row(rig.svc, number)
    assert order["status"] == "signed"
    assert await lights_of(rig.svc, order["id"]) == [("dissatisfied", "red", 1)]
    assert (await rig.revisit_of(number))["comment"] == "路灯还是不亮"


async def test_a_follower_wechat_refuses_to_reach_is_texted_instead(
    rig: Rig, fake_wechat: FakeWeChat
):
    openid = "o" + "silent" * 3 + "abcdef"
    fake_wechat.silent.add(openid)  # has not written for more than 48 hours
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0), channel="wechat", openid=openid)
    await rig.run_jobs()
    assert fake_wechat.texts_to(openid) == []
    [question] = rig.twilio.bodies_to(E164)
    assert number in question
    reply = await Texter(rig.hooks, E164, CENTRE_NUMBER).send("1")
    assert "感谢" in reply.messages[0]
    assert (await order_row(rig.svc, number))["status"] == "closed"
    assert await rig.attempts(number) == [("wechat", "sent", None)]


async def test_a_citizen_without_a_phone_number_is_no_answer_at_once(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0), channel="web", phone="")
    await rig.run_jobs()
    assert rig.twilio.calls == [] and rig.twilio.messages == []
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    assert (await event_kinds(rig.svc, order["id"]))[-1] == "revisit_no_answer"
    revisit = await rig.revisit_of(number)
    assert (revisit["channel"], revisit["outcome"], revisit["rating"]) == (
        "none",
        "no_answer",
        None,
    )


async def test_the_service_scheduler_runs_the_revisit_jobs(hotline):
    handlers = hotline.ctx.job_handlers()
    assert {"revisit_attempt", "revisit_expire", "light_scan"} <= set(handlers)


def test_revisit_settings_from_the_environment():
    settings = Settings.from_env(
        {"HOTLINE_REVISIT_HOURS": "9-20", "HOTLINE_REVISIT_MAX_CALLS": "2"}
    )
    assert (settings.revisit_hours, settings.revisit_max_calls) == ((9, 20), 2)
    assert Settings.from_env({}).revisit_hours == (8, 21)
    for env in ({"HOTLINE_REVISIT_HOURS": "21-8"}, {"HOTLINE_REVISIT_MAX_CALLS": "-1"}):
        with pytest.raises(ValueError, match="HOTLINE_REVISIT"):
            Settings.from_env(env)
    assert revisits.next_allowed(at(2026, 11, 23, 22, 0), (8, 21)) == at(2026, 11, 24, 8, 0)
    assert revisits.next_allowed(at(2026, 11, 24, 7, 0), (8, 21)) == at(2026, 11, 24, 8, 0)
    assert revisits.next_allowed(at(2026, 11, 24, 12, 0), (8, 21)) == at(2026, 11, 24, 12, 0)


async def test_a_call_whose_status_never_comes_is_retried(rig: Rig):
    number = await rig.resolved_order(at(2026, 11, 23, 10, 0))
    await rig.run_jobs()
    assert len(rig.twilio.calls) == 1
    await rig.run_at(at(2026, 11, 23, 11, 0))  # no callback within the hour
    assert (await rig.progress(number))[:2] == ("scheduled", 1)
    await rig.run_at(at(2026, 11, 23, 11, 30))
    assert len(rig.twilio.calls) == 2
    late = await rig.call_status(rig.twilio.calls[0], "no-answer")
    assert late.status == 204  # the first call's late status does not count twice
    assert (await rig.revisit_of(number))["status"] == "calling"


# -- citizens who filed in the web chat -------------------------------------------------------


@pytest.fixture
async def web_rig(
    channel_settings: Settings,
    clock: FixedClock,
    fake_twilio: FakeTwilio,
    nlu_engine,
    revisit_settings: dict[str, object],
) -> AsyncIterator[Rig]:
    """The whole service (chat, NLU, desk, Twilio at the fake), its scheduler run by the test."""
    settings = channel_settings.with_overrides(scheduler_enabled=False, **revisit_settings)
    running = await start_service(settings, clock, nlu_engine)
    svc = DeskService(running.url, running.ctx, running.runner, RecordingNotifier())
    await make_user(svc, "h-eco", "unit_handler", "ecology")  # file_complaint's unit
    service = svc.ctx.conversation.revisits
    assert isinstance(service, revisits.RevisitService), "build_context wires the chat to it"
    scheduler = scheduler_for(svc.ctx, lease_seconds=60)  # every job kind of the service
    hooks = TwilioWebhooks(svc.url, PUBLIC_URL, ACCOUNT_SID, AUTH_TOKEN)
    yield Rig(svc, clock, fake_twilio, hooks, service, scheduler, unit_user="h-eco")
    await svc.stop()


async def web_order(rig: Rig, chat: ChatClient, when: datetime) -> str:
    """A complaint filed in the web chat (phone 13859901234) and resolved by its unit."""
    rig.clock.current = when
    number = (await file_complaint(chat))["request_number"]
    await rig.handle(number)
    return number


async def widget_socket(
    http: aiohttp.ClientSession, rig: Rig, chat: ChatClient
) -> aiohttp.ClientWebSocketResponse:
    """The widget's socket, subscribed to the chat's session as widget.js does it."""
    ws = await http.ws_connect(rig.svc.url + "/api/chat/ws")
    await ws.send_json({"type": "subscribe", "session_id": chat.session_id})
    # frames are handled in order: once this one is answered the subscription stands
    await ws.send_json({"session_id": chat.session_id, "client_message_id": "sync", "text": " "})
    assert (await frame(ws, lambda f: f.get("client_message_id") == "sync"))["error"] == "empty"
    return ws


async def test_web_citizen_is_asked_in_the_chat_and_3_reopens_with_the_fifth_light(
    web_rig: Rig,
):
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    number = await web_order(rig, chat, at(2026, 11, 23, 10, 0))
    async with aiohttp.ClientSession() as http:
        ws = await widget_socket(http, rig, chat)
        await rig.run_jobs()
        pushed = await frame(ws, lambda f: f.get("type") == "agent_message")
        assert number in pushed["text"] and "1 满意，2 基本满意，3 不满意" in pushed["text"]
        assert pushed["author"] == "bot"
        # stored in the conversation: the widget finds it when it next loads the history
        last = (await chat.history())[-1]
        assert (last["id"], last["direction"], last["author"]) == (pushed["id"], "out", "bot")
        assert last["text"] == pushed["text"]
        assert rig.twilio.calls == [] and rig.twilio.messages == [], "asked in the chat only"
        assert await rig.attempts(number) == [("web", "posted", None)]
        assert await rig.progress(number) == ("awaiting_reply", 0, False)

        # other words while the question is open are handled as usual
        other = await chat.say("你好")
        assert "12345" in other["replies"][0]
        assert (await order_row(rig.svc, number))["status"] == "resolved"

        # the answer, typed in the widget (over its socket), with a comment after the digit
        await ws.send_json(
            {"session_id": chat.session_id, "client_message_id": "a3", "text": "3 还是很吵"}
        )
        answer = await frame(ws, lambda f: f.get("client_message_id") == "a3")
        await ws.close()
    assert "转交承办单位" in answer["replies"][0] and answer["request_number"] is None
    order = await order_row(rig.svc, number)
    assert order["status"] == "signed" and order["lead_unit"] == "ecology"
    async with rig.svc.pool.acquire() as conn:
        event = await conn.fetchrow(
            """SELECT kind, note FROM work_order_events WHERE work_order_id = $1
               ORDER BY id DESC LIMIT 1""",
            order["id"],
        )
    assert (event["kind"], event["note"]) == ("revisit_dissatisfied", "还是很吵")
    assert await lights_of(rig.svc, order["id"]) == [("dissatisfied", "red", 1)]
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["comment"]) == ("dissatisfied", "还是很吵")

    # answered once: a later "1" is an ordinary message and changes nothing
    later = await chat.say("1")
    assert "感谢" not in "".join(later["replies"])
    assert (await order_row(rig.svc, number))["status"] == "signed"
    assert (await rig.revisit_of(number))["outcome"] == "dissatisfied"


async def test_two_questions_in_one_chat_are_answered_newest_first(web_rig: Rig):
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    smoke = await web_order(rig, chat, at(2026, 11, 23, 10, 0))
    await rig.run_jobs()
    # a second complaint in the same chat (the number is known now), resolved as well
    # a matter the router is sure of, so that it is dispatched without the desk
    asked = await chat.say("湖滨街道长福路的路灯坏了一个星期了，晚上整条路黑漆漆的")
    assert "请确认" in asked["replies"][-1], asked
    noise = (await chat.say("确认"))["request_number"]
    unit = (await order_row(rig.svc, noise))["lead_unit"]
    await make_user(rig.svc, "h-noise", "unit_handler", unit)
    rig.unit_user = "h-noise"
    await rig.handle(noise)
    await rig.run_jobs()
    questions = [m["text"] for m in await chat.history() if "请回复数字评价" in m["text"]]
    assert len(questions) == 2 and smoke in questions[0] and noise in questions[1]

    first = await chat.say("3 还是很吵")
    assert (await order_row(rig.svc, noise))["status"] == "signed"
    assert (await order_row(rig.svc, smoke))["status"] == "resolved"
    assert noise in "".join(first["replies"])  # the thanks says which order it was for
    second = await chat.say("1")
    assert (await order_row(rig.svc, smoke))["status"] == "closed"
    assert smoke in "".join(second["replies"])
    assert (await rig.revisit_of(noise))["comment"] == "还是很吵"


async def test_web_revisit_waits_for_allowed_hours_and_1_closes(web_rig: Rig):
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    number = await web_order(rig, chat, at(2026, 11, 23, 22, 0))
    await rig.run_jobs()
    question = "请回复数字评价"
    assert not any(question in m["text"] for m in await chat.history()), "quiet hours"
    # that night an agent takes the chat over and closes it
    convo_id = (await order_row(rig.svc, number))["conversation_id"]
    async with aiohttp.ClientSession() as http:
        agent = await agent_login(http, rig.svc.url, "agent")
        for step in ("take", "close"):
            status, _ = await agent.post(f"/api/agent/conversations/{convo_id}/{step}")
            assert status == 200
    assert await chat.history() == []
    await rig.run_at(at(2026, 11, 24, 8, 0))
    # asked in the session's new conversation, where the widget looks
    [asked] = await chat.history()
    assert question in asked["text"] and number in asked["text"]

    reply = await chat.say("1")
    assert reply["replies"] == [f"感谢您对12345热线工作的评价（工单{number}）！"]
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    assert (await event_kinds(rig.svc, order["id"]))[-1] == "revisit_satisfied"
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["comment"]) == ("satisfied", None)
    assert await lights_of(rig.svc, order["id"]) == []
    # the expiry of the question finds it answered: no text follows
    await rig.run_at(at(2026, 11, 26, 8, 0))
    assert rig.twilio.messages == [] and rig.twilio.calls == []


async def test_no_answer_in_the_chat_falls_back_to_an_sms(web_rig: Rig):
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    number = await web_order(rig, chat, at(2026, 11, 23, 10, 0))
    await rig.run_jobs()
    assert await rig.attempts(number) == [("web", "posted", None)]
    # HOTLINE_REVISIT_REPLY_HOURS (48) without an answer in the chat
    await rig.run_at(at(2026, 11, 25, 9, 59))
    assert rig.twilio.messages == []
    await rig.run_at(at(2026, 11, 25, 10, 0))
    [text] = rig.twilio.bodies_to(E164)
    assert text.startswith("【12345回访】") and number in text
    assert await rig.progress(number) == ("awaiting_reply", 0, True)
    assert await rig.attempts(number) == [("web", "posted", None), ("sms", "sent", None)]
    assert (await order_row(rig.svc, number))["status"] == "resolved"

    reply = await Texter(rig.hooks, E164, CENTRE_NUMBER).send("2 基本解决了")
    assert "感谢" in reply.messages[0]
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["comment"]) == ("basically_satisfied", "基本解决了")
    # the question in the chat is over with it: a "3" there now is an ordinary message
    await chat.say("3")
    assert (await rig.revisit_of(number))["outcome"] == "basically_satisfied"
    assert (await order_row(rig.svc, number))["status"] == "closed"


async def test_no_answer_in_the_chat_without_a_phone_is_no_answer(web_rig: Rig):
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    rig.clock.current = at(2026, 11, 23, 10, 0)
    number = (await file_complaint(chat))["request_number"]
    async with rig.svc.pool.acquire() as conn:
        # e.g. an agent filed it from the chat without a number
        await conn.execute(
            "UPDATE work_orders SET contact_phone = NULL WHERE request_number = $1", number
        )
    await rig.handle(number)
    await rig.run_jobs()
    assert (await rig.revisit_of(number))["channel"] == "none"
    assert number in (await chat.history())[-1]["text"], "asked in the chat all the same"
    assert (await order_row(rig.svc, number))["status"] == "resolved"
    await rig.run_at(at(2026, 11, 25, 10, 0))
    order = await order_row(rig.svc, number)
    assert order["status"] == "closed"
    kinds = await event_kinds(rig.svc, order["id"])
    assert kinds[-1] == "revisit_no_answer" and "revisit_satisfied" not in kinds
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["rating"]) == ("no_answer", None)
    assert rig.twilio.messages == [] and rig.twilio.calls == []


async def test_chat_history_needs_a_session_id(web_rig: Rig):
    async with aiohttp.ClientSession() as http:
        for query in ("", "?session_id=", "?session_id=a%20b"):
            async with http.get(web_rig.svc.url + "/api/chat/messages" + query) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"] == "bad_session_id"
    assert await ChatClient(web_rig.svc.url).history() == []


@pytest.mark.browser
async def test_the_widget_shows_the_question_live_and_after_a_reload(web_rig: Rig):
    rig = web_rig
    async with chromium_page() as page:
        await page.goto(rig.svc.url + "/")
        await page.click("#h12345-btn")
        session = await page.evaluate("localStorage.getItem('hotline12345.session')")
        # filed in this widget's session (over the same API the widget uses)
        number = await web_order(rig, ChatClient(rig.svc.url, session), at(2026, 11, 23, 10, 0))
        hub = rig.svc.ctx.hub
        for _ in range(200):  # the widget's socket subscribes once it is open
            if session in hub.citizens:
                break
            await asyncio.sleep(0.05)
        assert session in hub.citizens, "the widget's socket never subscribed"
        await rig.run_jobs()
        question = page.locator(".h12345-bot", has_text="请回复数字评价")
        await question.wait_for(timeout=10000)
        assert number in await question.inner_text()

        await page.reload()
        await page.click("#h12345-btn")
        await question.wait_for(timeout=10000)  # now from the stored history
        assert number in await question.inner_text()
        assert await page.locator(".h12345-me", has_text="我要投诉").count() == 1
        assert await page.locator(".h12345-msg", has_text="您好，这里是12345").count() == 0
        await page.fill("#h12345-input", "1")
        await page.click("#h12345-send")
        await page.locator(".h12345-bot", has_text="感谢您对12345热线").wait_for(timeout=10000)
    assert (await order_row(rig.svc, number))["status"] == "closed"


async def test_a_revisit_answer_in_words_is_read_in_context(web_rig: Rig):
    # issue 13: the verdict is read by the dialogue-act classifier in the revisit state, not
    # by a table of exact words: a polite word is no verdict, a complaint that nothing changed
    # is a 3 with its words as the comment
    rig = web_rig
    chat = ChatClient(rig.svc.url)
    number = await web_order(rig, chat, at(2026, 11, 23, 10, 0))
    await rig.run_jobs()
    assert await rig.progress(number) == ("awaiting_reply", 0, False)

    polite = await chat.say("好的")
    assert "感谢您的反馈" not in "".join(polite["replies"])
    assert (await order_row(rig.svc, number))["status"] == "resolved", "still asked"

    verdict = await chat.say("还是老样子，油烟照样往我家窗户里灌")
    assert "转交承办单位" in verdict["replies"][0], verdict
    revisit = await rig.revisit_of(number)
    assert (revisit["outcome"], revisit["comment"]) == (
        "dissatisfied",
        "还是老样子，油烟照样往我家窗户里灌",
    )
    assert (await order_row(rig.svc, number))["status"] == "signed"
