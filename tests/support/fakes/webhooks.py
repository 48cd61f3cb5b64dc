"""The providers' side of the webhooks: Twilio calling the service for a phone call or an SMS,
and the WeChat server pushing a follower's messages, signed exactly as they sign them
(X-Twilio-Signature over the public URL and the form; WeChat's SHA-1 signature and, in safe
mode, AES with msg_signature via wechatpy's WeChatCrypto)."""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
import xmltodict
from twilio.request_validator import RequestValidator
from wechatpy.crypto import WeChatCrypto

from services.core.clock import Clock


@dataclass
class Reply:
    """An HTTP answer, with the TwiML read the way Twilio reads it."""

    status: int
    text: str
    says: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    gather: dict[str, str] | None = None
    dial: str | None = None
    dial_action: str | None = None
    enqueue: str | None = None
    enqueue_action: str | None = None
    hangup: bool = False
    recording_callback: str | None = None

    @property
    def spoken(self) -> str:
        return "".join(self.says)

    def json(self) -> dict:
        import json

        return json.loads(self.text)


def read_twiml(status: int, text: str) -> Reply:
    reply = Reply(status, text)
    if status != 200 or not text.startswith("<?xml"):
        return reply
    root = ET.fromstring(text)
    for el in root.iter():
        if el.tag == "Say":
            reply.says.append(el.text or "")
        elif el.tag == "Message":
            reply.messages.append(el.text or "".join(b.text or "" for b in el))
        elif el.tag == "Gather":
            reply.gather = dict(el.attrib)
        elif el.tag == "Dial":
            reply.dial = (el.text or "").strip() or None
            reply.dial_action = el.get("action")
            for child in el:
                if child.tag == "Number":
                    reply.dial = child.text
        elif el.tag == "Enqueue":
            reply.enqueue = el.text
            reply.enqueue_action = el.get("action")
        elif el.tag == "Hangup":
            reply.hangup = True
        elif el.tag == "Recording":
            reply.recording_callback = el.get("recordingStatusCallback")
    return reply


class TwilioWebhooks:
    """Twilio's webhook requests to the service: signed against the PUBLIC url, sent to the
    loopback one (as a proxy in front of the service would forward them)."""

    def __init__(self, service_url: str, public_url: str, account_sid: str, auth_token: str):
        self.service_url = service_url
        self.public_url = public_url
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)

    async def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Reply:
        if signature is None:
            signature = self.validator.compute_signature(self.public_url + path, params)
        headers = {"X-Twilio-Signature": signature, "Content-Type": content_type}
        data = body if body is not None else params
        async with aiohttp.ClientSession() as http:
            async with http.post(self.service_url + path, data=data, headers=headers) as resp:
                return read_twiml(resp.status, await resp.text())


class Texter:
    """A mobile phone texting the centre's Twilio number."""

    def __init__(self, hooks: TwilioWebhooks, phone: str, centre_number: str) -> None:
        self.hooks = hooks
        self.phone = phone
        self.centre_number = centre_number

    def params(self, text: str, sid: str | None = None) -> dict[str, str]:
        sid = sid or "SM" + uuid.uuid4().hex
        return {
            "ToCountry": "US",
            "ToState": "CA",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": text,
            "FromCountry": "CN",
            "To": self.centre_number,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.hooks.account_sid,
            "From": self.phone,
            "ApiVersion": "2010-04-01",
        }

    async def send(self, text: str, sid: str | None = None) -> Reply:
        return await self.hooks.post("/twilio/sms", self.params(text, sid))


class Caller:
    """A phone call to the centre's Twilio number, following the TwiML like Twilio does."""

    def __init__(self, hooks: TwilioWebhooks, phone: str, centre_number: str) -> None:
        self.hooks = hooks
        self.phone = phone
        self.centre_number = centre_number
        self.call_sid = "CA" + uuid.uuid4().hex
        self.transcription_sid = "GT" + uuid.uuid4().hex
        self.next_action: str | None = None
        self.last: Reply | None = None

    def params(self, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": self.hooks.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "in-progress",
            "Called": self.centre_number,
            "Caller": self.phone,
            "Direction": "inbound",
            "From": self.phone,
            "FromCountry": "CN",
            "To": self.centre_number,
            "ToCountry": "US",
            **extra,
        }

    def _follow(self, reply: Reply) -> Reply:
        self.last = reply
        action = None
        if reply.gather:
            action = reply.gather.get("action")
        elif reply.dial_action or reply.enqueue_action:
            action = reply.dial_action or reply.enqueue_action
        # a relative action is resolved against the URL Twilio called: the public one
        self.next_action = urljoin("/twilio/voice", action) if action else None
        return reply

    async def dial(self) -> Reply:
        reply = await self.hooks.post("/twilio/voice", self.params(CallStatus="ringing"))
        return self._follow(reply)

    async def _answer(self, **fields: str) -> Reply:
        assert self.next_action, "the call has nothing to answer"
        reply = await self.hooks.post(self.next_action, self.params(**fields))
        return self._follow(reply)

    async def say(self, speech: str, confidence: float = 0.92) -> Reply:
        return await self._answer(SpeechResult=speech, Confidence=str(confidence))

    async def press(self, digits: str) -> Reply:
        return await self._answer(Digits=digits)

    async def silence(self) -> Reply:
        return await self._answer()

    async def transfer_ends(self, outcome: str, field_name: str = "QueueResult") -> Reply:
        return await self._answer(**{field_name: outcome})

    async def status(self, status: str, duration: int | None = None, seq: int = 0) -> Reply:
        extra = {
            "CallStatus": status,
            "SequenceNumber": str(seq),
            "Timestamp": "Mon, 23 Nov 2026 02:05:00 +0000",
        }
        if duration is not None:
            extra["CallDuration"] = str(duration)
        return await self.hooks.post("/twilio/voice/status", self.params(**extra))

    async def transcript(
        self,
        track: str,
        text: str,
        seq: int,
        *,
        event: str = "transcription-content",
        transcription_sid: str | None = None,
        data: str | None = None,
    ) -> Reply:
        """A real-time transcription callback (<Start><Transcription>): one final utterance of
        the caller (inbound_track) or of whom they talk to (outbound_track)."""
        params = {
            "AccountSid": self.hooks.account_sid,
            "CallSid": self.call_sid,
            "TranscriptionSid": transcription_sid or self.transcription_sid,
            "TranscriptionEvent": event,
            "Timestamp": "2026-11-23T02:05:00.000000Z",
            "SequenceId": str(seq),
            "LanguageCode": "zh-CN",
            "ProviderName": "Google",
        }
        if event == "transcription-content":
            params |= {
                "Track": track,
                "Final": "true",
                "TranscriptionData": data
                if data is not None
                else json.dumps({"transcript": text, "confidence": 0.93}, ensure_ascii=False),
            }
        return await self.hooks.post("/twilio/voice/transcription", params)

    async def recording(self, recording_sid: str, duration: int) -> Reply:
        params = {
            "AccountSid": self.hooks.account_sid,
            "CallSid": self.call_sid,
            "RecordingSid": recording_sid,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.hooks.account_sid}/Recordings/{recording_sid}",
            "RecordingStatus": "completed",
            "RecordingDuration": str(duration),
            "RecordingChannels": "1",
            "RecordingSource": "StartCallRecordingTwiML",
            "RecordingStartTime": "Mon, 23 Nov 2026 02:00:01 +0000",
        }
        return await self.hooks.post("/twilio/voice/recording", params)


