"""A fake Twilio REST API (2010-04-01 Messages and Calls) on loopback.

It checks what Twilio checks (HTTP basic auth with the account SID and auth token, the
account in the path, required parameters, E.164 numbers), answers with the JSON resources
and error bodies Twilio sends, and records what was created.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from aiohttp import BasicAuth, web

from services.outbound.sms_text import segments
from tests.support.loopback import LoopbackServer

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class FakeTwilio(LoopbackServer):
    account_sid: str
    auth_token: str
    messages: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    # numbers that texted STOP to Twilio itself: sending to them is error 21610
    unsubscribed: set[str] = field(default_factory=set)
    # answer the next N requests with a 500
    fail_next: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        try:
            auth = BasicAuth.decode(header)
        except ValueError:
            return False
        return auth.login == self.account_sid and auth.password == self.auth_token

    async def _check(self, request: web.Request) -> web.Response | None:
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        if request.match_info["sid"] != self.account_sid:
            return self._error(404, 20404, "The requested resource was not found")
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"message": "Internal Server Error"}, status=500)
        return None

    def _resource(self, kind: str, sid: str, extra: dict) -> dict:
        now = format_datetime(datetime.now(UTC))
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "sid": sid,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/{kind}/{sid}.json",
            **extra,
        }

    async def create_message(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused:
            return refused
        form = await request.post()
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not form.get("MessagingServiceSid"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return self._error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return self._error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if to in self.unsubscribed:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + uuid.uuid4().hex
        resource = self._resource(
            "Messages",
            sid,
            {
                "to": to,
                "from": sender,
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": str(segments(body)),
                "num_media": "0",
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "status_callback": form.get("StatusCallback"),
                "price": None,
                "price_unit": "USD",
                "error_code": None,
                "error_message": None,
                "date_sent": None,
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
            },
        )
        self.messages.append(resource)
        return web.json_response(resource, status=201)

    async def create_call(self, request: web.Request) -> web.Response:
        refused = await self._check(request)
        if refused:
            return refused
        form = await request.post()
        to, sender = form.get("To"), form.get("From")
        if not to or not sender:
            return self._error(400, 21201, "No 'To' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return self._error(400, 21205, "Url parameter is required.")
        sid = "CA" + uuid.uuid4().hex
        resource = self._resource(
            "Calls",
            sid,
            {
                "to": to,
                "from": sender,
                "status": "queued",
                "direction": "outbound-api",
                "url": form.get("Url"),
                "twiml": form.get("Twiml"),
                "status_callback": form.get("StatusCallback"),
                # not in Twilio's resource; kept so tests can see what was asked for
                "machine_detection": form.get("MachineDetection"),
                "start_time": None,
                "end_time": None,
                "duration": None,
                "price": None,
            },
        )
        self.calls.append(resource)
        return web.json_response(resource, status=201)

    def bodies_to(self, number: str) -> list[str]:
        return [m["body"] for m in self.messages if m["to"] == number]

    async def start(self) -> FakeTwilio:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self.create_call)
        await self.serve(app)
        return self
