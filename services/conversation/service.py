"""The conversation service: one turn of any channel, from inbound text to replies.

Every inbound message is stored verbatim (in its own transaction) before anything else
happens, so nothing a citizen sent is lost if a later step fails; the client message id
makes a resend return the replies already given instead of acting twice. Then one turn runs
with the conversation row locked, so the messages of one conversation are handled in order.

The dialogue is an explicit state machine kept in `conversations.dialogue`:

    idle ──request──▶ await_location ──▶ await_phone ──▶ await_confirm ──确认──▶ idle (filed)
      │                    (each step is skipped when the detail is already known)
      ├──consult answered──▶ await_feedback ──是/否──▶ idle
      ├──consult, base unsure (text chat)──▶ await_kb_choice ──序号──▶ await_feedback
      │                                        └──都不是──▶ the consultation is filed as a request
      ├──progress without a number──▶ await_request_number ──▶ idle
      └──人工 / unsure twice──▶ conversation mode waiting_agent (the bot stops answering)

Beside the state, `dialogue["revisits"]` lists the revisits whose questions were posted into
this chat (`ask_revisit`, for citizens who filed on the web), newest last, whatever the state
or mode:

    revisit asked ──1 / 2 / 3 [comment] (满意 / 基本满意 / 不满意)──▶ answered: the revisit
                  service records the verdict on the newest open one, the state is left as it was
                  ──anything else──▶ handled as usual, the questions still open
                  ──an answer once a revisit is over (answered by SMS, timed out)──▶ it is
                  forgotten, and the answer goes to the next older one, if any
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from knowledgebase import store as kb_store
from knowledgebase.feedback import helpful_reply
from knowledgebase.models import FaqEntry
from knowledgebase.service import KnowledgeBase
from nlu.rules import short_reply_intent
from nlu.types import REQUEST_TYPES, Engine, ParseResult
from services.conversation import replies
from services.core import metrics
from services.core.clock import Clock
from services.core.errors import ServiceError
from services.core.unit_directory import UnitDirectory
from services.dispatch.dispatcher import Dispatcher
from services.orders import states
from services.revisits.chat import REVISITS_KEY
from services.storage import citizens, conversations, messages, work_orders
from services.storage.work_orders import Actor, NewWorkOrder

if TYPE_CHECKING:
    from services.revisits.service import ChatAnswer

log = logging.getLogger(__name__)

NEEDS_LOCATION = {"complain", "report", "seek_help"}
NEEDS_PHONE = {"complain", "report", "seek_help", "suggest", "consult"}
MAX_LOCATION_CHARS = 200


class InvalidMessage(ServiceError):
    """A message that cannot be accepted at all; nothing of it is stored."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code=code, status=413 if code == "too_long" else 400)


class RevisitAnswers(Protocol):
    """The revisit service (services/revisits/service.py), as far as a chat turn needs it."""

    async def answer_in_chat(
        self, conn: asyncpg.Connection, revisit_id: int, text: str
    ) -> ChatAnswer: ...


@dataclass
class Inbound:
    channel: str
    session_key: str
    text: str
    client_message_id: str | None = None
    # a phone number the channel itself vouches for (the caller or texter)
    phone: str | None = None


@dataclass
class TurnResult:
    conversation_id: int
    message_id: int
    replies: list[str]
    request_number: str | None = None
    duplicate: bool = False
    mode: str = "bot"
    emergency: list[str] | None = None
    nlu: dict[str, Any] | None = None


@dataclass
class _Turn:
    """What one turn decides; written to the database together at the end."""

    replies: list[str] = field(default_factory=list)
    request_number: str | None = None
    mode: str | None = None
    handoff_reason: str | None = None


