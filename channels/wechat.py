"""The WeChat official account channel (wechatpy), onto the same conversation service.

GET  /wechat   server URL verification: signature, timestamp, nonce -> echostr
POST /wechat   messages and events; plaintext, compatible or safe (AES) mode

Every request must carry a valid `signature` (token, timestamp, nonce) with a timestamp
within five minutes; in safe mode also a valid `msg_signature` over the encrypted body. A
plaintext message's signature does not cover its body, so an account in safe mode refuses
plaintext messages. Refusals are 403 and store nothing.

The 5-second rule: WeChat waits 5 s for the passive reply, then retries the same MsgId
twice. The turn runs as a task; if it is done within `wechat_reply_deadline` (4.5 s) the
answer is the passive reply, else the request is answered "success" and the answer goes out
through the customer-service message API (the outbox's WeChat sender,
services/outbound/wechat_client.py) when the turn is done.
A retry of a MsgId still running waits for the same task and never starts a second turn;
the conversation service's client message id (the MsgId) makes a retry on another process
harmless too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import SubscribeEvent, SubscribeScanEvent
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage, TextMessage, VoiceMessage
from wechatpy.replies import create_reply
from wechatpy.utils import check_signature

from channels.speech import normalize_speech
from services.context import CONTEXT, Context
from services.conversation.service import Inbound, InvalidMessage, TurnResult
from services.core.errors import json_exception

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_CLOCK_SKEW = 300  # seconds between WeChat's timestamp and ours
# A passive text reply may have 2048 bytes.
MAX_PASSIVE_BYTES = 2000
# How long a finished turn is remembered for WeChat's retries (they come within 15 s).
KEEP_FINISHED = 60.0

WELCOME = (
    "感谢关注12345市民服务热线！您可以直接发送文字或语音，反映问题、咨询政策、提出建议；"
    "发送诉求编号（例如 20261123-0001）可查询办理进度；需要人工服务请发送“人工”。"
    "紧急情况请拨打110、119、120。"
)
UNSUPPORTED = "目前只能处理文字和语音消息，请用文字或语音描述您的问题。"
NO_RECOGNITION = "抱歉，没有识别出这段语音的内容，请再说一遍或改用文字。"
TOO_LONG = "消息太长了，请分几次发送，每条不超过{n}个字。"
TROUBLE = "抱歉，系统暂时无法处理您的消息，请稍后再试或拨打12345。"
_DOCTYPE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class _Pending:
    task: asyncio.Task
    # the passive reply was given up on: the answer goes out through the API
    pushing: bool = False


class WeChatChannel:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.crypto = (
            WeChatCrypto(
                self.settings.wechat_token,
                self.settings.wechat_aes_key,
                self.settings.wechat_app_id or "",
            )
            if self.settings.wechat_aes_key and self.settings.wechat_token
            else None
        )
        self._pending: dict[str, _Pending] = {}
        self._pushes: set[asyncio.Task] = set()

    # -- checks --------------------------------------------------------------------------

    def check(self, request: web.Request) -> tuple[str, str]:
        """The request's timestamp and nonce, once its signature is right."""
        token = self.settings.wechat_token
        if not token:
            raise json_exception(503, "not_configured", "WeChat is not configured on this service")
        q = request.query
        signature, timestamp, nonce = q.get("signature"), q.get("timestamp"), q.get("nonce")
        if not (signature and timestamp and nonce):
            raise json_exception(
                403, "bad_signature", "signature, timestamp and nonce are required"
            )
        try:
            check_signature(token, signature, timestamp, nonce)
        except InvalidSignatureException as exc:
            log.warning("refused a WeChat request with a bad signature")
            raise json_exception(403, "bad_signature", "the signature does not match") from exc
        if not timestamp.isdigit() or abs(int(timestamp) - self.now()) > MAX_CLOCK_SKEW:
            raise json_exception(
                403, "stale", "the timestamp is too far from now (a replayed request?)"
            )
        return timestamp, nonce

    def now(self) -> int:
        return int(self.ctx.clock.now().timestamp())

    def read_xml(self, request: web.Request, raw: bytes, timestamp: str, nonce: str) -> str:
        if not raw.strip():
            raise json_exception(400, "bad_xml", "the body is empty")
        if _DOCTYPE.search(raw):
            raise json_exception(400, "bad_xml", "a DOCTYPE or ENTITY is not accepted")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json_exception(400, "bad_encoding", "the body is not valid UTF-8") from exc
        if request.query.get("encrypt_type", "raw") == "aes":
            if self.crypto is None:
                raise json_exception(503, "not_configured", "safe mode needs the EncodingAESKey")
            msg_signature = request.query.get("msg_signature")
            if not msg_signature:
                raise json_exception(403, "bad_signature", "msg_signature is required in safe mode")
            try:
                return self.crypto.decrypt_message(text, msg_signature, timestamp, nonce)
            except InvalidSignatureException as exc:
                raise json_exception(403, "bad_signature", "msg_signature does not match") from exc
            except InvalidAppIdException as exc:
                raise json_exception(403, "wrong_app", "the message is for another app id") from exc
            except Exception as exc:  # malformed XML, a missing Encrypt, bad base64 or padding
                raise json_exception(
                    400, "bad_xml", f"the encrypted body cannot be read: {exc!r}"
                ) from exc
        if self.settings.wechat_effective_mode == "safe":
            raise json_exception(403, "plaintext_refused", "this account is in safe mode")
        return text

    # -- replies -------------------------------------------------------------------------

    def reply(
        self, request: web.Request, message: BaseMessage, text: str, nonce: str
    ) -> web.Response:
        xml = create_reply(text, message).render()
        if request.query.get("encrypt_type") == "aes" and self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, nonce, str(self.now()))
        return web.Response(text=xml, content_type="application/xml", charset="utf-8")

    # -- turns ---------------------------------------------------------------------------

    async def converse(self, message: BaseMessage, text: str) -> TurnResult:
        return await self.ctx.conversation.handle(
            Inbound(
                channel=CHANNEL,
                session_key=message.source,
                text=text,
                client_message_id=f"wx-{message.id}",
            )
        )

    def start(self, message: BaseMessage, text: str) -> _Pending:
        key = f"{message.source}:{message.id}"
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(asyncio.ensure_future(self.converse(message, text)))
            self._pending[key] = pending
            loop = asyncio.get_running_loop()
            pending.task.add_done_callback(
                lambda _: loop.call_later(KEEP_FINISHED, self._pending.pop, key, None)
            )
        return pending

    def push_when_done(self, pending: _Pending, message: BaseMessage) -> None:
        if pending.pushing:
            return
        pending.pushing = True

        async def push() -> None:
            try:
                result = await pending.task
            except InvalidMessage as exc:
                texts = [self.invalid_text(exc)]
                conversation_id = None
            except Exception:
                log.exception("WeChat turn for message %s failed", message.id)
                texts, conversation_id = [TROUBLE], None
            else:
                texts, conversation_id = result.replies, result.conversation_id
            if not texts or self.ctx.outbox is None:
                return
            await self.ctx.outbox.send(
                "wechat",
                message.source,
                "\n\n".join(texts),
                "reply",
                idempotency_key=f"wechat-reply:{message.source}:{message.id}",
                conversation_id=conversation_id,
            )

        task = asyncio.ensure_future(push())
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    def invalid_text(self, exc: InvalidMessage) -> str:
        if exc.code == "too_long":
            return TOO_LONG.format(n=self.settings.max_message_chars)
        return UNSUPPORTED

    async def answer(
        self, request: web.Request, message: BaseMessage, text: str, nonce: str
    ) -> web.Response:
        if self.ctx.desk is not None:
            # an answer to a revisit question goes to the revisit, not into the chat
            revisit = self.ctx.revisits
            answered = await revisit.answer_sms(None, text, openid=message.source)
            if answered is not None:
                return self.reply(request, message, answered, nonce)
        pending = self.start(message, text)
        if not pending.pushing:
            try:
                await asyncio.wait({pending.task}, timeout=self.settings.wechat_reply_deadline)
            except asyncio.CancelledError:
                self.push_when_done(pending, message)
                raise
        if pending.task.done() and not pending.pushing:
            try:
                result = pending.task.result()
            except InvalidMessage as exc:
                return self.reply(request, message, self.invalid_text(exc), nonce)
            except Exception:
                log.exception("WeChat turn for message %s failed", message.id)
                return self.reply(request, message, TROUBLE, nonce)
            joined = "\n\n".join(result.replies)
            if not joined:
                return success()
            if len(joined.encode("utf-8")) <= MAX_PASSIVE_BYTES:
                return self.reply(request, message, joined, nonce)
        self.push_when_done(pending, message)
        return success()

    async def drain(self) -> None:
        """Wait for the turns still running and the answers still to push."""
        running = [p.task for p in self._pending.values() if not p.task.done()]
        await asyncio.gather(*running, return_exceptions=True)
        while self._pushes:
            await asyncio.gather(*list(self._pushes), return_exceptions=True)

    # -- webhooks ------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        self.check(request)
        return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        timestamp, nonce = self.check(request)
        xml = self.read_xml(request, await request.read(), timestamp, nonce)
        try:
            message = parse_message(xml)
        except Exception as exc:  # xmltodict/expat errors, a missing MsgType
            raise json_exception(400, "bad_xml", f"the message cannot be read: {exc!r}") from exc
        if message is None or not message.source:
            raise json_exception(400, "bad_xml", "the message has no FromUserName")
        if isinstance(message, SubscribeEvent | SubscribeScanEvent):
            return self.reply(request, message, WELCOME, nonce)
        if isinstance(message, TextMessage):
            return await self.answer(request, message, message.content or "", nonce)
        if isinstance(message, VoiceMessage):
            if not (message.recognition or "").strip():
                return self.reply(request, message, NO_RECOGNITION, nonce)
            return await self.answer(request, message, normalize_speech(message.recognition), nonce)
        if message.type == "event":
            return success()  # unsubscribe, menu clicks, location reports: nothing to say
        return self.reply(request, message, UNSUPPORTED, nonce)


def success() -> web.Response:
    # WeChat's "received, no reply": it neither retries nor shows an error to the follower
    return web.Response(text="success", content_type="text/plain")


WECHAT = web.AppKey("wechat_channel", WeChatChannel)


async def verify(request: web.Request) -> web.Response:
    return await request.app[WECHAT].verify(request)


async def receive(request: web.Request) -> web.Response:
    return await request.app[WECHAT].receive(request)


def add_routes(app: web.Application) -> None:
    async def channel(app: web.Application) -> AsyncIterator[None]:
        wechat = WeChatChannel(app[CONTEXT])
        app[WECHAT] = wechat
        yield
        await asyncio.wait_for(wechat.drain(), timeout=30)

    app.cleanup_ctx.append(channel)
    app.router.add_get("/wechat", verify)
    app.router.add_post("/wechat", receive)
