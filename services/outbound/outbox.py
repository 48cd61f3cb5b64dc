"""The one way out: every message the centre sends to a citizen or a unit, on any channel.

    result = await ctx.outbox.send("sms", "13859901234", "您的诉求……", "progress",
                                   idempotency_key=f"progress:{order_id}:{event_id}")

A channel is a `Sender` (services/outbound/senders.py: `TwilioSms`, `WeChatCustomerService`);
the outbox does what they share, once:

1. the text is cut into parts of at most the channel's `max_chars`, numbered "(1/3)" when
   there are several (`services.outbound.sms_text.split_message`);
2. every part is stored in `outbound_messages` as pending, all or none. The same
   `idempotency_key` never sends twice: a repeated key returns what the first attempt did, so
   a retried job or a retried webhook is harmless;
3. a recipient who opted out (SMS: texted 退订/STOP, until 订阅/START) gets `opted_out`, and a
   channel that is not set up `not_configured`; nothing is sent then;
4. the parts are sent in order through the channel's sender; after a part fails the rest are
   not sent (they make no sense without it);
5. each part's status is stored: `sent`, then `delivered`/`undelivered`/`failed` from the
   provider's status callback (channels/twilio_sms.py), or `opted_out`, `failed`. A part that
   failed for a passing reason (Twilio's own trouble, too many requests, the network) waits,
   with the rest of its text, for the recurring `outbound_retry` job, which sends it again
   with a growing pause (SMS: the retry queue in storage is theirs).

A call (`place_call`) is no text but goes through the same steps as one message whose body is
the TwiML URL. `citizen_route` says where a message to a citizen goes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

import asyncpg

from services.config import Settings
from services.core import metrics, phone_numbers
from services.core.clock import Clock
from services.core.pii import mask_recipient
from services.jobs.scheduler import Job, Later
from services.outbound.senders import InvalidRecipient, Sender, Sent
from services.outbound.sms_text import split_message
from services.outbound.twilio_sender import TwilioRest, TwilioSms, TwilioVoice
from services.outbound.wechat_client import WeChatCustomerService
from services.storage import jobs, outbound
from services.storage.outbound import NewOutbound

log = logging.getLogger(__name__)

RETRY_JOB = "outbound_retry"
RETRY_CHANNEL = "sms"  # services/storage/outbound.due_retries keeps the queue of SMS only
RETRY_EVERY = timedelta(seconds=30)
RETRY_FIRST = timedelta(minutes=1)
RETRY_LONGEST = timedelta(hours=1)
RETRY_MAX = 10
RETRY_FOR = timedelta(days=1)


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


class Route(NamedTuple):
    channel: str  # the outbox's channel: sms or wechat
    recipient: str | None  # a phone number or an openid; None when there is nobody to write to


def citizen_route(channel: str, identity: str | None, phone: str | None) -> Route | None:
    """Where a message to a citizen who wrote on `channel` goes. `identity` is who they are on
    that channel (a conversation's session key, a WeChat follower's openid), `phone` their
    number. WeChat followers get a customer-service message; SMS texters a text to the number
    they texted from; callers (and anyone else) a text to their phone. None for the web chat:
    the stored message reaches the widget's socket (services/agents/hub.py)."""
    if channel == "web":
        return None
    if channel == "wechat":
        return Route("wechat", identity)
    if channel == "sms":
        return Route("sms", identity or phone)
    return Route("sms", phone)


