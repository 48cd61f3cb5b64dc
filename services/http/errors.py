"""Every error of the HTTP API is JSON with a reason, never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web

log = logging.getLogger(__name__)


def json_error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status)


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
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(
            500, "internal_error", "the service could not handle this request; it has been logged"
        )
