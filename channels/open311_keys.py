"""Open311 API keys: made by `hotline apikeys add NAME`, shown once, kept only as a SHA-256.

A key is 32 random bytes (URL-safe base64), so one unsalted SHA-256 is enough to keep it: it
cannot be guessed from its hash the way a password could.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.core.errors import Conflict, Forbidden, ServiceError
from services.storage import open311

MAX_NAME = 64


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def add(conn: asyncpg.Connection, name: str, at: datetime) -> str:
    """A new key for `name` (the key itself, to show once)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(c.isspace() for c in name):
        raise ServiceError(f"a key name is 1-{MAX_NAME} characters without spaces", code="bad_name")
    key = secrets.token_urlsafe(32)
    if await open311.add_key(conn, name, hash_key(key), at) is None:
        raise Conflict(f"{name!r} has an active key already; revoke it first", code="name_taken")
    return key


async def authenticate(conn: asyncpg.Connection, key: str | None) -> ApiKey:
    """The active key `key` is, or Forbidden (the spec's 403)."""
    row = await open311.active_key(conn, hash_key(key)) if key else None
    if row is None:
        reason = "api_key is missing" if not key else "api_key is not valid (or was revoked)"
        raise Forbidden(f"{reason}: requests can only be filed with a key", code="bad_api_key")
    return ApiKey(row["id"], row["name"])
