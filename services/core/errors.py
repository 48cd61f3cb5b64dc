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


def json_exception(
    status: int, code: str, reason: str, headers: dict[str, str] | None = None
) -> ServiceError:
    """A ServiceError from its three parts, for call sites that name the status."""
    return ServiceError(reason, code=code, status=status, headers=headers)
