"""Helpers for the staff pages in headless Chromium: log in on a page, collect console errors,
and save a screenshot at 1366x768 when HOTLINE_SCREENSHOTS=1 (docs/screenshots/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}


def watch_console(page: Any) -> list[str]:
    """Every console error and uncaught exception of the page, as text (checked at the end)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


async def log_in(page: Any, url: str, path: str, username: str, password: str) -> None:
    """Open a staff page and log in on its form; returns when the page says it is ready (or
    refused the role)."""
    await page.set_viewport_size(VIEWPORT)
    await page.goto(url + path)
    await page.fill("#login-user", username)
    await page.fill("#login-pass", password)
    await page.click("#login-btn")
    await page.wait_for_selector("body[data-ready='1'], body[data-refused='1']", timeout=15000)


async def snap(page: Any, name: str, show: str | None = None) -> None:
    """docs/screenshots/<name>.png, when asked for (HOTLINE_SCREENSHOTS=1): the pictures in the
    docs come from the same runs that check the pages work."""
    if os.environ.get("HOTLINE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if show:  # the part of a long page the picture is about
        await page.locator(show).scroll_into_view_if_needed()
    else:
        await page.evaluate("window.scrollTo(0, 0)")
    await page.wait_for_timeout(300)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
