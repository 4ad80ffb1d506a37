"""What the hostile-server tests share: a Gemini provider pointed at a :class:`HostileServer`, one
attempt through the sync or async client, a timed failure, and the retry engines driven with virtual
waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FakeTime
from hostile import HostileServer

from tweetgen.errors import TweetGenError
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider
from tweetgen.retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)

KEY = "test-key-123456"
REQUEST = GenerationRequest(prompt="Write a tweet about tests.")
# seconds on top of a bound: scheduling on a loaded machine, never a per-read timeout's worth
MARGIN = 1.5
MODES = ["sync", "async"]
MiB = 1024 * 1024


def gemini_provider(server: HostileServer, **options: Any) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, model="gemini-test", base_url=server.url, **options)


def run_call(provider: GeminiProvider | OpenAIProvider, mode: str) -> GenerationResult:
    """One attempt through the sync or the async client; the client is closed afterwards."""
    if mode == "sync":
        try:
            return provider.generate(REQUEST)
        finally:
            provider.close()

    async def run() -> GenerationResult:
        try:
            return await provider.agenerate(REQUEST)
        finally:
            await provider.aclose()

    return asyncio.run(run())


def timed_failure(call: Callable[[], object]) -> tuple[TweetGenError, float]:
    started = time.monotonic()
    with pytest.raises(TweetGenError) as caught:
        call()
    return caught.value, time.monotonic() - started


ENGINES = {
    "custom": (retry_with_custom_backoff, aretry_with_custom_backoff),
    "tenacity": (retry_with_tenacity, aretry_with_tenacity),
}


def retried(
    provider: GeminiProvider, mode: str, engine: str, policy: RetryPolicy
) -> Callable[[], object]:
    sync_loop, async_loop = ENGINES[engine]
    # waits between attempts are virtual; only the attempt itself runs in real time
    fake = FakeTime()

    if mode == "sync":

        def run_sync() -> object:
            try:
                return sync_loop(
                    lambda: provider.generate(REQUEST), policy=policy, sleep=fake.sleep
                )
            finally:
                provider.close()

        return run_sync

    async def run_async() -> object:
        try:
            return await async_loop(
                lambda: provider.agenerate(REQUEST), policy=policy, sleep=fake.asleep
            )
        finally:
            await provider.aclose()

    return lambda: asyncio.run(run_async())
