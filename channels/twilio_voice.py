"""The phone channel (Twilio Voice webhooks): a Chinese IVR onto the conversation service.

POST /twilio/voice                   an incoming call: greeting, menu, the first <Gather>
POST /twilio/voice/gather?turn=N     what the caller said (SpeechResult) or keyed (Digits)
POST /twilio/voice/after-transfer?turn=N   the agent or emergency <Dial>/<Enqueue> ended
POST /twilio/voice/status            call-status callback
POST /twilio/voice/recording         recording-status callback
POST /twilio/voice/transcription     live transcript of a call put through to an agent

Each answer points the next webhook at `?turn=N+1`; the answer to every turn is kept in
`voice_turns`, so a webhook Twilio retries gets the same TwiML back and is processed once
(the conversation's client message id is "CallSid:N" as well). The call's own state (silences
in a row, the last prompt) is in `voice_calls`; the dialogue is the conversation's.

The call flow:

    greeting ─▶ gather ─speech/keys─▶ conversation ─▶ replies spoken ─▶ gather …
                  │                       ├─ request number: read back digit by digit, twice, and sent by SMS
                  │                       ├─ 人工 / key 0 / unsure twice (mode waiting_agent) ─▶ agent queue,
                  │                       │     transcribed live into the agent workspace
                  │                       └─ emergency ─▶ say the number, <Dial> it
                  └─silence─▶ repeat the prompt once ─silence─▶ offer an agent ─silence─▶ goodbye
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from twilio.twiml.voice_response import Gather, VoiceResponse

from channels.speech import normalize_speech
from channels.twilio_webhooks import TwilioWebhook, twilio_endpoint, twiml
from nlu.emergency import EMERGENCY_LABELS
from services.context import CONTEXT, Context
from services.conversation import call_transcript, replies
from services.conversation.call_transcript import Utterance
from services.conversation.service import Inbound, InvalidMessage, TurnResult
from services.core import phone_numbers
from services.core.errors import json_exception
from services.storage import voice_calls
from services.storage.voice_calls import CallRow, TurnRecord

log = logging.getLogger(__name__)

CHANNEL = "voice"
SAY = {"language": "zh-CN", "voice": "Polly.Zhiyu"}
HINTS = "人工,转人工,投诉,咨询,举报,建议,求助,表扬,查询,进度,诉求编号,确认,取消,是的,不是"

GREETING = (
    "您好，这里是12345市民服务热线。请直接说出您要反映的问题或咨询的事项；"
    "查询办理进度请说出诉求编号；转人工服务请按0或说“人工”。"
)
RECORDING_NOTICE = "为了提升服务质量，您的通话将被录音。"
NO_INPUT_REPEAT = "抱歉，没有听到您的声音。"
NO_INPUT_OFFER = "仍然没有听到您的声音。如需人工服务，请按0或说“人工”；也可以直接说出您的问题。"
NO_INPUT_BYE = "由于长时间没有听到您的声音，本次通话将结束。如有需要请再次拨打12345，再见。"
ANYTHING_ELSE = "还有其他问题请直接说；没有的话可以挂机。"
READ_BACK = "请记下您的诉求编号：{n}。重复一遍：{n}。"
SMS_SENT = "诉求编号也会通过短信发送到您的手机。"
TRANSFER_AGENT = "正在为您转接人工坐席，请稍候。"
TRANSFER_EMERGENCY = "正在为您转接{label}，请不要挂机。"
AGENT_UNAVAILABLE = "抱歉，坐席暂时无法接听。您的来电内容已经记录，工作人员会尽快给您回电，再见。"
THANKS_BYE = "感谢您的来电，再见。"
SYSTEM_TROUBLE = "抱歉，系统暂时无法处理您的请求。"
SMS_FOOTER = "回复TD退订通知短信。"

# Call statuses after which the call is over.
_FINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
# <Dial> and <Enqueue> outcomes that mean a person answered.
_CONNECTED = {"completed", "answered", "bridged"}

# -- what the caller hears ----------------------------------------------------------------------

_REQUEST_NUMBER = re.compile(r"(?<!\d)(20\d{6})-?(\d{4,6})(?!\d)")
_MASKED_PHONE = re.compile(r"\d{3}\*{4}(\d{4})")
_LONG_DIGITS = re.compile(r"\d{5,}")


def spell(digits: str) -> str:
    """Digits one by one, the dash as 杠: "2 0 2 6 1 1 2 3 杠 0 0 0 1"."""
    return " ".join("杠" if c == "-" else c for c in digits if c.isdigit() or c == "-")


def for_speech(text: str) -> str:
    """A reply written for the screen, as it should be read out: numbers digit by digit
    (a TTS voice says 20261123 as a quantity), "reply" as "say"."""
    text = _REQUEST_NUMBER.sub(lambda m: spell(f"{m.group(1)}-{m.group(2)}"), text)
    text = _MASKED_PHONE.sub(lambda m: "尾号 " + spell(m.group(1)), text)
    text = _LONG_DIGITS.sub(lambda m: spell(m.group(0)), text)
    text = text.replace("请回复", "请说").replace("回复“", "说“").replace("请输入", "请说出")
    return text.replace("\n", "，")


# -- the channel -------------------------------------------------------------------------------


@dataclass
class Step:
    """One turn's answer and what it does to the call."""

    response: VoiceResponse
    kind: str
    heard: str | None = None
    confidence: float | None = None
    message_id: int | None = None
    conversation_id: int | None = None
    state: str = "ivr"
    silences: int = 0
    last_prompt: str | None = None
    transferred_to: str | None = None