class Outbox:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        senders: Iterable[Sender],
        *,
        voice: TwilioVoice | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.senders = {sender.name: sender for sender in senders}
        self.voice = voice
        if any(s.retries and name != RETRY_CHANNEL for name, s in self.senders.items()):
            raise ValueError(f"only the {RETRY_CHANNEL} channel is sent again")
        self._tasks: set[asyncio.Task] = set()

    def sender(self, channel: str) -> Sender:
        try:
            return self.senders[channel]
        except KeyError:
            raise ValueError(f"no outbound channel {channel!r}") from None

    async def send(
        self,
        channel: str,
        recipient: str,
        text: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        conversation_id: int | None = None,
        work_order_id: int | None = None,
    ) -> OutboundResult:
        """Send `text` to `recipient` (sms: a phone number; wechat: an openid). Never raises
        for what the provider or the network does (the result and the stored rows say what
        happened); raises InvalidRecipient for an address the channel cannot send to and
        ValueError for an empty text or an unknown channel."""
        sender = self.sender(channel)
        to = sender.recipient(recipient)
        texts = split_message(text, sender.max_chars)
        if not texts:
            raise ValueError("a message needs a text")
        rows = [
            NewOutbound(
                channel=sender.name,
                recipient=to,
                body=part,
                purpose=purpose,
                part=i,
                parts=len(texts),
                segments=sender.segments(part),
                idempotency_key=f"{idempotency_key}#{i}" if idempotency_key else None,
                conversation_id=conversation_id,
                work_order_id=work_order_id,
            )
            for i, part in enumerate(texts, 1)
        ]
        return await self._deliver(sender, rows, idempotency_key, sender.send_part)

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
        """A text to a phone number: `send("sms", ...)`."""
        return await self.send(
            "sms",
            to,
            body,
            purpose,
            idempotency_key=idempotency_key,
            conversation_id=conversation_id,
            work_order_id=work_order_id,
        )

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
        status comes back to `status_path` (with AnsweredBy when `machine_detection`). Stored,
        deduplicated and recorded like a one-part message whose body is the URL."""
        voice = self.voice
        if voice is None:
            raise ValueError("no voice channel in this outbox")
        number = voice.recipient(to)
        url = voice.twiml_url(twiml_url)
        row = NewOutbound(
            channel=voice.name,
            recipient=number,
            body=url,
            purpose=purpose,
            idempotency_key=f"{idempotency_key}#1" if idempotency_key else None,
            conversation_id=conversation_id,
            work_order_id=work_order_id,
        )
        call = functools.partial(
            voice.call, status_path=status_path, machine_detection=machine_detection
        )
        return await self._deliver(voice, [row], idempotency_key, call)

    async def _deliver(
        self,
        way: Sender | TwilioVoice,
        rows: list[NewOutbound],
        key: str | None,
        send: Callable[[str, str], Awaitable[Sent]],
    ) -> OutboundResult:
        """Store the messages, then send them in order and store what became of each."""
        to = rows[0].recipient
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            ids = await outbound.insert_pending(conn, rows, now)
            if ids is None:
                return await previous_result(conn, to, key or "")
            opted_out = way.consent and await outbound.is_opted_out(conn, to)
            if opted_out or not way.configured:
                status = "opted_out" if opted_out else "not_configured"
                for message_id in ids:
                    await outbound.set_status(conn, message_id, status, now)
                if not opted_out:
                    log.warning("%s to %s not sent: %s", way.label, to, way.unconfigured)
                return OutboundResult(status, to, message_ids=ids)
        result = OutboundResult("sent", to, message_ids=ids)
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
            sent = await send(to, row.body)
            if sent.passing and way.retries:
                retry_at = self.clock.now() + RETRY_FIRST
            if sent.status not in ("sent", "opted_out"):
                kind = "passing" if retry_at else "final"
                metrics.OUTBOUND_FAILURES.labels(channel=way.name, kind=kind).inc()
            async with self.pool.acquire() as conn, conn.transaction():
                if sent.status == "opted_out" and way.consent:
                    keyword = way.consent_keyword or way.name
                    await outbound.record_consent(conn, to, "opt_out", keyword, None, now)
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

    async def is_opted_out(self, phone: str) -> bool:
        """Whether the number texted 退订/STOP (and not 订阅/START since)."""
        number = phone_numbers.canonical(phone)
        if number is None:
            raise InvalidRecipient(f"{phone!r} is not a phone number")
        async with self.pool.acquire() as conn:
            return await outbound.is_opted_out(conn, number)

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
        sender = self.senders.get(RETRY_CHANNEL)
        if sender is None or not sender.configured:
            return Later(now + RETRY_EVERY, reset_attempts=True)
        progressed = True
        while progressed:
            progressed = False
            async with self.pool.acquire() as conn:
                due = await outbound.due_retries(conn, self.clock.now(), 100)
            for item in due:
                progressed |= await self._retry_one(sender, item)
        return Later(self.clock.now() + RETRY_EVERY, reset_attempts=True)

    async def _retry_one(self, sender: Sender, item: outbound.Retry) -> bool:
        """One more try of one message; True when it went out."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await outbound.lock_retry(conn, item.id):
                return False  # another worker has it
            retried = metrics.OUTBOUND_RETRIES
            if sender.consent and await outbound.is_opted_out(conn, item.recipient):
                await outbound.set_status(conn, item.id, "opted_out", self.clock.now())
                await outbound.give_up_rest(conn, item.id, self.clock.now())
                retried.labels(channel=sender.name, outcome="opted_out").inc()
                return False
            sent = await sender.send_part(item.recipient, item.body)
            at = self.clock.now()
            retries = item.retries + 1
            if sent.passing and retries < RETRY_MAX and at - item.created_at < RETRY_FOR:
                pause = min(RETRY_FIRST * 2**retries, RETRY_LONGEST)
                await outbound.retry_later(conn, item.id, retries, at + pause, sent.error, at)
                retried.labels(channel=sender.name, outcome="again").inc()
                return False
            outcome = "sent" if sent.status == "sent" else "gave_up"
            retried.labels(channel=sender.name, outcome=outcome).inc()
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
        log.info(
            "%s %d to %s sent on try %d",
            sender.label,
            item.id,
            mask_recipient(item.recipient),
            retries + 1,
        )
        return True

    # -- in the background, and at the end ----------------------------------------------------

    def send_later(
        self,
        channel: str,
        recipient: str,
        text: str,
        purpose: str,
        *,
        idempotency_key: str | None = None,
        conversation_id: int | None = None,
        work_order_id: int | None = None,
    ) -> asyncio.Task:
        """`send` in the background, for a webhook that must answer at once; `aclose` waits
        for it."""
        work = self.send(
            channel,
            recipient,
            text,
            purpose,
            idempotency_key=idempotency_key,
            conversation_id=conversation_id,
            work_order_id=work_order_id,
        )

        async def run() -> OutboundResult | None:
            try:
                return await work
            except Exception:
                log.exception("background %s message failed", channel)
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
        """Wait (30 s at most) for the background sends, then close every channel."""
        try:
            await asyncio.wait_for(self.drain(), timeout=30)
        except TimeoutError:
            log.warning("%d background messages still being sent at shutdown", len(self._tasks))
        for way in (*self.senders.values(), self.voice):
            if way is not None:
                await way.aclose()


def build_outbox(settings: Settings, pool: asyncpg.Pool, clock: Clock) -> Outbox:
    """The centre's channels: SMS and calls through Twilio (one client for both), WeChat
    customer-service messages."""
    twilio = TwilioRest(settings)
    senders = [TwilioSms(settings, twilio), WeChatCustomerService(settings, pool, clock)]
    return Outbox(pool, clock, senders, voice=TwilioVoice(settings, twilio))
