"""From a request to valid tweets: render the prompt, retry, clean, check, regenerate."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import structlog

from . import calls, events
from .config import Settings, load_settings
from .errors import ConfigurationError, TweetGenError
from .plans import thread_plan, variants_plan
from .prompts import TemplateRegistry, default_registry
from .providers.base import GenerationRequest, GenerationResult, Provider
from .providers.factory import build_providers, falls_back
from .request import NOT_A_THREAD, TweetRequest
from .resilience import (
    DEFAULT_RETRY_RESERVE,
    BreakerRegistry,
    BreakerSettings,
    CircuitBreaker,
    RetryBudget,
)
from .results import Thread, Tweet
from .retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)
from .structured import instruction, supports_json
from .thinking import ThoughtsExhaustedError, check_level, think_less
from .tiers import acall_at_tier, call_at_tier, check_tier
from .trace import CallContext, CallTrace, Observer, current_trace
from .tweets import (
    TweetCheck,
    check_tweet,
    clean_tweet,
    rank_candidates,
)
from .verdicts import call_cost, no_secret, no_valid

__all__ = ["DEFAULT_REGENERATIONS", "DEFAULT_RETRY_RESERVE", "TweetGenerator", "log_breaker_change"]

DEFAULT_REGENERATIONS = 2
ENGINES = ("custom", "tenacity")
T = TypeVar("T")
Plan = Generator[GenerationRequest, GenerationResult, T]


def log_breaker_change(name: str, old: str, new: str) -> None:
    """Log a circuit's state change (``Circuit opened``, ``half-open`` or ``closed``)."""
    events.circuit_changed(name, old, new)


