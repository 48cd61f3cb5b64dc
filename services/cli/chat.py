"""`hotline chat eval`: scripted dialogues through the real conversation service, on a
temporary database that is dropped afterwards."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from services.cli.common import CliError, settings_from_env


def cmd_eval(args: argparse.Namespace) -> int:
    from services.cli.chat_eval import DialogueFileError, read_dialogues

    try:
        dialogues = read_dialogues(Path(args.data))
    except DialogueFileError as exc:
        raise CliError(str(exc)) from exc
    if args.limit is not None:
        if args.limit < 1:
            raise CliError("--limit must be at least 1")
        dialogues = dialogues[: args.limit]
    if args.ids:
        wanted = set(args.ids.split(","))
        dialogues = [d for d in dialogues if d.id in wanted]
        if not dialogues:
            raise CliError(f"no dialogue with the ids {args.ids}")
    channels = ["web", "sms", "phone"] if args.channel == "all" else [args.channel]
    try:
        results = asyncio.run(evaluate(dialogues, channels))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CliError(f"database: {exc}") from exc
    if args.json:
        out: Any = results[0] if len(results) == 1 else {"channels": results}
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for result in results:
            _print(result, args.transcripts)
    return 0


async def evaluate(dialogues: list, channels: list[str]) -> list[dict[str, Any]]:
    """Each channel on its own temporary database, so no dialogue sees another's orders."""
    from services.app import build_context
    from services.cli.chat_eval import run_all, summary
    from services.cli.kb_tools import temporary_database

    settings = settings_from_env()
    results = []
    for channel in channels:
        async with temporary_database(settings) as dsn:
            ctx = await build_context(
                settings.with_overrides(database_url=dsn, scheduler_enabled=False)
            )
            try:
                outcomes = await run_all(ctx.conversation, dialogues, channel)
            finally:
                if ctx.outbox is not None:
                    await ctx.outbox.aclose()
                await ctx.pool.close()
        results.append(summary(outcomes, channel))
    return results


def _print(result: dict[str, Any], transcripts: bool = False) -> None:
    print(
        f"channel {result['channel']}: {result['completed']} of {result['dialogues']} "
        f"completed as expected ({100 * result['share']:.1f} %)"
    )
    for f in result["failures"]:
        reply = f["last_reply"].replace("\n", " ")
        print(f"  {f['id']}: {f['why']} — last reply: {reply[:160]}", file=sys.stdout)
        if transcripts:
            for t in f["transcript"]:
                print(f"      > {t['citizen']}  [{t['act'] or '-'}]")
                for line in t["bot"]:
                    print(f"      < {line[:200]}".replace("\n", " "))


def register(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="the conversation service")
    chat_sub = chat.add_subparsers(dest="chat_command", required=True)
    ev = chat_sub.add_parser(
        "eval", help="run scripted dialogues through the real conversation service"
    )
    ev.add_argument("--data", required=True, help="JSONL file of dialogues")
    ev.add_argument(
        "--channel",
        choices=["web", "sms", "phone", "all"],
        default="web",
        help="web: as typed; sms: the texter's number known; phone: speech text without "
        "punctuation, the caller's number known; all: the three, one after the other",
    )
    ev.add_argument("--limit", type=int, help="only the first N dialogues")
    ev.add_argument("--ids", help="only these dialogues (comma-separated ids)")
    ev.add_argument(
        "--transcripts", action="store_true", help="print each failure's turns and replies"
    )
    ev.add_argument("--json", action="store_true", help="print the result as JSON")
    ev.set_defaults(func=cmd_eval)