Decide = Callable[[CallRow, TwilioWebhook, int], Awaitable[Step]]


class VoiceChannel:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        # one webhook of a call at a time in this process (Twilio's retries included)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, call_sid: str) -> asyncio.Lock:
        lock = self._locks.get(call_sid)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[call_sid] = lock
        return lock

    def absolute(self, path: str) -> str:
        # relative URLs work in <Gather action>, but callbacks want the whole URL
        return (self.settings.public_url or "") + path

    def gather(self, turn: int) -> Gather:
        return Gather(
            input="speech dtmf",
            language="zh-CN",
            speech_timeout="auto",
            timeout=6,
            finish_on_key="#",
            hints=HINTS,
            action=f"/twilio/voice/gather?turn={turn}",
            method="POST",
            action_on_empty_result=True,
        )

    def prompt(
        self, turn: int, texts: list[str], response: VoiceResponse | None = None
    ) -> VoiceResponse:
        """Say the texts inside a <Gather> whose answer comes back as `turn`."""
        response = response or VoiceResponse()
        gather = self.gather(turn)
        for text in texts:
            gather.say(text, **SAY)
        response.append(gather)
        # reached only if Twilio cannot run the gather's action: never leave the caller in silence
        response.redirect(f"/twilio/voice/gather?turn={turn}", method="POST")
        return response

    # -- webhooks ----------------------------------------------------------------------------

    async def run_turn(self, hook: TwilioWebhook, turn: int, decide: Decide) -> web.Response:
        """Answer turn `turn` of a call once: a retry gets the kept answer."""
        sid = hook.require("CallSid")
        async with self.lock(sid):
            async with self.ctx.pool.acquire() as conn:
                kept = await voice_calls.turn_twiml(conn, sid, turn)
                if kept is not None:
                    return twiml(kept)
                call = await voice_calls.open_call(
                    conn,
                    sid,
                    hook.get("From"),
                    hook.get("To"),
                    citizen_number(hook),
                    hook.get("CallStatus"),
                    self.ctx.clock.now(),
                )
            step: Step = await decide(call, hook, turn)
            record = TurnRecord(
                call_sid=sid,
                turn=turn,
                kind=step.kind,
                twiml=str(step.response),
                heard=step.heard,
                confidence=step.confidence,
                message_id=step.message_id,
                conversation_id=step.conversation_id,
                state=step.state,
                silences=step.silences,
                last_prompt=step.last_prompt,
                transferred_to=step.transferred_to,
            )
            async with self.ctx.pool.acquire() as conn:
                if step.transferred_to:
                    await voice_calls.add_event(
                        conn,
                        sid,
                        "transfer",
                        f"transfer:{sid}:{turn}",
                        {"to": step.transferred_to, "turn": turn},
                        self.ctx.clock.now(),
                    )
                return twiml(await voice_calls.record_turn(conn, record, self.ctx.clock.now()))

    async def greet(self, call: CallRow, hook: TwilioWebhook, turn: int) -> Step:
        response = VoiceResponse()
        texts = [GREETING]
        if self.settings.twilio_record_calls:
            start = response.start()
            start.recording(
                recording_status_callback=self.absolute("/twilio/voice/recording"),
                recording_status_callback_method="POST",
                recording_status_callback_event="completed",
            )
            texts.insert(0, RECORDING_NOTICE)
        return Step(self.prompt(1, texts, response), "greeting", last_prompt=GREETING)

    async def listen(self, call: CallRow, hook: TwilioWebhook, turn: int) -> Step:
        speech = (hook.get("SpeechResult") or "").strip()
        digits = (hook.get("Digits") or "").strip()
        if not speech and not digits:
            return self.silence(call, turn)
        confidence = _float(hook.get("Confidence"))
        if digits:
            # key 0 is the menu's "agent"; other keys are a request number or a phone number
            text = "转人工" if digits == "0" else digits
        else:
            text = normalize_speech(speech)
        inbound = Inbound(
            channel=CHANNEL,
            session_key=call.call_sid,
            text=text,
            client_message_id=f"{call.call_sid}:{turn}",
            phone=call.caller_phone,
        )
        kind = "digits" if digits else "speech"
        heard = digits or speech
        try:
            result = await self.ctx.conversation.handle(inbound)
        except InvalidMessage:
            step = self.prompt(turn + 1, [for_speech(replies.NOT_UNDERSTOOD)])
            return Step(step, kind, heard, confidence, last_prompt=call.last_prompt)
        except Exception:
            # the caller must never be left hanging: a person takes over
            log.exception("voice turn %s of %s failed", turn, call.call_sid)
            response = VoiceResponse()
            response.say(SYSTEM_TROUBLE, **SAY)
            response.say(TRANSFER_AGENT, **SAY)
            target = self.to_agent(response, turn)
            return Step(
                response, kind, heard, confidence, state="transferred", transferred_to=target
            )
        return self.answer(call, turn, result, kind, heard, confidence)

    def answer(
        self,
        call: CallRow,
        turn: int,
        result: TurnResult,
        kind: str,
        heard: str,
        confidence: float | None,
    ) -> Step:
        spoken = [for_speech(r) for r in result.replies]
        step = Step(
            VoiceResponse(),
            kind,
            heard,
            confidence,
            message_id=result.message_id,
            conversation_id=result.conversation_id,
        )
        if result.request_number:
            spoken.append(READ_BACK.format(n=spell(result.request_number)))
            if call.caller_phone and self.ctx.outbox is not None:
                self.send_request_number(call, result)
                spoken.append(SMS_SENT)
        if result.emergency:
            number = result.emergency[0]
            dial = dict(self.settings.emergency_dial).get(number, number)
            for text in spoken:
                step.response.say(text, **SAY)
            label = EMERGENCY_LABELS.get(number, number)
            step.response.say(TRANSFER_EMERGENCY.format(label=label), **SAY)
            step.response.dial(
                dial, action=f"/twilio/voice/after-transfer?turn={turn + 1}", method="POST"
            )
            step.state, step.transferred_to = "transferred", dial
        elif result.mode in ("waiting_agent", "agent"):
            for text in spoken:
                step.response.say(text, **SAY)
            step.state, step.transferred_to = "transferred", self.to_agent(step.response, turn)
        elif replies.GOODBYE in result.replies:
            for text in spoken:
                step.response.say(text, **SAY)
            step.response.hangup()
        else:
            if result.request_number:
                spoken.append(ANYTHING_ELSE)
            step.response = self.prompt(turn + 1, spoken)
            step.last_prompt = "".join(spoken)
        return step

    def to_agent(self, response: VoiceResponse, turn: int) -> str:
        """Put the caller through to the agents: a number to <Dial>, or the queue."""
        action = f"/twilio/voice/after-transfer?turn={turn + 1}"
        if self.settings.twilio_live_transcription:
            # both sides, so the workspace shows the conversation as it is spoken
            response.start().transcription(
                status_callback_url=self.absolute("/twilio/voice/transcription"),
                status_callback_method="POST",
                language_code=SAY["language"],
                track="both_tracks",
                partial_results=False,
            )
        if self.settings.twilio_agent_number:
            options = {}
            if self.settings.twilio_record_calls:
                options = {
                    "record": "record-from-answer-dual",
                    "recording_status_callback": self.absolute("/twilio/voice/recording"),
                    "recording_status_callback_event": "completed",
                }
            response.dial(
                self.settings.twilio_agent_number,
                action=action,
                method="POST",
                timeout=30,
                **options,
            )
            return self.settings.twilio_agent_number
        response.enqueue(self.settings.twilio_agent_queue, action=action, method="POST")
        return f"queue:{self.settings.twilio_agent_queue}"

    def silence(self, call: CallRow, turn: int) -> Step:
        count = call.silences + 1
        if count == 1:
            texts = [NO_INPUT_REPEAT, call.last_prompt or GREETING]
        elif count == 2:
            texts = [NO_INPUT_OFFER]
        else:
            response = VoiceResponse()
            response.say(NO_INPUT_BYE, **SAY)
            response.hangup()
            return Step(response, "silence", silences=count)
        return Step(self.prompt(turn + 1, texts), "silence", silences=count)

    def send_request_number(self, call: CallRow, result: TurnResult) -> None:
        number = result.request_number
        text = next((r for r in result.replies if number in r), f"您的诉求编号：{number}。")
        self.ctx.outbox.send_later(
            "sms",
            call.caller_phone,
            f"【12345】{text}{SMS_FOOTER}",
            "request_number",
            idempotency_key=f"request-number:{number}",
            conversation_id=result.conversation_id,
        )

    async def after_transfer(self, call: CallRow, hook: TwilioWebhook, turn: int) -> Step:
        outcome = hook.get("DialCallStatus") or hook.get("QueueResult") or "unknown"
        response = VoiceResponse()
        if outcome in _CONNECTED:
            response.say(THANKS_BYE, **SAY)
        elif outcome != "hangup":  # the caller hung up while waiting: nobody to talk to
            response.say(AGENT_UNAVAILABLE, **SAY)
        response.hangup()
        return Step(response, "after_transfer", heard=outcome, state="transferred")


