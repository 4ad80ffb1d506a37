"""The retry engine: one policy, pure decisions, and two loops (our own and tenacity) that share them.

Delay before attempt ``n`` (n >= 2): ``min(max_delay, base_delay * multiplier ** (n - 2))``, then
jitter; a server hint (``Retry-After``, ``retry-after-ms``, Gemini ``RetryInfo``) on a retried error
raises the delay to the hint; a hint above ``max_retry_after`` or past the deadline stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import structlog
import tenacity

from .errors import APIError, ConfigurationError, RateLimitError, TweetGenError
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
    "decide",
    "describe_error",
    "is_retryable",
    "parse_duration",
    "parse_retry_after",
    "retry_with_custom_backoff",
    "retry_with_tenacity",
]

T = TypeVar("T")
DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 10.0
DEFAULT_MAX_RETRY_AFTER = 60.0
JITTERS = ("none", "full", "equal", "decorrelated")
_log = get_logger()


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long to wait between them, and what may be retried."""

    max_attempts: int = DEFAULT_MAX_RETRIES + 1
    base_delay: float = DEFAULT_BASE_DELAY
    multiplier: float = 2.0
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: str = "none"
    deadline: float | None = None
    retry_rate_limits: bool = False
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    retry_on: Callable[[BaseException], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.max_attempts, int) and self.max_attempts >= 1, "max_attempts must be an integer >= 1"),
            (_finite(self.base_delay) and self.base_delay >= 0, "base_delay must be >= 0 seconds"),
            (_finite(self.multiplier) and self.multiplier >= 1, "multiplier must be >= 1"),
            (_finite(self.max_delay) and self.max_delay >= self.base_delay, "max_delay must be >= base_delay"),
            (self.jitter in JITTERS, f"jitter must be one of {', '.join(JITTERS)}"),
            (self.deadline is None or (_finite(self.deadline) and self.deadline > 0), "deadline must be > 0 seconds"),
            (_finite(self.max_retry_after) and self.max_retry_after >= 0, "max_retry_after must be >= 0 seconds"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(f"invalid retry policy: {message}")

    @classmethod
    def from_retries(cls, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any) -> RetryPolicy:
        """Build a policy from the seed's ``max_retries`` (retries after the first attempt)."""
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return cls(max_attempts=max_retries + 1, **{k: v for k, v in options.items() if v is not None})

    def with_options(self, **options: Any) -> RetryPolicy:
        """Return a copy with the non-``None`` options replaced."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or stop for ``reason``."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


def backoff_delay(
    policy: RetryPolicy, attempt: int, *, previous: float | None = None, rng: random.Random | None = None
) -> float:
    """The jittered wait before ``attempt`` (2 for the first retry), per the policy."""
    if attempt < 2:
        return 0.0
    rand = rng or random
    ceiling = min(policy.max_delay, policy.base_delay * policy.multiplier ** (attempt - 2))
    if policy.jitter == "full":
        return rand.uniform(0, ceiling)
    if policy.jitter == "equal":
        return ceiling / 2 + rand.uniform(0, ceiling / 2)
    if policy.jitter == "decorrelated":
        prev = policy.base_delay if previous is None else previous
        return min(policy.max_delay, rand.uniform(policy.base_delay, max(policy.base_delay, 3 * prev)))
    return ceiling


_RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504})
#: what counts as the server's failure for the circuit breaker: the retryable errors, 429 excluded
_SERVER_SIDE = RetryPolicy()


def is_retryable(error: BaseException, policy: RetryPolicy | None = None) -> bool:
    """Whether the policy retries this error (5xx, network, timeouts, invalid responses; 429 if asked)."""
    policy = policy or RetryPolicy()
    if policy.retry_on is not None:
        return policy.retry_on(error)
    if isinstance(error, RateLimitError):
        return policy.retry_rate_limits
    if isinstance(error, TweetGenError):
        return error.retryable
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status in _RETRYABLE_STATUS or status >= 500 or (status == 429 and policy.retry_rate_limits)
    return isinstance(error, (httpx.TransportError, ConnectionError, TimeoutError))


def decide(
    policy: RetryPolicy,
    error: BaseException,
    *,
    attempt: int,
    elapsed: float,
    previous_delay: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Decide whether to retry after ``attempt`` failed with ``error`` ``elapsed`` seconds in."""
    if not is_retryable(error, policy):
        return Decision(False, reason="not retryable")
    if attempt >= policy.max_attempts:
        return Decision(False, reason=f"all {policy.max_attempts} attempts failed")
    delay = backoff_delay(policy, attempt + 1, previous=previous_delay, rng=rng)
    hint = getattr(error, "retry_after", None)
    if hint is not None:
        if hint > policy.max_retry_after:
            return Decision(
                False, hint, f"server asked to wait {hint:g}s, above max_retry_after {policy.max_retry_after:g}s"
            )
        delay = max(delay, hint)
    if policy.deadline is not None and elapsed + delay >= policy.deadline:
        return Decision(False, delay, f"waiting {delay:g}s would pass the {policy.deadline:g}s deadline")
    return Decision(True, delay)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s\s*$")


def parse_duration(value: object) -> float | None:
    """Seconds of a protobuf Duration string such as ``"26s"`` or ``"1.5s"``; ``None`` if not one."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); ``None`` if absent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def describe_error(error: BaseException) -> str:
    """The ``exception`` text of retry events: ``HTTP 503: ...`` for API errors, else type and message."""
    if isinstance(error, APIError):
        return str(error)
    return f"{type(error).__name__}: {error}"


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
        self.trace = current_trace()
        self._attempt: AttemptTrace | None = None

    def begin(self, attempt: int) -> None:
        if self.breaker is not None:
            self.breaker.acquire()
        if attempt == 1 and self.budget is not None:
            self.budget.record_request()
        self.attempt_start = self.clock()
        self._tokens = structlog.contextvars.bind_contextvars(attempt=attempt)
        if self.trace is not None:
            delay = self.previous_delay if attempt > 1 and self.previous_delay is not None else 0.0
            self._attempt = AttemptTrace(number=attempt, delay_before=delay)
            self.trace.attempts.append(self._attempt)
            self.trace.notify("attempt_started", self._attempt)

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

    def _guarded(self, decision: Decision, error: BaseException) -> Decision:
        """Veto a retry the circuit breaker or the retry budget will not allow."""
        if self.breaker is not None:
            if is_retryable(error, _SERVER_SIDE):
                self.breaker.record_failure()
            else:
                self.breaker.record_ignored()
        if not decision.retry:
            return decision
        if self.breaker is not None and not self.breaker.allows():
            return Decision(False, self.breaker.retry_after(), f"circuit {self.breaker.name} is open")
        if self.budget is not None and not self.budget.try_spend():
            if self.trace is not None:
                self.trace.retries_denied += 1
            _log.warning("Retry denied", reason="retry budget exhausted", budget=vars(self.budget.snapshot()))
            return Decision(False, 0.0, "retry budget exhausted: retries are limited to a share of requests")
        return decision

    def failed(self, error: BaseException, attempt: int) -> Decision:
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
            if isinstance(error, TweetGenError) and error.retry_after is None and decision.delay:
                error.retry_after = decision.delay
            _log.error("Retries exhausted", attempts=attempt, exception=describe_error(error), reason=decision.reason)

    def succeeded(self, result: T, attempt: int) -> T:
        if self.breaker is not None:
            self.breaker.record_success()
        latency = getattr(result, "latency_ms", None)
        self._finish_attempt(
            result, latency if latency is not None else round((self.clock() - self.attempt_start) * 1000, 2)
        )
        self.end()
        if attempt > 1:
            _log.info("Retry succeeded", final_attempt=attempt)
        return result


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
    policy = policy or RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options)
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
    policy = policy or RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options)
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
    policy = policy or RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options)
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
    policy = policy or RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, **options)
    ctl = _Controller(policy, clock, rng, breaker, budget)
    retrying = tenacity.AsyncRetrying(sleep=sleep, **_tenacity_kwargs(ctl))
    async for attempt in retrying:
        with attempt:
            result = await func()
        if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
            return ctl.succeeded(result, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
