"""Module-level calls (the seed's ``generate_tweet`` and friends) over cached generators."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .config import load_settings
from .generator import (
    DEFAULT_REGENERATIONS,
    TweetGenerator,
    log_breaker_change,
)
from .request import check_input
from .resilience import BreakerRegistry, RetryBudget
from .results import Thread, Tweet
from .retry import DEFAULT_MAX_RETRIES, RetryPolicy

__all__ = [
    "agenerate",
    "agenerate_tweet",
    "close_cached",
    "generate",
    "generate_thread",
    "generate_tweet",
    "generate_variants",
]

_POLICY_KEYS = (
    "base_delay",
    "max_delay",
    "jitter",
    "deadline",
    "retry_rate_limits",
    "max_retry_after",
)
_SETTING_KEYS = ("api_key", "base_url", "api_version", "model", "timeout")
_GENERATOR_KEYS = ("provider", "engine", "regenerations")
_cache: dict[tuple[Any, ...], TweetGenerator] = {}
_resilience: dict[tuple[Any, ...], tuple[BreakerRegistry, RetryBudget]] = {}
_cache_lock = threading.Lock()


def close_cached() -> None:
    """Close the generators the module-level calls keep (run at exit; call it to release sockets sooner)."""
    with _cache_lock:
        generators = list(_cache.values())
        _cache.clear()
        _resilience.clear()
    for generator in generators:
        generator.close()


atexit.register(close_cached)


def _split(max_retries: int, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pop the generator's settings out of ``options``; what is left are the call's options."""
    policy = RetryPolicy.from_retries(
        max_retries, **{k: options.pop(k) for k in _POLICY_KEYS if k in options}
    )
    settings = load_settings(**{k: options.pop(k) for k in _SETTING_KEYS if k in options})
    init: dict[str, Any] = {k: options.pop(k) for k in _GENERATOR_KEYS if k in options}
    init.setdefault("regenerations", DEFAULT_REGENERATIONS)
    provider = init.get("provider")
    if isinstance(provider, (list, tuple)) and all(isinstance(p, str) for p in provider):
        init["provider"] = ",".join(provider)  # ["gemini", "openai"] is the chain "gemini,openai"
    return {"settings": settings, "policy": policy, **init}, options


def _key(init: dict[str, Any], sleep: object) -> tuple[Any, ...] | None:
    """The cache key of a generator's settings; ``None`` when the caller passed its own provider objects."""
    provider = init.get("provider")
    if provider is not None and not isinstance(provider, str):
        return None
    return (sleep, *sorted(init.items(), key=lambda kv: kv[0]))


def _shared(key: tuple[Any, ...] | None, policy: RetryPolicy) -> dict[str, Any]:
    """One circuit breaker registry and retry budget per settings, shared by sync and async calls."""
    if key is None:
        return {}
    with _cache_lock:
        if key not in _resilience:
            _resilience[key] = (
                BreakerRegistry(on_state_change=log_breaker_change),
                RetryBudget.for_policy(policy),
            )
        breakers, budget = _resilience[key]
    return {"circuit_breaker": breakers, "retry_budget": budget}


def _cached(
    max_retries: int, options: dict[str, Any]
) -> tuple[TweetGenerator, dict[str, Any], bool]:
    """A generator for these settings (cached: one HTTP client reused), the call options, and whether it is
    a one-off the caller must close (built around provider objects the caller passed)."""
    sleep = options.pop("sleep", None)
    init, call = _split(max_retries, options)
    key = _key(init, sleep)
    if key is None:
        return TweetGenerator(sleep=sleep, **init), call, True
    with _cache_lock:
        generator = _cache.get(key)
    if generator is None:
        generator = TweetGenerator(sleep=sleep, **init, **_shared(key, init["policy"]))
        with _cache_lock:
            generator = _cache.setdefault(key, generator)
    return generator, call, False


@contextmanager
def _generator(
    max_retries: int, options: dict[str, Any]
) -> Iterator[tuple[TweetGenerator, dict[str, Any]]]:
    generator, call, one_off = _cached(max_retries, dict(options))
    try:
        yield generator, call
    finally:
        if one_off:
            generator.close()


def generate(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> Tweet:
    """Generate a :class:`Tweet` (text plus provider, model, attempts, latency, usage)."""
    check_input(topic, tone, max_words)
    with _generator(max_retries, options) as (generator, call):
        return generator.generate(topic, tone, max_words, **call)


def generate_tweet(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> str:
    """Generate a tweet's text, retrying transient failures ``max_retries`` times (the seed's API)."""
    return generate(topic, tone, max_words, max_retries, **options).text


def generate_variants(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    *,
    n: int = 3,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> list[Tweet]:
    """Up to ``n`` different valid tweets, best first."""
    with _generator(max_retries, options) as (generator, call):
        return generator.generate_variants(topic, tone, max_words, n=n, **call)


def generate_thread(
    topic: str,
    tone: str = "professional",
    max_words: int = 40,
    *,
    tweets: int = 5,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> Thread:
    """A numbered thread of valid tweets."""
    with _generator(max_retries, options) as (generator, call):
        return generator.generate_thread(topic, tone, max_words, tweets=tweets, **call)


async def agenerate(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> Tweet:
    """The async twin of :func:`generate` (a fresh async client per call; reuse a TweetGenerator for many)."""
    check_input(topic, tone, max_words)
    options = dict(options)
    sleep = options.pop("sleep", None)
    init, call = _split(max_retries, options)
    shared = _shared(_key(init, None), init["policy"])
    generator = TweetGenerator(async_sleep=sleep, **init, **shared)
    try:
        return await generator.agenerate(topic, tone, max_words, **call)
    finally:
        await generator.aclose()


async def agenerate_tweet(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> str:
    """The async twin of :func:`generate_tweet`."""
    return (await agenerate(topic, tone, max_words, max_retries, **options)).text
