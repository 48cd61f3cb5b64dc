"""Origins and security headers.

* The widget's routes (the chat API and its WebSocket, `widget.js`) answer pages of the
  service's own origin and of the configured allow-list (HOTLINE_ALLOWED_ORIGINS): CORS
  headers from aiohttp-cors, and `origin_guard` refuses a request whose `Origin` is neither
  (a browser sends one with every cross-origin fetch and every WebSocket).
* Every other route (staff pages and APIs, figures) is same-origin only: no CORS headers, and
  a request with a foreign `Origin` is refused. Webhooks come from servers, not browsers.
* `security_headers` puts the same headers on every response, errors and WebSockets included:
  it runs as the app's on_response_prepare hook, which also sees responses that are
  streamed (files, sockets) before a middleware would get them back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp_cors
from aiohttp import web

from services.config import Settings
from services.core.errors import Forbidden

WIDGET_API_PREFIX = "/api/chat/"
WIDGET_SCRIPT = "/widget.js"
WEBHOOK_PREFIXES = ("/twilio/", "/wechat")

# Scripts and styles from the service itself only (the widget adds a <style> element, hence
# 'unsafe-inline' for styles, never for scripts); nothing may frame a page of the service.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # for browsers that predate frame-ancestors
    "X-Frame-Options": "DENY",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def is_own_origin(request: web.Request, origin: str, settings: Settings) -> bool:
    """The page is the service's own: same host (and port) as the request, or the public URL
    (behind a TLS-terminating proxy the request itself looks like plain http)."""
    if settings.public_url and origin == _origin_of(settings.public_url):
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def widget_origin_allowed(request: web.Request, settings: Settings) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser page (a script, a test, curl): nothing to protect
        return True
    origin = origin.rstrip("/").lower()
    return origin in settings.allowed_origins or is_own_origin(request, origin, settings)


SETTINGS = web.AppKey("security_settings", Settings)


@web.middleware
async def origin_guard(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    settings = request.app[SETTINGS]
    path = request.path
    origin = request.headers.get("Origin")
    if origin is None or path.startswith(WEBHOOK_PREFIXES):
        return await handler(request)
    if path.startswith(WIDGET_API_PREFIX) or path == WIDGET_SCRIPT:
        if not widget_origin_allowed(request, settings):
            raise Forbidden(
                f"the chat widget is not allowed on pages of {origin}", code="origin_not_allowed"
            )
    elif not is_own_origin(request, origin.rstrip("/").lower(), settings):
        raise Forbidden("staff pages and APIs answer their own origin only", code="cross_origin")
    return await handler(request)


def install(app: web.Application, settings: Settings) -> None:
    """The headers on every response, and CORS headers on the widget's routes for the
    allow-list (none when it is empty: the widget then works on the service's own portal
    only). Call after the routes are added; `origin_guard` goes in the middlewares."""
    app[SETTINGS] = settings
    app.on_response_prepare.append(security_headers)
    if not settings.allowed_origins:
        return
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=False,
        allow_headers=("Content-Type",),
        expose_headers=("Retry-After",),
        allow_methods=("GET", "POST"),
        max_age=600,
    )
    cors = aiohttp_cors.setup(app)
    for route in list(app.router.routes()):
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if (path.startswith(WIDGET_API_PREFIX) or path == WIDGET_SCRIPT) and route.method in (
            "GET",
            "POST",
        ):
            if path == WIDGET_API_PREFIX + "ws":
                continue  # a WebSocket has no CORS: its Origin is checked by origin_guard
            cors.add(route, {origin: options for origin in settings.allowed_origins})
