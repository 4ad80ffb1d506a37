"""From a topic to a valid tweet: validate input, render the prompt, retry the provider, check the text."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import structlog

from .config import Settings, load_settings
from .errors import ConfigurationError, InputError, TweetValidationError
from .logs import get_logger, preview
from .prompts import TONES, TemplateRegistry, default_registry
from .providers.base import GenerationRequest, GenerationResult, Provider, Usage
from .providers.gemini import GeminiProvider
from .retry import (
    DEFAULT_MAX_RETRIES,
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)
from .tweets import TweetCheck, TweetRules, check_tweet, clean_tweet, rank_candidates

__all__ = [
    "DEFAULT_REGENERATIONS",
    "MAX_TOPIC_LENGTH",
    "Tweet",
    "TweetGenerator",
    "agenerate",
    "agenerate_tweet",
    "generate",
    "generate_tweet",
]

_log = get_logger()
MAX_TOPIC_LENGTH = 200
MAX_WORDS_RANGE = (1, 60)
DEFAULT_REGENERATIONS = 2
ENGINES = ("custom", "tenacity")


@dataclass(frozen=True)
class Tweet:
    """A generated tweet and how it was made."""

    text: str
    provider: str
    model: str
    attempts: int
    latency_ms: float
    usage: Usage = field(default_factory=Usage)
    topic: str = ""
    tone: str = ""
    request_id: str = ""
    regenerations: int = 0
    weighted_length: int = 0
    words: int = 0
    model_version: str | None = None

    def __str__(self) -> str:
        return self.text


def check_input(topic: object, tone: object, max_words: object) -> tuple[str, str, int]:
    """Normalise and validate the request; raises ``InputError`` (a ``ValueError``) with the fix."""
    if not isinstance(topic, str) or not topic.strip():
        raise InputError("topic must be a non-empty text, e.g. topic='Python Programming'")
    topic = " ".join(topic.split())
    if len(topic) > MAX_TOPIC_LENGTH:
        raise InputError(f"topic is {len(topic)} characters; the limit is {MAX_TOPIC_LENGTH}")
    if not isinstance(tone, str) or tone.strip().lower() not in TONES:
        raise InputError(f"unknown tone {tone!r}; choose one of {', '.join(sorted(TONES))} or register_tone()")
    low, high = MAX_WORDS_RANGE
    if isinstance(max_words, bool) or not isinstance(max_words, int) or not low <= max_words <= high:
        raise InputError(f"max_words must be a whole number from {low} to {high}, got {max_words!r}")
    return topic, tone.strip().lower(), max_words


def resolve_provider(settings: Settings, choice: str | None = None) -> str:
    """``gemini`` or ``sandbox``: ``auto`` picks by key; the library never falls back silently."""
    choice = choice or settings.provider
    if choice == "auto":
        return "gemini" if settings.api_key else "sandbox"
    if choice in (None, "gemini") and not settings.api_key:
        raise ConfigurationError(
            "no Gemini API key configured: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment or .env, "
            "pass api_key=..., or use the offline sandbox with provider='sandbox' (TWEETGEN_PROVIDER=sandbox)"
        )
    if choice not in (None, "gemini", "sandbox"):
        raise ConfigurationError(f"unknown provider {choice!r}; choose auto, gemini or sandbox")
    return choice or "gemini"


def build_provider(settings: Settings, choice: str | None = None, **transports: Any) -> Provider:
    """The provider the settings name (the sandbox is started on first use)."""
    name = resolve_provider(settings, choice)
    if name == "sandbox":
        from .sandbox import default_sandbox

        url, key = default_sandbox().url, "sandbox"
    else:
        assert settings.api_key is not None
        url, key = settings.base_url, settings.api_key.reveal()
    return GeminiProvider(
        api_key=key,
        model=settings.model,
        base_url=url,
        api_version=settings.api_version,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        name=name,
        secret_key=name != "sandbox",
        **transports,
    )


@contextmanager
def _call_context(provider: Provider) -> Iterator[str]:
    request_id = uuid.uuid4().hex[:16]
    with structlog.contextvars.bound_contextvars(request_id=request_id, provider=provider.name, model=provider.model):
        yield request_id


class TweetGenerator:
    """Generates tweets through one provider with one retry policy; reuse it across calls."""

    def __init__(
        self,
        *,
        provider: str | Provider | None = None,
        settings: Settings | None = None,
        policy: RetryPolicy | None = None,
        engine: str = "custom",
        regenerations: int = DEFAULT_REGENERATIONS,
        templates: TemplateRegistry = default_registry,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if not isinstance(regenerations, int) or regenerations < 0:
            raise ConfigurationError(f"regenerations must be an integer >= 0, got {regenerations!r}")
        self.settings = settings or load_settings()
        if isinstance(provider, str) or provider is None:
            provider = build_provider(self.settings, provider, transport=transport, async_transport=async_transport)
        self.provider: Provider = provider
        self.policy = policy or RetryPolicy()
        self.engine = engine
        self.regenerations = regenerations
        self.templates = templates
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep or asyncio.sleep
        self._clock = clock or time.monotonic

    def __repr__(self) -> str:
        return f"TweetGenerator(provider={self.provider!r}, policy={self.policy!r})"

    @staticmethod
    def prompt_for(
        templates: TemplateRegistry, topic: str, tone: str, max_words: int, *, template: str = "tweet"
    ) -> str:
        """The rendered prompt for a request (what ``--dry-run`` prints); no provider needed."""
        topic, tone, max_words = check_input(topic, tone, max_words)
        chosen = templates.get(template)
        known = {"topic": topic, "tone": tone, "tone_description": TONES[tone], "max_words": max_words}
        return chosen.render(**{k: v for k, v in known.items() if k in chosen.variables})

    def prompt(self, topic: str, tone: str = "professional", max_words: int = 25, *, template: str = "tweet") -> str:
        """The rendered prompt for a request with this generator's templates."""
        return self.prompt_for(self.templates, topic, tone, max_words, template=template)

    def _request(
        self, prompt: str, feedback: list[str], seed: int | None, temperature: float | None, n: int
    ) -> GenerationRequest:
        if feedback:
            prompt += "\nYour previous answer was rejected: " + "; ".join(feedback) + ". Try again."
        return GenerationRequest(prompt=prompt, seed=seed, temperature=temperature, candidate_count=n)

    def _attempt_sync(self, request: GenerationRequest, counter: list[int]) -> GenerationResult:
        run = retry_with_tenacity if self.engine == "tenacity" else retry_with_custom_backoff

        def attempt() -> GenerationResult:
            counter[0] += 1
            return self.provider.generate(request)

        return run(attempt, policy=self.policy, sleep=self._sleep, clock=self._clock)

    async def _attempt_async(self, request: GenerationRequest, counter: list[int]) -> GenerationResult:
        run = aretry_with_tenacity if self.engine == "tenacity" else aretry_with_custom_backoff

        async def attempt() -> GenerationResult:
            counter[0] += 1
            return await self.provider.agenerate(request)

        return await run(attempt, policy=self.policy, sleep=self._async_sleep, clock=self._clock)

    def _rounds(
        self, topic: str, tone: str, max_words: int, template: str, seed: int | None, temperature: float | None
    ) -> Generator[GenerationRequest, GenerationResult, Tweet]:
        """The regeneration loop, free of I/O: yields requests, receives results (sync and async drive it)."""
        prompt = self.prompt(topic, tone, max_words, template=template)
        rules = TweetRules(max_words=max_words)
        started = self._clock()
        feedback: list[str] = []
        for round_ in range(self.regenerations + 1):
            result = yield self._request(prompt, feedback, seed, temperature, 1)
            best = self._judge(result, rules, round_)
            if best.valid:
                return self._tweet(best, result, started, round_, topic, tone)
            feedback = list(best.reasons)
        raise _rejected(best, self.regenerations)

    def generate(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        template: str = "tweet",
        seed: int | None = None,
        temperature: float | None = None,
    ) -> Tweet:
        """Generate one valid tweet, retrying transport failures and regenerating rule breakers."""
        rounds = self._rounds(topic, tone, max_words, template, seed, temperature)
        counter = [0]
        with _call_context(self.provider) as request_id:
            request = next(rounds)
            while True:
                try:
                    request = rounds.send(self._attempt_sync(request, counter))
                except StopIteration as done:
                    tweet: Tweet = done.value
                    return replace(tweet, attempts=counter[0], request_id=request_id)

    async def agenerate(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        template: str = "tweet",
        seed: int | None = None,
        temperature: float | None = None,
    ) -> Tweet:
        """The async twin of :meth:`generate` (same loop, same checks, same events)."""
        rounds = self._rounds(topic, tone, max_words, template, seed, temperature)
        counter = [0]
        with _call_context(self.provider) as request_id:
            request = next(rounds)
            while True:
                try:
                    request = rounds.send(await self._attempt_async(request, counter))
                except StopIteration as done:
                    tweet: Tweet = done.value
                    return replace(tweet, attempts=counter[0], request_id=request_id)

    def _judge(self, result: GenerationResult, rules: TweetRules, round_: int) -> TweetCheck:
        ranked = rank_candidates(
            [check_tweet(clean_tweet(t), rules) for t in result.texts], target_words=rules.max_words
        )
        best = ranked[0]
        if not best.valid:
            _log.warning(
                "Tweet rejected",
                reasons=list(best.reasons),
                regeneration=round_,
                max_regenerations=self.regenerations,
                words=best.words,
                weighted_length=best.weighted_length,
                text_preview=preview(best.text),
            )
        return best

    def _tweet(
        self, check: TweetCheck, result: GenerationResult, started: float, round_: int, topic: str, tone: str
    ) -> Tweet:
        return Tweet(
            text=check.text,
            provider=result.provider,
            model=result.model,
            attempts=0,
            latency_ms=round((self._clock() - started) * 1000, 2),
            usage=result.usage,
            topic=" ".join(topic.split()),
            tone=tone.strip().lower(),
            regenerations=round_,
            weighted_length=check.weighted_length,
            words=check.words,
            model_version=result.model_version,
        )

    def close(self) -> None:
        """Close the provider's connections."""
        self.provider.close()

    async def aclose(self) -> None:
        """Close the provider's async connections."""
        closer = getattr(self.provider, "aclose", None)
        if closer is not None:
            await closer()

    def __enter__(self) -> TweetGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rejected(best: TweetCheck, regenerations: int) -> TweetValidationError:
    return TweetValidationError(
        f"no candidate passed the tweet rules after {regenerations} regeneration(s): {'; '.join(best.reasons)}",
        best=best.text,
        reasons=best.reasons,
    )


