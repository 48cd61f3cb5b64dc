"""Two middlewares every request goes through, outermost first:

* `request_ids`: the request's id (the caller's X-Request-Id when it is a sensible token,
  else a new one) in the logging context (services/core/logs.py) and in the response's
  X-Request-Id, errors included;
* `http_metrics`: counts the request and times it by its route's canonical path
  ("/api/unit/orders/{number}/sign", never the raw URL, so the label set stays small);
  a WebSocket is counted as open while its handler runs instead of being timed.
"""

from __future__ import annotations

import re
import time
import uuid

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from services.core import metrics
from services.core.logs import REQUEST_ID

HEADER = "X-Request-Id"
# What is accepted from a caller (a proxy's or a client's id); anything else is replaced.
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "unmatched"


def request_id_of(raw: str | None) -> str:
    return raw if raw and _GOOD_ID.match(raw) else uuid.uuid4().hex


@web.middleware
async def request_ids(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    rid = request_id_of(request.headers.get(HEADER))
    token = REQUEST_ID.set(rid)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[HEADER] = rid
            raise
        if not response.prepared:  # a WebSocket or a stream has sent its headers already
            response.headers[HEADER] = rid
        return response
    finally:
        REQUEST_ID.reset(token)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log line (one per request, written after the middlewares are done),
    with the request's id taken from the response it got."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1f ms',
            request.remote,
            request.method,
            request.path_qs,
            response.status,
            time * 1000,
            extra={"request_id": response.headers.get(HEADER, "-")},
        )


def route_of(request: web.Request) -> str:
    """The canonical path of the route that matched ("unmatched" when none did)."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED
    return resource.canonical


@web.middleware
async def http_metrics(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    route = route_of(request)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        gauge = metrics.WEBSOCKETS.labels(route=route)
        gauge.inc()
        try:
            return await handler(request)
        finally:
            gauge.dec()
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.HTTP_LATENCY.labels(route=route, method=request.method).observe(
            time.perf_counter() - start
        )
        metrics.HTTP_REQUESTS.labels(route=route, method=request.method, status=str(status)).inc()
