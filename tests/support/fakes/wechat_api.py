"""A fake WeChat official-account API on loopback: cgi-bin/token and
cgi-bin/message/custom/send, with WeChat's errcodes (HTTP 200 and a JSON errcode)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.loopback import LoopbackServer


@dataclass
class FakeWeChat(LoopbackServer):
    app_id: str
    app_secret: str
    sent: list[dict] = field(default_factory=list)
    token_fetches: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    # followers who have not written in 48 hours: WeChat refuses customer-service messages
    silent: set[str] = field(default_factory=set)
    url: str = ""
    _runner: web.AppRunner | None = None

    @staticmethod
    def _err(code: int, msg: str) -> web.Response:
        return web.json_response({"errcode": code, "errmsg": msg})

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return self._err(40002, "invalid grant_type")
        if q.get("appid") != self.app_id:
            return self._err(40013, "invalid appid")
        if q.get("secret") != self.app_secret:
            return self._err(40125, "invalid appsecret")
        self.token_fetches += 1
        token = uuid.uuid4().hex * 2
        self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def custom_send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") not in self.valid_tokens:
            return self._err(40001, "invalid credential, access_token is invalid or not latest")
        try:
            body = json.loads(await request.text())
        except json.JSONDecodeError:
            return self._err(47001, "data format error")
        if not body.get("touser"):
            return self._err(40003, "invalid openid")
        if body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return self._err(44004, "empty content")
        if len(body["text"]["content"].encode("utf-8")) > 2048:
            return self._err(45002, "content size out of limit")
        if body["touser"] in self.silent:
            return self._err(45015, "response out of time limit or subscription is canceled")
        self.sent.append(body)
        return self._err(0, "ok")

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def texts_to(self, openid: str) -> list[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == openid]

    async def start(self) -> FakeWeChat:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)
        await self.serve(app)
        return self