_cache: dict[tuple[Any, ...], TweetGenerator] = {}
_cache_lock = threading.Lock()


def _policy(max_retries: int, options: dict[str, Any]) -> RetryPolicy:
    keys = ("base_delay", "max_delay", "jitter", "deadline", "retry_rate_limits", "max_retry_after")
    return RetryPolicy.from_retries(max_retries, **{k: options.pop(k) for k in keys if k in options})


def _generator(max_retries: int, options: dict[str, Any]) -> tuple[TweetGenerator, dict[str, Any]]:
    """A cached generator for these settings (one httpx client reused across calls) and call options."""
    policy = _policy(max_retries, options)
    setting_keys = ("api_key", "base_url", "api_version", "model", "timeout")
    settings = load_settings(**{k: options.pop(k) for k in setting_keys if k in options})
    provider = options.pop("provider", None)
    engine = options.pop("engine", "custom")
    regenerations = options.pop("regenerations", DEFAULT_REGENERATIONS)
    sleep = options.pop("sleep", None)
    key = (settings, provider, policy, engine, regenerations, sleep)
    with _cache_lock:
        if key not in _cache:
            extra = {"sleep": sleep} if sleep is not None else {}
            _cache[key] = TweetGenerator(
                provider=provider, settings=settings, policy=policy, engine=engine, regenerations=regenerations, **extra
            )
        return _cache[key], options