class ConversationService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        nlu: Engine,
        kb: KnowledgeBase,
        units: UnitDirectory,
        clock: Clock,
        *,
        max_message_chars: int = 2000,
        dispatcher: Dispatcher | None = None,
        revisits: RevisitAnswers | None = None,
        kb_choice_floor: float = 0.3,
    ) -> None:
        self.pool = pool
        self.nlu = nlu
        self.kb = kb
        self.units = units
        self.clock = clock
        self.max_message_chars = max_message_chars
        self.kb_choice_floor = kb_choice_floor
        self.dispatcher = dispatcher or Dispatcher.with_defaults(units)
        self.revisits = revisits

    def validate(self, text: object) -> str:
        if not isinstance(text, str):
            raise InvalidMessage("bad_text", "text must be a string")
        if "\x00" in text:
            raise InvalidMessage("bad_text", "text must not contain NUL characters")
        if not text.strip():
            raise InvalidMessage("empty", "the message is empty")
        if len(text) > self.max_message_chars:
            raise InvalidMessage(
                "too_long",
                f"the message has {len(text)} characters; at most {self.max_message_chars} are accepted",
            )
        return text

    async def handle(self, inbound: Inbound) -> TurnResult:
        text = self.validate(inbound.text)
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                citizen_id = await citizens.for_identity(conn, inbound.channel, inbound.session_key)
                if inbound.phone:
                    citizen_id = await citizens.attach_phone(conn, citizen_id, inbound.phone)
                convo = await conversations.open_for_session(
                    conn, inbound.channel, inbound.session_key, citizen_id, now
                )
                stored = await messages.store_inbound(
                    conn, convo.id, text, inbound.client_message_id, now
                )
            if not stored.created:
                previous = await self._previous_result(conn, convo.id, stored.id)
                if previous is not None:
                    return previous

        parse = await asyncio.to_thread(self.nlu.parse, text)
        async with self.pool.acquire() as conn, conn.transaction():
            convo = await conversations.lock(conn, convo.id)
            if not stored.created:
                previous = await self._previous_result(conn, convo.id, stored.id)
                if previous is not None:
                    return previous
            await messages.set_nlu(conn, stored.id, parse.to_dict())
            dialogue = dict(convo.dialogue)
            turn = _Turn()
            if await self._answers_revisit(conn, dialogue, text, parse, turn):
                pass  # the verdict on the revisit asked in this chat, in any mode
            elif convo.mode == "agent":
                pass  # an agent has the conversation; the bot keeps quiet
            elif convo.mode == "waiting_agent" and parse.emergency is None:
                turn.replies.append(replies.WAITING_AGENT)
            else:
                await _Dialogue(self, conn, convo, inbound, stored.id, dialogue, turn).step(parse)
            mode = turn.mode or convo.mode
            await messages.store_replies(conn, convo.id, stored.id, turn.replies, "bot", now)
            await conversations.save_turn(conn, convo.id, dialogue, mode, turn.handoff_reason, now)
        return TurnResult(
            conversation_id=convo.id,
            message_id=stored.id,
            replies=turn.replies,
            request_number=turn.request_number,
            mode=mode,
            emergency=list(parse.emergency.numbers) if parse.emergency else None,
            nlu=parse.to_dict(),
        )

    async def _answers_revisit(
        self,
        conn: asyncpg.Connection,
        dialogue: dict[str, Any],
        text: str,
        parse: ParseResult,
        turn: _Turn,
    ) -> bool:
        """Whether the message answered a revisit question posted in this chat; an
        emergency is never taken for a verdict."""
        pending = list(dialogue.get(REVISITS_KEY, []))
        if not pending or self.revisits is None or parse.emergency is not None:
            return False
        reply = None
        while pending and reply is None:
            answer = await self.revisits.answer_in_chat(conn, int(pending[-1]), text)
            if answer.waiting:
                break  # not an answer
            pending.pop()
            reply = answer.reply
        if pending:
            dialogue[REVISITS_KEY] = pending
        else:
            dialogue.pop(REVISITS_KEY)
        if reply is None:
            return False
        turn.replies.append(reply)
        return True

    async def _previous_result(
        self, conn: asyncpg.Connection, convo_id: int, message_id: int
    ) -> TurnResult | None:
        """The result already given to this message, when it was handled before."""
        texts = await messages.replies_to(conn, message_id)
        order = await work_orders.by_source_message(conn, message_id)
        if not texts and order is None:
            return None
        mode = await conn.fetchval("SELECT mode FROM conversations WHERE id = $1", convo_id)
        return TurnResult(
            conversation_id=convo_id,
            message_id=message_id,
            replies=texts,
            request_number=order["request_number"] if order else None,
            duplicate=True,
            mode=mode,
        )


