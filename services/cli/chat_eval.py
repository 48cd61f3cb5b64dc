"""Scripted dialogues run through the real conversation service, and judged.

One dialogue per line of a JSONL file:

    {"id": "...", "turns": ["...", "..."], "expect": {"files": true|false, "unit": "code",
     "mode": "waiting_agent", "emergency": "119"|"any", "accept_handoff": true}}

Each dialogue is its own session on one channel: `web` (the chat API's texts as they are),
`sms` (the channel vouches for the texter's number, as Twilio's From does) or `phone` (the
caller's number is known, and each turn is read as speech recognition writes it: no
punctuation, numbers as `channels/speech.py` normalises them).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.speech import normalize_speech
from services.conversation.service import ConversationService, Inbound, TurnResult

CHANNELS = {"web": "web", "sms": "sms", "phone": "voice"}
EXPECT_KEYS = {"files", "unit", "mode", "emergency", "accept_handoff"}
# What a caller's or texter's number looks like once the channel has canonicalised it.
_CALLER = "1380000{:04d}"
# Speech recognition writes no punctuation; spaces between phrases are what is left.
_PUNCTUATION = re.compile(r"[，。！？、；：,.!?;:“”\"'‘’（）()【】…~～]+")


class DialogueFileError(ValueError):
    pass


@dataclass(frozen=True)
class Dialogue:
    id: str
    turns: list[str]
    expect: dict[str, Any]


@dataclass
class Outcome:
    id: str
    ok: bool
    why: str
    last_reply: str
    request_number: str | None = None
    lead_unit: str | None = None
    mode: str = "bot"
    emergency: list[str] = field(default_factory=list)
    # each turn as the service got it, and what the bot said
    transcript: list[dict[str, Any]] = field(default_factory=list)


def read_dialogues(path: Path) -> list[Dialogue]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DialogueFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DialogueFileError(f"{path}: cannot read it: {exc}") from exc
    out: list[Dialogue] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DialogueFileError(f"{path}:{number}: not JSON: {exc}") from exc
        out.append(_dialogue(row, f"{path}:{number}", seen))
    if not out:
        raise DialogueFileError(f"{path}: no dialogues")
    return out


def _dialogue(row: object, where: str, seen: set[str]) -> Dialogue:
    if not isinstance(row, dict):
        raise DialogueFileError(f"{where}: a line must be a JSON object")
    ident, turns, expect = row.get("id"), row.get("turns"), row.get("expect")
    if not isinstance(ident, str) or not ident:
        raise DialogueFileError(f"{where}: 'id' must be a non-empty string")
    if ident in seen:
        raise DialogueFileError(f"{where}: id {ident!r} appears twice")
    seen.add(ident)
    if (
        not isinstance(turns, list)
        or not turns
        or not all(isinstance(t, str) and t.strip() for t in turns)
    ):
        raise DialogueFileError(f"{where}: 'turns' must be a list of non-empty strings")
    if not isinstance(expect, dict) or not isinstance(expect.get("files"), bool):
        raise DialogueFileError(f"{where}: 'expect' must be an object with 'files': true|false")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise DialogueFileError(f"{where}: unknown expect keys {sorted(unknown)}")
    return Dialogue(ident, turns, expect)


def speech_text(text: str) -> str:
    """A written turn as the phone channel would hand it over: no punctuation, spoken
    numbers as digits."""
    return normalize_speech(_PUNCTUATION.sub(" ", text)).strip()


async def run_dialogue(
    service: ConversationService, dialogue: Dialogue, channel: str, index: int
) -> Outcome:
    name = CHANNELS[channel]
    caller = None if channel == "web" else _CALLER.format(index % 10000)
    session = f"eval-{uuid.uuid4().hex[:12]}"
    results: list[TurnResult] = []
    said_texts: list[str] = []
    for turn_no, text in enumerate(dialogue.turns):
        said = speech_text(text) if channel == "phone" else text
        if not said:
            continue
        said_texts.append(said)
        results.append(
            await service.handle(
                Inbound(
                    channel=name,
                    session_key=session,
                    text=said,
                    client_message_id=f"{session}:{turn_no}",
                    phone=caller,
                )
            )
        )
    outcome = await judge(service, dialogue, results)
    outcome.transcript = [
        {
            "citizen": text,
            "act": (r.nlu or {}).get("dialogue_act", {}).get("act"),
            "bot": r.replies,
        }
        for text, r in zip(said_texts, results, strict=True)
    ]
    return outcome


async def judge(
    service: ConversationService, dialogue: Dialogue, results: list[TurnResult]
) -> Outcome:
    expect = dialogue.expect
    numbers = [r.request_number for r in results if r.request_number]
    emergency = sorted({n for r in results for n in (r.emergency or [])})
    mode = results[-1].mode if results else "bot"
    last = next((r.replies[-1] for r in reversed(results) if r.replies), "")
    lead = None
    if numbers:
        async with service.pool.acquire() as conn:
            lead = await conn.fetchval(
                "SELECT lead_unit FROM work_orders WHERE request_number = $1", numbers[-1]
            )
    outcome = Outcome(
        dialogue.id, True, "", last, numbers[-1] if numbers else None, lead, mode, emergency
    )
    handed_over = mode in ("waiting_agent", "agent")
    why = ""
    if expect.get("emergency"):
        wanted = expect["emergency"]
        if not emergency:
            why = "no emergency advice"
        elif wanted != "any" and wanted not in emergency:
            why = f"emergency advice named {emergency}, not {wanted}"
    if not why and expect.get("mode") and mode != expect["mode"]:
        why = f"mode {mode}, expected {expect['mode']}"
    if not why and expect["files"] and not numbers:
        if not (expect.get("accept_handoff") and handed_over):
            why = "nothing filed"
    if not why and not expect["files"] and numbers:
        why = f"filed {numbers[-1]} though nothing should be"
    if not why and expect["files"] and numbers and expect.get("unit"):
        if lead != expect["unit"]:
            why = f"lead unit {lead}, expected {expect['unit']}"
    if len(numbers) > 1 and not why:
        why = f"filed {len(numbers)} orders"
    outcome.ok = not why
    outcome.why = why
    return outcome


async def run_all(
    service: ConversationService, dialogues: list[Dialogue], channel: str, concurrency: int = 4
) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, d: Dialogue) -> Outcome:
        async with gate:
            return await run_dialogue(service, d, channel, i)

    return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(dialogues))))


def summary(outcomes: list[Outcome], channel: str) -> dict[str, Any]:
    failed = [o for o in outcomes if not o.ok]
    done = len(outcomes) - len(failed)
    return {
        "channel": channel,
        "dialogues": len(outcomes),
        "completed": done,
        "share": round(done / len(outcomes), 4) if outcomes else 0.0,
        "failures": [
            {
                "id": o.id,
                "why": o.why,
                "last_reply": o.last_reply,
                "request_number": o.request_number,
                "lead_unit": o.lead_unit,
                "mode": o.mode,
                "transcript": o.transcript,
            }
            for o in failed
        ],
    }
