"""The conversation service: one turn of any channel, from inbound text to replies.

Every inbound message is stored verbatim (in its own transaction) before anything else
happens, so nothing a citizen sent is lost if a later step fails; the client message id
makes a resend return the replies already given instead of acting twice. Then one turn runs
with the conversation row locked, so the messages of one conversation are handled in order.

The dialogue is an explicit state machine kept in `conversations.dialogue`. Every reply in a
waiting state is read as a dialogue act in that state (nlu/dialogue_acts.py: affirm, deny,
cancel, correct, provide_info, thanks, not_resolved, choose, ask_human, new_request,
emergency), not by exact words:

    idle ──request──▶ await_location ──▶ await_phone ──▶ await_confirm ──affirm──▶ idle (filed)
      │   (each step is skipped when the detail is known: a place or phone of any earlier
      │    turn counts; a place given for the phone is used; correct/deny at the read-back
      │    change the draft and read it back again; cancel drops it in any waiting state)
      ├──"我要投诉" alone──▶ await_details ──the matter──▶ (as a request)
      ├──consult answered──▶ await_feedback ──thanks──▶ idle (rated helpful, nothing filed)
      │                                      └──not_resolved──▶ await_offer ──affirm──▶ the
      │                                           question filed as a consultation
      │                                           ──ask_human──▶ waiting_agent ──cancel──▶ idle
      ├──consult, base unsure (text chat)──▶ await_kb_choice ──choose──▶ await_feedback
      │                                        └──deny (none fits)──▶ filed as a request
      ├──progress without a number──▶ await_request_number ──▶ idle
      └──人工 / ask_human / unsure twice──▶ conversation mode waiting_agent (the bot stops)

An emergency interrupts any state (advice to call 110/119/120; nothing is filed).

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
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import numpy as np

from knowledgebase import store as kb_store
from knowledgebase.models import FaqEntry
from knowledgebase.service import KnowledgeBase
from nlu.builtin import routing_score
from nlu.dialogue_acts import RATINGS, DialogueAct, DialogueActModel, default_model
from nlu.emergency import cues as emergency_cues
from nlu.types import REQUEST_TYPES, Engine, ParseResult
from services.conversation import replies
from services.conversation.details import (
    EXTRA_WORDS,
    MAX_LOCATION_CHARS,
    about_place,
    add_matter,
    all_clear,
    announced_type,
    announces_only,
    apply_correction,
    asks_for_person,
    calls_emergency,
    choice_number,
    clauses,
    compact,
    extra_words,
    goes_ahead,
    own_number,
    routing_text,
    said_number,
    submits_with_remark,
    take_details,
    takes_back,
    thin_matter,
)
from services.conversation.named_units import NamedUnits
from services.core import metrics
from services.core.clock import Clock
from services.core.errors import ServiceError
from services.core.unit_directory import UnitDirectory
from services.dispatch.dispatcher import Dispatcher
from services.orders import states
from services.revisits.chat import REVISITS_KEY
from services.revisits.service import read_sms_answer
from services.storage import citizens, conversations, messages, work_orders
from services.storage.work_orders import Actor, NewWorkOrder

if TYPE_CHECKING:
    from services.revisits.service import ChatAnswer

log = logging.getLogger(__name__)

NEEDS_LOCATION = {"complain", "report", "seek_help"}
NEEDS_PHONE = {"complain", "report", "seek_help", "suggest", "consult"}


class InvalidMessage(ServiceError):
    """A message that cannot be accepted at all; nothing of it is stored."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code=code, status=413 if code == "too_long" else 400)


