"""What every `hotline` subcommand shares: the error type, settings, output."""

from __future__ import annotations

import json

from services.config import Settings


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def settings_from_env() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def emit(payload: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")
