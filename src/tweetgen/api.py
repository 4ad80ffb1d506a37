"""Module-level calls (the seed's ``generate_tweet`` and friends) over cached generators.

Every option is a named, typed, keyword-only parameter (after the seed's positional four), so a
misspelt name fails at the caller's line with Python's own ``unexpected keyword argument``. The
tweet's options become a validated :class:`~tweetgen.request.TweetRequest`, the client's a
:class:`~tweetgen.edge.ClientOptions`, whose settings, policy and generator are resolved once and
reused (:mod:`tweetgen.edge`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .api_async import agenerate, agenerate_tweet
from .backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
)
from .edge import ClientOptions, ProviderSpec, Sleep, borrowed, close_cached
from .edge import _cache as _cache
from .generator import DEFAULT_REGENERATIONS
from .request import TweetRequest
from .results import Thread, Tweet

__all__ = [
    "agenerate",
    "agenerate_tweet",
    "close_cached",
    "generate",
    "generate_thread",
    "generate_tweet",
    "generate_variants",
]


def generate(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    *,
    template: str = "tweet",
    hashtags: str | Sequence[str] = "auto",
    emoji: bool | None = None,
    audience: str | None = None,
    call_to_action: str | None = None,
    language: str | None = None,
    link: str | None = None,
    banned_phrases: Sequence[str] = (),
    seed: int | None = None,
    temperature: float | None = None,
    extra: dict[str, str] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_version: str | None = None,
    model: str | None = None,
    timeout: float | None = None,
    provider: ProviderSpec = None,
    engine: str = "custom",
    regenerations: int = DEFAULT_REGENERATIONS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    jitter: str = "none",
    deadline: float | None = None,
    retry_rate_limits: bool = False,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    shared: str | None = None,
    sleep: Sleep | None = None,
) -> Tweet:
    """Generate a :class:`Tweet` (text plus provider, model, attempts, latency, usage)."""
    request = TweetRequest(
        topic,
        tone,
        max_words,
        template=template,
        hashtags=hashtags,
        emoji=emoji,
        audience=audience,
        call_to_action=call_to_action,
        language=language,
        link=link,
        banned_phrases=banned_phrases,
        seed=seed,
        temperature=temperature,
        extra={} if extra is None else extra,
    )
    client = ClientOptions(
        max_retries,
        api_key=api_key,
        base_url=base_url,
        api_version=api_version,
        model=model,
        timeout=timeout,
        provider=provider,
        engine=engine,
        regenerations=regenerations,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        retry_rate_limits=retry_rate_limits,
        max_retry_after=max_retry_after,
        shared=shared,
    )
    with borrowed(client, sleep) as generator:
        return generator.generate_request(request)


def generate_tweet(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    max_retries: int = DEFAULT_MAX_RETRIES,
    *,
    template: str = "tweet",
    hashtags: str | Sequence[str] = "auto",
    emoji: bool | None = None,
    audience: str | None = None,
    call_to_action: str | None = None,
    language: str | None = None,
    link: str | None = None,
    banned_phrases: Sequence[str] = (),
    seed: int | None = None,
    temperature: float | None = None,
    extra: dict[str, str] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_version: str | None = None,
    model: str | None = None,
    timeout: float | None = None,
    provider: ProviderSpec = None,
    engine: str = "custom",
    regenerations: int = DEFAULT_REGENERATIONS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    jitter: str = "none",
    deadline: float | None = None,
    retry_rate_limits: bool = False,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    shared: str | None = None,
    sleep: Sleep | None = None,
) -> str:
    """A tweet's text, transient failures retried ``max_retries`` times (the seed's API)."""
    request = TweetRequest(
        topic,
        tone,
        max_words,
        template=template,
        hashtags=hashtags,
        emoji=emoji,
        audience=audience,
        call_to_action=call_to_action,
        language=language,
        link=link,
        banned_phrases=banned_phrases,
        seed=seed,
        temperature=temperature,
        extra={} if extra is None else extra,
    )
    client = ClientOptions(
        max_retries,
        api_key=api_key,
        base_url=base_url,
        api_version=api_version,
        model=model,
        timeout=timeout,
        provider=provider,
        engine=engine,
        regenerations=regenerations,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        retry_rate_limits=retry_rate_limits,
        max_retry_after=max_retry_after,
        shared=shared,
    )
    with borrowed(client, sleep) as generator:
        return generator.generate_request(request).text


def generate_variants(
    topic: str,
    tone: str = "professional",
    max_words: int = 25,
    *,
    n: int = 3,
    max_retries: int = DEFAULT_MAX_RETRIES,
    template: str = "tweet",
    hashtags: str | Sequence[str] = "auto",
    emoji: bool | None = None,
    audience: str | None = None,
    call_to_action: str | None = None,
    language: str | None = None,
    link: str | None = None,
    banned_phrases: Sequence[str] = (),
    seed: int | None = None,
    temperature: float | None = None,
    extra: dict[str, str] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_version: str | None = None,
    model: str | None = None,
    timeout: float | None = None,
    provider: ProviderSpec = None,
    engine: str = "custom",
    regenerations: int = DEFAULT_REGENERATIONS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    jitter: str = "none",
    deadline: float | None = None,
    retry_rate_limits: bool = False,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    shared: str | None = None,
    sleep: Sleep | None = None,
) -> list[Tweet]:
    """Up to ``n`` different valid tweets, best first."""
    request = TweetRequest(
        topic,
        tone,
        max_words,
        variants=n,
        template=template,
        hashtags=hashtags,
        emoji=emoji,
        audience=audience,
        call_to_action=call_to_action,
        language=language,
        link=link,
        banned_phrases=banned_phrases,
        seed=seed,
        temperature=temperature,
        extra={} if extra is None else extra,
    )
    client = ClientOptions(
        max_retries,
        api_key=api_key,
        base_url=base_url,
        api_version=api_version,
        model=model,
        timeout=timeout,
        provider=provider,
        engine=engine,
        regenerations=regenerations,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        retry_rate_limits=retry_rate_limits,
        max_retry_after=max_retry_after,
        shared=shared,
    )
    with borrowed(client, sleep) as generator:
        return generator._drive(request, generator._variants_plan)


def generate_thread(
    topic: str,
    tone: str = "professional",
    max_words: int = 40,
    *,
    tweets: int = 5,
    numbering: bool = True,
    max_retries: int = DEFAULT_MAX_RETRIES,
    template: str = "tweet",
    hashtags: str | Sequence[str] = "auto",
    emoji: bool | None = None,
    audience: str | None = None,
    call_to_action: str | None = None,
    language: str | None = None,
    link: str | None = None,
    banned_phrases: Sequence[str] = (),
    seed: int | None = None,
    temperature: float | None = None,
    extra: dict[str, str] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_version: str | None = None,
    model: str | None = None,
    timeout: float | None = None,
    provider: ProviderSpec = None,
    engine: str = "custom",
    regenerations: int = DEFAULT_REGENERATIONS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    jitter: str = "none",
    deadline: float | None = None,
    retry_rate_limits: bool = False,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    shared: str | None = None,
    sleep: Sleep | None = None,
) -> Thread:
    """A numbered thread of valid tweets (``numbering=False``: no ``1/5``)."""
    request = TweetRequest(
        topic,
        tone,
        max_words,
        thread=tweets,
        numbering=numbering,
        template=template,
        hashtags=hashtags,
        emoji=emoji,
        audience=audience,
        call_to_action=call_to_action,
        language=language,
        link=link,
        banned_phrases=banned_phrases,
        seed=seed,
        temperature=temperature,
        extra={} if extra is None else extra,
    )
    client = ClientOptions(
        max_retries,
        api_key=api_key,
        base_url=base_url,
        api_version=api_version,
        model=model,
        timeout=timeout,
        provider=provider,
        engine=engine,
        regenerations=regenerations,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        retry_rate_limits=retry_rate_limits,
        max_retry_after=max_retry_after,
        shared=shared,
    )
    with borrowed(client, sleep) as generator:
        return generator._drive(request, generator._thread_plan)
