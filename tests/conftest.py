"""Shared fixtures: a virtual clock whose sleeps only advance time, sandboxes, captured events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tweetgen.sandbox import SandboxServer


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
    """Returns the event dicts tweetgen logged so far, in order (level, context and fields included)."""
    caplog.set_level(logging.DEBUG, logger="tweetgen")
    return lambda: [dict(r.msg) for r in caplog.records if isinstance(r.msg, dict)]


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]
