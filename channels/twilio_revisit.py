"""The revisit call (回访电话) on Twilio: TwiML for the outbound call and its status callback.

POST /twilio/revisit/{id}/voice     the citizen (or a machine) answered: ask for the rating
POST /twilio/revisit/{id}/rating    the key pressed (Digits) or the words said (SpeechResult)
POST /twilio/revisit/{id}/comment   what the dissatisfied citizen said about why
POST /twilio/revisit/{id}/status    call status (busy, no-answer, completed + AnsweredBy, ...)

Every request is signature-checked (channels/twilio_webhooks.py); the revisit id is part of
the signed URL. What the answers mean is decided by services/revisits/service.py.
"""

from __future__ import annotations

from aiohttp import web
from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.speech import normalize_speech
from channels.twilio_voice import SAY
from channels.twilio_webhooks import TwilioWebhook, twilio_endpoint, twiml
from nlu.rules import rating as parse_rating
from services.context import context_of
from services.core.errors import json_exception
from services.storage import revisits as store
from services.storage import work_orders

ASK = (
    "您好，这里是12345政务服务便民热线回访。您反映的问题，工单号{number}，承办单位已办结。"
    "满意请按1或说满意，基本满意请按2或说基本满意，不满意请按3或说不满意。"
)
ASK_AGAIN = "抱歉，没有听清。满意请按1，基本满意请按2，不满意请按3。"
ASK_COMMENT = "请在提示音后简要说明您不满意的原因，说完请稍候。"
THANKS = "感谢您的评价，再见。"
THANKS_DISSATISFIED = "感谢您的反馈，我们已将您的意见转交承办单位重新办理，并将跟踪督办。再见。"
NO_RATING = "没有收到您的评价，我们稍后再与您联系。再见。"


def _revisit_id(request: web.Request) -> int:
    try:
        return int(request.match_info["revisit_id"])
    except ValueError as exc:
        raise json_exception(404, "not_found", "no such revisit") from exc


def _ask(gather: Gather, question: str, otherwise: str | None = None) -> web.Response:
    """TwiML that asks `question` within `gather`; when the citizen gives nothing it says
    `otherwise` (if any) and hangs up."""
    gather.say(question, **SAY)
    response = VoiceResponse()
    response.append(gather)
    if otherwise:
        response.say(otherwise, **SAY)
    response.hangup()
    return twiml(response)


def _ask_rating(revisit_id: int, question: str) -> web.Response:
    """Ask for 1/2/3, keyed or said; the answer goes to the rating URL."""
    gather = Gather(
        input="dtmf speech",
        num_digits=1,
        language="zh-CN",
        speech_timeout="auto",
        timeout=8,
        hints="满意,基本满意,不满意",
        action=f"/twilio/revisit/{revisit_id}/rating",
        method="POST",
    )
    return _ask(gather, question, NO_RATING)


def _ask_comment(revisit_id: int) -> web.Response:
    """Ask the dissatisfied citizen why, by speech; the words go to the comment URL."""
    gather = Gather(
        input="speech",
        language="zh-CN",
        speech_timeout="auto",
        timeout=6,
        action=f"/twilio/revisit/{revisit_id}/comment",
        method="POST",
    )
    return _ask(gather, ASK_COMMENT, THANKS_DISSATISFIED)


def _say_and_hang_up(text: str | None = None) -> web.Response:
    response = VoiceResponse()
    if text:
        response.say(text, **SAY)
    response.hangup()
    return twiml(response)


@twilio_endpoint
async def voice(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    revisit_id = _revisit_id(request)
    answered_by = hook.get("AnsweredBy") or ""
    async with ctx.pool.acquire() as conn:
        row = await store.get(conn, revisit_id)
        order = await work_orders.by_id(conn, row["work_order_id"]) if row else None
    if row is None or order is None or row["status"] != "calling":
        return _say_and_hang_up()
    if answered_by.startswith(("machine", "fax")):
        # no message on a machine: the status callback counts it as unanswered
        return _say_and_hang_up()
    number = " ".join("杠" if c == "-" else c for c in order["request_number"])
    return _ask_rating(revisit_id, ASK.format(number=number))


@twilio_endpoint
async def rating(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    revisit_id = _revisit_id(request)
    heard = hook.get("Digits") or normalize_speech(hook.get("SpeechResult") or "")
    value = parse_rating(heard) if heard else None
    if value is None:
        return _ask_rating(revisit_id, ASK_AGAIN)
    service = ctx.revisits
    if not await service.rated_by_phone(revisit_id, value, hook.get("CallSid")):
        return _say_and_hang_up()
    if value == "dissatisfied":
        return _ask_comment(revisit_id)
    return _say_and_hang_up(THANKS)


@twilio_endpoint
async def comment(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    revisit_id = _revisit_id(request)
    said = normalize_speech(hook.get("SpeechResult") or "").strip() or None
    await ctx.revisits.commented_by_phone(revisit_id, said, hook.get("CallSid"))
    return _say_and_hang_up(THANKS_DISSATISFIED)


@twilio_endpoint
async def status(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    revisit_id = _revisit_id(request)
    known = await ctx.revisits.call_ended(
        revisit_id, hook.require("CallSid"), hook.require("CallStatus"), hook.get("AnsweredBy")
    )
    return web.Response(status=204, headers={"X-Hotline-Known": "1" if known else "0"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/twilio/revisit/{revisit_id}/voice", voice)
    app.router.add_post("/twilio/revisit/{revisit_id}/rating", rating)
    app.router.add_post("/twilio/revisit/{revisit_id}/comment", comment)
    app.router.add_post("/twilio/revisit/{revisit_id}/status", status)
