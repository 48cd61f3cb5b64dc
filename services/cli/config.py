"""`hotline config`: every setting with its value and where it came from, secrets masked."""

from __future__ import annotations

import argparse
import json
import os
import textwrap

from services.cli.common import settings_from_env
from services.config import SETTINGS, Settings


def config_rows() -> list[dict[str, str | None]]:
    """One row per variable of `SETTINGS`: env, field, value (as its text, a secret masked;
    None when unset without a default) and source (`env` or `default`)."""
    settings = settings_from_env()
    return [
        {
            "env": s.env,
            "field": s.field,
            "value": s.shown(getattr(settings, s.field)),
            "source": "env" if s.raw(os.environ) else "default",
        }
        for s in SETTINGS
    ]


def cmd_config(args: argparse.Namespace) -> int:
    rows = config_rows()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    shown = [(r["env"], "(unset)" if r["value"] is None else r["value"], r["source"]) for r in rows]
    env_width = max(len(env) for env, _, _ in shown)
    value_width = max(len(value) for _, value, _ in shown)
    for env, value, source in shown:
        print(f"{env:<{env_width}}  {value:<{value_width}}  {source}")
    return 0


def _variables_help() -> str:
    defaults = Settings()
    lines = ["environment variables:"]
    for s in SETTINGS:
        default = s.text(getattr(defaults, s.field))
        lines.append(f"  {s.env}" + ("" if default is None else f" (default {default})"))
        lines.extend(
            textwrap.wrap(s.help, width=88, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser(
        "config",
        help="show every setting, its value and its source (secrets masked)",
        description="Every setting of this process: its environment variable, value (secrets\n"
        "masked) and source (env or default). A bad value is an error, exit code 2.",
        epilog=_variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("--json", action="store_true", help="a JSON list of the rows")
    config.set_defaults(func=cmd_config)