class RevisitAnswers(Protocol):
    """The revisit service (services/revisits/service.py), as far as a chat turn needs it."""

    async def answer_in_chat(
        self,
        conn: asyncpg.Connection,
        revisit_id: int,
        text: str,
        reading: tuple[str, str | None] | None = None,
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
    act: DialogueAct | None = None  # how a reply in a waiting state was read
    # the message classifier's alarm overruled: a reply read in its state, no danger named
    calm: bool = False
    advised: tuple[str, ...] | None = None  # the emergency numbers the bot told to call


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
        acts: DialogueActModel | None = None,
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
        # replies in a waiting state, read with the state (trained once per process)
        self.acts = acts or default_model()
        self.named_units = NamedUnits(units)

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
                # a session's later messages: its open conversation is all this needs (one
                # query, not three); a first message, or a phone to attach, goes the long way
                convo = (
                    None
                    if inbound.phone
                    else await conversations.open_of_session(
                        conn, inbound.channel, inbound.session_key
                    )
                )
                if convo is None:
                    convo = await self._open(conn, inbound, now)
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
            # once: dataclasses.asdict copies every field deeply
            parsed = parse.to_dict()
            await messages.set_nlu(conn, stored.id, parsed)
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
            emergency=list(turn.advised) if turn.advised else alarm_of(parse, turn, mode),
            nlu=parsed | ({"dialogue_act": asdict(turn.act)} if turn.act else {}),
        )

    async def _open(
        self, conn: asyncpg.Connection, inbound: Inbound, now: datetime
    ) -> conversations.ConversationRow:
        """The session's citizen (created on first contact, with the phone the channel
        vouches for) and open conversation (created when there is none)."""
        citizen_id = await citizens.for_identity(conn, inbound.channel, inbound.session_key)
        if inbound.phone:
            citizen_id = await citizens.attach_phone(conn, citizen_id, inbound.phone)
        return await conversations.open_for_session(
            conn, inbound.channel, inbound.session_key, citizen_id, now
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
        reading = self.read_rating(parse, turn)
        if reading is None:
            return False  # not an answer: handled as usual, the questions still open
        reply = None
        while pending and reply is None:
            answer = await self.revisits.answer_in_chat(conn, int(pending[-1]), text, reading)
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

    def read_rating(self, parse: ParseResult, turn: _Turn) -> tuple[str, str | None] | None:
        """A reply to the revisit question read as a dialogue act in the revisit state: the
        rating, and the reply as its comment when it says more than the rating ("3 还是很吵"
        keeps 还是很吵; "还是老样子" is the comment of a 3). None when it is no rating."""
        digits = read_sms_answer(parse.text)
        if digits is not None:
            return digits  # the digits the question asks for, read as the SMS reply is
        found = self.acts.classify(parse.text, "revisit", parse.entities)
        if found.act not in RATINGS or found.confidence < RATING_CONFIDENCE:
            return None
        turn.act = found
        said = parse.text.strip()
        return found.act, (said if len(compact(said)) > RATING_WORDS else None)

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

    def advise(self, numbers: tuple[str, ...]) -> None:
        self.turn.advised = numbers
        self.say(replies.emergency(numbers))

    def act(self, parse: ParseResult, family: str) -> DialogueAct:
        found = self.s.acts.classify(parse.text, family, parse.entities)
        log.debug("dialogue act %s (%.2f) in %s", found.act, found.confidence, family)
        self.turn.act = found
        return found

    async def step(self, parse: ParseResult) -> None:
        if self.calls_for_help_instead(parse):
            # "好好好，我打119" to a question about a matter that came after emergency advice:
            # the citizen is calling the emergency service; nothing is filed
            self.d.pop("draft", None)
            self.d["state"] = "idle"
            self.say(replies.AFTER_EMERGENCY)
            return
        if parse.emergency is not None and self.a_reply_not_an_alarm(parse):
            self.turn.calm = True
            parse = replace(parse, emergency=None)
        # Danger overrides any state; the draft (if any) waits where it was.
        if parse.emergency is not None:
            self.advise(named_first(parse.emergency.numbers, parse.text))
            await self.after_emergency_advice(parse)
            return
        if parse.problem in ("empty", "no_words"):
            self.say(replies.NOT_UNDERSTOOD)
            return
        family = _STATE_FAMILY.get(self.state)
        if family is None:
            if parse.intent == "human":
                if self.wants_a_person(parse):
                    self.handoff("asked_for_agent", replies.HANDOFF)
                    return
                # not a person wanted: what kind of request the message is, then
                parse = replace(parse, intent=parse.request_type)
            await self.on_idle(parse)
            return
        # A reply in a waiting state is read as a dialogue act in that state.
        act = self.act(parse, family)
        if act.act != "ask_human" and asks_for_person(parse.text):
            # "不对，你理解错了…算了，转人工吧": the wish for a person wins over the rest
            act = replace(act, act="ask_human")
            self.turn.act = act
        if (
            act.act == "emergency"
            and act.confidence >= EMERGENCY_ACT_CONFIDENCE
            and not all_clear(parse.text)
        ):
            self.advise(named_first(emergency_numbers(parse.text), parse.text))
            return
        forwards = act.act == "ask_human" or (
            self.state in ("await_feedback", "await_offer", "await_kb_choice")
            and act.act in ("not_resolved", "deny", "affirm")
        )
        if forwards and await self.forward_to_named_unit(parse):
            return
        if act.act == "ask_human":
            if self.state == "await_feedback":
                await self.rate_answer(False)
            self.handoff("asked_for_agent", replies.HANDOFF)
            return
        if act.act == "cancel" and self.state not in (
            "await_feedback",
            "await_offer",
            "await_after_emergency",
        ):
            self.d.pop("draft", None)
            self.d.pop("kb_choices", None)
            self.d["state"] = "idle"
            self.say(replies.CANCELLED)
            return
        handler = {
            "await_details": self.on_details,
            "await_location": self.on_location,
            "await_phone": self.on_phone,
            "await_confirm": self.on_confirm,
            "await_feedback": self.on_feedback,
            "await_offer": self.on_offer,
            "await_kb_choice": self.on_kb_choice,
            "await_request_number": self.on_request_number,
            "await_after_emergency": self.on_after_emergency,
        }[self.state]
        await handler(parse, act)

    # -- after emergency advice ----------------------------------------------------------

    async def after_emergency_advice(self, parse: ParseResult) -> None:
        """What the advice leaves of the dialogue. A phone or place said with it is kept for
        the draft being filled, which goes on; a message that started nothing is kept, in case
        the citizen goes on with its place or phone: then it was a matter for 12345 after all
        ("打她的就行" is no assault, "老人中午没地方吃饭" no medical emergency)."""
        draft = self.d.get("draft")
        if draft is not None and self.state in ("await_location", "await_phone"):
            if take_details(draft, parse, replace=True):
                # the reply's other words are kept as any slot reply's are (the classifier
                # also fires on long place replies: "在…村 那个 后面那条巷子 就那条")
                family = _STATE_FAMILY[self.state]
                self.more_of_the_matter(parse, self.act(parse, family))
                await self.ask_next()
            return
        if self.state == "idle":
            self.remember_details(parse)
            self.d["state"] = "await_after_emergency"
            self.d["emergency_text"] = parse.text
        elif self.state == "await_after_emergency":
            # more about the same matter ("现在没在打了，是昨晚的事"): kept with the first words,
            # in case it turns out to be a matter for 12345
            self.remember_details(parse)
            first = self.d.get("emergency_text", "")
            self.d["emergency_text"] = f"{first}\n{parse.text}".strip()

    async def on_after_emergency(self, parse: ParseResult, act: DialogueAct) -> None:
        """The reply to emergency advice given to a first message: "好，我马上打" ends it; the
        place or phone of the matter (or a correction) makes the first message a request."""
        first = self.d.pop("emergency_text", "")
        self.d["state"] = "idle"
        details = bool(parse.entities.address or parse.entities.phones)
        # "大概十几桶 塑料桶装的": more about the same matter, not a new one; not when it
        # names a danger or the call the citizen is making ("他还在砸门", "我打了110")
        more = (
            act.act == "new_request"
            and not emergency_cues(parse.text)
            and not calls_emergency(parse.text)
        )
        if first and (
            act.act in ("provide_info", "correct") or more or (details and act.act != "affirm")
        ):
            self.remember_details(parse)
            original = await asyncio.to_thread(self.s.nlu.parse, first)
            if more or extra_words(parse) >= AFTER_ADVICE_WORDS:
                # "现在没动静了，是昨晚的事，在…": more about the matter, kept with it
                original = replace(original, text=f"{first}\n{parse.text.strip()}")
            if original.request_type in REQUEST_TYPES:
                self.unsure(reset=True)
                await self.start_request(original)
                if "draft" in self.d:
                    self.d["draft"]["after_alarm"] = True
                return
        if act.act in ("affirm", "thanks", "deny", "cancel"):
            self.say(replies.AFTER_EMERGENCY)
            return
        await self.on_idle(parse)

    # -- idle ---------------------------------------------------------------------------

    async def on_idle(self, parse: ParseResult) -> None:
        self.d["state"] = "idle"
        self.remember_details(parse)
        if parse.entities.request_numbers and not await self.matter_beside_old_number(parse):
            await self.report_progress(parse.entities.request_numbers[0])
            return
        if parse.entities.phones and extra_words(parse) <= PHONE_ONLY_CHARS:
            # a phone (and maybe a place) alone is no matter: kept for the one that follows
            # (after a filing, "电话 一三七…" would otherwise be filed as a question)
            self.say(replies.DETAILS_NOTED)
            return
        kind = announced_type(parse.text)
        if kind is not None:
            # "我要投诉" alone: the matter comes next, and it is the order's text
            self.d["announced"] = kind
            self.d["state"] = "await_details"
            self.say(replies.ASK_DETAILS)
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
        if intent == "praise" and self.thanks_to_bot(parse):
            # "谢谢，知道了" thanks the bot: praise is for a unit or a person's work
            self.say(replies.YOU_ARE_WELCOME)
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

    async def matter_beside_old_number(self, parse: ParseResult) -> bool:
        """A repeat complaint quotes the number of an earlier request this centre does not
        hold ("上次投诉编号20240521-0146，回复说已处理，结果照旧…"): the matter is the message,
        not a progress question. A number this centre holds is still answered with its
        progress."""
        if parse.intent not in REQUEST_TYPES or parse.intent == "consult":
            return False
        rest = parse.text
        for number in parse.entities.request_numbers:
            rest = rest.replace(number, "")
        if len(compact(rest)) < OLD_NUMBER_MATTER_CHARS:
            return False
        for number in parse.entities.request_numbers:
            if await work_orders.by_number(self.conn, number) is not None:
                return False
        return True

    def wants_a_person(self, parse: ParseResult) -> bool:
        """The message classifier's "human", checked by the dialogue acts: "我要投诉" is a
        request, not a wish for an agent."""
        return self.s.acts.classify(parse.text, "confirm", parse.entities).act == "ask_human"

    def thanks_to_bot(self, parse: ParseResult) -> bool:
        if len(compact(parse.text)) > THANKS_TO_BOT_CHARS:
            return False  # thanks told at length name a unit or a person and what they did
        found = self.s.acts.classify(parse.text, "kb_answer", parse.entities)
        return found.act == "thanks" and found.confidence >= 0.5

    def remember_details(self, parse: ParseResult) -> None:
        """A place or phone said before the request (or beside a question) is kept for the
        request that may follow."""
        known = self.d.setdefault("known", {})
        take_details(known, parse, replace=True)
        if not known:
            self.d.pop("known")

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
            if result.candidates and result.confidence >= self.s.kb_choice_floor:
                # on the phone: the closest entry, named, and its answer; the caller says
                # whether it helped, and an unhelpful one is offered as a consultation
                entry = result.candidates[0].entry
                if entry.answerable_on(now.date()):
                    self.say(replies.closest_answer(entry.question))
                    await self.give_answer(entry, parse.text, result.confidence, sure=False)
                    metrics.KB_OUTCOMES.labels(outcome="closest").inc()
                    return True
            metrics.KB_OUTCOMES.labels(outcome="abstained").inc()
            return False
        await self.give_answer(hit.entry, parse.text, result.confidence)
        metrics.KB_OUTCOMES.labels(outcome="answered").inc()
        return True

    async def give_answer(
        self, entry: FaqEntry, question: str, confidence: float | None, *, sure: bool = True
    ) -> None:
        """`sure`: the base was sure of the entry, or the citizen picked it; then the entry's
        unit is the one to answer the question if the answer did not help."""
        self.say(entry.answer)
        if sure and entry.unit:
            self.d["kb_unit"] = entry.unit
        else:
            self.d.pop("kb_unit", None)
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

    async def on_kb_choice(self, parse: ParseResult, act: DialogueAct) -> None:
        choices: list[str] = self.d.pop("kb_choices", [])
        question: str = self.d.pop("kb_question", "")
        self.d["state"] = "idle"
        if act.act == "new_request" or (act.act not in ("choose", "deny")):
            await self.on_idle(parse)  # a new message, not an answer to the list
            return
        picked = 0 if act.act == "deny" else choice_number(parse.text, len(choices))
        if picked is None:
            await self.on_idle(parse)
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

    async def start_request(
        self,
        parse: ParseResult,
        request_type: str | None = None,
        *,
        agreed: bool = False,
        kb_unit: str | None = None,
    ) -> None:
        phone = self.inbound.phone or await citizens.phone_of(self.conn, self.convo.citizen_id)
        known = self.d.pop("known", {})
        draft: dict[str, Any] = {
            "request_type": request_type or parse.request_type,
            "content": parse.text.strip(),
            "matter": [parse.text.strip()],
            "location": known.get("location"),
            "address": known.get("address"),
            "phone": known.get("phone") or phone,
        }
        if kb_unit:
            draft["kb_unit"] = kb_unit  # the unit of the entry that answered the question
        take_details(draft, parse, replace=True)
        self.d["draft"] = draft
        await self.ask_next(agreed=agreed)

    async def on_details(self, parse: ParseResult, act: DialogueAct) -> None:
        """The turn after a bare announcement: the matter itself, the order's text."""
        if announces_only(parse.text):
            self.say(replies.ASK_DETAILS)
            return
        kind = self.d.pop("announced", "")
        self.d["state"] = "idle"
        self.remember_details(parse)
        if kind in REQUEST_TYPES and kind != "consult":
            self.unsure(reset=True)
            await self.start_request(parse, request_type=kind)
            return
        await self.on_idle(parse)  # a question, or a matter whose kind the words tell

    async def ask_next(self, *, agreed: bool = False) -> None:
        """Ask for what is missing, else read the draft back; `agreed`: the citizen has
        just asked for it to be filed, so with nothing missing it is filed at once."""
        draft = self.d["draft"]
        if draft["request_type"] in NEEDS_LOCATION and not draft.get("location"):
            self.d["state"] = "await_location"
            self.say(replies.ASK_LOCATION)
        elif (
            draft["request_type"] in NEEDS_PHONE
            and not draft.get("phone")
            and not draft.get("phone_declined")
        ):
            self.d["state"] = "await_phone"
            draft["phone_asks"] = int(draft.get("phone_asks", 0)) + 1
            self.say(replies.ASK_PHONE)
        elif agreed:
            await self.file()
        else:
            self.d["state"] = "await_confirm"
            lead = await self.s.dispatcher.preview(
                self.conn,
                draft["content"],
                draft.get("location"),
                draft.get("address"),
                await self.route(draft),
            )
            self.say(replies.confirm(draft, self.s.units.name(lead) if lead else None))

    def asked_again(self, what: str) -> int:
        """How many times the bot asked for `what` in this draft without getting it."""
        draft = self.d["draft"]
        draft[f"asked_{what}"] = int(draft.get(f"asked_{what}", 0)) + 1
        return draft[f"asked_{what}"]

    def more_of_the_matter(self, parse: ParseResult, act: DialogueAct) -> None:
        """Words beyond the detail asked for ("在市医院 三楼那个医生态度很差") belong to
        the matter: they are added to the draft's text."""
        draft = self.d["draft"]
        if act.act in ("new_request", "correct"):
            add_matter(draft, parse.text)
        elif extra_words(parse) >= EXTRA_WORDS:
            # kept for the agents; a slot reply's words choose the unit only when the
            # request itself said little more than its kind ("我要投诉一个医生")
            add_matter(draft, parse.text, routed=thin_matter(draft))

    async def on_location(self, parse: ParseResult, act: DialogueAct) -> None:
        draft = self.d["draft"]
        taken = take_details(draft, parse, replace=True)
        if taken:
            self.more_of_the_matter(parse, act)
        if "location" not in taken:
            if act.act in ("new_request", "correct") and self.asked_again("location") < 2:
                # more about the matter, not the place: keep the words, ask for the place again
                add_matter(draft, parse.text)
            elif act.act == "affirm" and self.asked_again("location") < 2:
                self.say(replies.ASK_LOCATION)
                return
            else:
                # the place as the citizen says it, even without a place word
                draft["location"] = parse.text.strip()[:MAX_LOCATION_CHARS]
                draft["address"] = None
        await self.ask_next()

    async def on_phone(self, parse: ParseResult, act: DialogueAct) -> None:
        draft = self.d["draft"]
        taken = take_details(draft, parse, replace=True)
        if taken:
            self.more_of_the_matter(parse, act)
        if "phone" in taken:
            await self.ask_next()
            return
        fixes_place = act.act == "correct" or (
            act.act == "provide_info" and about_place(parse.text)
        )
        if fixes_place and apply_correction(draft, parse, self.place_of) == "location":
            await self.ask_next()  # "地址说错了，是…": changed, and the phone asked again
            return
        if act.act == "deny":
            draft["phone_declined"] = True  # an anonymous request is still filed
            await self.ask_next()
            return
        said = said_number(parse.text)
        unread = draft.get("phone_said")  # a number said before, kept below
        if draft["request_type"] != "consult" and not said and not unread:
            # Not a question: the unit answers it by phone, and "好 按呢就好" there ends it
            if self.goes_on_without_phone(parse, act):
                more = act.act in ("new_request", "correct") or extra_words(parse) >= EXTRA_WORDS
                if more and not taken:  # "对 七点半那时候 提交" (with a place: kept above)
                    add_matter(draft, parse.text, routed=False)
                draft["phone_declined"] = True
                await self.ask_next(agreed=True)
                return
            if own_number(parse.text):
                # "就打我这个号码": there is no number to take here; read back without one
                draft["phone_declined"] = True
                self.say(replies.NO_NUMBER_SEEN)
                await self.ask_next()
                return
        if "location" in taken:
            await self.ask_next()  # a place given instead: used, and the phone asked again
            return
        if act.act in ("new_request", "correct") and not parse.entities.phones:
            add_matter(draft, parse.text)
            await self.ask_next()
            return
        if said:
            draft["phone_said"] = said  # a number, but not a valid one: kept as said
        tries = self.asked_again("phone")
        if tries >= 3 or (draft.get("phone_said") and (tries >= 2 or act.act == "affirm")):
            # asked again and still unreadable, or "对，就是这个": the number as said goes in
            # the order's text for the agents, and the request goes on without a phone
            if draft.get("phone_said"):
                add_matter(draft, f"（联系电话，按原话：{draft.pop('phone_said')}）", routed=False)
            draft["phone_declined"] = True
            await self.ask_next(agreed=act.act == "affirm")
            return
        draft["phone_asks"] = int(draft.get("phone_asks", 0)) + 1
        self.say(replies.ASK_PHONE_AGAIN)

    def calls_for_help_instead(self, parse: ParseResult) -> bool:
        draft = self.d.get("draft") or {}
        return (
            bool(draft.get("after_alarm"))
            and calls_emergency(parse.text)
            and not (goes_ahead(parse.text))
        )

    def goes_on_without_phone(self, parse: ParseResult, act: DialogueAct) -> bool:
        """ "确认，提交吧" where the phone was asked, or a yes after the phone was asked twice:
        the citizen goes on without one. A bare "好的" to the first ask may come before the
        number, and is asked again."""
        if act.act not in ("affirm", "new_request", "provide_info"):
            return False
        if goes_ahead(parse.text):
            return True
        # a sure yes only: "好吧 那我再想想" is none
        return (
            act.act == "affirm"
            and act.confidence >= YES_FIRST_CONFIDENCE
            and int(self.d["draft"].get("phone_asks", 0)) >= 2
        )

    async def on_confirm(self, parse: ParseResult, act: DialogueAct) -> None:
        draft = self.d["draft"]
        if act.act == "affirm":
            # "对，电话是…": read back again with the new number. Only a phone: the place
            # reader finds places in remarks ("提交，让镇政府管一管") that are none.
            new_phone = parse.entities.phones[-1] if parse.entities.phones else None
            if new_phone is None or new_phone == draft.get("phone"):
                if self.yes_then_remark(parse, sure_yes=True):
                    add_matter(draft, parse.text, routed=False)  # "好，提交，另外…": kept
                await self.file()
                return
            draft["phone"] = new_phone
            await self.ask_next()
            return
        if act.act == "thanks":
            if draft["request_type"] == "consult":
                # "知道了，谢谢": the citizen has what they asked for; nothing to file
                self.d.pop("draft", None)
                self.d["state"] = "idle"
                self.say(replies.NOT_FILED)
                return
            await self.file()  # "好的，谢谢" to a complaint read back: a yes
            return
        if act.act == "deny":
            self.say(replies.ASK_WHAT_TO_CHANGE)
            return
        if act.act != "cancel" and not parse.entities.phones and submits_with_remark(parse.text):
            # "你把早上六点到九点写进去，写了就提交": filed, the words kept as a remark
            add_matter(draft, parse.text, routed=False)
            await self.file()
            return
        # a place told after the yes ("对，在湖滨街道那边") is a detail, read back again
        detail = act.act == "provide_info" and parse.entities.address is not None
        if act.act in YES_FIRST_ACTS and not detail and self.yes_then_remark(parse):
            # "行，提交，顺便说一句…": a yes, and a remark the agents read
            add_matter(draft, parse.text, routed=False)
            await self.file()
            return
        # a correction, a detail, or more words: the draft changes and is read back again
        changed = apply_correction(draft, parse, self.place_of)
        if changed == "phone_unreadable":
            self.say(replies.ASK_PHONE_AGAIN)
            return
        await self.ask_next()

    def yes_then_remark(self, parse: ParseResult, *, sure_yes: bool = False) -> bool:
        """A reply to the read-back that opens with a yes and goes on about something else:
        its first part (or two, when the first is one character: "行 提交") is read alone.
        Not when it gives a phone or speaks of the place or phone: that is a correction."""
        text = parse.text
        if parse.entities.phones or about_place(text) or said_number(text):
            return False
        parts = clauses(text)
        if len(parts) < 2:
            return False
        # the first part alone ("对，我要退钱…"), then the first two ("行 提交 …")
        heads = [parts[0]] + ([" ".join(parts[:2])] if len(compact(parts[0])) == 1 else [])
        for head in heads:
            rest = compact(text)[len(compact(head)) :]
            if len(rest) < REMARK_CHARS or takes_back(rest):
                continue  # nothing to speak of beside the yes, or it goes on to correct
            if sure_yes:
                return True
            found = self.s.acts.classify(head, "confirm", None)
            if found.act == "affirm" and found.confidence >= YES_FIRST_CONFIDENCE:
                return True
        return False

    def a_reply_not_an_alarm(self, parse: ParseResult) -> bool:
        """In a waiting state the message classifier fires on replies that name no danger
        ("对对 快点叫人来", "是啦 你帮我报上去 叫伊卡紧来收", a long place reply): when the
        reply names no kind of danger and reads as an ordinary answer in its state, it is
        that answer. A danger named in words keeps the advice."""
        family = _STATE_FAMILY.get(self.state)
        if family is None:
            return False
        if all_clear(parse.text):
            return True  # "没有没有，没人受伤": the reply says there is no danger
        named = emergency_cues(parse.text)
        if any(kind != "help" for kind, _ in named):
            return False
        found = self.s.acts.classify(parse.text, family, parse.entities)
        # a reply naming no sign of danger at all ("对 嗯 赶快来锯掉") needs a less sure act
        sure = CALM_ACT_CONFIDENCE if named else CALM_ACT_CONFIDENCE_NO_SIGN
        return found.act in CALM_ACTS and found.confidence >= sure

    async def forward_to_named_unit(self, parse: ParseResult) -> bool:
        """ "帮我转给工信局", "能不能让人社局的人给我打个电话": the citizen asks for the matter
        to go to a unit they name, not for an agent here. The draft (or the question the base
        did not answer, as a consultation) goes on with that unit leading. False when no
        unit is named ("转人工"): the usual hand-over."""
        code = self.s.named_units.forwarding_to(parse.text)
        if code is None or code not in self.s.units:
            return False
        draft = self.d.get("draft")
        if draft is not None:
            draft["kb_unit"] = code  # the unit that answers it leads (route())
            draft.pop("units", None)
            take_details(draft, parse, replace=True)
            await self.ask_next()
            return True
        question = self.d.get("kb_question")
        if self.state not in ("await_feedback", "await_offer", "await_kb_choice") or not question:
            return False
        if self.state == "await_feedback":
            await self.rate_answer(False)
        for key in ("kb_question", "kb_unit", "kb_choices"):
            self.d.pop(key, None)
        self.d["state"] = "idle"
        self.remember_details(parse)
        self.unsure(reset=True)
        original = await asyncio.to_thread(self.s.nlu.parse, question)
        await self.start_request(original, request_type="consult", kb_unit=code)
        return True

    def place_of(self, text: str) -> Any:
        return self.s.nlu.parse(text).entities.address

    async def route(self, draft: dict) -> list[dict]:
        """The unit suggestions for a draft: from what the citizen said about the matter
        over the turns, and the area of its place (details.routing_text). Worked out again
        whenever that text changes (more words, another place)."""
        text = routing_text(draft)
        if "units" not in draft or draft.get("routed_on") != text:
            # a whole parse: CPU work, off the event loop like the message's own
            parse = await asyncio.to_thread(self.s.nlu.parse, text)
            draft["routed_on"] = text
            draft["units"] = [
                {
                    "code": u.code,
                    "probability": round(u.probability, 4),
                    "confident": i == 0 and parse.unit_confident,
                }
                for i, u in enumerate(parse.units)
            ]
            if draft["units"] and not draft["units"][0]["confident"]:
                second = self.second_look(draft, text)
                if second is not None:
                    others = [
                        dict(u, confident=False) for u in draft["units"] if u["code"] != second
                    ]
                    draft["units"] = [{"code": second, "probability": None, "confident": True}]
                    draft["units"] += others[:2]
            kb_unit = draft.get("kb_unit")
            if kb_unit and kb_unit in self.s.units:
                # a consultation the base answered (sure, or picked by the citizen) without
                # helping: the unit that answers that question leads
                others = [dict(u, confident=False) for u in draft["units"] if u["code"] != kb_unit]
                draft["units"] = [{"code": kb_unit, "probability": None, "confident": True}]
                draft["units"] += others[:2]
        return draft["units"]

    def second_look(self, draft: dict, text: str) -> str | None:
        """When the router abstains on the matter, what the conversation knows beside it
        (measured in docs/dialogue.md, routing abstentions). None: the order waits in the
        dispatcher's queue.

        * A unit the citizen names ("城管", "人社局") that the router also ranks (top 3).
        * A department on top whose lead was diluted by the town of the place: the routing
          text ends with the place's area name so that a town's own matter finds its town,
          and on a department's matter that name draws probability to the town. Without
          the town, the department must pass the router's own abstain rule and threshold
          (the town assists a department's local matter anyway, dispatcher 条块 rule)."""
        units = draft["units"]
        named = self.s.named_units.named(text)
        if named is not None and named in [u["code"] for u in units[:3]]:
            return named
        local = (draft.get("address") or {}).get("territorial_unit")
        threshold = getattr(self.s.nlu, "unit_threshold", None)
        if not local or threshold is None or units[0]["code"] == local:
            return None
        town = [u for u in units[1:] if u["code"] == local and u.get("probability") is not None]
        if not town or units[0].get("probability") is None or town[0]["probability"] >= 1:
            return None
        rest = [u["probability"] for u in units if u["code"] != local and u.get("probability")]
        scaled = np.array([[p / (1 - town[0]["probability"]) for p in rest] + [0.0]])
        rule = getattr(self.s.nlu, "abstain_rule", "probability")
        if float(routing_score(scaled, rule)[0]) >= threshold:
            return units[0]["code"]
        return None

    async def file(self) -> None:
        draft = self.d.pop("draft")
        self.d["state"] = "idle"
        now = self.s.clock.now()
        units = await self.route(draft)
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
            if not draft.get("phone"):
                self.say(replies.FILED_WITHOUT_PHONE)
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

    async def on_request_number(self, parse: ParseResult, act: DialogueAct) -> None:
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

    async def rate_answer(self, helpful: bool) -> None:
        """The citizen's verdict on the answer just given (the row was written with it)."""
        entry_id = self.d.pop("kb_entry", None)
        feedback_id = self.d.pop("kb_feedback_id", None)
        if entry_id is None:
            return
        if feedback_id is not None:
            await kb_store.set_feedback(self.conn, feedback_id, helpful, self.s.clock.now())
        else:
            await kb_store.record_feedback(
                self.conn, entry_id, self.convo.id, helpful, self.s.clock.now()
            )

    async def on_feedback(self, parse: ParseResult, act: DialogueAct) -> None:
        self.d["state"] = "idle"
        kb_unit = self.d.pop("kb_unit", None)
        if act.act in ("thanks", "affirm"):
            await self.rate_answer(True)
            self.d.pop("kb_question", None)
            self.say(replies.FEEDBACK_THANKS)
            return
        question = self.d.get("kb_question")
        gives_details = bool(parse.entities.address or parse.entities.phones)
        if question and gives_details and extra_words(parse) < EXTRA_WORDS and act.act != "cancel":
            # the place (or phone) of what was asked, and little else: the answer did not
            # settle it, the citizen wants it dealt with there; the question is the request
            self.d.pop("kb_question")
            await self.rate_answer(False)
            self.remember_details(parse)
            self.unsure(reset=True)
            original = await asyncio.to_thread(self.s.nlu.parse, question)
            await self.start_request(original, kb_unit=kb_unit)
            return
        if act.act in ("not_resolved", "deny"):
            await self.rate_answer(False)
            self.remember_details(parse)  # a place or phone said with it, for the filing
            # the question stays: filed for the unit to answer, if the citizen wants
            self.d["state"] = "await_offer"
            if kb_unit:
                self.d["kb_unit"] = kb_unit
            self.say(replies.KB_UNRESOLVED_OFFER)
            return
        if act.act == "cancel":
            self.d.pop("kb_question", None)
            self.say(replies.KB_DONE)
            return
        self.d.pop("kb_question", None)
        await self.on_idle(parse)  # a new question or matter, the answer left unrated

    async def on_offer(self, parse: ParseResult, act: DialogueAct) -> None:
        question = self.d.pop("kb_question", "")
        kb_unit = self.d.pop("kb_unit", None)
        self.d["state"] = "idle"
        gives_details = bool(parse.entities.phones or parse.entities.address)
        if act.act in ("affirm", "provide_info", "correct", "not_resolved") or gives_details:
            # filed as a consultation for the unit, in the citizen's original words
            original = await asyncio.to_thread(self.s.nlu.parse, question or parse.text)
            self.remember_details(parse)
            self.unsure(reset=True)
            # the citizen has just said "file it": with nothing left to ask, it is filed
            await self.start_request(original, request_type="consult", agreed=True, kb_unit=kb_unit)
            return
        if act.act in ("cancel", "deny", "thanks"):
            self.say(replies.KB_DONE)
            return
        await self.on_idle(parse)


# The waiting states, and the dialogue-act state family their replies are read in.
_STATE_FAMILY = {
    "await_details": "ask_location",
    "await_location": "ask_location",
    "await_phone": "ask_phone",
    "await_confirm": "confirm",
    "await_feedback": "kb_answer",
    "await_offer": "offer",
    "await_kb_choice": "kb_choice",
    "await_request_number": "ask_phone",
    # the reply to emergency advice: the place or phone of the matter, or "好，我马上打"
    "await_after_emergency": "ask_location",
}
# A revisit verdict read from words ("还是老样子") must be clear; a doubtful one is handled as
# an ordinary message, and the question stays open (the SMS fallback asks again).
RATING_CONFIDENCE = 0.6
# A rating reply longer than this (characters, punctuation aside) keeps its words as the comment.
RATING_WORDS = 5
# An emergency the message classifier missed but the reply reads as one: advice, not a filing.
EMERGENCY_ACT_CONFIDENCE = 0.8
# The acts that overrule the message classifier's alarm on a reply naming no danger, and how
# sure the act must be.
CALM_ACTS = (
    "affirm",
    "deny",
    "cancel",
    "correct",
    "provide_info",
    "thanks",
    "choose",
    "ask_human",
)
CALM_ACT_CONFIDENCE = 0.7
CALM_ACT_CONFIDENCE_NO_SIGN = 0.4
# How sure the first part of a reply to the read-back must be a yes to file with a remark.
YES_FIRST_CONFIDENCE = 0.8
# Characters beside the yes from which a reply to the read-back carries a remark.
REMARK_CHARS = 6
# acts the whole reply may be read as when it opens with a yes and goes on with a remark
# ("确认，我要知道法律援助凭什么不给我" reads as deny as a whole)
YES_FIRST_ACTS = ("correct", "new_request", "deny", "provide_info")
# below this many characters beside a quoted number, a message asks about that request
OLD_NUMBER_MATTER_CHARS = 20
# a message with a phone and at most this many other characters ("我的电话是…") tells no matter
PHONE_ONLY_CHARS = 6
# thanks to the bot are short ("谢谢，知道了"); longer thanks praise someone's work
THANKS_TO_BOT_CHARS = 16
# Characters beside a place or phone from which a reply to emergency advice says more of the
# matter.
AFTER_ADVICE_WORDS = 6


def alarm_of(parse: ParseResult, turn: _Turn, mode: str) -> list[str] | None:
    """The message classifier's alarm on an agent's turn, where the bot gives no advice: the
    agent's screen shows it."""
    if mode != "agent" or parse.emergency is None or turn.calm:
        return None
    return list(parse.emergency.numbers)


def named_first(numbers: tuple[str, ...], text: str) -> tuple[str, ...]:
    """The emergency numbers to advise, the one the citizen names ("我马上打119") first."""
    named = [n for n in _EMERGENCY_NUMBER.findall(text) if n in ("110", "119", "120")]
    return tuple(dict.fromkeys([*named, *numbers]))


_EMERGENCY_NUMBER = re.compile(r"(?<!\d)(11[09]|120)(?!\d)")


def emergency_numbers(text: str) -> tuple[str, ...]:
    numbers: list[str] = []
    for _, nums in emergency_cues(text):
        numbers.extend(n for n in nums if n not in numbers)
    return tuple(sorted(numbers)) or ("110", "119", "120")
