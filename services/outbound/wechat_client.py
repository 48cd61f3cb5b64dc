"""The WeChat official account's REST API as the outbox's WeChat sender: the access token
(cgi-bin/token, cached in `api_tokens` for every process) and customer-service text messages
(cgi-bin/message/custom/send), used for answers that missed the 5-second passive reply and
for notifications to citizens who wrote on WeChat. What is stored, and when nothing may be
sent, is the outbox's (services/outbound/outbox.py).

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
from services.core.pii import mask_recipient
from services.outbound.senders import Sender, Sent
from services.storage import api_tokens

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


class WeChatCustomerService(Sender):
    """Customer-service messages to a follower, by openid."""

    name = "wechat"
    label = "WeChat message"
    unconfigured = "app id/secret not configured"
    max_chars = MAX_TEXT_CHARS

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

    async def send_part(self, recipient: str, text: str) -> Sent:
        """One customer-service text message to a follower (allowed within 48 hours of their
        last message)."""
        try:
            await self._send_once(recipient, text)
        except WeChatApiError as exc:
            error = str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            return Sent("sent")
        log.warning("WeChat message to %s failed: %s", mask_recipient(recipient), error)
        return Sent("failed", error=error)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