def generate(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> Tweet:
    """Generate a :class:`Tweet` (text plus provider, model, attempts, latency, usage)."""
    check_input(topic, tone, max_words)
    generator, call = _generator(max_retries, dict(options))
    return generator.generate(topic, tone, max_words, **call)


def generate_tweet(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> str:
    """Generate a tweet's text, retrying transient failures ``max_retries`` times (the seed's API)."""
    return generate(topic, tone, max_words, max_retries, **options).text


async def agenerate(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> Tweet:
    """The async twin of :func:`generate` (a fresh async client per call; use TweetGenerator to reuse one)."""
    check_input(topic, tone, max_words)
    options = dict(options)
    policy = _policy(max_retries, options)
    settings = load_settings(
        **{k: options.pop(k) for k in ("api_key", "base_url", "api_version", "model", "timeout") if k in options}
    )
    init: dict[str, Any] = {k: options.pop(k) for k in ("provider", "engine", "regenerations") if k in options}
    if "sleep" in options:
        init["async_sleep"] = options.pop("sleep")
    generator = TweetGenerator(settings=settings, policy=policy, **init)
    try:
        return await generator.agenerate(topic, tone, max_words, **options)
    finally:
        await generator.aclose()


async def agenerate_tweet(
    topic: str, tone: str = "professional", max_words: int = 25, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any
) -> str:
    """The async twin of :func:`generate_tweet`."""
    return (await agenerate(topic, tone, max_words, max_retries, **options)).text
