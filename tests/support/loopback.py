"""Serving an aiohttp application on a free loopback port, for tests and benches."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start `app` on 127.0.0.1 with a port the OS picks; the runner (to clean up) and its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp exposes no port getter
    return runner, f"http://127.0.0.1:{port}"


class LoopbackServer:
    """An app of the tests' own (a fake provider API) on a loopback port: `serve` starts it and
    sets `url`, `stop` ends it."""

    url: str = ""
    _runner: web.AppRunner | None = None

    async def serve(self, app: web.Application) -> None:
        self._runner, self.url = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
