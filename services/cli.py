"""The `hotline` command-line tool."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import asyncpg
from aiohttp import web

from services.config import Settings
from services.units import UnitDirectoryError


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    from services.app import create_app

    base = _settings()
    settings = base.with_overrides(
        host=args.host or base.host, port=base.port if args.port is None else args.port
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(
        f"12345 hotline: starting on http://{settings.host}:{settings.port}/ (data in {settings.data_dir})",
        flush=True,
    )
    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)
    except (UnitDirectoryError, OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot start: {exc}") from exc
    return 0


def cmd_nlu_train(args: argparse.Namespace) -> int:
    from nlu.engine import train_builtin

    settings = _settings()
    _, report = train_builtin(settings.nlu_dir)
    out = {
        "model_dir": str(settings.nlu_dir),
        "examples": report.examples,
        "intents": report.intents,
        "units": report.units,
        "unit_threshold": round(report.unit_threshold, 4),
        "cv_unit_accuracy": round(report.cv_unit_accuracy, 4),
        "seconds": round(report.seconds, 2),
    }
    _emit(out, args.json)
    return 0


def _emit(payload: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description="12345 citizen service hotline backend"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    nlu = sub.add_parser("nlu", help="train and evaluate the NLU").add_subparsers(
        dest="nlu_command", required=True
    )
    train = nlu.add_parser("train", help="train the built-in engine from the project data")
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=cmd_nlu_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"hotline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
