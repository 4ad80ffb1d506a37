"""What the browser tests share: Debian's Chromium driven by Playwright's sync API, a review server
on 127.0.0.1 per test, and screenshots kept as artefacts.

Chromium is found on PATH (``chromium``, ``chromium-browser``) or at ``TWEETGEN_CHROMIUM``;
Playwright's own browser downloads are never used. Without Chromium or the playwright package the
tests skip with that reason; with ``TWEETGEN_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail
instead, so CI never passes on skipped browser tests (as tests/postgres.py does for PostgreSQL).

Screenshots go to ``$TWEETGEN_TEST_ARTIFACTS/review/`` when that is set, else under the test's
``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until

from tweetgen.review.regenerate import EngineFactory, default_engine
from tweetgen.review.server import ReviewServer
from tweetgen.store import Store

__all__ = ["REQUIRE", "browser", "chromium_path", "page", "serve", "shots"]

REQUIRE = "TWEETGEN_REQUIRE_BROWSER"
ARTIFACTS = "TWEETGEN_TEST_ARTIFACTS"
#: the longest a browser step may wait (a busy 2-core machine)
STEP_MS = 20_000


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the browser tests must run)")
    pytest.skip(reason)


def chromium_path() -> str:
    """Chromium's executable, or skip (fail under CI)."""
    found = os.environ.get("TWEETGEN_CHROMIUM") or next(
        filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser"))), None
    )
    if not found:
        _missing("no Chromium: install Debian's chromium package (apt-get install chromium)")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for the module's tests."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context, downloads accepted), steps bounded by :data:`STEP_MS`."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(STEP_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], errors  # no script error, no CSP violation


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test's screenshots go."""
    root = os.environ.get(ARTIFACTS)
    folder = Path(root) / "review" if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def serve(store: Store, engine: EngineFactory = default_engine) -> Iterator[ReviewServer]:
    """The review page of ``store`` on 127.0.0.1, stopped afterwards."""
    server = ReviewServer(store, engine=engine).start()
    try:
        wait_until(lambda: server.started, what="the review server", timeout=30)
        yield server
    finally:
        server.stop()
