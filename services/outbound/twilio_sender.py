"""Outbound SMS and calls: notifications to citizens (the request number, progress,
revisits) and to units, through the Twilio REST API, asynchronously.

    result = await ctx.notify.send_sms("13859901234", "您的诉求……", "progress",
                                    idempotency_key=f"progress:{order_id}:{event_id}")

Every message is stored in `outbound_messages` before it is sent, with its status after
(`sent`, then `delivered`/`undelivered`/`failed` from Twilio's status callback, or
`opted_out`, `failed`, `not_configured`). A number that texted 退订/STOP gets nothing until
it texts 订阅/START. The same `idempotency_key` never sends twice, so a retried job or a
retried webhook is harmless. Long texts go out as several numbered messages
(`services.sms_text.split_message`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import asyncpg
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from services.config import Settings
from services.core import phone_numbers
from services.core.clock import Clock
from services.jobs.scheduler import Job, Later
from services.outbound.sms_text import segments, split_message
from services.storage import jobs, outbound
from services.storage.outbound import NewOutbound

log = logging.getLogger(__name__)

# Twilio error 21610: the recipient has replied STOP to our number at the carrier.
TWILIO_UNSUBSCRIBED = 21610


# Twilio error 20429: too many requests.
TWILIO_TOO_MANY = 20429
RETRY_JOB = "outbound_retry"
RETRY_EVERY = timedelta(seconds=30)
RETRY_FIRST = timedelta(minutes=1)
RETRY_LONGEST = timedelta(hours=1)
RETRY_MAX = 10
RETRY_FOR = timedelta(days=1)


@dataclass
class Sent:
    """What the provider did with one message; `passing` when a later try may succeed."""

    status: str
    sid: str | None = None
    provider_status: str | None = None
    error: str | None = None
    passing: bool = False


class InvalidRecipient(ValueError):
    """Not a phone number an SMS can be sent to."""


@dataclass
class OutboundResult:
    """What became of one notification (one or more messages on the provider's side)."""

    # sent, opted_out, failed, not_configured; for a repeated idempotency key, the first
    # attempt's status
    status: str
    recipient: str
    message_ids: list[int] = field(default_factory=list)
    provider_ids: list[str] = field(default_factory=list)
    duplicate: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "delivered")


def overall_status(statuses: list[str]) -> str:
    """One status for the messages of one notification: the worst of them."""
    for status in ("opted_out", "not_configured", "failed", "undelivered", "pending", "sent"):
        if status in statuses:
            return status
    return statuses[0] if statuses else "failed"


async def previous_result(conn: asyncpg.Connection, recipient: str, key: str) -> OutboundResult:
    """What a send with this idempotency key did the first time."""
    previous = await outbound.by_idempotency_prefix(conn, key)
    return OutboundResult(
        status=overall_status([r["status"] for r in previous]),
        recipient=recipient,
        message_ids=[r["id"] for r in previous],
        provider_ids=[r["provider_id"] for r in previous if r["provider_id"]],
        duplicate=True,
    )


