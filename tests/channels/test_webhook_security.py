"""Forged, replayed, malformed and oversized webhooks are harmless: the right status code,
nothing stored for what is refused, nothing stored twice for what is replayed."""

from __future__ import annotations

import uuid

from twilio.request_validator import RequestValidator
from wechatpy.crypto import WeChatCrypto

from tests.support.channels import AUTH_TOKEN, PUBLIC_URL, WECHAT_APP_ID, WECHAT_TOKEN
from tests.support.chat import COMPLAINT
from tests.support.fakes.webhooks import wechat_signature

TABLES = (
    "citizens",
    "conversations",
    "messages",
    "work_orders",
    "sms_consent_events",
    "outbound_messages",
    "voice_calls",
    "voice_turns",
    "voice_call_events",
)


async def counts(hotline) -> dict[str, int]:  # noqa: ANN001
    async with hotline.ctx.pool.acquire() as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def test_forged_twilio_webhooks_get_403_and_store_nothing(
    hotline, texter, caller, twilio_hooks
):
    sms = texter("+8613859903001")
    call = caller("+8613859903002")
    params = sms.params(COMPLAINT)
    other_token = RequestValidator("0" * 32)
    forgeries = {
        "no signature": ("/twilio/sms", params, ""),
        "garbage": ("/twilio/sms", params, "bm90IGEgc2lnbmF0dXJl"),
        "another account's token": (
            "/twilio/sms",
            params,
            other_token.compute_signature(PUBLIC_URL + "/twilio/sms", params),
        ),
        # signed for the address the service listens on, not the public one Twilio calls
        "signed for the wrong URL": (
            "/twilio/sms",
            params,
            RequestValidator(AUTH_TOKEN).compute_signature(hotline.url + "/twilio/sms", params),
        ),
        # a real signature, replayed with another text
        "tampered body": (
            "/twilio/sms",
            dict(params, Body="退订"),
            RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/twilio/sms", params),
        ),
        "voice": ("/twilio/voice", call.params(), "x"),
        "gather": (
            "/twilio/voice/gather?turn=1",
            call.params(SpeechResult=COMPLAINT),
            RequestValidator(AUTH_TOKEN).compute_signature(
                PUBLIC_URL + "/twilio/voice/gather?turn=2", call.params(SpeechResult=COMPLAINT)
            ),
        ),
        "status": ("/twilio/voice/status", call.params(CallStatus="completed"), "x"),
        "recording": ("/twilio/voice/recording", call.params(RecordingSid="RE1"), "x"),
        "sms status": ("/twilio/sms/status", {"MessageSid": "SM1", "MessageStatus": "failed"}, "x"),
    }
    for name, (path, form, signature) in forgeries.items():
        reply = await twilio_hooks.post(path, form, signature=signature)
        assert reply.status == 403, name
        assert reply.json()["error"] == "bad_signature", name
    # right signature, but for another Twilio account
    wrong_account = dict(params, AccountSid="AC" + "0" * 32)
    reply = await twilio_hooks.post("/twilio/sms", wrong_account)
    assert reply.status == 403 and reply.json()["error"] == "wrong_account"
    assert set((await counts(hotline)).values()) == {0}


async def test_forged_and_stale_wechat_requests_get_403_and_store_nothing(hotline, follower, clock):
    fan = follower()
    xml = fan.xml("text", {"Content": COMPLAINT}, fan.next_id()).encode()
    timestamp, nonce = fan.timestamp(), "abc123"
    good = wechat_signature(WECHAT_TOKEN, timestamp, nonce)
    cases = {
        "no signature": {"timestamp": timestamp, "nonce": nonce, "signature": ""},
        "wrong token": {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": wechat_signature("guess", timestamp, nonce),
        },
        "nonce changed": {"timestamp": timestamp, "nonce": "other", "signature": good},
    }
    for name, query in cases.items():
        reply = await fan.post_raw(xml, query=query, nonce=nonce, timestamp=timestamp)
        assert reply.status == 403 and reply.json()["error"] == "bad_signature", name
    # a captured request replayed ten minutes later: its signature is right, its time is not
    old = str(int(clock.now().timestamp()) - 600)
    stale = await fan.post_raw(xml, timestamp=old)
    assert stale.status == 403 and stale.json()["error"] == "stale"

    # safe mode: the envelope's msg_signature must match the encrypted body
    safe = follower(safe=True)
    crypto = WeChatCrypto(WECHAT_TOKEN, "A" * 43, WECHAT_APP_ID)  # someone without our key
    ts, nonce = safe.timestamp(), "n1"
    forged = crypto.encrypt_message(safe.xml("text", {"Content": "x"}, safe.next_id()), nonce, ts)
    reply = await safe.post_raw(
        forged.encode(),
        query={"encrypt_type": "aes", "msg_signature": "0" * 40},
        nonce=nonce,
        timestamp=ts,
    )
    assert reply.status == 403 and reply.json()["error"] == "bad_signature"
    assert set((await counts(hotline)).values()) == {0}


