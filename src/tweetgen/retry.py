"""The retry engine: two loops (our own and tenacity's), sync and async, over one set of decisions.

The decisions (policy, schedule, classification, server hints) are pure functions in
:mod:`tweetgen.backoff`, re-exported here; :mod:`tweetgen.attempts` carries them out (log events,
call trace, circuit breaker and retry budget). This module holds the four loops and their options.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import tenacity

from .attempts import RetriedCall
from .backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    JITTERS,
    Decision,
    RetryPolicy,
    backoff_delay,
    decide,
    describe_error,
    is_retryable,
    parse_duration,
    parse_retry_after,
)
from .deadlines import call_deadline

if TYPE_CHECKING:
    from .resilience import CircuitBreaker, RetryBudget

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "JITTERS",
    "Decision",
    "RetryPolicy",
    "aretry_with_custom_backoff",
    "aretry_with_tenacity",
    "backoff_delay",
    "call_deadline",
    "decide",
    "describe_error",
    "is_retryable",
    "parse_duration",
    "parse_retry_after",
    "retry_with_custom_backoff",
    "retry_with_tenacity",
]

T = TypeVar("T")
#: the seed's defaults of the positional options (``max_attempts`` counts the first attempt)
_SEED_DEFAULTS = {
    "max_attempts": 3,
    "base_delay": DEFAULT_BASE_DELAY,
    "max_delay": DEFAULT_MAX_DELAY,
}
_POLICY_FIELDS = frozenset(f.name for f in fields(RetryPolicy))


def _policy(
    caller: str, policy: RetryPolicy | None, explicit: dict[str, Any], options: dict[str, Any]
) -> RetryPolicy:
    """The policy of one call: ``policy``, or one built from the options; never both disagreeing.

    A wrong option name fails here, named as the caller's argument; an option given together with a
    ``policy`` that says otherwise (``retry_with_custom_backoff(f, 10, policy=...)``) fails too,
    naming both, instead of one of them being silently ignored.
    """
    if policy is not None and not options and all(v is None for v in explicit.values()):
        return policy  # the generator's form: one policy, built once at the edge
    unknown = sorted(set(options) - _POLICY_FIELDS)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    given = {k: v for k, v in explicit.items() if v is not None} | options
    if policy is None:
        return RetryPolicy(**(_SEED_DEFAULTS | given))
    for name, value in given.items():
        if getattr(policy, name) != value:
            raise TypeError(
                f"{caller}(): {name}={value!r} disagrees with policy.{name}="
                f"{getattr(policy, name)!r}; pass the option or the policy, not both"
            )
    return policy


def retry_with_custom_backoff(
    func: Callable[[], T],
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    **options: Any,
) -> T:
    """Call ``func`` until it succeeds or the policy stops (our own loop); re-raise the last error.

    ``max_attempts`` (3), ``base_delay`` (1 s), ``max_delay`` (10 s) and ``options`` (any other
    :class:`RetryPolicy` field) build the policy, or ``policy`` is given whole.
    """
    explicit = {"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay}
    policy = _policy("retry_with_custom_backoff", policy, explicit, options)
    call = RetriedCall(policy, clock, rng, breaker, budget)
    attempt = 0
    while True:
        attempt += 1
        call.begin(attempt)
        try:
            result = func()
        except Exception as error:
            decision = call.failed(error, attempt)
            if not decision.retry:
                raise
            sleep(decision.delay)
        except BaseException:
            call.abandon()
            raise
        else:
            return call.succeeded(result, attempt)


async def aretry_with_custom_backoff(
    func: Callable[[], Awaitable[T]],
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    **options: Any,
) -> T:
    """The async twin of :func:`retry_with_custom_backoff` (same decisions, same events)."""
    explicit = {"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay}
    policy = _policy("aretry_with_custom_backoff", policy, explicit, options)
    call = RetriedCall(policy, clock, rng, breaker, budget)
    attempt = 0
    while True:
        attempt += 1
        call.begin(attempt)
        try:
            result = await func()
        except Exception as error:
            decision = call.failed(error, attempt)
            if not decision.retry:
                raise
            await sleep(decision.delay)
        except BaseException:
            call.abandon()
            raise
        else:
            return call.succeeded(result, attempt)


def _tenacity_kwargs(call: RetriedCall) -> dict[str, Any]:
    """Strategies that make tenacity follow the call's decisions exactly."""
    decisions: dict[int, Decision] = {}

    def retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        assert error is not None
        if not isinstance(error, Exception):  # Ctrl-C, cancellation: never retried
            call.abandon()
            raise error
        decisions[state.attempt_number] = call.failed(error, state.attempt_number)
        return True

    def stop(state: tenacity.RetryCallState) -> bool:
        return not decisions[state.attempt_number].retry

    def wait(state: tenacity.RetryCallState) -> float:
        return decisions[state.attempt_number].delay

    def before(state: tenacity.RetryCallState) -> None:
        call.begin(state.attempt_number)

    return {"retry": retry, "stop": stop, "wait": wait, "before": before, "reraise": True}


def retry_with_tenacity(
    func: Callable[[], T],
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    **options: Any,
) -> T:
    """Call ``func`` through tenacity with the same policy, waits and events as our own loop."""
    explicit = {"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay}
    policy = _policy("retry_with_tenacity", policy, explicit, options)
    call = RetriedCall(policy, clock, rng, breaker, budget)
    retrying = tenacity.Retrying(sleep=sleep, **_tenacity_kwargs(call))
    for attempt in retrying:
        with attempt:
            result = func()
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return call.succeeded(result, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


async def aretry_with_tenacity(
    func: Callable[[], Awaitable[T]],
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    **options: Any,
) -> T:
    """The async twin of :func:`retry_with_tenacity` (tenacity's ``AsyncRetrying``)."""
    explicit = {"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay}
    policy = _policy("aretry_with_tenacity", policy, explicit, options)
    call = RetriedCall(policy, clock, rng, breaker, budget)
    retrying = tenacity.AsyncRetrying(sleep=sleep, **_tenacity_kwargs(call))
    async for attempt in retrying:
        with attempt:
            result = await func()
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return call.succeeded(result, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
