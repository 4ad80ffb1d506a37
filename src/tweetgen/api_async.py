"""The async module-level calls: :func:`agenerate` and :func:`agenerate_tweet`.

Each call gets a fresh async client (connections belong to an event loop); calls with the same
options share one circuit breaker registry and retry budget. Reuse a ``TweetGenerator`` for many
calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
)
from .edge import AsyncSleep, ClientOptions, ProviderSpec, one_async
from .generator import DEFAULT_REGENERATIONS
from .request import TweetRequest
from .results import Tweet

if TYPE_CHECKING:
    from .voice import VoiceProfile

__all__ = ["agenerate", "agenerate_tweet"]


async def agenerate(
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
    voice: str | VoiceProfile | None = None,
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
    thinking: str | None = None,
    service_tier: str | None = None,
    flex_fallback: bool = True,
    sleep: AsyncSleep | None = None,
) -> Tweet:
    """The async twin of :func:`~tweetgen.api.generate`."""
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
        voice=voice,
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
        thinking=thinking,
        service_tier=service_tier,
        flex_fallback=flex_fallback,
    )
    async with one_async(client, sleep) as generator:
        return await generator.agenerate_request(request)


async def agenerate_tweet(
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
    voice: str | VoiceProfile | None = None,
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
    thinking: str | None = None,
    service_tier: str | None = None,
    flex_fallback: bool = True,
    sleep: AsyncSleep | None = None,
) -> str:
    """The async twin of :func:`~tweetgen.api.generate_tweet`."""
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
        voice=voice,
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
        thinking=thinking,
        service_tier=service_tier,
        flex_fallback=flex_fallback,
    )
    async with one_async(client, sleep) as generator:
        return (await generator.agenerate_request(request)).text
