"""`hotline apikeys ...`: the keys Open311 clients file requests with (channels/open311.py).

hotline apikeys add NAME      make a key for NAME (an app, a partner platform); printed once
hotline apikeys list [--json] every key: name, made, last used, revoked, requests filed
hotline apikeys revoke NAME   the key of NAME stops working at once
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from channels import open311_keys
from services.cli.common import CliError, emit, settings_from_env
from services.cli.staff import _pool
from services.core.errors import ServiceError
from services.storage import open311


async def _add(name: str) -> str:
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        try:
            return await open311_keys.add(conn, name, datetime.now(UTC))
        except ServiceError as exc:
            raise CliError(exc.reason) from exc


def cmd_add(args: argparse.Namespace) -> int:
    key = asyncio.run(_add(args.name))
    emit(
        {"name": args.name.strip(), "api_key": key, "note": "shown once; only its hash is kept"},
        args.json,
    )
    return 0


async def _list() -> list[dict]:
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        rows = await open311.list_keys(conn)
    return [
        {
            "name": r["name"],
            "created_at": r["created_at"].isoformat(timespec="seconds"),
            "last_used_at": r["last_used_at"].isoformat(timespec="seconds")
            if r["last_used_at"]
            else None,
            "revoked_at": r["revoked_at"].isoformat(timespec="seconds")
            if r["revoked_at"]
            else None,
            "requests": r["requests"],
        }
        for r in rows
    ]


def cmd_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_list())
    if args.json:
        emit({"keys": rows}, True)
        return 0
    if not rows:
        print("no API keys; make one with: hotline apikeys add NAME")
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        used = r["last_used_at"] or "never"
        print(
            f"{r['name']}\t{state}\tmade {r['created_at']}\tlast used {used}\t{r['requests']} requests"
        )
    return 0


async def _revoke(name: str) -> bool:
    async with _pool(settings_from_env()) as pool, pool.acquire() as conn:
        return await open311.revoke_key(conn, name, datetime.now(UTC))


def cmd_revoke(args: argparse.Namespace) -> int:
    if not asyncio.run(_revoke(args.name)):
        raise CliError(f"{args.name!r} has no active key")
    print(f"revoked the key of {args.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("apikeys", help="Open311 API keys").add_subparsers(
        dest="apikeys_command", required=True
    )
    add = group.add_parser("add", help="make a key (printed once)")
    add.add_argument("name")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_add)
    listed = group.add_parser("list", help="every key")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(func=cmd_list)
    revoke = group.add_parser("revoke", help="stop a key")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_revoke)
