"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import asynccontextmanager

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The machine has no internet: stop Chromium's own background traffic.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `apt-get install -y chromium` (.ci/run does)"
        )


def require_cjk_font() -> None:
    """Without a CJK font Chromium draws Chinese as boxes, and a screenshot shows nothing."""
    try:
        families = subprocess.run(
            ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        families = ""
    if not families.strip():
        pytest.fail("no CJK font: run `apt-get install -y fonts-noto-cjk` (.ci/install does)")


@asynccontextmanager
async def chromium_page():
    require_chromium()
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="hotline-chromium-")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            yield page
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)
