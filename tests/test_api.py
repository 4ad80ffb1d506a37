"""The module-level calls: generate_tweet and friends, cached generators, async twins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FakeTime

from tweetgen import (
    ConfigurationError,
    InputError,
    agenerate,
    agenerate_tweet,
    generate,
    generate_thread,
    generate_tweet,
    generate_variants,
)
from tweetgen.api import _cache, close_cached
from tweetgen.sandbox import SandboxServer


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "TWEETGEN_PROVIDER",
        "GEMINI_BASE_URL",
        "TWEETGEN_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    close_cached()
    yield
    close_cached()


def test_generate_tweet_on_the_sandbox_reuses_one_generator() -> None:
    first = generate_tweet("Python Programming", provider="sandbox")
    second = generate_tweet("Python Programming", provider="sandbox")
    assert first == second  # the composer is deterministic
    assert len(_cache) == 1


def test_generate_returns_a_tweet_with_its_story() -> None:
    tweet = generate("Rust", "witty", 20, provider="sandbox", hashtags="none")
    assert (tweet.provider, tweet.attempts, tweet.valid) == ("sandbox", 1, True)
    assert "#" not in tweet.text


def test_retry_options_and_sleep_reach_the_engine() -> None:
    fake = FakeTime()
    with SandboxServer(faults="503*2") as server:
        tweet = generate(
            "AI", api_key="k-api-test", base_url=server.url, base_delay=0.5, sleep=fake.sleep
        )
    assert tweet.attempts == 3
    assert fake.sleeps == [0.5, 1.0]


def test_variants_and_thread_functions() -> None:
    assert 1 <= len(generate_variants("Go", n=2, provider="sandbox")) <= 2
    assert len(generate_thread("Go", tweets=3, provider="sandbox").tweets) == 3


def test_async_functions() -> None:
    fake = FakeTime()

    async def go() -> tuple[str, Any]:
        with SandboxServer(faults="503") as server:
            text = await agenerate_tweet("AI", provider="sandbox")
            tweet = await agenerate("AI", api_key="k", base_url=server.url, sleep=fake.asleep)
        return text, tweet

    text, tweet = asyncio.run(go())
    assert text
    assert tweet.attempts == 2
    assert fake.sleeps == [1.0]


def test_no_key_means_a_clear_error_and_bad_input_fails_first() -> None:
    with pytest.raises(ConfigurationError, match="no Gemini API key configured"):
        generate_tweet("AI")
    with pytest.raises(InputError, match="topic must be a non-empty text"):
        generate_tweet("  ", provider="sandbox")
    with pytest.raises(ConfigurationError, match="max_retries"):
        generate_tweet("AI", max_retries=-1, provider="sandbox")


def test_provider_lists_and_objects() -> None:
    from tweetgen.providers import GeminiProvider

    assert generate_tweet("AI", provider=["sandbox"])
    with SandboxServer() as server:
        own = GeminiProvider(
            api_key="k", model="m", base_url=server.url, name="mine", secret_key=False
        )
        assert generate("AI", provider=own).provider == "mine"
        assert own._client is None  # type: ignore[attr-defined]  # the one-off generator closed it
    assert len(_cache) == 1  # the sandbox chain only: nothing is cached around the caller's object


def test_async_calls_share_one_breaker() -> None:
    from tweetgen.resilience import BreakerSettings

    fake = FakeTime()
    streak = BreakerSettings().consecutive_failures

    async def go() -> tuple[list[str], int]:
        outcomes: list[str] = []
        with SandboxServer(faults="503*100") as server:
            while "CircuitOpenError" not in outcomes and len(outcomes) < 20:
                try:
                    await agenerate("AI", api_key="k", base_url=server.url, sleep=fake.asleep)
                    outcomes.append("ok")
                except Exception as error:
                    outcomes.append(type(error).__name__)
            return outcomes, len(server.requests)

    outcomes, requests = asyncio.run(go())
    # separate calls add up to one streak: the circuit opens after the default streak of failures
    assert outcomes[-1] == "CircuitOpenError"
    assert set(outcomes[:-1]) == {"ServerError"}
    assert len(outcomes) > 2
    assert requests == streak
