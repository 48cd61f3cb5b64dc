"""`hotline deploy nginx`: the nginx site for N service processes, from
deploy/nginx/hotline.conf.template, with the body limits of this service's own settings
(HOTLINE_MAX_BODY_BYTES, HOTLINE_KB_IMPORT_MAX_BYTES), so the proxy and the service refuse
the same bodies."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from services.cli.common import CliError, settings_from_env

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "hotline.conf.template"
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")
_LISTEN = re.compile(r"^((\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$")


def render_nginx(
    *,
    listen: str,
    upstreams: list[str],
    max_body_bytes: int,
    kb_import_max_bytes: int,
    access_log: str = "/var/log/nginx/hotline.access.log",
    template: Path = TEMPLATE,
) -> str:
    """The template with its placeholders filled. Raises CliError on a bad address."""
    if not upstreams:
        raise CliError("give at least one --upstream HOST:PORT (a `hotline serve` process)")
    for address in upstreams:
        if not _ADDRESS.match(address):
            raise CliError(f"--upstream must be HOST:PORT like 127.0.0.1:8081, got {address!r}")
    if not _LISTEN.match(listen):
        raise CliError(f"--listen must be PORT or HOST:PORT like 80, got {listen!r}")
    if not template.is_file():
        raise CliError(f"the nginx template is missing: {template}")
    servers = "\n".join(f"    server {a} max_fails=2 fail_timeout=5s;" for a in upstreams)
    text = template.read_text(encoding="utf-8")
    for name, value in (
        ("@UPSTREAM_SERVERS@", servers),
        ("@LISTEN@", listen),
        ("@MAX_BODY_BYTES@", str(max_body_bytes)),
        ("@KB_IMPORT_MAX_BYTES@", str(kb_import_max_bytes)),
        ("@ACCESS_LOG@", access_log),
    ):
        text = text.replace(name, value)
    return text


def cmd_nginx(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    print(
        render_nginx(
            listen=args.listen,
            upstreams=args.upstream,
            max_body_bytes=settings.max_body_bytes,
            kb_import_max_bytes=settings.kb_import_max_bytes,
            access_log=args.access_log,
        ),
        end="",
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser("deploy", help="configuration for running on more than one process")
    what = deploy.add_subparsers(dest="deploy_command", required=True)
    nginx = what.add_parser(
        "nginx",
        help="print the nginx site for the service processes (deploy/nginx/)",
        description=__doc__,
    )
    nginx.add_argument("--listen", default="80", help="where nginx listens (PORT or HOST:PORT)")
    nginx.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="a `hotline serve` process; once per process",
    )
    nginx.add_argument("--access-log", default="/var/log/nginx/hotline.access.log")
    nginx.set_defaults(func=cmd_nginx)
