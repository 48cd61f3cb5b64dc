"""Twilio's REST API as the outbox's senders: texts (`TwilioSms`) and calls (`TwilioVoice`),
through one asynchronous Twilio client. What is stored and retried, and when nothing may be
sent, is the outbox's (services/outbound/outbox.py); these only talk to Twilio.

Long texts go out as several numbered messages (`services.outbound.sms_text.split_message`),
each `sms_max_chars` long at most. Twilio places one call per second per account by default,
so calls from this process are spaced a second apart.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from services.config import Settings
from services.core import phone_numbers
from services.core.pii import mask_recipient
from services.outbound.senders import InvalidRecipient, Sender, Sent
from services.outbound.sms_text import segments

log = logging.getLogger(__name__)

# Twilio error 21610: the recipient has replied STOP to our number at the carrier.
TWILIO_UNSUBSCRIBED = 21610
# Twilio error 20429: too many requests.
TWILIO_TOO_MANY = 20429


class TwilioRest:
    """The account's REST client, shared by the SMS and voice senders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_from_number)

    def client(self) -> Client:
        # The async HTTP client opens an aiohttp session: it must be made inside the loop.
        if self._client is None:
            self._http = AsyncTwilioHttpClient(timeout=15)
            self._client = Client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                http_client=self._http,
            )
            if self.settings.twilio_api_base_url:
                self._client.api.base_url = self.settings.twilio_api_base_url.rstrip("/")
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def phone_recipient(to: str) -> str:
    number = phone_numbers.canonical(to)
    if number is None:
        raise InvalidRecipient(f"{to!r} is not a phone number")
    return number


class TwilioSms(Sender):
    """Text messages to citizens and units. A number that texted 退订/STOP gets nothing until
    it texts 订阅/START (the outbox checks); Twilio's own STOP list (error 21610) is recorded
    as an opt-out too."""

    name = "sms"
    label = "SMS"
    unconfigured = "Twilio is not configured"
    consent = True
    consent_keyword = f"twilio:{TWILIO_UNSUBSCRIBED}"
    retries = True

    def __init__(self, settings: Settings, rest: TwilioRest) -> None:
        self.settings = settings
        self.rest = rest
        self.max_chars = settings.sms_max_chars

    @property
    def configured(self) -> bool:
        return self.rest.configured

    def recipient(self, to: str) -> str:
        return phone_recipient(to)

    def segments(self, text: str) -> int | None:
        return segments(text)

    async def send_part(self, recipient: str, text: str) -> Sent:
        """What Twilio did with one message."""
        callback = (
            f"{self.settings.public_url}/twilio/sms/status" if self.settings.public_url else None
        )
        kwargs = {"status_callback": callback} if callback else {}
        try:
            message = await self.rest.client().messages.create_async(
                to=phone_numbers.to_e164(recipient),
                from_=self.settings.twilio_from_number,
                body=text,
                **kwargs,
            )
        except TwilioRestException as exc:
            log.warning(
                "Twilio refused an SMS to %s: %s %s", mask_recipient(recipient), exc.code, exc.msg
            )
            status = "opted_out" if exc.code == TWILIO_UNSUBSCRIBED else "failed"
            # its own trouble (5xx) or too many at once (429): the same text may go later
            passing = exc.status >= 500 or exc.status == 429 or exc.code == TWILIO_TOO_MANY
            return Sent(
                status, error=f"twilio {exc.code or exc.status}: {exc.msg}", passing=passing
            )
        except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
            log.warning("SMS to %s failed: %r", mask_recipient(recipient), exc)
            return Sent("failed", error=f"{type(exc).__name__}: {exc}", passing=True)
        return Sent("sent", message.sid, message.status)

    async def aclose(self) -> None:
        await self.rest.aclose()


class TwilioVoice:
    """Outbound calls (a revisit, an agent's call back). A call is no text: Twilio calls the
    number and fetches what to say from a TwiML URL, which is what the outbox stores as the
    message's body (Outbox.place_call)."""

    name = "voice"
    label = "call"
    unconfigured = "Twilio is not configured"
    consent = False
    consent_keyword = None
    retries = False

    def __init__(self, settings: Settings, rest: TwilioRest) -> None:
        self.settings = settings
        self.rest = rest
        self._pace = asyncio.Lock()
        self._last_call = 0.0

    @property
    def configured(self) -> bool:
        return self.rest.configured

    def recipient(self, to: str) -> str:
        return phone_recipient(to)

    def twiml_url(self, url: str) -> str:
        """An absolute TwiML URL: as given, or a path under HOTLINE_PUBLIC_URL."""
        if url.startswith(("https://", "http://")):
            return url
        if not self.settings.public_url:
            raise ValueError("a relative TwiML URL needs HOTLINE_PUBLIC_URL")
        return self.settings.public_url + url

    async def call(
        self, recipient: str, twiml_url: str, *, status_path: str, machine_detection: bool
    ) -> Sent:
        """What Twilio did with one call. Its status comes back to `status_path` (with
        AnsweredBy when `machine_detection`); calls are spaced a second apart."""
        options: dict[str, object] = {}
        if self.settings.public_url:
            options = {
                "status_callback": f"{self.settings.public_url}{status_path}",
                "status_callback_method": "POST",
                "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            }
        if machine_detection:
            options["machine_detection"] = "Enable"
        async with self._pace:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._last_call + 1.0 - loop.time()))
            try:
                call = await self.rest.client().calls.create_async(
                    to=phone_numbers.to_e164(recipient),
                    from_=self.settings.twilio_from_number,
                    url=twiml_url,
                    method="POST",
                    **options,
                )
                sent = Sent("sent", call.sid, call.status)
            except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
                log.warning("call to %s failed: %r", mask_recipient(recipient), exc)
                sent = Sent("failed", error=f"{type(exc).__name__}: {exc}")
            self._last_call = loop.time()
        return sent

    async def aclose(self) -> None:
        await self.rest.aclose()
