"""The cheaper equivalents on a call's path (issue 13): each one against what it replaced."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import re

import structlog

from tweetgen.calls import _stamped
from tweetgen.providers.base import Usage
from tweetgen.results import Tweet
from tweetgen.trace import LogField, new_request_id


def test_a_stamped_tweet_is_what_replace_gives() -> None:
    tweet = Tweet("hi #AI", "gemini", "m", 0, 0.0, Usage(3, 4), "AI", "fun", "r1", 2, 6, 2, True)

    class Other(Tweet):
        pass

    other = Other("x", "p", "m", 0, 0.0)
    for value in (tweet, other):
        stamped = _stamped(value, 3, 12.5)
        assert stamped == dataclasses.replace(value, attempts=3, latency_ms=12.5)
        assert type(stamped) is type(value)
        assert vars(stamped) == vars(dataclasses.replace(value, attempts=3, latency_ms=12.5))
    assert (tweet.attempts, tweet.latency_ms) == (0, 0.0)


def test_request_ids_are_16_hex_digits_whatever_the_callers_seed() -> None:
    ids = set()
    for _ in range(3):
        random.seed(7)
        ids.add(new_request_id())
    assert len(ids) == 3
    assert all(re.fullmatch("[0-9a-f]{16}", i) for i in ids)


def test_a_log_field_binds_and_resets_like_structlog() -> None:
    field = LogField("perf2_key")
    structlog.contextvars.clear_contextvars()
    outer = field.bind("outer")
    inner = field.bind("inner")  # the second bind goes through the cached ContextVar
    assert structlog.contextvars.get_contextvars() == {"perf2_key": "inner"}
    field.reset(inner)
    assert structlog.contextvars.get_contextvars() == {"perf2_key": "outer"}
    field.reset(outer)
    assert structlog.contextvars.get_contextvars() == {}


def test_a_log_field_reset_in_another_context_puts_the_old_value_back() -> None:
    field = LogField("perf2_other")
    structlog.contextvars.clear_contextvars()

    async def bind_in_a_task() -> object:
        return field.bind("task")

    token = asyncio.run(bind_in_a_task())  # set in the task's copy of the context
    field.bind("here")
    field.reset(token)  # type: ignore[arg-type]
    assert structlog.contextvars.get_contextvars() == {}


def test_the_budget_window_drops_buckets_as_the_full_scan_did() -> None:
    from tweetgen import budget as module

    now = [0.0]
    fast = module.RetryBudget(window_seconds=10.0, clock=lambda: now[0])
    reference: dict[int, int] = {}
    rng = random.Random(3)
    for _ in range(3000):  # forward in small and large steps, and sometimes back
        now[0] = max(0.0, now[0] + rng.choice([0.3, 0.9, 4.0, 25.0, -3.0, -40.0]) * rng.random())
        fast.record_request()
        epoch = math.floor(now[0] / fast._width)
        for old in [e for e in reference if e <= epoch - module._BUCKETS]:
            del reference[old]
        reference[epoch] = reference.get(epoch, 0) + 1
        assert {e: b.requests for e, b in fast._buckets.items()} == reference