VOICE = web.AppKey("voice_channel", VoiceChannel)


def citizen_number(hook: TwilioWebhook) -> str | None:
    """The citizen's number: the caller, or whom we called on an outbound call."""
    outbound = (hook.get("Direction") or "").startswith("outbound")
    return phone_numbers.canonical(hook.get("To") if outbound else hook.get("From"))


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _turn(request: web.Request) -> int:
    raw = request.query.get("turn", "")
    if not raw.isdigit() or not 0 < int(raw) < 10_000:
        raise json_exception(400, "bad_turn", "turn must be a positive number")
    return int(raw)


@twilio_endpoint
async def incoming_call(request: web.Request, hook: TwilioWebhook) -> web.Response:
    voice = request.app[VOICE]
    return await voice.run_turn(hook, 0, voice.greet)


@twilio_endpoint
async def gathered(request: web.Request, hook: TwilioWebhook) -> web.Response:
    voice = request.app[VOICE]
    return await voice.run_turn(hook, _turn(request), voice.listen)


@twilio_endpoint
async def transfer_ended(request: web.Request, hook: TwilioWebhook) -> web.Response:
    voice = request.app[VOICE]
    return await voice.run_turn(hook, _turn(request), voice.after_transfer)


def _event_data(hook: TwilioWebhook) -> dict[str, str]:
    return {k: v for k, v in hook.params.items() if k != "AccountSid"}


