"""Module-level calls (the seed's ``generate_tweet`` and friends) over cached generators."""

from __future__ import annotations

import atexit
import threading
from typing import Any

from .config import load_settings
from .generator import DEFAULT_REGENERATIONS, Thread, Tweet, TweetGenerator
from .request import check_input
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

_POLICY_KEYS = ("base_delay", "max_delay", "jitter", "deadline", "retry_rate_limits", "max_retry_after")
_SETTING_KEYS = ("api_key", "base_url", "api_version", "model", "timeout")
_GENERATOR_KEYS = ("provider", "engine", "regenerations")
_cache: dict[tuple[Any, ...], TweetGenerator] = {}
_cache_lock = threading.Lock()


def close_cached() -> None:
    """Close the generators the module-level calls keep (run at exit; call it to release sockets sooner)."""
    with _cache_lock:
        generators = list(_cache.values())
        _cache.clear()
    for generator in generators:
        generator.close()


atexit.register(close_cached)


def _split(max_retries: int, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pop the generator's settings out of ``options``; what is left are the call's options."""
    policy = RetryPolicy.from_retries(max_retries, **{k: options.pop(k) for k in _POLICY_KEYS if k in options})
    settings = load_settings(**{k: options.pop(k) for k in _SETTING_KEYS if k in options})
    init: dict[str, Any] = {k: options.pop(k) for k in _GENERATOR_KEYS if k in options}
    init.setdefault("regenerations", DEFAULT_REGENERATIONS)
    return {"settings": settings, "policy": policy, **init}, options


def _cached(max_retries: int, options: dict[str, Any]) -> tuple[TweetGenerator, dict[str, Any]]:
    """A cached generator for these settings (one HTTP client reused across calls) and the call options."""
    sleep = options.pop("sleep", None)
    init, call = _split(max_retries, options)
    key = (sleep, *sorted(init.items(), key=lambda kv: kv[0]))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = TweetGenerator(sleep=sleep, **init)
        return _cache[key], call


def generate(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> Tweet:
    """Generate a :class:`Tweet` (text plus provider, model, attempts, latency, usage)."""
    check_input(topic, tone, max_words)
    generator, call = _cached(max_retries, dict(options))
    return generator.generate(topic, tone, max_words, **call)


def generate_tweet(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
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
    generator, call = _cached(max_retries, dict(options))
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
    generator, call = _cached(max_retries, dict(options))
    return generator.generate_thread(topic, tone, max_words, tweets=tweets, **call)


async def agenerate(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> Tweet:
    """The async twin of :func:`generate` (a fresh async client per call; reuse a TweetGenerator for many)."""
    check_input(topic, tone, max_words)
    options = dict(options)
    sleep = options.pop("sleep", None)
    init, call = _split(max_retries, options)
    generator = TweetGenerator(async_sleep=sleep, **init)
    try:
        return await generator.agenerate(topic, tone, max_words, **call)
    finally:
        await generator.aclose()


async def agenerate_tweet(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> str:
    """The async twin of :func:`generate_tweet`."""
    return (await agenerate(topic, tone, max_words, max_retries, **options)).text