# -- WeChat --------------------------------------------------------------------------------------


def wechat_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


class Follower:
    """A follower of the official account, as the WeChat server relays them."""

    def __init__(
        self,
        service_url: str,
        token: str,
        clock: Clock,
        *,
        openid: str | None = None,
        account: str = "gh_12345shishi",
        crypto: WeChatCrypto | None = None,
    ) -> None:
        self.service_url = service_url
        self.token = token
        self.clock = clock
        self.openid = openid or "o" + uuid.uuid4().hex[:27]
        self.account = account
        self.crypto = crypto  # set: safe mode
        self.msg_id = int(uuid.uuid4().int % 10**18)

    def timestamp(self) -> str:
        return str(int(self.clock.now().timestamp()))

    def xml(self, msg_type: str, fields: dict[str, str], msg_id: int | None = None) -> str:
        body = "".join(
            f"<{k}>{v}</{k}>" if k in ("MsgId", "CreateTime") else f"<{k}><![CDATA[{v}]]></{k}>"
            for k, v in fields.items()
        )
        head = (
            f"<ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<FromUserName><![CDATA[{self.openid}]]></FromUserName>"
            f"<CreateTime>{self.timestamp()}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>"
        )
        tail = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
        return f"<xml>{head}{body}{tail}</xml>"

    def next_id(self) -> int:
        self.msg_id += 1
        return self.msg_id

    async def post_raw(
        self,
        body: bytes,
        *,
        query: dict[str, str] | None = None,
        nonce: str | None = None,
        timestamp: str | None = None,
    ) -> Reply:
        timestamp = timestamp or self.timestamp()
        nonce = nonce or uuid.uuid4().hex[:10]
        params = {
            "signature": wechat_signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": self.openid,
        }
        params.update(query or {})
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.service_url}/wechat",
                params=params,
                data=body,
                headers={"Content-Type": "text/xml"},
            ) as resp:
                return Reply(resp.status, await resp.text())

    async def post_xml(self, xml: str) -> Reply:
        """Send one message the way the WeChat server does, and read the passive reply."""
        if self.crypto is None:
            reply = await self.post_raw(xml.encode("utf-8"))
        else:
            timestamp, nonce = self.timestamp(), uuid.uuid4().hex[:10]
            envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
            body = (
                f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
            )
            reply = await self.post_raw(
                body.encode("utf-8"),
                query={"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]},
                nonce=nonce,
                timestamp=timestamp,
            )
            if reply.status == 200 and reply.text.startswith("<xml>"):
                answer = xmltodict.parse(reply.text)["xml"]
                reply.text = self.crypto.decrypt_message(
                    reply.text, answer["MsgSignature"], answer["TimeStamp"], answer["Nonce"]
                )
        if reply.status == 200 and reply.text.startswith("<xml>"):
            parsed = xmltodict.parse(reply.text)["xml"]
            assert parsed["ToUserName"] == self.openid and parsed["FromUserName"] == self.account
            reply.messages = [parsed.get("Content") or ""]
        return reply

    async def send_text(self, text: str, msg_id: int | None = None) -> Reply:
        msg_id = msg_id or self.next_id()
        return await self.post_xml(self.xml("text", {"Content": text}, msg_id))

    async def send_voice(self, recognition: str | None, msg_id: int | None = None) -> Reply:
        fields = {"MediaId": "media-" + uuid.uuid4().hex[:16], "Format": "amr"}
        if recognition is not None:
            fields["Recognition"] = recognition
        return await self.post_xml(self.xml("voice", fields, msg_id or self.next_id()))

    async def subscribe(self) -> Reply:
        return await self.post_xml(self.xml("event", {"Event": "subscribe", "EventKey": ""}))