@twilio_endpoint
async def call_status(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = request.app[CONTEXT]
    sid = hook.require("CallSid")
    status = hook.require("CallStatus")
    key = f"status:{sid}:{status}:{hook.get('SequenceNumber') or ''}"
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        await voice_calls.open_call(
            conn,
            sid,
            hook.get("From"),
            hook.get("To"),
            citizen_number(hook),
            status,
            now,
        )
        if await voice_calls.add_event(conn, sid, "status", key, _event_data(hook), now):
            duration = hook.get("CallDuration")
            await voice_calls.apply_status(
                conn,
                sid,
                status,
                int(duration) if duration and duration.isdigit() else None,
                status in _FINAL,
                now,
            )
    return web.Response(status=204)


@twilio_endpoint
async def recording_status(request: web.Request, hook: TwilioWebhook) -> web.Response:
    ctx = request.app[CONTEXT]
    sid = hook.require("CallSid")
    recording = hook.require("RecordingSid")
    status = hook.get("RecordingStatus") or "completed"
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        await voice_calls.open_call(conn, sid, None, None, None, None, now)
        key = f"recording:{recording}:{status}"
        if await voice_calls.add_event(conn, sid, "recording", key, _event_data(hook), now):
            if status == "completed":
                duration = hook.get("RecordingDuration")
                await voice_calls.apply_recording(
                    conn,
                    sid,
                    recording,
                    hook.get("RecordingUrl"),
                    int(duration) if duration and duration.isdigit() else None,
                    now,
                )
    return web.Response(status=204)


# Twilio's tracks as seen from the caller's leg: what the caller says comes in, what they hear
# (the agent) goes out.
_SPEAKER = {"inbound_track": "citizen", "outbound_track": "agent"}


def _transcript(raw: str | None) -> str:
    try:
        data = json.loads(raw or "")
    except ValueError as exc:
        raise json_exception(400, "bad_transcription", "TranscriptionData is not JSON") from exc
    text = data.get("transcript") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise json_exception(400, "bad_transcription", "TranscriptionData has no transcript")
    return text


@twilio_endpoint
async def transcription(request: web.Request, hook: TwilioWebhook) -> web.Response:
    """One event of the live transcription: a final utterance goes into the conversation."""
    ctx = request.app[CONTEXT]
    sid = hook.require("CallSid")
    event = hook.require("TranscriptionEvent")
    if event == "transcription-error":
        log.warning(
            "live transcription of %s failed: %s %s",
            sid,
            hook.get("TranscriptionErrorCode"),
            hook.get("TranscriptionError"),
        )
    if event != "transcription-content" or (hook.get("Final") or "true") != "true":
        return web.Response(status=204)
    track = hook.require("Track")
    speaker = _SPEAKER.get(track)
    if speaker is None:
        raise json_exception(400, "bad_track", f"unknown track {track!r}")
    text = normalize_speech(_transcript(hook.get("TranscriptionData"))).strip()
    if text:
        key = f"{hook.require('TranscriptionSid')}:{hook.require('SequenceId')}"
        await call_transcript.record(
            ctx.pool, ctx.nlu, ctx.clock, Utterance(sid, speaker, text, key)
        )
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    async def channel(app: web.Application) -> AsyncIterator[None]:
        app[VOICE] = VoiceChannel(app[CONTEXT])
        yield

    app.cleanup_ctx.append(channel)
    app.router.add_post("/twilio/voice", incoming_call)
    app.router.add_post("/twilio/voice/gather", gathered)
    app.router.add_post("/twilio/voice/after-transfer", transfer_ended)
    app.router.add_post("/twilio/voice/status", call_status)
    app.router.add_post("/twilio/voice/recording", recording_status)
    app.router.add_post("/twilio/voice/transcription", transcription)