class _Dialogue:
    """One step of the dialogue state machine, for one conversation and one message."""

    def __init__(
        self,
        service: ConversationService,
        conn: asyncpg.Connection,
        convo: conversations.ConversationRow,
        inbound: Inbound,
        message_id: int,
        dialogue: dict[str, Any],
        turn: _Turn,
    ) -> None:
        self.s = service
        self.conn = conn
        self.convo = convo
        self.inbound = inbound
        self.message_id = message_id
        self.d = dialogue
        self.turn = turn

    @property
    def state(self) -> str:
        return self.d.get("state", "idle")

    def say(self, text: str) -> None:
        self.turn.replies.append(text)

    async def step(self, parse: ParseResult) -> None:
        # What overrides any state: danger, a request for a person, a cancel in the middle.
        if parse.emergency is not None:
            self.say(replies.emergency(parse.emergency.numbers))
            return
        if parse.problem in ("empty", "no_words"):
            self.say(replies.NOT_UNDERSTOOD)
            return
        if parse.intent == "human":
            self.handoff("asked_for_agent", replies.HANDOFF)
            return
        short = short_reply_intent(parse.text)
        answers_no = self.state in ("await_feedback", "await_kb_choice")  # "no" is an answer
        if self.state.startswith("await_") and not answers_no and short == "deny":
            self.d.pop("draft", None)
            self.d["state"] = "idle"
            self.say(replies.CANCELLED)
            return
        handler = {
            "await_location": self.on_location,
            "await_phone": self.on_phone,
            "await_confirm": self.on_confirm,
            "await_request_number": self.on_request_number,
            "await_feedback": self.on_feedback,
            "await_kb_choice": self.on_kb_choice,
        }.get(self.state, self.on_idle)
        await handler(parse)

    # -- idle ---------------------------------------------------------------------------

    async def on_idle(self, parse: ParseResult) -> None:
        self.d["state"] = "idle"
        if parse.entities.request_numbers:
            await self.report_progress(parse.entities.request_numbers[0])
            return
        intent = parse.intent
        if intent == "query_progress":
            await self.ask_request_number()
            return
        if intent in ("greet", "affirm"):
            self.unsure(reset=True)
            self.say(replies.GREETING)
            return
        if intent in ("goodbye", "deny"):
            self.say(replies.GOODBYE)
            return
        if intent == "referral":
            self.refer(parse)
            return
        if intent == "consult" and await self.answer_from_kb(parse):
            return
        if intent in REQUEST_TYPES:
            self.unsure(reset=True)
            await self.start_request(parse)
            return
        # out_of_scope, rate, or anything the bot cannot place
        if self.unsure() >= 2:
            self.handoff("bot_unsure", replies.HANDOFF_UNSURE)
        else:
            self.say(replies.NOT_UNDERSTOOD)

    def unsure(self, reset: bool = False) -> int:
        self.d["unsure"] = 0 if reset else int(self.d.get("unsure", 0)) + 1
        return self.d["unsure"]

    def handoff(self, reason: str, text: str) -> None:
        self.turn.mode = "waiting_agent"
        self.turn.handoff_reason = reason
        self.d["state"] = "idle"
        self.say(text)

    def refer(self, parse: ParseResult) -> None:
        area = parse.entities.address.area if parse.entities.address else None
        found = self.s.kb.refer(parse.text, area)
        if not found:
            self.say(replies.NO_PROVIDER)
            return
        lines = [
            f"{p.name}（{p.area or '全市'}，{p.hours or '营业时间请来电确认'}）电话：{p.phone}"
            for p in found
        ]
        self.say(replies.providers(lines))

    async def answer_from_kb(self, parse: ParseResult) -> bool:
        now = self.s.clock.now()
        # encoding the question is CPU work: keep it off the event loop
        with metrics.timed(metrics.KB_ANSWER):
            result = await asyncio.to_thread(self.s.kb.ask, parse.text, now.date())
        hit = result.answer
        if hit is None:
            # a gap in the base: editors see it; the request goes on as a work order
            top = result.candidates[0].entry.id if result.candidates else None
            await kb_store.record_miss(
                self.conn, parse.text, top, result.confidence, self.convo.id, now
            )
            if (
                result.candidates
                and result.confidence >= self.s.kb_choice_floor
                and self.convo.channel != "voice"  # three questions read out are too long
            ):
                # close but not sure: the citizen picks, the base does not guess
                self.d["state"] = "await_kb_choice"
                self.d["kb_choices"] = [c.entry.id for c in result.candidates[:3]]
                self.d["kb_question"] = parse.text
                self.say(replies.kb_choices([c.entry.question for c in result.candidates[:3]]))
                metrics.KB_OUTCOMES.labels(outcome="choices").inc()
                return True
            metrics.KB_OUTCOMES.labels(outcome="abstained").inc()
            return False
        await self.give_answer(hit.entry, parse.text, result.confidence)
        metrics.KB_OUTCOMES.labels(outcome="answered").inc()
        return True

    async def give_answer(self, entry: FaqEntry, question: str, confidence: float | None) -> None:
        self.say(entry.answer)
        self.say(replies.KB_FEEDBACK_QUESTION)
        self.d["state"] = "await_feedback"
        self.d["kb_entry"] = entry.id
        self.d["kb_question"] = question
        # written now, rated when the citizen answers: unrated answers count too
        self.d["kb_feedback_id"] = await kb_store.record_feedback(
            self.conn,
            entry.id,
            self.convo.id,
            None,
            self.s.clock.now(),
            question=question,
            confidence=confidence,
        )

    async def on_kb_choice(self, parse: ParseResult) -> None:
        choices: list[str] = self.d.pop("kb_choices", [])
        question: str = self.d.pop("kb_question", "")
        self.d["state"] = "idle"
        said = parse.text.strip().strip("。.!！ ")
        if said in ("取消", "算了"):
            self.say(replies.CANCELLED)
            return
        none_fit = said in _NONE_OF_THEM or short_reply_intent(parse.text) == "deny"
        picked = 0 if none_fit else _choice_number(parse.text)
        if picked is None:
            await self.on_idle(parse)  # a new message, not an answer to the list
            return
        entry = self.s.kb.entry(choices[picked - 1]) if 0 < picked <= len(choices) else None
        if entry is not None and entry.answerable_on(self.s.clock.now().date()):
            await self.give_answer(entry, question, None)
            return
        # none fits, or a number that is not on the list: what was asked becomes a request
        original = await asyncio.to_thread(self.s.nlu.parse, question)
        self.unsure(reset=True)
        await self.start_request(original)

    # -- filing a request ----------------------------------------------------------------

    async def start_request(self, parse: ParseResult) -> None:
        phone = self.inbound.phone or await citizens.phone_of(self.conn, self.convo.citizen_id)
        address = parse.entities.address
        draft = {
            "request_type": parse.request_type,
            "content": parse.text.strip(),
            "location": address.text if address else None,
            "address": _address_dict(address),
            "phone": (parse.entities.phones or [None])[0] or phone,
        }
        self.d["draft"] = draft
        if draft["request_type"] == "praise":
            await self.file()
            return
        await self.ask_next()

    async def ask_next(self) -> None:
        draft = self.d["draft"]
        if draft["request_type"] in NEEDS_LOCATION and not draft.get("location"):
            self.d["state"] = "await_location"
            self.say(replies.ASK_LOCATION)
        elif draft["request_type"] in NEEDS_PHONE and not draft.get("phone"):
            self.d["state"] = "await_phone"
            self.say(replies.ASK_PHONE)
        else:
            self.d["state"] = "await_confirm"
            lead = await self.s.dispatcher.preview(
                self.conn,
                draft["content"],
                draft.get("location"),
                draft.get("address"),
                self.route(draft),
            )
            self.say(replies.confirm(draft, self.s.units.name(lead) if lead else None))

    async def on_location(self, parse: ParseResult) -> None:
        draft = self.d["draft"]
        address = parse.entities.address
        draft["location"] = (address.text if address else parse.text.strip())[:MAX_LOCATION_CHARS]
        draft["address"] = _address_dict(address)
        if parse.entities.phones:
            draft["phone"] = parse.entities.phones[0]
        await self.ask_next()

    async def on_phone(self, parse: ParseResult) -> None:
        draft = self.d["draft"]
        if parse.entities.phones:
            draft["phone"] = parse.entities.phones[0]
            await self.ask_next()
        else:
            self.say(replies.ASK_PHONE_AGAIN)

    async def on_confirm(self, parse: ParseResult) -> None:
        draft = self.d["draft"]
        if short_reply_intent(parse.text) == "affirm":
            await self.file()
            return
        # anything else amends the draft: a new phone, a new place, or more words
        if parse.entities.phones:
            draft["phone"] = parse.entities.phones[0]
        elif (
            parse.entities.address
            and len(parse.entities.address.text) >= len(parse.text.strip()) - 4
        ):
            draft["location"] = parse.entities.address.text[:MAX_LOCATION_CHARS]
            draft["address"] = _address_dict(parse.entities.address)
        else:
            draft["content"] = f"{draft['content']}\n{parse.text.strip()}"
            draft.pop("units", None)
        await self.ask_next()

    def route(self, draft: dict) -> list[dict]:
        """The unit suggestions for a draft, from its words and its place together."""
        if "units" not in draft:
            text = draft["content"] + (f" {draft['location']}" if draft.get("location") else "")
            parse = self.s.nlu.parse(text)
            draft["units"] = [
                {
                    "code": u.code,
                    "probability": round(u.probability, 4),
                    "confident": i == 0 and parse.unit_confident,
                }
                for i, u in enumerate(parse.units)
            ]
        return draft["units"]

    async def file(self) -> None:
        draft = self.d.pop("draft")
        self.d["state"] = "idle"
        now = self.s.clock.now()
        units = self.route(draft)
        citizen_id = self.convo.citizen_id
        if draft.get("phone"):
            citizen_id = await citizens.attach_phone(self.conn, citizen_id, draft["phone"])
        order = await work_orders.create(
            self.conn,
            NewWorkOrder(
                citizen_id=citizen_id,
                conversation_id=self.convo.id,
                source_message_id=self.message_id,
                channel=self.inbound.channel,
                request_type=draft["request_type"],
                content=draft["content"],
                location=draft.get("location"),
                address=draft.get("address"),
                contact_phone=draft.get("phone"),
                suggestions=units,
            ),
            Actor(self.inbound.channel, "citizen"),
            now,
        )
        # who handles it (or the manual queue), repeats and time limits: services/dispatch/dispatcher.py
        intake = await self.s.dispatcher.intake(self.conn, order, now)
        lead = intake.decision.lead
        self.turn.request_number = order["request_number"]
        if draft["request_type"] == "praise":
            self.say(replies.praise_filed(order["request_number"]))
        else:
            self.say(
                replies.filed(
                    order["request_number"],
                    draft["request_type"],
                    self.s.units.name(lead) if lead else None,
                )
            )
        if intake.repeat is not None:
            self.say(
                replies.repeat_noted(
                    intake.repeat.root_number, intake.repeat.reports, bool(intake.repeat.escalated)
                )
            )

    # -- progress and feedback ----------------------------------------------------------

    async def ask_request_number(self) -> None:
        own = await work_orders.of_citizen(self.conn, self.convo.citizen_id)
        if own:
            lines = [f"{o['request_number']}：{states.STATUS_LABELS[o['status']]}" for o in own]
            self.say(replies.own_orders(lines))
        self.d["state"] = "await_request_number"
        self.say(replies.ASK_REQUEST_NUMBER)

    async def on_request_number(self, parse: ParseResult) -> None:
        if parse.entities.request_numbers:
            await self.report_progress(parse.entities.request_numbers[0])
            return
        self.d["state"] = "idle"
        await self.on_idle(parse)

    async def report_progress(self, number: str) -> None:
        self.d["state"] = "idle"
        order = await work_orders.by_number(self.conn, number)
        if order is None:
            self.say(replies.not_found(number))
            return
        unit = self.s.units.name(order["lead_unit"]) if order["lead_unit"] else None
        self.say(replies.progress(number, states.STATUS_LABELS[order["status"]], unit))

    async def on_feedback(self, parse: ParseResult) -> None:
        entry_id = self.d.pop("kb_entry", None)
        question = self.d.pop("kb_question", None)
        feedback_id = self.d.pop("kb_feedback_id", None)
        self.d["state"] = "idle"
        helpful = helpful_reply(parse.text, short_reply_intent(parse.text))
        if entry_id and helpful is not None:
            if feedback_id is not None:
                await kb_store.set_feedback(self.conn, feedback_id, helpful, self.s.clock.now())
            else:
                await kb_store.record_feedback(
                    self.conn, entry_id, self.convo.id, helpful, self.s.clock.now()
                )
            if helpful:
                self.say(replies.FEEDBACK_THANKS)
            else:
                self.d["last_unanswered"] = question
                self.say(replies.FEEDBACK_SORRY)
            return
        await self.on_idle(parse)


_NONE_OF_THEM = frozenset({"都不是", "都不对", "都没有", "没有", "不是这些", "以上都不是"})


def _choice_number(text: str) -> int | None:
    """A reply that is just a number ("2", "２", "第2个", "0"), else None."""
    digits = unicodedata.normalize("NFKC", text).strip().strip("。.!！ ").removeprefix("第")
    digits = digits.removesuffix("个").removesuffix("条")
    return int(digits) if digits.isdigit() and len(digits) <= 2 else None


def _address_dict(address: Any) -> dict | None:
    if address is None:
        return None
    return {k: v for k, v in address.__dict__.items() if v is not None}
