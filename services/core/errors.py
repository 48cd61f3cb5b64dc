"""The one error type that callers are told about.

Anything below the HTTP layer that refuses a request (a dispatch that cannot be done, a
message that cannot be accepted, an order in the wrong state, a missing record) raises a
`ServiceError` carrying the HTTP status, a stable machine code and a plain reason. The JSON
error middleware (services/http/errors.py) turns it into `{"error": code, "reason": reason}`
with that status; WebSocket frames and the CLI show the same code and reason. Handlers do not
catch and convert errors themselves.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "reason": self.reason, **self.extra}


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"


# how long a client is told to wait before it retries while the database is away
DATABASE_RETRY_AFTER_S = 2


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached now (restarting, down, every connection busy past the
    acquire timeout): the client is told when to try again (a chat message resent with its
    client_message_id is handled once, whatever part of it was done)."""

    code = "database_unavailable"

    def __init__(self, reason: str = "the database is not reachable right now") -> None:
        super().__init__(
            f"{reason}; try again in {DATABASE_RETRY_AFTER_S} s",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            retry_after=DATABASE_RETRY_AFTER_S,
        )


def json_exception(
    status: int, code: str, reason: str, headers: dict[str, str] | None = None
) -> ServiceError:
    """A ServiceError from its three parts, for call sites that name the status."""
    return ServiceError(reason, code=code, status=status, headers=headers)
