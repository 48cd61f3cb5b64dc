"""The SMS channel (Twilio Messaging webhooks).

POST /twilio/sms          an inbound SMS -> the conversation service -> TwiML <Message>s
POST /twilio/sms/status   delivery reports of the notifications we sent (services/outbound/)

The texter's number is their session and their contact: the conversation never asks for it,
and it links them to what they filed by phone or on the web. The MessageSid is the client
message id, so a webhook Twilio retries is answered again with the same replies and nothing
is done twice. 退订/STOP (and 订阅/START) are handled here, before the conversation: they
are about our notifications, not a request.
"""

from __future__ import annotations

import re

from aiohttp import web
from twilio.twiml.messaging_response import MessagingResponse

from channels.twilio_webhooks import TwilioWebhook, twilio_endpoint, twiml
from services.context import context_of
from services.conversation.service import Inbound, InvalidMessage
from services.core import phone_numbers
from services.core.errors import json_exception
from services.outbound.sms_text import split_message
from services.storage import outbound

CHANNEL = "sms"

# Whole-message keywords, as carriers use them. Not "取消": in a conversation it cancels a
# registration, and not "CANCEL"/"YES" for the same reason.
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "TD", "退订", "退订短信", "取消订阅"}
OPT_IN = {"START", "UNSTOP", "订阅", "重新订阅", "恢复订阅"}
_TRIM = re.compile(r"[\s。.!！,，]+")

OPTED_OUT_TEXT = (
    "您已退订12345短信通知，今后不再收到办理进度等通知短信。"
    "您仍可随时发短信反映问题；如需恢复通知，请回复“订阅”。"
)
OPTED_IN_TEXT = "您已恢复接收12345短信通知。"
TEXT_ONLY = "12345短信目前只能处理文字，请用文字描述您的问题；图片可通过微信公众号发送。"
TOO_LONG = "短信内容过长，请分几条发送，每条不超过{n}个字。"

# Twilio's message statuses and ours (services/storage/outbound.py).
_DELIVERY = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


def keyword(body: str) -> str | None:
    """opt_out, opt_in or None for an ordinary message."""
    word = _TRIM.sub("", body).upper()
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    return None


def messages(texts: list[str], max_chars: int) -> MessagingResponse:
    reply = MessagingResponse()
    for part in split_message("\n".join(texts), max_chars):
        reply.message(part)
    return reply


@twilio_endpoint
async def inbound_sms(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    sid = hook.require("MessageSid")
    sender = hook.require("From")
    body = hook.params.get("Body", "")
    phone = phone_numbers.canonical(sender)
    limit = ctx.settings.sms_max_chars

    action = keyword(body)
    if action is not None:
        if phone is None:
            raise json_exception(400, "bad_from", "From is not a phone number")
        async with ctx.pool.acquire() as conn:
            await outbound.record_consent(conn, phone, action, body, sid, ctx.clock.now())
        text = OPTED_OUT_TEXT if action == "opt_out" else OPTED_IN_TEXT
        return twiml(messages([text], limit))

    if phone is not None and ctx.desk is not None:
        # an answer to a revisit question goes to the revisit, not into the chat
        answered = await ctx.revisits.answer_sms(phone, body)
        if answered is not None:
            return twiml(messages([answered], limit))

    inbound = Inbound(
        channel=CHANNEL,
        session_key=phone or sender,
        text=body,
        client_message_id=sid,
        phone=phone,
    )
    try:
        result = await ctx.conversation.handle(inbound)
    except InvalidMessage as exc:
        # Twilio only wants TwiML back; the texter is told what to do instead
        if exc.code == "too_long":
            return twiml(messages([TOO_LONG.format(n=ctx.settings.max_message_chars)], limit))
        return twiml(messages([TEXT_ONLY], limit))
    return twiml(messages(result.replies, limit))


@twilio_endpoint
async def delivery_status(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = context_of(request)
    sid = hook.require("MessageSid")
    provider_status = hook.require("MessageStatus")
    error = hook.get("ErrorCode")
    async with ctx.pool.acquire() as conn, conn.transaction():
        known = await outbound.apply_provider_status(
            conn,
            CHANNEL,
            sid,
            _DELIVERY.get(provider_status, "sent"),
            provider_status,
            f"twilio {error}" if error else None,
            ctx.clock.now(),
        )
    # 204 either way: an unknown sid (another application on the same number) is not an error
    return web.Response(status=204, headers={"X-Hotline-Known": "1" if known else "0"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/twilio/sms", inbound_sms)
    app.router.add_post("/twilio/sms/status", delivery_status)