async def test_replayed_webhooks_are_processed_once(
    hotline, texter, caller, follower, twilio_hooks
):
    sms = texter("+8613859903003")
    sid = "SM" + uuid.uuid4().hex
    first = await sms.send(COMPLAINT, sid=sid)
    for _ in range(2):
        assert (await sms.send(COMPLAINT, sid=sid)).messages == first.messages
    call = caller("+8613859903004")
    greeting = await call.dial()
    assert (
        await twilio_hooks.post("/twilio/voice", call.params(CallStatus="ringing"))
    ).text == greeting.text
    said = await call.say(COMPLAINT)
    again = await twilio_hooks.post(
        "/twilio/voice/gather?turn=1", call.params(SpeechResult=COMPLAINT, Confidence="0.92")
    )
    assert again.text == said.text
    for _ in range(2):
        assert (await call.status("completed", duration=30, seq=3)).status == 204
    fan = follower()
    reply = await fan.send_text(COMPLAINT, msg_id=4242)
    assert (await fan.send_text(COMPLAINT, msg_id=4242)).messages == reply.messages
    async with hotline.ctx.pool.acquire() as conn:
        inbound = await conn.fetch(
            "SELECT c.channel, count(*) AS n FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE m.direction = 'in' GROUP BY c.channel"
        )
        assert {r["channel"]: r["n"] for r in inbound} == {"sms": 1, "voice": 1, "wechat": 1}
    c = await counts(hotline)
    assert (c["voice_turns"], c["voice_call_events"], c["voice_calls"]) == (2, 1, 1)


async def test_malformed_bodies_get_400_and_store_nothing(hotline, texter, follower, twilio_hooks):
    sms = texter("+8613859903005")
    params = sms.params(COMPLAINT)
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + "/twilio/sms", params)
    cases = [
        (
            b"Body=%E6%8A%95%E8%AF&From=%2B86138",
            "application/x-www-form-urlencoded",
            "bad_encoding",
        ),
        (b"Body=\xe6\x8a\x95\xff", "application/x-www-form-urlencoded", "bad_encoding"),
        (b"Body=a&&=&From", "application/x-www-form-urlencoded", "bad_form"),
        (b'{"Body": "hello"}', "application/json", "bad_form"),
        (b"<xml/>", "text/xml", "bad_form"),
    ]
    for body, content_type, code in cases:
        reply = await twilio_hooks.post(
            "/twilio/sms", {}, signature=signature, body=body, content_type=content_type
        )
        assert (reply.status, reply.json()["error"]) == (400, code), body
    # correctly signed, but not what Twilio sends: fields missing
    no_sid = {k: v for k, v in params.items() if k not in ("MessageSid", "SmsSid", "SmsMessageSid")}
    reply = await twilio_hooks.post("/twilio/sms", no_sid)
    assert (reply.status, reply.json()["error"]) == (400, "missing_field")
    reply = await twilio_hooks.post("/twilio/voice/gather?turn=abc", {"CallSid": "CA1"})
    assert (reply.status, reply.json()["error"]) == (400, "bad_turn")

    fan = follower()
    for body in (
        b"<xml><ToUserName>gh</ToUserName",  # cut off
        b"not xml at all",
        b"<xml><FromUserName>o1</FromUserName></xml>",  # no MsgType
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><xml><MsgType>&a;</MsgType></xml>',
        b"\xff\xfe<xml/>",
        b"",
    ):
        reply = await fan.post_raw(body)
        assert reply.status == 400, (body, reply.text)
        assert reply.json()["error"] in ("bad_xml", "bad_encoding")
    safe = follower(safe=True)
    ts, nonce = safe.timestamp(), "n2"
    junk = "bm90IGVuY3J5cHRlZA=="
    reply = await safe.post_raw(
        f"<xml><Encrypt><![CDATA[{junk}]]></Encrypt></xml>".encode(),
        query={
            "encrypt_type": "aes",
            "msg_signature": wechat_signature(WECHAT_TOKEN, ts, nonce, junk),
        },
        nonce=nonce,
        timestamp=ts,
    )
    assert (reply.status, reply.json()["error"]) == (400, "bad_xml")
    assert set((await counts(hotline)).values()) == {0}


async def test_oversized_bodies_get_413_and_store_nothing(hotline, texter, follower, twilio_hooks):
    limit = hotline.ctx.settings.max_body_bytes
    sms = texter("+8613859903006")
    params = sms.params("油烟" * (limit // 2))
    reply = await twilio_hooks.post("/twilio/sms", params)
    assert (reply.status, reply.json()["error"]) == (413, "too_large")
    fan = follower()
    reply = await fan.post_xml(fan.xml("text", {"Content": "噪" * limit}, fan.next_id()))
    assert (reply.status, reply.json()["error"]) == (413, "too_large")
    # under the HTTP limit but over the longest message: the citizen is told, nothing stored
    too_long = await sms.send("噪" * (hotline.ctx.settings.max_message_chars + 1))
    assert too_long.status == 200 and "过长" in too_long.messages[0]
    long_wx = await fan.send_text("噪" * (hotline.ctx.settings.max_message_chars + 1))
    assert "太长" in long_wx.messages[0]
    assert set((await counts(hotline)).values()) == {0}
