"""The retry engine: two loops (our own and tenacity's), sync and async, over one set of decisions.

The decisions (policy, schedule, classification, server hints) are pure functions in
:mod:`tweetgen.backoff`, re-exported here; this module adds the loops, the log events, the call trace,
and the circuit breaker and retry budget vetoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import tenacity

from .backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    JITTERS,
    SERVER_SIDE,
    Decision,
    RetryPolicy,
    backoff_delay,
    decide,
    describe_error,
    is_retryable,
    parse_duration,
    parse_retry_after,
)
from .errors import CircuitOpenError, RateLimitError, TweetGenError
from .logs import get_logger
from .trace import AttemptTrace, current_trace

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
_log = get_logger()
#: when (``time.monotonic()``) the retried call in progress must end; set while an attempt runs
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tweetgen_call_deadline", default=None
)


def call_deadline() -> float | None:
    """The ``time.monotonic()`` by which the retried call in progress must end, or ``None`` without a deadline.

    The hook that lets ``RetryPolicy.deadline`` bound an attempt in flight: the engine sets it before each
    attempt to what the deadline leaves (measured on the engine's clock, so an injected clock works too),
    and the providers end their attempt then, whatever their own ``timeout`` still allows.
    """
    return _CALL_DEADLINE.get()


class _Controller:
    """The state of one retried call: decisions and events, shared by every loop."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random | None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.policy = policy
        self.breaker = breaker
        self.budget = budget
        self.clock = clock
        self.rng = rng
        self.start = clock()
        self.attempt_start = self.start
        self.previous_delay: float | None = None
        self._tokens: Mapping[str, Any] = {}
        self._deadline_token: contextvars.Token[float | None] | None = None
        self.trace = current_trace()
        self.last_error: BaseException | None = None
        self._attempt: AttemptTrace | None = None

    def begin(self, attempt: int) -> None:
        if self.breaker is not None:
            self._acquire(attempt)
        if attempt == 1 and self.budget is not None:
            self.budget.record_request()
        self.attempt_start = self.clock()
        self._tokens = structlog.contextvars.bind_contextvars(attempt=attempt)
        if self.policy.deadline is not None:
            left = max(0.0, self.policy.deadline - (self.attempt_start - self.start))
            until, outer = time.monotonic() + left, _CALL_DEADLINE.get()
            self._deadline_token = _CALL_DEADLINE.set(until if outer is None else min(until, outer))
        if self.trace is not None:
            delay = self.previous_delay if attempt > 1 and self.previous_delay is not None else 0.0
            self._attempt = AttemptTrace(number=attempt, delay_before=delay)
            self.trace.attempts.append(self._attempt)
            self.trace.notify("attempt_started", self._attempt)

    def _acquire(self, attempt: int) -> None:
        """Take a breaker permit; if the circuit opened during the wait, stop with the last real error."""
        assert self.breaker is not None
        try:
            self.breaker.acquire()
        except CircuitOpenError as error:
            if self.last_error is None:
                raise
            reason = f"circuit {self.breaker.name} opened"
            decision = Decision(
                False, error.retry_after or 0.0, reason, stopped_by="circuit breaker"
            )
            self._give_up(self.last_error, attempt - 1, decision)
            raise self.last_error from None

    def _finish_attempt(self, outcome: object, latency_ms: float) -> None:
        if self.trace is not None and self._attempt is not None:
            self._attempt.record(outcome, latency_ms)
            self.trace.notify("attempt_finished", self._attempt)
            self._attempt = None

    def abandon(self) -> None:
        """The attempt was interrupted (cancelled, Ctrl-C): release the breaker's permit, count nothing."""
        if self.breaker is not None:
            self.breaker.record_ignored()
        self.end()

    def end(self) -> None:
        if self._tokens:
            structlog.contextvars.reset_contextvars(**self._tokens)
            self._tokens = {}
        if self._deadline_token is not None:
            with contextlib.suppress(
                ValueError
            ):  # set in another context (cannot happen in our loops)
                _CALL_DEADLINE.reset(self._deadline_token)
            self._deadline_token = None

    def _guarded(self, decision: Decision, error: BaseException) -> Decision:
        """Veto a retry the circuit breaker or the retry budget will not allow."""
        server_side = is_retryable(error, SERVER_SIDE)
        if self.breaker is not None:
            if server_side:
                self.breaker.record_failure()
            else:
                self.breaker.record_ignored()
        if self.budget is not None:
            self.budget.record_attempt(
                accepted=not (server_side or isinstance(error, RateLimitError))
            )
        if not decision.retry:
            return decision
        if self.breaker is not None and not self.breaker.allows():
            reason = f"circuit {self.breaker.name} is open"
            return Decision(False, self.breaker.retry_after(), reason, stopped_by="circuit breaker")
        if self.budget is not None and not self.budget.try_spend():
            if self.trace is not None:
                self.trace.retries_denied += 1
            _log.warning(
                "Retry denied", reason="retry budget exhausted", budget=vars(self.budget.snapshot())
            )
            reason = "retry budget exhausted: retries are limited to a share of requests"
            return Decision(False, 0.0, reason, stopped_by="retry budget")
        return decision

    def failed(self, error: BaseException, attempt: int) -> Decision:
        self.last_error = error
        now = self.clock()
        decision = decide(
            self.policy,
            error,
            attempt=attempt,
            elapsed=now - self.start,
            previous_delay=self.previous_delay,
            rng=self.rng,
        )
        decision = self._guarded(decision, error)
        latency = getattr(error, "latency_ms", None)
        latency = latency if latency is not None else round((now - self.attempt_start) * 1000, 2)
        self._finish_attempt(error, latency)
        _log.error(
            "API request failed",
            status_code=getattr(error, "status_code", None),
            latency_ms=latency,
            error_message=getattr(error, "message", None) or str(error) or type(error).__name__,
            error_type=type(error).__name__,
            retry_attempted=decision.retry,
        )
        if decision.retry:
            self.previous_delay = decision.delay
            _log.warning(
                "Retry attempt",
                attempt=attempt,
                max_attempts=self.policy.max_attempts,
                delay_seconds=round(decision.delay, 3),
                exception=describe_error(error),
            )
        else:
            self._give_up(error, attempt, decision)
        self.end()
        return decision

    def _give_up(self, error: BaseException, attempt: int, decision: Decision) -> None:
        with contextlib.suppress(AttributeError):
            error.attempts = attempt  # type: ignore[attr-defined]
        if decision.reason != "not retryable":
            by_deadline = (
                decision.deadline
            )  # then the delay is our own backoff, no server's request
            if (
                isinstance(error, TweetGenError)
                and error.retry_after is None
                and decision.delay
                and not by_deadline
            ):
                error.retry_after = decision.delay
            _log.error(
                "Retries exhausted",
                attempts=attempt,
                exception=describe_error(error),
                reason=decision.reason,
            )
            if isinstance(error, TweetGenError):
                error.stopped_by = decision.stopped_by
            if (
                decision.stopped_by in _SAID
            ):  # not the server's last word: the error says what stopped the call
                _say_stopped(error, decision.reason)

    def succeeded(self, result: T, attempt: int) -> T:
        if self.breaker is not None:
            self.breaker.record_success()
        if self.budget is not None:
            self.budget.record_attempt(accepted=True)
        latency = getattr(result, "latency_ms", None)
        self._finish_attempt(
            result,
            latency
            if latency is not None
            else round((self.clock() - self.attempt_start) * 1000, 2),
        )
        self.end()
        if attempt > 1:
            _log.info("Retry succeeded", final_attempt=attempt)
        return result


#: what stopped a retryable call that its last error would not tell: the message says so
_SAID = frozenset({"deadline", "retry budget", "circuit breaker"})


def _say_stopped(error: BaseException, reason: str) -> None:
    """Add to the error's message what stopped the retries (the deadline, the budget, the breaker), once."""
    note = f" (stopped: {reason})"
    if isinstance(error, TweetGenError):
        if not error.message.endswith(note):
            error.add_to_message(note)
    elif hasattr(error, "add_note"):  # Python 3.11+: any other exception gets a note
        error.add_note(note.strip(" ()"))


def retry_with_custom_backoff(
    func: Callable[[], T],
    max_attempts: int = 3,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
    budget: RetryBudget | None = None,
    **options: Any,
) -> T:
    """Call ``func`` until it succeeds or the policy stops, with our own loop; re-raises the last error."""
    policy = policy or RetryPolicy(
        max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options
    )
    ctl = _Controller(policy, clock, rng, breaker, budget)
    attempt = 0
    while True:
        attempt += 1
        ctl.begin(attempt)
        try:
            result = func()
        except Exception as error:
            decision = ctl.failed(error, attempt)
            if not decision.retry:
                raise
            sleep(decision.delay)
        except BaseException:
            ctl.abandon()
            raise
        else:
            return ctl.succeeded(result, attempt)


async def aretry_with_custom_backoff(
    func: Callable[[], Awaitable[T]],
    max_attempts: int = 3,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
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
    policy = policy or RetryPolicy(
        max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options
    )
    ctl = _Controller(policy, clock, rng, breaker, budget)
    attempt = 0
    while True:
        attempt += 1
        ctl.begin(attempt)
        try:
            result = await func()
        except Exception as error:
            decision = ctl.failed(error, attempt)
            if not decision.retry:
                raise
            await sleep(decision.delay)
        except BaseException:
            ctl.abandon()
            raise
        else:
            return ctl.succeeded(result, attempt)


def _tenacity_kwargs(ctl: _Controller) -> dict[str, Any]:
    """Strategies that make tenacity follow the controller's decisions exactly."""
    decisions: dict[int, Decision] = {}

    def retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        assert error is not None
        if not isinstance(
            error, Exception
        ):  # Ctrl-C, cancellation: never an API failure, never retried
            ctl.abandon()
            raise error
        decisions[state.attempt_number] = ctl.failed(error, state.attempt_number)
        return True

    def stop(state: tenacity.RetryCallState) -> bool:
        return not decisions[state.attempt_number].retry

    def wait(state: tenacity.RetryCallState) -> float:
        return decisions[state.attempt_number].delay

    def before(state: tenacity.RetryCallState) -> None:
        ctl.begin(state.attempt_number)

    return {"retry": retry, "stop": stop, "wait": wait, "before": before, "reraise": True}


def retry_with_tenacity(
    func: Callable[[], T],
    max_attempts: int = 3,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
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
    policy = policy or RetryPolicy(
        max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options
    )
    ctl = _Controller(policy, clock, rng, breaker, budget)
    retrying = tenacity.Retrying(sleep=sleep, **_tenacity_kwargs(ctl))
    for attempt in retrying:
        with attempt:
            result = func()
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return ctl.succeeded(result, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


async def aretry_with_tenacity(
    func: Callable[[], Awaitable[T]],
    max_attempts: int = 3,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
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
    policy = policy or RetryPolicy(
        max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options
    )
    ctl = _Controller(policy, clock, rng, breaker, budget)
    retrying = tenacity.AsyncRetrying(sleep=sleep, **_tenacity_kwargs(ctl))
    async for attempt in retrying:
        with attempt:
            result = await func()
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return ctl.succeeded(result, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
