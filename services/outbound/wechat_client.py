"""The WeChat official account's REST API, as far as the centre needs it: the access token
(cgi-bin/token, cached in `api_tokens` for every process) and customer-service text messages
(cgi-bin/message/custom/send), used for answers that missed the 5-second passive reply and
for notifications to citizens who wrote on WeChat.

wechatpy's own client is synchronous, so this speaks to the API with aiohttp.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg

from services.config import Settings
from services.core.clock import Clock
from services.outbound.sms_text import split_message
from services.outbound.twilio_sender import OutboundResult, overall_status
from services.storage import api_tokens, outbound
from services.storage.outbound import NewOutbound

log = logging.getLogger(__name__)

TOKEN_NAME = "wechat_access_token"
# errcodes that mean "this access token is no good": fetch a new one and try once more
_TOKEN_ERRORS = {40001, 40014, 42001}
# A text message may have 2048 bytes; 600 Chinese characters stay well inside.
MAX_TEXT_CHARS = 600


class WeChatApiError(RuntimeError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatApi:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, clock: Clock) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.base_url = settings.wechat_api_base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.wechat_app_id and self.settings.wechat_app_secret)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def _call(
        self, method: str, path: str, *, params: dict[str, str], json: Any = None
    ) -> dict[str, Any]:
        async with self._http().request(
            method, f"{self.base_url}{path}", params=params, json=json
        ) as resp:
            # WeChat answers errors with HTTP 200 and an errcode; anything else is the network
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        if not isinstance(body, dict):
            raise WeChatApiError(-2, "the API answered something other than a JSON object")
        if body.get("errcode", 0) != 0:
            raise WeChatApiError(int(body["errcode"]), str(body.get("errmsg", "")))
        return body

    async def access_token(self, *, refresh: bool = False) -> str:
        """A valid token: the shared one, or a new one fetched by exactly one process."""
        margin = timedelta(minutes=5)  # tokens live 2 hours; never use one about to expire
        async with self.pool.acquire() as conn:
            if not refresh:
                token = await api_tokens.valid(conn, TOKEN_NAME, self.clock.now() + margin)
                if token:
                    return token
            async with conn.transaction():
                await api_tokens.lock(conn, TOKEN_NAME)
                if not refresh:  # another process may have fetched it while we waited
                    token = await api_tokens.valid(conn, TOKEN_NAME, self.clock.now() + margin)
                    if token:
                        return token
                body = await self._call(
                    "GET",
                    "/cgi-bin/token",
                    params={
                        "grant_type": "client_credential",
                        "appid": self.settings.wechat_app_id or "",
                        "secret": self.settings.wechat_app_secret or "",
                    },
                )
                token = str(body["access_token"])
                now = self.clock.now()
                expires = now + timedelta(seconds=int(body.get("expires_in", 7200)))
                await api_tokens.save(conn, TOKEN_NAME, token, expires, now)
                return token

    async def _send_once(self, openid: str, text: str) -> None:
        payload = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        for attempt in (1, 2):
            token = await self.access_token(refresh=attempt == 2)
            try:
                await self._call(
                    "POST",
                    "/cgi-bin/message/custom/send",
                    params={"access_token": token},
                    json=payload,
                )
                return
            except WeChatApiError as exc:
                if exc.errcode not in _TOKEN_ERRORS or attempt == 2:
                    raise

    async def send_text(
        self,
        openid: str,
        text: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        conversation_id: int | None = None,
        work_order_id: int | None = None,
    ) -> OutboundResult:
        """A customer-service text message to a follower (allowed within 48 hours of their
        last message). Stored in `outbound_messages`; never raises for the API's answer."""
        texts = split_message(text, MAX_TEXT_CHARS)
        if not texts:
            raise ValueError("a message needs a text")
        rows = [
            NewOutbound(
                channel="wechat",
                recipient=openid,
                body=part,
                purpose=purpose,
                part=i,
                parts=len(texts),
                idempotency_key=f"{idempotency_key}#{i}" if idempotency_key else None,
                conversation_id=conversation_id,
                work_order_id=work_order_id,
            )
            for i, part in enumerate(texts, 1)
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            ids = await outbound.insert_pending(conn, rows, self.clock.now())
            if ids is None:
                previous = await outbound.by_idempotency_prefix(conn, idempotency_key or "")
                return OutboundResult(
                    overall_status([r["status"] for r in previous]),
                    openid,
                    message_ids=[r["id"] for r in previous],
                    duplicate=True,
                )
            if not self.configured:
                for message_id in ids:
                    await outbound.set_status(conn, message_id, "not_configured", self.clock.now())
                log.warning("WeChat message to %s not sent: app id/secret not configured", openid)
                return OutboundResult("not_configured", openid, message_ids=ids)
        result = OutboundResult("sent", openid, message_ids=ids)
        for message_id, row in zip(ids, rows, strict=True):
            status, error = "sent", None
            if result.status != "sent":
                status, error = "failed", "an earlier part failed"
            else:
                try:
                    await self._send_once(openid, row.body)
                except WeChatApiError as exc:
                    status, error = "failed", str(exc)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, error = "failed", f"{type(exc).__name__}: {exc}"
                if error:
                    log.warning("WeChat message to %s failed: %s", openid, error)
                    result.status, result.error = status, error
            async with self.pool.acquire() as conn:
                await outbound.set_status(conn, message_id, status, self.clock.now(), error=error)
        return result

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
