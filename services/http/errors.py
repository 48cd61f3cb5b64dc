"""Every error of the HTTP API is JSON with a reason, never a traceback: the one place where
errors become responses (services/core/errors.py says what raises them)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from knowledgebase import bulk, workflow
from knowledgebase.service import EntryNotFound, InvalidEntry
from knowledgebase.store import VersionConflict
from services.core.errors import DatabaseUnavailable, ServiceError

log = logging.getLogger(__name__)


def json_error(
    status: int, code: str, reason: str, headers: dict[str, str] | None = None, **extra: object
) -> web.Response:
    return web.json_response(
        {"error": code, "reason": reason, **extra},
        status=status,
        headers=headers,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
    )


# Errors of the packages below services/ (which know nothing of HTTP), as ServiceErrors.
FOREIGN: dict[type[Exception], Callable[[Exception], ServiceError]] = {
    EntryNotFound: lambda exc: ServiceError(
        f"no knowledge-base entry {exc.args[0]!r}", code="not_found", status=404
    ),
    VersionConflict: lambda exc: ServiceError(
        f"the entry was changed meanwhile: it is at version {exc.actual}, "
        f"the edit was based on version {exc.expected}",
        code="version_conflict",
        status=409,
        current_version=exc.actual,
    ),
    workflow.TransitionError: lambda exc: ServiceError(str(exc), code="bad_transition", status=409),
    InvalidEntry: lambda exc: ServiceError(str(exc), code="invalid"),
    ValidationError: lambda exc: ServiceError(bulk.explain(exc), code="invalid"),
}


# PostgreSQL went away while a request was using a connection: the server ended it (a
# restart's fast shutdown: AdminShutdownError), or the connection was already lost
# (class 08, ConnectionDoesNotExistError). The pool's acquire says DatabaseUnavailable itself
# (services/storage/db.Pool); these come from the queries after it.
DATABASE_GONE = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def _database_gone(exc: Exception) -> bool:
    if isinstance(exc, DATABASE_GONE):
        return True
    # asyncpg says a closed connection (used, or rolled back, after the server dropped it)
    # with a plain InterfaceError; any other InterfaceError is a bug and stays a 500
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    # an idle pooled connection that had just read the server's "terminating connection"
    # (a fast shutdown) but not yet its end is handed out half-broken; asyncpg then refuses
    # the next query with "another operation (2) is in progress" (state 2: consuming an
    # error) and drops the connection when it comes back to the pool (asyncpg issue 784)
    return isinstance(exc, asyncpg.exceptions.InternalClientError) and "another operation" in str(
        exc
    )


def as_service_error(exc: Exception) -> ServiceError | None:
    if isinstance(exc, ServiceError):
        return exc
    if _database_gone(exc):
        log.warning("database connection lost: %s: %s", type(exc).__name__, exc)
        return DatabaseUnavailable()
    for kind, convert in FOREIGN.items():
        if isinstance(exc, kind):
            return convert(exc)
    return None


@web.middleware
async def json_errors(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return json_error(
            exc.status, code, exc.reason if exc.status != 413 else exc.text or exc.reason
        )
    except Exception as exc:
        error = as_service_error(exc)
        if error is not None:
            return json_error(error.status, error.code, error.reason, error.headers, **error.extra)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(
            500, "internal_error", "the service could not handle this request; it has been logged"
        )
