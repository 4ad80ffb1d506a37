"""Shared fixtures: a virtual clock whose sleeps only advance time, sandboxes, captured events.

And what keeps the suite steady on a busy machine (CI shares its cores): ``wait_until`` polls a real
condition with a generous deadline instead of sleeping a fixed time, ``store_rows`` reads a store
another process is writing without tripping over a half-created schema or a lock, ``children``
kills, reaps and closes every child process a test started, and Hypothesis runs without per-example
deadlines (a descheduled example is not a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from optional_tools import HAS_HYPOTHESIS, HealthCheck, settings
from postgres import postgres_url as postgres_url  # a fresh database per test (issue 14)

from tweetgen.sandbox import SandboxServer

T = TypeVar("T")

#: How long a test waits for another process or thread to make progress: ample on a loaded machine,
#: while a condition that holds ends the wait at once.
PROGRESS_TIMEOUT = 60.0

if (
    HAS_HYPOTHESIS
):  # without it (the seed's Testing section) the property tests skip: see optional_tools
    settings.register_profile(
        "tweetgen", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("tweetgen")


class FakeTime:
    """A monotonic clock that moves only when something sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    """Returns the event dicts tweetgen logged so far, in order (level, context and fields
    included)."""
    caplog.set_level(logging.DEBUG, logger="tweetgen")
    return lambda: [dict(r.msg) for r in caplog.records if isinstance(r.msg, dict)]


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def _gave_up(
    what: str, timeout: float, value: object, process: subprocess.Popen[Any] | None
) -> str:
    if process is not None and process.returncode is not None:
        stderr = process.stderr.read()[-2000:] if process.stderr is not None else "(not captured)"
        return (
            f"the child process exited with code {process.returncode} before {what} "
            f"(last value: {value!r}); its stderr ends with: {stderr!r}"
        )
    return f"gave up after {timeout:g} s waiting for {what} (last value: {value!r})"


def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = PROGRESS_TIMEOUT,
    interval: float = 0.02,
    process: subprocess.Popen[Any] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy and return that value.

    Fails the test after ``timeout`` seconds with a message naming ``what`` and the last value seen;
    with ``process``, fails as soon as that child has exited without the condition holding (no point
    waiting on).
    """
    deadline = time.monotonic() + timeout
    while True:
        ended = process is not None and process.poll() is not None
        value = condition()
        if value:
            return value
        if ended or time.monotonic() >= deadline:
            pytest.fail(_gave_up(what, timeout, value, process), pytrace=False)
        time.sleep(interval)


async def await_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = PROGRESS_TIMEOUT,
    interval: float = 0.005,
) -> T:
    """``wait_until`` for a coroutine: polls with ``asyncio.sleep`` so the event loop keeps running
    meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(_gave_up(what, timeout, value, None), pytrace=False)
        await asyncio.sleep(interval)


def store_rows(path: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Run ``sql`` on the SQLite store at ``path`` read-only; ``None`` while it cannot answer yet.

    For polling a store that another process writes: a missing file, a schema not created yet ("no
    such table") or a lock all mean "not yet", never a failure, and this reader neither creates the
    file nor holds it open.
    """
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0.1)
    except sqlite3.Error:
        return None
    try:
        return connection.execute(sql).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def store_count(path: Path, sql: str) -> int:
    """The single number ``sql`` selects from the store at ``path``, or 0 while the store cannot
    answer yet."""
    rows = store_rows(path, sql)
    return int(rows[0][0]) if rows else 0


class Children:
    """The child processes a test starts; each is killed if still running, reaped and its pipes
    closed at the end."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[Any]] = []

    def start(self, command: list[str], **options: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen(command, **options)``, remembered for the clean-up."""
        process = subprocess.Popen(command, **options)
        self.processes.append(process)
        return process

    def close(self) -> None:
        """Kill what still runs, wait for every child and close its pipes (no zombie, no
        ResourceWarning)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=PROGRESS_TIMEOUT)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def children() -> Iterator[Children]:
    """Start child processes with ``children.start(...)``; they never outlive the test, pass or
    fail."""
    spawned = Children()
    try:
        yield spawned
    finally:
        spawned.close()