class Notifier:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, clock: Clock) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self._call_pace = asyncio.Lock()
        self._last_call = 0.0

    @property
    def configured(self) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_from_number)

    def _twilio(self) -> Client:
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

    async def is_opted_out(self, phone: str) -> bool:
        number = phone_numbers.canonical(phone)
        if number is None:
            raise InvalidRecipient(f"{phone!r} is not a phone number")
        async with self.pool.acquire() as conn:
            return await outbound.is_opted_out(conn, number)

    async def send_sms(
        self,
        to: str,
        body: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        conversation_id: int | None = None,
        work_order_id: int | None = None,
    ) -> OutboundResult:
        """Send a notification; never raises for what the provider or the network does (the
        result and the stored rows say what happened)."""
        number = phone_numbers.canonical(to)
        if number is None:
            raise InvalidRecipient(f"{to!r} is not a phone number")
        if not body.strip():
            raise ValueError("an SMS needs a text")
        texts = split_message(body, self.settings.sms_max_chars)
        rows = [
            NewOutbound(
                channel="sms",
                recipient=number,
                body=text,
                purpose=purpose,
                part=i,
                parts=len(texts),
                segments=segments(text),
                idempotency_key=f"{idempotency_key}#{i}" if idempotency_key else None,
                conversation_id=conversation_id,
                work_order_id=work_order_id,
            )
            for i, text in enumerate(texts, 1)
        ]
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                ids = await outbound.insert_pending(conn, rows, now)
                if ids is None:
                    return await previous_result(conn, number, idempotency_key or "")
                opted_out = await outbound.is_opted_out(conn, number)
                if opted_out or not self.configured:
                    status = "opted_out" if opted_out else "not_configured"
                    for message_id in ids:
                        await outbound.set_status(conn, message_id, status, now)
                    if not opted_out:
                        log.warning("SMS to %s not sent: Twilio is not configured", number)
                    return OutboundResult(status, number, message_ids=ids)
        result = OutboundResult("sent", number, message_ids=ids)
        retry_at = None  # set when a part failed for a passing reason: it and the rest wait
        for message_id, row in zip(ids, rows, strict=True):
            if result.status != "sent":
                # the rest of a long text makes no sense without the part that failed
                async with self.pool.acquire() as conn:
                    await outbound.set_status(
                        conn,
                        message_id,
                        "failed",
                        self.clock.now(),
                        error="an earlier part failed",
                        retry_at=retry_at,
                    )
                continue
            sent = await self._create(number, row.body)
            if sent.passing:
                retry_at = self.clock.now() + RETRY_FIRST
            async with self.pool.acquire() as conn, conn.transaction():
                if sent.status == "opted_out":
                    await outbound.record_consent(
                        conn, number, "opt_out", f"twilio:{TWILIO_UNSUBSCRIBED}", None, now
                    )
                await outbound.set_status(
                    conn,
                    message_id,
                    sent.status,
                    self.clock.now(),
                    provider_id=sent.sid,
                    provider_status=sent.provider_status,
                    error=sent.error,
                    retry_at=retry_at,
                )
            if sent.sid:
                result.provider_ids.append(sent.sid)
            if sent.status != "sent":
                result.status, result.error = sent.status, sent.error
        return result

    # -- sending again what failed for a passing reason ---------------------------------------

    def handlers(self) -> dict[str, Callable[[Job], Awaitable[Later | None]]]:
        return {RETRY_JOB: self.retry_due}

    async def ensure_recurring(self) -> None:
        async with self.pool.acquire() as conn:
            await jobs.enqueue(
                conn, RETRY_JOB, {}, self.clock.now(), dedupe_key=RETRY_JOB, max_attempts=1_000_000
            )

    async def retry_due(self, job: Job | None = None) -> Later:
        """Send again the SMS whose time has come, each recipient's in the order they were
        written (storage picks only the oldest waiting one per recipient, so a pass that
        sends something is followed by another). Gives up after RETRY_MAX tries or a day,
        leaving the message - and the rest of its text - failed."""
        now = self.clock.now()
        if not self.configured:
            return Later(now + RETRY_EVERY, reset_attempts=True)
        progressed = True
        while progressed:
            progressed = False
            async with self.pool.acquire() as conn:
                due = await outbound.due_retries(conn, self.clock.now(), 100)
            for item in due:
                progressed |= await self._retry_one(item)
        return Later(self.clock.now() + RETRY_EVERY, reset_attempts=True)

    async def _retry_one(self, item: outbound.Retry) -> bool:
        """One more try of one message; True when it went out."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await outbound.lock_retry(conn, item.id):
                return False  # another worker has it
            if await outbound.is_opted_out(conn, item.recipient):
                await outbound.set_status(conn, item.id, "opted_out", self.clock.now())
                await outbound.give_up_rest(conn, item.id, self.clock.now())
                return False
            sent = await self._create(item.recipient, item.body)
            at = self.clock.now()
            retries = item.retries + 1
            if sent.passing and retries < RETRY_MAX and at - item.created_at < RETRY_FOR:
                pause = min(RETRY_FIRST * 2**retries, RETRY_LONGEST)
                await outbound.retry_later(conn, item.id, retries, at + pause, sent.error, at)
                return False
            await outbound.retry_later(conn, item.id, retries, None, sent.error or "", at)
            await outbound.set_status(
                conn,
                item.id,
                sent.status,
                at,
                provider_id=sent.sid,
                provider_status=sent.provider_status,
                error=sent.error,
            )
            if sent.status != "sent":
                await outbound.give_up_rest(conn, item.id, at)
                return False
        log.info("SMS %d to %s sent on try %d", item.id, item.recipient, retries + 1)
        return True

    async def _create(self, number: str, body: str) -> Sent:
        """What Twilio did with one message."""
        callback = (
            f"{self.settings.public_url}/twilio/sms/status" if self.settings.public_url else None
        )
        kwargs = {"status_callback": callback} if callback else {}
        try:
            message = await self._twilio().messages.create_async(
                to=phone_numbers.to_e164(number),
                from_=self.settings.twilio_from_number,
                body=body,
                **kwargs,
            )
        except TwilioRestException as exc:
            log.warning("Twilio refused an SMS to %s: %s %s", number, exc.code, exc.msg)
            status = "opted_out" if exc.code == TWILIO_UNSUBSCRIBED else "failed"
            # its own trouble (5xx) or too many at once (429): the same text may go later
            passing = exc.status >= 500 or exc.status == 429 or exc.code == TWILIO_TOO_MANY
            return Sent(
                status, error=f"twilio {exc.code or exc.status}: {exc.msg}", passing=passing
            )
        except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
            log.warning("SMS to %s failed: %r", number, exc)
            return Sent("failed", error=f"{type(exc).__name__}: {exc}", passing=True)
        return Sent("sent", message.sid, message.status)

    async def place_call(
        self,
        to: str,
        twiml_url: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        conversation_id: int | None = None,
        work_order_id: int | None = None,
        status_path: str = "/twilio/voice/status",
        machine_detection: bool = False,
    ) -> OutboundResult:
        """An outbound call (a revisit, an agent's call back): Twilio calls `to` and fetches
        what to say from `twiml_url` (absolute, or a path under HOTLINE_PUBLIC_URL). Its
        status comes back to `status_path` (with AnsweredBy when `machine_detection`). Twilio
        places one call per second per account by default, so calls from this process are
        spaced a second apart."""
        number = phone_numbers.canonical(to)
        if number is None:
            raise InvalidRecipient(f"{to!r} is not a phone number")
        if not twiml_url.startswith(("https://", "http://")):
            if not self.settings.public_url:
                raise ValueError("a relative TwiML URL needs HOTLINE_PUBLIC_URL")
            twiml_url = self.settings.public_url + twiml_url
        row = NewOutbound(
            channel="voice",
            recipient=number,
            body=twiml_url,
            purpose=purpose,
            idempotency_key=f"{idempotency_key}#1" if idempotency_key else None,
            conversation_id=conversation_id,
            work_order_id=work_order_id,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            ids = await outbound.insert_pending(conn, [row], self.clock.now())
            if ids is None:
                return await previous_result(conn, number, idempotency_key or "")
            if not self.configured:
                await outbound.set_status(conn, ids[0], "not_configured", self.clock.now())
                return OutboundResult("not_configured", number, message_ids=ids)
        callback = {}
        if self.settings.public_url:
            callback = {
                "status_callback": f"{self.settings.public_url}{status_path}",
                "status_callback_method": "POST",
                "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            }
        if machine_detection:
            callback["machine_detection"] = "Enable"
        status, sid, provider_status, error = "sent", None, None, None
        async with self._call_pace:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._last_call + 1.0 - loop.time()))
            try:
                call = await self._twilio().calls.create_async(
                    to=phone_numbers.to_e164(number),
                    from_=self.settings.twilio_from_number,
                    url=twiml_url,
                    method="POST",
                    **callback,
                )
                sid, provider_status = call.sid, call.status
            except (TimeoutError, TwilioException, aiohttp.ClientError, OSError) as exc:
                log.warning("call to %s failed: %r", number, exc)
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            self._last_call = loop.time()
        async with self.pool.acquire() as conn:
            await outbound.set_status(
                conn,
                ids[0],
                status,
                self.clock.now(),
                provider_id=sid,
                provider_status=provider_status,
                error=error,
            )
        result = OutboundResult(status, number, message_ids=ids, error=error)
        if sid:
            result.provider_ids.append(sid)
        return result

    def send_later(self, to: str, body: str, purpose: str, **kwargs: object) -> asyncio.Task:
        """send_sms in the background, for a webhook that must answer at once; `aclose`
        waits for it."""
        return self._track(self.send_sms(to, body, purpose, **kwargs))

    def _track(self, work: Awaitable[OutboundResult]) -> asyncio.Task:
        async def run() -> OutboundResult | None:
            try:
                return await work
            except Exception:
                log.exception("background SMS failed")
                return None

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait for the background sends started so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def aclose(self) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout=30)
        except TimeoutError:
            log.warning("%d background SMS still running at shutdown", len(self._tasks))
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None
