"""Revisits (回访): after a unit resolves an order, the citizen is asked whether it is solved.

    resolved ──schedule()──> scheduled ──call──> calling ──1/2──> done (revisit_satisfied)
                                 ^                  │    ──3 + comment──> done (revisit_dissatisfied,
                                 │                  │                      red fifth light)
                                 └── busy, no answer, machine (backoff, allowed hours only)
                 after `revisit_max_calls` calls, or for SMS citizens ──text──> awaiting_reply
                 awaiting_reply ──reply 1/2/3──> done;  no reply in `revisit_reply_hours` ──>
                 done (revisit_no_answer, which is never counted as satisfied)
    web chat:    scheduled ──question posted in the chat──> awaiting_reply ──reply 1/2/3──> done
                 no reply in `revisit_reply_hours` ──> scheduled ──text (as above), or done
                 (revisit_no_answer) without a phone number

Phone citizens are called (Twilio, TwiML under /twilio/revisit/{id}/...); WeChat followers get
a customer-service message (texted instead when WeChat refuses it); citizens who filed in the
web chat find the question in that chat (services/revisits/chat.ask_revisit: stored with the
conversation, pushed to the widget's socket), and are texted when they do not answer there;
everyone else with a phone number (SMS citizens) is texted. A citizen with no number and no
chat cannot be asked: that is recorded as no answer at once. A web revisit's row keeps the
channel it falls back to (sms or none); its first attempt is the "web" one. Calls, texts and
chat questions go out only within `revisit_hours` (default 8–21).
Every step is a job of the durable scheduler (services/scheduler.py), so a restart loses
nothing, and each call and text has an idempotency key, so a retried job never repeats it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from nlu.rules import rating as parse_rating
from services.config import Settings
from services.core.clock import Clock, next_allowed
from services.deadlines.timelimits import OrderClocks
from services.jobs.scheduler import Handler, Later
from services.outbound.outbox import InvalidRecipient, OutboundResult, Outbox, citizen_route
from services.revisits.chat import ask_revisit
from services.storage import citizens, jobs, work_orders
from services.storage import revisits as store
from services.storage.jobs import Job
from services.storage.work_orders import Actor
from services.supervision.lights import Supervision

log = logging.getLogger(__name__)

REVISIT = Actor("revisit", "system")
PHONE_CHANNELS = ("voice",)
# call statuses after which the call is over
FINAL_CALL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
RATING_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
    "no_answer": "未接通",
}
CALL_CHECK_AFTER = timedelta(hours=1)
_LEADING_DIGIT = re.compile(r"^\s*([123])(?:\s|[，,。.：:、]|$)\s*(.*)$", re.S)


def chat_question(request_number: str) -> str:
    """The question in a chat (WeChat, the web widget), where the sender is plain to see."""
    return (
        f"您反映的问题（工单{request_number}）承办单位已办结。"
        "请回复数字评价：1 满意，2 基本满意，3 不满意（可在3后面写明原因）。"
    )


def sms_question(request_number: str) -> str:
    return "【12345回访】" + chat_question(request_number)


async def _thanks(conn: asyncpg.Connection, row: asyncpg.Record, outcome: str) -> str:
    """Naming the order: a citizen may have more than one revisit open."""
    order = await work_orders.by_id(conn, row["work_order_id"])
    which = f"（工单{order['request_number']}）" if order is not None else ""
    if outcome == "dissatisfied":
        return f"感谢您的反馈{which}，我们已将您的意见转交承办单位重新办理，并将跟踪督办。"
    return f"感谢您对12345热线工作的评价{which}！"


@dataclass(frozen=True)
class ChatAnswer:
    """What a chat message meant for the revisit asked in that chat."""

    waiting: bool  # the revisit still waits for an answer
    reply: str | None = None  # the thanks, when the message was the answer


def read_sms_answer(text: str) -> tuple[str, str | None] | None:
    """(rating, comment) from an SMS answer such as "3 路灯还是不亮", or None."""
    match = _LEADING_DIGIT.match(text)
    if match:
        rating = parse_rating(match.group(1))
        comment = match.group(2).strip() or None
        return (rating, comment) if rating else None
    rating = parse_rating(text.strip())
    return (rating, None) if rating else None


def _asks_on_web(order: asyncpg.Record, asked: list[asyncpg.Record]) -> bool:
    """A citizen who filed in the web chat is asked there first, before any text."""
    return order["channel"] == "web" and order["conversation_id"] is not None and not asked


async def _plan_attempt(
    conn: asyncpg.Connection, revisit_id: int, at: datetime, key: str, hours: tuple[int, int]
) -> None:
    """Queue the revisit's next call or text for `at`, or the start of the next allowed
    hours. `key` names the attempt, so planning the same attempt twice queues it once."""
    await jobs.enqueue(
        conn,
        "revisit_attempt",
        {"revisit_id": revisit_id},
        next_allowed(at, hours),
        dedupe_key=f"revisit:{revisit_id}:{key}",
    )


async def schedule(
    conn: asyncpg.Connection, order_id: int, at: datetime, settings: Settings
) -> int:
    """Plan the revisit of a resolution, inside the transaction that records `resolved`."""
    order = await work_orders.by_id(conn, order_id)
    if order is None:
        raise LookupError(f"work order {order_id} does not exist")
    phone = order["contact_phone"]
    openid = None
    if order["channel"] == "wechat" and settings.wechat_app_id:
        openid = await citizens.wechat_openid(conn, order["citizen_id"])
    if openid:
        channel = "wechat"
    elif not phone:
        channel = "none"
    elif order["channel"] in PHONE_CHANNELS and settings.revisit_max_calls > 0:
        channel = "voice"
    else:
        channel = "sms"
    row = await store.create(
        conn, order_id, channel, phone, settings.revisit_max_calls, at, openid=openid
    )
    delay = timedelta(minutes=settings.revisit_delay_minutes)
    await _plan_attempt(conn, row["id"], at + delay, "1", settings.revisit_hours)
    return row["id"]


@dataclass
class RevisitService:
    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    outbox: Outbox | None
    clocks: OrderClocks
    supervision: Supervision

    def handlers(self) -> dict[str, Handler]:
        return {
            "revisit_attempt": self.attempt,
            "revisit_expire": self.expire,
            "revisit_call_check": self.call_check,
        }

    # -- jobs ------------------------------------------------------------------------------

    async def attempt(self, job: Job) -> Later | None:
        """Call (or text) the citizen, if the revisit still waits for it."""
        revisit_id = int(job.payload["revisit_id"])
        now = self.clock.now()
        allowed = next_allowed(now, self.settings.revisit_hours)
        if allowed > now:
            return Later(allowed)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, revisit_id)
            if row is None or row["status"] != "scheduled":
                return None
            order = await work_orders.by_id(conn, row["work_order_id"])
            asked = await store.attempts(conn, revisit_id)
            on_web = _asks_on_web(order, asked)
            if row["channel"] == "none" and not on_web:
                await self.finish(conn, row, "no_answer", "无联系电话，无法回访", now)
                return None
            calling = (
                not on_web
                and row["channel"] == "voice"
                and row["call_attempts"] < row["max_call_attempts"]
            )
            number = row["call_attempts"] + 1 if calling else len(asked) + 1
            if calling:
                await store.update(
                    conn, revisit_id, now, status="calling", call_attempts=number, call_sid=None
                )
                await store.add_attempt(conn, revisit_id, number, "voice", now)
                # a lost status callback (or a crash before the call) must not leave the
                # revisit calling for ever
                await jobs.enqueue(
                    conn,
                    "revisit_call_check",
                    {"revisit_id": revisit_id, "attempt": number},
                    now + CALL_CHECK_AFTER,
                    dedupe_key=f"revisit:{revisit_id}:check:{number}",
                )
            else:
                await store.update(conn, revisit_id, now, status="awaiting_reply")
                if on_web:
                    channel = "web"
                else:
                    channel = "wechat" if row["channel"] == "wechat" else "sms"
                await store.add_attempt(conn, revisit_id, number, channel, now)
                # the web question's wait has its own job: a text may follow it
                suffix = ":web" if on_web else ""
                await jobs.enqueue(
                    conn,
                    "revisit_expire",
                    {"revisit_id": revisit_id, "channel": channel},
                    now + timedelta(hours=self.settings.revisit_reply_hours),
                    dedupe_key=f"revisit:{revisit_id}:expire{suffix}",
                )
                if on_web:
                    # posted as the revisit starts to wait for it, or not at all. Waiting for
                    # the conversation's lock here cannot deadlock with a chat turn: a turn
                    # locks a revisit only once its question is in the dialogue, i.e. after
                    # this transaction commits
                    question = chat_question(order["request_number"])
                    await ask_revisit(conn, order["conversation_id"], revisit_id, question, now)
                    await store.end_attempt(conn, revisit_id, number, now, result="posted")
        if on_web:
            return None
        if calling:
            await self._call(row, number, order["request_number"])
        else:
            await self._text(row, number, order["request_number"])
        return None

    async def _call(self, row: asyncpg.Record, number: int, request_number: str) -> None:
        revisit_id = row["id"]
        result = None
        if self.outbox is not None:
            try:
                result = await self.outbox.place_call(
                    row["phone"],
                    f"/twilio/revisit/{revisit_id}/voice",
                    "revisit",
                    idempotency_key=f"revisit:{revisit_id}:call:{number}",
                    work_order_id=row["work_order_id"],
                    status_path=f"/twilio/revisit/{revisit_id}/status",
                    machine_detection=True,
                )
            except (InvalidRecipient, ValueError) as exc:
                log.warning("revisit %s: cannot call: %s", revisit_id, exc)
        async with self.pool.acquire() as conn, conn.transaction():
            current = await store.lock(conn, revisit_id)
            if current is None or current["status"] != "calling":
                return
            if result is not None and result.ok and result.provider_ids:
                await store.update(
                    conn, revisit_id, self.clock.now(), call_sid=result.provider_ids[0]
                )
                await store.end_attempt(
                    conn,
                    revisit_id,
                    number,
                    self.clock.now(),
                    result="placed",
                    call_sid=result.provider_ids[0],
                )
            else:
                status = result.status if result is not None else "not_configured"
                await self.call_failed(conn, current, status, None, self.clock.now())

    async def _text(self, row: asyncpg.Record, number: int, request_number: str) -> None:
        """The question as a message on the citizen's channel (WeChat followers in WeChat,
        everyone else by SMS); texted instead when WeChat refuses it and there is a number."""
        ways = [citizen_route(row["channel"], row["openid"], row["phone"])]
        if ways[0].channel != "sms" and row["phone"]:
            ways.append(citizen_route("sms", None, row["phone"]))
        status, channel = "not_configured", None
        for i, (channel, recipient) in enumerate(ways):
            if self.outbox is None or not recipient:
                break
            result = await self._send(self.outbox, row, channel, recipient, request_number)
            status = result.status if result is not None else "invalid_recipient"
            if result is None or result.ok or i == len(ways) - 1:
                break
            # e.g. more than 48 hours since the follower's last message: WeChat refuses
            log.info("revisit %s: %s message %s, texting instead", row["id"], channel, status)
        async with self.pool.acquire() as conn:
            await store.end_attempt(conn, row["id"], number, self.clock.now(), result=status)
            if channel == "sms" and status in ("sent", "delivered"):
                await store.update(conn, row["id"], self.clock.now(), sms_sent=True)
        # a text that could not go out waits for the expiry like an unanswered one: the
        # outcome is then "no answer", which is what happened

    async def _send(
        self,
        outbox: Outbox,
        row: asyncpg.Record,
        channel: str,
        recipient: str,
        request_number: str,
    ) -> OutboundResult | None:
        """The revisit question on one channel; None when it cannot go to that recipient."""
        # in a chat the sender is plain to see; a text says who it is from
        question = sms_question if channel == "sms" else chat_question
        try:
            return await outbox.send(
                channel,
                recipient,
                question(request_number),
                "revisit",
                idempotency_key=f"revisit:{row['id']}:{channel}",
                work_order_id=row["work_order_id"],
            )
        except (InvalidRecipient, ValueError) as exc:
            log.warning("revisit %s: cannot text: %s", row["id"], exc)
            return None

    async def call_check(self, job: Job) -> None:
        """An hour after a call was placed the revisit still waits on it: no status came."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, int(job.payload["revisit_id"]))
            if row is None or row["status"] != "calling":
                return
            if row["call_attempts"] != int(job.payload["attempt"]):
                return
            if row["rating"] == "dissatisfied":
                await self.finish(conn, row, "dissatisfied", None, now)
            else:
                await self.call_failed(conn, row, "no_status", None, now)

    async def expire(self, job: Job) -> None:
        """No answer in time: recorded as no answer, or, after the question in the web chat,
        texted to the citizen's number (as unanswered calls are)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, int(job.payload["revisit_id"]))
            if row is None or row["status"] != "awaiting_reply":
                return
            if job.payload.get("channel") == "web" and row["phone"]:
                await store.update(conn, row["id"], now, status="scheduled")
                await _plan_attempt(conn, row["id"], now, "sms", self.settings.revisit_hours)
                return
            await self.finish(conn, row, "no_answer", None, now)

    # -- outcomes --------------------------------------------------------------------------

    async def call_failed(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        result: str,
        answered_by: str | None,
        now: datetime,
    ) -> None:
        """A call not answered by the citizen: call again later, or fall back to SMS."""
        number = row["call_attempts"]
        await store.end_attempt(
            conn, row["id"], number, now, result=result, answered_by=answered_by
        )
        await store.update(conn, row["id"], now, status="scheduled")
        hours = self.settings.revisit_hours
        if number < row["max_call_attempts"]:
            # backoff: retry_minutes, then twice that, four times ...
            delay = timedelta(minutes=self.settings.revisit_retry_minutes * 2 ** (number - 1))
            await _plan_attempt(conn, row["id"], now + delay, str(number + 1), hours)
        else:
            await _plan_attempt(conn, row["id"], now, "sms", hours)

    async def finish(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        outcome: str,
        comment: str | None,
        now: datetime,
    ) -> None:
        """Record the citizen's verdict on the revisit and on the order. Inside a transaction."""
        await store.update(
            conn,
            row["id"],
            now,
            status="done",
            outcome=outcome,
            comment=comment,
            rating=None if outcome == "no_answer" else outcome,
            finished_at=now,
        )
        order = await work_orders.clock_state(conn, row["work_order_id"])
        if order is None or order["status"] != "resolved":
            # the desk acted on the order meanwhile (e.g. re-dispatched it): keep the answer only
            log.info("revisit %s answered after the order left 'resolved'", row["id"])
            return
        data = {
            "revisit_id": row["id"],
            "outcome": outcome,
            "channel": row["channel"],
            "sms": row["sms_sent"],
            "calls": row["call_attempts"],
        }
        if outcome == "dissatisfied":
            await self.supervision.raise_dissatisfied_light(
                row["work_order_id"],
                conn=conn,
                comment=comment or "回访不满意",
                actor=REVISIT,
                at=now,
            )
            return
        kind = "revisit_no_answer" if outcome == "no_answer" else "revisit_satisfied"
        await self.clocks.record(
            conn,
            row["work_order_id"],
            kind,
            REVISIT,
            now,
            unit=order["lead_unit"],
            note=comment,
            data=data,
        )

    async def _answered(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        outcome: str,
        comment: str | None,
        call_sid: str | None,
        now: datetime,
    ) -> None:
        """The citizen gave a verdict on the current call: it ends as answered."""
        await store.end_attempt(
            conn, row["id"], row["call_attempts"], now, result="answered", call_sid=call_sid
        )
        await self.finish(conn, row, outcome, comment, now)

    async def rated_by_phone(self, revisit_id: int, rating: str, call_sid: str | None) -> bool:
        """The citizen keyed or said a rating during the call. Satisfied (or basically)
        finishes the revisit at once; dissatisfied waits for the spoken comment (or the end of
        the call). False when the call is not the revisit's current one."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, revisit_id)
            if not _current_call(row, call_sid):
                return False
            if rating == "dissatisfied":
                await store.update(conn, revisit_id, now, rating=rating)
            else:
                await self._answered(conn, row, rating, None, call_sid, now)
        return True

    async def commented_by_phone(
        self, revisit_id: int, comment: str | None, call_sid: str | None
    ) -> None:
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, revisit_id)
            if _current_call(row, call_sid) and row["rating"] == "dissatisfied":
                await self._answered(conn, row, "dissatisfied", comment, call_sid, now)

    async def call_ended(
        self, revisit_id: int, call_sid: str, status: str, answered_by: str | None
    ) -> bool:
        """Twilio's final call status. A call without a rating (busy, no answer, an answering
        machine, hung up) is a failed attempt; a dissatisfied rating without a comment is
        final now. False when the status is not for the revisit's current call."""
        if status not in FINAL_CALL_STATUSES:
            return False
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock(conn, revisit_id)
            if not _current_call(row, call_sid):
                return False
            if row["rating"] == "dissatisfied":
                await self._answered(conn, row, "dissatisfied", None, call_sid, now)
            else:
                machine = bool(answered_by and answered_by.startswith(("machine", "fax")))
                result = "machine" if machine else status
                await self.call_failed(conn, row, result, answered_by, now)
        return True

    async def answer_sms(
        self, phone: str | None, text: str, *, openid: str | None = None
    ) -> str | None:
        """The reply to an SMS (or a WeChat message from `openid`) that answers a waiting
        revisit, or None when it is no such answer (it then goes to the conversation)."""
        parsed = read_sms_answer(text)
        if parsed is None:
            return None
        outcome, comment = parsed
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.awaiting_reply(conn, phone=phone, openid=openid)
            if row is None:
                return None
            await self.finish(conn, row, outcome, comment, self.clock.now())
            return await _thanks(conn, row, outcome)

    async def answer_in_chat(
        self,
        conn: asyncpg.Connection,
        revisit_id: int,
        text: str,
        reading: tuple[str, str | None] | None = None,
    ) -> ChatAnswer:
        """A message in the web chat where the revisit's question was posted, inside the
        chat turn's transaction: the answer when it reads as one and the revisit still
        waits, by chat or by the text that followed it. `reading`: (rating, comment) as the
        chat read the message in context ("还是老样子" is a 3); without it, as an SMS reply."""
        parsed = reading or read_sms_answer(text)
        if parsed is None:
            return ChatAnswer(waiting=True)
        row = await store.lock(conn, revisit_id)
        if row is None or row["status"] not in ("awaiting_reply", "scheduled"):
            return ChatAnswer(waiting=False)
        outcome, comment = parsed
        await self.finish(conn, row, outcome, comment, self.clock.now())
        return ChatAnswer(waiting=False, reply=await _thanks(conn, row, outcome))


def _current_call(row: asyncpg.Record | None, call_sid: str | None) -> bool:
    """Whether a webhook is about the call the revisit is waiting on: late or repeated
    callbacks of an earlier call change nothing."""
    if row is None or row["status"] != "calling":
        return False
    return row["call_sid"] is None or call_sid is None or row["call_sid"] == call_sid
