"""The service's own pages and scripts, served as files with their charset said."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

HTML = "text/html; charset=utf-8"
JAVASCRIPT = "application/javascript; charset=utf-8"


def static_file(
    path: Path, content_type: str
) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    """A GET handler answering with the file at `path`."""

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type})

    return handler