class TweetGenerator(calls.TweetGenerator):
    """Generates tweets through one provider with one retry policy; reuse it across calls."""

    def __init__(
        self,
        *,
        provider: str | Provider | Sequence[Provider] | None = None,
        settings: Settings | None = None,
        policy: RetryPolicy | None = None,
        engine: str = "custom",
        regenerations: int = DEFAULT_REGENERATIONS,
        templates: TemplateRegistry = default_registry,
        observers: Sequence[Observer] = (),
        circuit_breaker: bool | BreakerSettings | BreakerRegistry = True,
        retry_budget: bool | RetryBudget = True,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        shared: str | None = None,
        thinking: str | None = None,
        service_tier: str | None = None,
        flex_fallback: bool | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if type(regenerations) is not int or regenerations < 0:
            raise ConfigurationError(
                f"regenerations must be an integer >= 0, got {regenerations!r}"
            )
        self.settings = settings or load_settings()
        for problem in (check_level(thinking, ""), check_tier(service_tier, "")):
            if problem:
                raise ConfigurationError(problem)
        #: the thinking level sent (None: the provider's default, :data:`DEFAULT_THINKING`)
        self.thinking = self.settings.thinking if thinking is None else thinking
        tier = self.settings.service_tier if service_tier is None else service_tier
        #: the service tier asked for (None: standard, no field sent)
        self.service_tier = None if tier == "standard" else tier
        self.flex_fallback = (
            self.settings.flex_fallback if flex_fallback is None else bool(flex_fallback)
        )
        if isinstance(provider, str) or provider is None:
            chain = build_providers(
                self.settings, provider, transport=transport, async_transport=async_transport
            )
        else:
            chain = list(provider) if isinstance(provider, (list, tuple)) else [provider]  # type: ignore[list-item]
        if not chain:
            raise ConfigurationError("a generator needs at least one provider")
        self.providers: tuple[Provider, ...] = tuple(chain)
        #: variants and threads come as one JSON array (every provider takes a JSON schema)
        self.structured = supports_json(self.providers)
        self.policy = policy or RetryPolicy()
        self.engine = engine
        self.regenerations = regenerations
        self.templates = templates
        self.observers = tuple(observers)
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep or asyncio.sleep
        self._clock = clock or time.monotonic
        self.breakers = self._breakers(circuit_breaker)
        if retry_budget is True:
            retry_budget = RetryBudget.for_policy(self.policy, clock=self._clock)
        self.budget = retry_budget or None
        if url := self.settings.shared if shared is None else shared:  # "": not shared
            from .sharedguards import fleet_guards

            self.providers, self.breakers, self.budget = fleet_guards(self, url)

    def __repr__(self) -> str:
        return f"TweetGenerator(provider={self.provider!r}, policy={self.policy!r})"

    @property
    def async_sleep(self) -> Callable[[float], Awaitable[None]]:
        """The async sleep (injected in tests; a batch makes it stoppable)."""
        return self._async_sleep

    @async_sleep.setter
    def async_sleep(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._async_sleep = sleep

    def _breakers(self, option: bool | BreakerSettings | BreakerRegistry) -> BreakerRegistry | None:
        if isinstance(option, BreakerRegistry):
            return option
        if option is False:
            return None
        settings = option if isinstance(option, BreakerSettings) else None
        return BreakerRegistry(
            settings=settings, clock=self._clock, on_state_change=self._breaker_changed
        )

    def _breaker_changed(self, name: str, old: str, new: str) -> None:
        """Log a circuit's state change and tell the observers that want to know (Prometheus)."""
        log_breaker_change(name, old, new)
        for observer in self.observers:
            callback = getattr(observer, "breaker_changed", None)
            if callback is not None:
                callback(name, old, new)

    @property
    def provider(self) -> Provider:
        """The first provider of the chain (the only one, unless a fallback chain was given)."""
        return self.providers[0]

    def breaker_for(self, provider: Provider) -> CircuitBreaker | None:
        """The circuit breaker of a provider and model (``None`` when disabled)."""
        return self.breakers.get(f"{provider.name}/{provider.model}") if self.breakers else None

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker of the first provider."""
        return self.breaker_for(self.provider)

    # --- driving: the plans are I/O-free generators; these feed them results ----------------

    def _drive(
        self,
        request: TweetRequest,
        plan: Callable[[TweetRequest, CallTrace], Plan[T]],
        context: CallContext | None = None,
    ) -> T:
        with self._scope(request, context) as trace:
            steps = plan(request, trace)
            try:
                step = next(steps)
                while True:
                    step = steps.send(self._attempt(step))
            except StopIteration as done:
                value: T = done.value
                return self._finished(trace, value)

    async def _adrive(
        self,
        request: TweetRequest,
        plan: Callable[[TweetRequest, CallTrace], Plan[T]],
        context: CallContext | None = None,
    ) -> T:
        with self._scope(request, context) as trace:
            steps = plan(request, trace)
            try:
                step = next(steps)
                while True:
                    step = steps.send(await self._aattempt(step))
            except StopIteration as done:
                value: T = done.value
                return self._finished(trace, value)

    def _attempt(self, request: GenerationRequest) -> GenerationResult:
        recoveries = 0
        while True:
            try:
                return self._attempt_once(request)
            except ThoughtsExhaustedError as error:  # less thinking, or more room: bounded
                request = think_less(request, error, recoveries)
                recoveries += 1

    async def _aattempt(self, request: GenerationRequest) -> GenerationResult:
        recoveries = 0
        while True:
            try:
                return await self._aattempt_once(request)
            except ThoughtsExhaustedError as error:
                request = think_less(request, error, recoveries)
                recoveries += 1

    def _attempt_once(self, request: GenerationRequest) -> GenerationResult:
        run = retry_with_tenacity if self.engine == "tenacity" else retry_with_custom_backoff
        for index, provider in enumerate(self.providers):
            with self._link(index, provider) as options:
                call: Callable[[], GenerationResult] = functools.partial(provider.generate, request)
                if request.service_tier is not None:
                    call = call_at_tier(provider.generate, request, self.flex_fallback)
                return run(call, sleep=self._sleep, **options)
        raise AssertionError("unreachable: the last provider's error is raised")  # pragma: no cover

    async def _aattempt_once(self, request: GenerationRequest) -> GenerationResult:
        run = aretry_with_tenacity if self.engine == "tenacity" else aretry_with_custom_backoff
        for index, provider in enumerate(self.providers):
            with self._link(index, provider) as options:
                call: Callable[[], Awaitable[GenerationResult]] = functools.partial(
                    provider.agenerate, request
                )
                if request.service_tier is not None:
                    call = acall_at_tier(provider.agenerate, request, self.flex_fallback)
                return await run(call, sleep=self._async_sleep, **options)
        raise AssertionError("unreachable: the last provider's error is raised")  # pragma: no cover

    @contextmanager
    def _link(self, index: int, provider: Provider) -> Iterator[dict[str, Any]]:
        """One link of the provider chain: its retry options, its name in logs and trace, and the
        fallback (the error is swallowed when the chain moves on, re-raised otherwise)."""
        trace = current_trace()
        if trace is not None:
            trace.provider, trace.model = provider.name, provider.model
        options = {
            "policy": self.policy,
            "clock": self._clock,
            "breaker": self.breaker_for(provider),
            "budget": self.budget,
        }
        try:
            with structlog.contextvars.bound_contextvars(
                provider=provider.name, model=provider.model
            ):
                yield options
        except TweetGenError as error:
            self._fall_back(index, error)

    def _fall_back(self, index: int, error: TweetGenError) -> None:
        """Re-raise ``error`` unless the chain has a next provider and the error is worth it."""
        if index + 1 >= len(self.providers) or not falls_back(error):
            raise error
        if isinstance(error, ThoughtsExhaustedError):  # asked again with less thinking instead
            raise error
        events.provider_fallback(self.providers[index].name, self.providers[index + 1].name, error)

    # --- plans --------------------------------------------------------------------------------

    def _ask(
        self, request: TweetRequest, feedback: Sequence[str], n: int = 1, *, items: int = 0
    ) -> GenerationRequest:
        prompt = request.render(self.templates)
        if items:
            prompt += instruction(items, request.thread != NOT_A_THREAD)
        if feedback:
            prompt += "\nYour previous answer was rejected: " + "; ".join(feedback) + ". Try again."
        return GenerationRequest(
            prompt=prompt,
            seed=request.seed,
            temperature=request.temperature,
            candidate_count=n,
            thinking=self.thinking,
            service_tier=self.service_tier,
            json_items=items,
        )

    def _checks(self, request: TweetRequest, texts: Sequence[str]) -> list[TweetCheck]:
        rules = request.rules()
        checks = [
            no_secret(check_tweet(request.finish(clean_tweet(text)), rules)) for text in texts
        ]
        if request.voice_spec is not None:  # copies of its posts, repeats of this week's tweets
            from .voicespec import recent_for, voice_checks

            recent = recent_for(self.observers, request.topic)
            checks = voice_checks(request.voice_spec, checks, recent)
        return rank_candidates(checks, target_words=request.max_words)

    def _rejected(
        self, trace: CallTrace, reasons: Sequence[str], check: TweetCheck | None, round_: int
    ) -> None:
        trace.regenerations = round_ + 1 if round_ < self.regenerations else round_
        events.tweet_rejected(reasons, round_, self.regenerations, check)

    def _tweet_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[Tweet]:
        best: TweetCheck | None = None
        for round_ in range(self.regenerations + 1):
            result = yield self._ask(request, best.reasons if best else ())
            best = self._checks(request, result.texts)[0]
            if best.valid:
                return self._tweet(request, trace, best, result, round_)
            self._rejected(trace, best.reasons, best, round_)
        raise no_valid(best, self.regenerations)

    def _variants_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[list[Tweet]]:
        return variants_plan(self, request, trace)

    def _thread_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[Thread]:
        return thread_plan(self, request, trace)

    def _tweet(
        self,
        request: TweetRequest,
        trace: CallTrace,
        check: TweetCheck,
        result: GenerationResult,
        round_: int,
    ) -> Tweet:
        return Tweet(
            text=check.text,
            provider=result.provider,
            model=result.model,
            attempts=len(trace.attempts),
            latency_ms=0.0,
            usage=result.usage,
            topic=request.topic,
            tone=request.tone,
            request_id=trace.request_id,
            regenerations=round_,
            weighted_length=check.weighted_length,
            words=check.words,
            model_version=result.model_version,
            service_tier=result.service_tier,
            cost_usd=call_cost(trace),
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the providers' connections."""
        for provider in self.providers:
            provider.close()

    async def aclose(self) -> None:
        """Close the providers' async connections."""
        for provider in self.providers:
            closer = getattr(provider, "aclose", None)
            if closer is not None:
                await closer()

    def __enter__(self) -> TweetGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
