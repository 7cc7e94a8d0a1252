"""Headless Chromium for the page tests: Debian's /usr/bin/chromium (or $INTERVIEW_SIM_CHROMIUM) driven by Playwright.

A test module without it skips with the reason locally and fails under CI (which installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("INTERVIEW_SIM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set INTERVIEW_SIM_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[dev]'"
    return None


def require(what: str, reason: str | None = None) -> None:
    """Skip (locally) or fail (under CI) the calling fixture's tests when the browser, or `reason`, is missing."""
    reason = missing() or reason
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{what} must run in CI: {reason}")
        pytest.skip(reason)


@contextmanager
def launched(what: str = "the browser tests", reason: str | None = None) -> Iterator[Any]:
    """A headless Chromium for the duration of the block (Playwright's sync API runs an event loop of its own: make
    anything that needs `asyncio.run` before entering)."""
    require(what, reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
