"""The `hotline` command-line tool. Each group of subcommands lives in its own module with a
`register(subparsers)` function; this module wires them and turns errors into messages."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg
from aiohttp import web

from services.cli import apikeys as cli_apikeys
from services.cli import chat as cli_chat
from services.cli import config as cli_config
from services.cli import data as cli_data
from services.cli import deploy as cli_deploy
from services.cli import kb as cli_kb
from services.cli import nlu as cli_nlu
from services.cli import staff as cli_dispatch
from services.cli.common import CliError, settings_from_env
from services.config import StartRefused, thread_plan
from services.core import logs
from services.core.pii import install_log_masking
from services.core.threads import install_executor, limit_loaded_pools
from services.core.unit_directory import UnitDirectoryError
from services.http.observe import AccessLogger

__all__ = ["CliError", "main"]


def cmd_serve(args: argparse.Namespace) -> int:
    from services.app import create_app

    base = settings_from_env()
    settings = base.with_overrides(
        host=args.host or base.host, port=base.port if args.port is None else args.port
    )
    logs.configure(settings.log_format)
    print(
        f"12345 hotline: starting on http://{settings.host}:{settings.port}/ (data in {settings.data_dir})",
        flush=True,
    )
    # the loop's default executor runs the NLU parses: as many at once as the thread plan
    # gives this process (services/core/threads.py); the native pools were capped at import
    plan = thread_plan(settings)
    limit_loaded_pools(plan)
    loop = asyncio.new_event_loop()
    install_executor(loop, plan)
    try:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            print=None,
            access_log_class=AccessLogger,  # its lines carry the request id too
            loop=loop,
        )
    except StartRefused as exc:
        raise CliError(str(exc)) from exc
    except (UnitDirectoryError, OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot start: {exc}") from exc
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description="12345 citizen service hotline backend"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    cli_nlu.register(sub)
    cli_dispatch.register(sub)
    cli_kb.register(sub)
    cli_config.register(sub)
    cli_deploy.register(sub)
    cli_apikeys.register(sub)
    cli_data.register(sub)
    cli_chat.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_log_masking()  # every subcommand's logs, the service's included
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
