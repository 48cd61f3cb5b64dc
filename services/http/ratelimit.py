"""Rate limits: the `limits` library's moving windows, kept in this process's memory.

Every request is counted against one per-address limit chosen by its route (chat, login,
webhook refusals, everything else: `route_limit`); handlers add the limits that need the
request's content (a chat session, a login's user name) with `RateLimits.hit`. Exceeded: 429
with `Retry-After` and a JSON reason.

In memory, per process: `limits` has no PostgreSQL storage, and a Redis only for this would
be one more server to run. With N service processes behind one address the effective limit
is up to N times the setting (docs/security.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from aiohttp import web
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from services.config import Settings
from services.core.errors import ServiceError
from services.http.client_address import of_request, parse_networks

# the limit of each name, from the settings' field of the same name with `rate_` before it
NAMES = (
    "chat_session",
    "chat_address",
    "login_address",
    "login_account",
    "webhook_refused",
    "address",
)
# what a client is told each limit is about
ABOUT = {
    "chat_session": "messages in this chat session",
    "chat_address": "chat requests from your address",
    "login_address": "login attempts from your address",
    "login_account": "login attempts for this user name",
    "webhook_refused": "refused webhook requests from your address",
    "address": "requests from your address",
}


class RateLimited(ServiceError):
    status, code = 429, "rate_limited"


@dataclass(frozen=True)
class Window:
    name: str
    item: RateLimitItem


class RateLimits:
    """The limits of one process: `hit` counts a request and refuses it past the limit;
    `check` and `count` do the two apart, for what counts only once its outcome is known."""

    def __init__(self, settings: Settings) -> None:
        self.windows = {
            name: Window(name, parse(getattr(settings, f"rate_{name}"))) for name in NAMES
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.proxies = parse_networks(",".join(settings.trusted_proxies))

    async def hit(self, name: str, key: str) -> None:
        window = self.windows[name]
        if not await self._limiter.hit(window.item, name, key):
            raise await self._refusal(window, key)

    async def check(self, name: str, key: str) -> None:
        """Refuse when the limit is used up, without counting this request."""
        window = self.windows[name]
        if not await self._limiter.test(window.item, name, key):
            raise await self._refusal(window, key)

    async def count(self, name: str, key: str) -> None:
        """Count a request known only afterwards to count (a wrong password)."""
        await self._limiter.hit(self.windows[name].item, name, key)

    async def _refusal(self, window: Window, key: str) -> RateLimited:
        stats = await self._limiter.get_window_stats(window.item, window.name, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimited(
            f"too many {ABOUT[window.name]} (at most {window.item}); try again in {wait} s",
            headers={"Retry-After": str(wait)},
            limit=window.name,
            retry_after=wait,
        )


RATE_LIMITS = web.AppKey("rate_limits", RateLimits)

WEBHOOK_PREFIXES = ("/twilio/", "/wechat")


def client_address(request: web.Request) -> str:
    """The client's address through trusted proxies (services/http/client_address.py), as
    the key of the per-address limits."""
    address = of_request(request, request.app[RATE_LIMITS].proxies)
    return str(address) if address is not None else (request.remote or "unknown")


def route_limit(request: web.Request) -> str:
    """The per-address limit a request counts against."""
    path = request.path
    if path.startswith("/api/chat/"):
        return "chat_address"
    if path == "/api/auth/login":
        return "login_address"
    if path.startswith(WEBHOOK_PREFIXES):
        return "webhook_refused"
    return "address"


@web.middleware
async def rate_limits(request: web.Request, handler):  # noqa: ANN001, ANN201 - aiohttp's signature
    limits = request.app[RATE_LIMITS]
    name = route_limit(request)
    address = client_address(request)
    if name != "webhook_refused":
        await limits.hit(name, address)
        return await handler(request)
    # a webhook is verified before anything else (channels/twilio_webhooks.py,
    # channels/wechat.py): one that passes costs nothing, whatever its address has sent
    # before, so forgeries can never shut the providers out; refusals count, and past the
    # limit the refusal is a 429 that says how long to wait
    try:
        response = await handler(request)
    except ServiceError as exc:
        if exc.status in (401, 403):
            await limits.hit(name, address)
        raise
    if response.status in (401, 403):
        await limits.hit(name, address)
    return response
