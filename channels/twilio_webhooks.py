"""What every Twilio webhook shares: reading the form body strictly, checking
X-Twilio-Signature against the public URL Twilio called, and JSON errors for what is refused.

Order of checks: a body that cannot be read at all is 400 (there is nothing to check a
signature against), then any signature failure is 403, then missing fields are 400. Nothing
is stored before all three pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from services.config import Settings
from services.context import context_of
from services.core.errors import json_exception

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 200  # Twilio sends a few dozen


@dataclass
class TwilioWebhook:
    params: MultiDictProxy[str]
    url: str  # the public URL the signature was checked against

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise json_exception(400, "missing_field", f"the webhook has no {name}")
        return value


def public_url(request: web.Request, settings: Settings) -> str:
    """The URL as Twilio called it: behind a proxy the service sees another host and scheme."""
    if settings.public_url:
        return settings.public_url + request.path_qs
    return str(request.url)


def parse_form(raw: bytes) -> MultiDictProxy[str]:
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise json_exception(400, "bad_encoding", "the form body is not valid UTF-8") from exc
    except ValueError as exc:
        raise json_exception(400, "bad_form", f"the body is not a valid form: {exc}") from exc
    return MultiDictProxy(MultiDict(pairs))


async def read_webhook(request: web.Request) -> TwilioWebhook:
    settings = context_of(request).settings
    if not settings.twilio_auth_token:
        raise json_exception(503, "not_configured", "Twilio is not configured on this service")
    if request.content_type != FORM:
        raise json_exception(400, "bad_form", f"a Twilio webhook is a {FORM} POST")
    params = parse_form(await request.read())  # over max_body_bytes: 413 from aiohttp
    url = public_url(request, settings)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(settings.twilio_auth_token).validate(
        url, params, signature
    ):
        log.warning("refused a Twilio webhook with a bad signature: %s", request.path)
        raise json_exception(403, "bad_signature", "X-Twilio-Signature does not match this request")
    account = params.get("AccountSid")
    if settings.twilio_account_sid and account and account != settings.twilio_account_sid:
        raise json_exception(403, "wrong_account", "the webhook is for another Twilio account")
    return TwilioWebhook(params, url)


Handler = Callable[[web.Request, TwilioWebhook], Awaitable[web.StreamResponse]]


def twilio_endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that gets a checked webhook (a refusal is a JSON error)."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handler(request, await read_webhook(request))

    return endpoint


def twiml(body: object) -> web.Response:
    return web.Response(text=str(body), content_type="text/xml", charset="utf-8")
