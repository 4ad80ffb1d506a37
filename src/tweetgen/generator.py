"""From a request to valid tweets: render the prompt, retry, clean, check, regenerate."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import structlog

from . import calls, events
from .config import Settings, load_settings
from .errors import ConfigurationError, TweetGenError, TweetValidationError
from .logs import contains_secret, redact_text
from .prompts import TemplateRegistry, default_registry
from .providers.base import GenerationRequest, GenerationResult, Provider
from .providers.factory import build_providers, falls_back
from .request import TweetRequest
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
from .trace import CallContext, CallTrace, Observer, current_trace
from .tweets import (
    TweetCheck,
    check_tweet,
    clean_tweet,
    number_thread,
    rank_candidates,
    split_thread,
    thread_counters,
)

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
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if type(regenerations) is not int or regenerations < 0:
            raise ConfigurationError(
                f"regenerations must be an integer >= 0, got {regenerations!r}"
            )
        self.settings = settings or load_settings()
        if isinstance(provider, str) or provider is None:
            chain = build_providers(
                self.settings, provider, transport=transport, async_transport=async_transport
            )
        else:
            chain = list(provider) if isinstance(provider, (list, tuple)) else [provider]  # type: ignore[list-item]
        if not chain:
            raise ConfigurationError("a generator needs at least one provider")
        self.providers: tuple[Provider, ...] = tuple(chain)
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
        run = retry_with_tenacity if self.engine == "tenacity" else retry_with_custom_backoff
        for index, provider in enumerate(self.providers):
            with self._link(index, provider) as options:
                return run(
                    functools.partial(provider.generate, request), sleep=self._sleep, **options
                )
        raise AssertionError("unreachable: the last provider's error is raised")  # pragma: no cover

    async def _aattempt(self, request: GenerationRequest) -> GenerationResult:
        run = aretry_with_tenacity if self.engine == "tenacity" else aretry_with_custom_backoff
        for index, provider in enumerate(self.providers):
            with self._link(index, provider) as options:
                return await run(
                    functools.partial(provider.agenerate, request),
                    sleep=self._async_sleep,
                    **options,
                )
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
        events.provider_fallback(self.providers[index].name, self.providers[index + 1].name, error)

    # --- plans --------------------------------------------------------------------------------

    def _ask(self, request: TweetRequest, feedback: Sequence[str], n: int = 1) -> GenerationRequest:
        prompt = request.render(self.templates)
        if feedback:
            prompt += "\nYour previous answer was rejected: " + "; ".join(feedback) + ". Try again."
        return GenerationRequest(
            prompt=prompt, seed=request.seed, temperature=request.temperature, candidate_count=n
        )

    def _checks(self, request: TweetRequest, result: GenerationResult) -> list[TweetCheck]:
        rules = request.rules()
        checks = [
            _no_secret(check_tweet(request.finish(clean_tweet(text)), rules))
            for text in result.texts
        ]
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
            best = self._checks(request, result)[0]
            if best.valid:
                return self._tweet(request, trace, best, result, round_)
            self._rejected(trace, best.reasons, best, round_)
        raise _no_valid(best, self.regenerations)

    def _variants_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[list[Tweet]]:
        kept: dict[str, Tweet] = {}
        # this round's best invalid candidate: its reasons go back
        rejected: TweetCheck | None = None
        last_rejected: TweetCheck | None = None
        for round_ in range(self.regenerations + 1):
            feedback = rejected.reasons if rejected else ()
            result = yield self._ask(request, feedback, request.variants - len(kept))
            checks = self._checks(request, result)
            for check in (c for c in checks if c.valid):
                key = " ".join(check.text.casefold().split())
                kept.setdefault(key, self._tweet(request, trace, check, result, round_))
            rejected = next((c for c in checks if not c.valid), None)
            if len(kept) >= request.variants:
                break
            if rejected is not None:
                last_rejected = rejected
                self._rejected(trace, rejected.reasons, rejected, round_)
        if not kept:
            raise _no_valid(last_rejected, self.regenerations)
        ranked = sorted(kept.values(), key=lambda t: abs(t.words - request.max_words))
        return ranked[: request.variants]

    def _thread_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[Thread]:
        """The whole thread from one call, numbered ``1/5`` unless ``numbering`` is off.

        The prompt and the check agree on every tweet's words: the model is asked for ``max_words``
        (less one when a link is appended) and told not to number the tweets; the appended counter
        counts in the 280 characters, as X counts it, not in ``max_words``, as a reader reads it (a
        page number). So a model that writes the words it was asked for passes at any ``max_words``.
        """
        reasons: list[str] = []
        worst: TweetCheck | None = None
        for round_ in range(self.regenerations + 1):
            result = yield self._ask(request, reasons)
            parts = [request.finish(p) for p in split_thread(result.text)]
            counters = [""] * len(parts)
            if request.numbering and len(parts) == request.thread:
                parts, counters = number_thread(parts), thread_counters(len(parts))
            rules = request.rules()
            checks = [
                _no_secret(check_tweet(p, rules, counter=c))
                for p, c in zip(parts, counters, strict=True)
            ]
            reasons = [f"tweet {i}: {r}" for i, c in enumerate(checks, 1) for r in c.reasons]
            if len(parts) != request.thread:
                reasons.insert(0, f"that thread had {len(parts)} tweets; it needs {request.thread}")
            if not reasons:
                tweets = tuple(self._tweet(request, trace, c, result, round_) for c in checks)
                return Thread(
                    tweets, result.provider, result.model, 0, 0.0, trace.request_id, round_
                )
            worst = next((c for c in checks if not c.valid), checks[0] if checks else None)
            self._rejected(trace, reasons, worst, round_)
        raise TweetValidationError(
            f"no thread passed the tweet rules after {self.regenerations} regeneration(s): "
            f"{'; '.join(reasons)}",
            best=worst.text if worst else None,
            reasons=tuple(reasons),
        )

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
            cost_usd=_cost(trace),
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


def _cost(trace: CallTrace) -> float | None:
    """The call's cost so far: every attempt's (None when one is unknown)."""
    costs = [a.cost_usd for a in trace.attempts]
    return None if None in costs else sum(c for c in costs if c is not None)


def _no_secret(check: TweetCheck) -> TweetCheck:
    """A tweet that repeats a configured key (a server echoing it) is never valid: it would publish
    the key. Its text is redacted so the key goes nowhere (logs, store, the error's best text)."""
    if not contains_secret(check.text):
        return check
    return replace(
        check, text=redact_text(check.text), reasons=(*check.reasons, "it contains an API key")
    )


def _no_valid(best: TweetCheck | None, regenerations: int) -> TweetValidationError:
    reasons = best.reasons if best else ("no candidate came back",)
    return TweetValidationError(
        f"no candidate passed the tweet rules after {regenerations} regeneration(s): "
        f"{'; '.join(reasons)}",
        best=best.text if best else None,
        reasons=reasons,
    )
