"""What the staff APIs share: JSON bodies, JSON errors raised from anywhere, paging, dates."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from aiohttp import web

from services.core.errors import json_exception


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json_exception(400, "bad_encoding", "the body is not valid UTF-8") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise json_exception(400, "bad_json", f"the body is not valid JSON: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise json_exception(400, "bad_json", "the body must be a JSON object")
    refuse_nul(body)
    return body


def refuse_nul(value: Any) -> None:
    """PostgreSQL text cannot hold U+0000: a body with one is refused here (400), not by the
    database halfway through a handler (500)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise json_exception(400, "bad_text", "text may not contain the character U+0000")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item)


def text_field(
    body: dict[str, Any], name: str, *, required: bool = True, max_chars: int = 2000
) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise json_exception(400, f"missing_{name}", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise json_exception(400, f"bad_{name}", f"{name} must be a string")
    if "\x00" in value:
        raise json_exception(400, f"bad_{name}", f"{name} must not contain NUL characters")
    if len(value) > max_chars:
        raise json_exception(400, f"bad_{name}", f"{name} is longer than {max_chars} characters")
    return value.strip()


def paging(request: web.Request, default: int = 50, most: int = 500) -> tuple[int, int]:
    def number(name: str, fallback: int) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return fallback
        try:
            value = int(raw)
        except ValueError as exc:
            raise json_exception(400, f"bad_{name}", f"{name} must be an integer") from exc
        if value < 0:
            raise json_exception(400, f"bad_{name}", f"{name} must not be negative")
        return value

    return min(number("limit", default), most), number("offset", 0)


def day_param(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise json_exception(400, f"bad_{name}", f"{name} must be a date like 2026-10-01") from exc


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def respond(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(
        jsonable(payload),
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )


def desk_of(ctx: Any) -> Any:
    """The dispatch desk of the request's Context (services/desk.py), or 503."""
    if ctx.desk is None:
        raise json_exception(503, "unavailable", "dispatch is not set up in this process")
    return ctx.desk
