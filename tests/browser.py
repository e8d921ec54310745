"""Headless Chromium for the page tests: Debian's `chromium` package driven by Playwright for Python.

Playwright's own browser download is never used: the browser is the system one at CHROMIUM.
Without it (or without Playwright) the browser tests are skipped with the reason, never passed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("RECENGINE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing(chromium: Path = CHROMIUM) -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (pip install playwright; never `playwright install`)"
    if not chromium.exists():
        return f"Chromium not found at {chromium}: `apt-get install -y chromium` (.ci/run does it)"
    return None


MISSING = missing()
requires_chromium = pytest.mark.skipif(MISSING is not None, reason=f"browser tests skipped: {MISSING}")


async def launch() -> AsyncIterator[Any]:
    """A headless Chromium browser (async generator for a fixture; the async API shares pytest's loop)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class Console:
    """Collects a page's console errors, uncaught exceptions and CSP violations."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
