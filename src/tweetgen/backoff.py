"""Retry decisions as pure functions: the policy, the backoff schedule, classification, the stops.

Delay before attempt ``n`` (n >= 2): ``min(max_delay, base_delay * multiplier ** (n - 2))``, then
jitter; a server hint (``Retry-After``, ``retry-after-ms``, Gemini ``RetryInfo``) on a retried error
raises the delay to the hint; a hint above ``max_retry_after`` or past the deadline stops at once.

Every outcome of a failed attempt is a :class:`Decision` value: retry after a delay, or stop, and
what stopped it. The engine (:mod:`tweetgen.attempts`) only carries decisions out. The hints are
parsed in :mod:`tweetgen.hints` (re-exported here).
"""

from __future__ import annotations

import errno
import math
import random
import socket
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import APIError, ConfigurationError, RateLimitError, TweetGenError
from .hints import MAX_HINT, parse_duration, parse_retry_after

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "JITTERS",
    "MAX_HINT",
    "SERVER_SIDE",
    "Decision",
    "RetryPolicy",
    "backoff_delay",
    "budget_stop",
    "circuit_stop",
    "decide",
    "describe_error",
    "is_retryable",
    "parse_duration",
    "parse_retry_after",
]

DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 10.0
DEFAULT_MAX_RETRY_AFTER = 60.0
JITTERS = ("none", "full", "equal", "decorrelated")


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
        for ok, message in self._checks():
            if not ok:
                raise ConfigurationError(f"invalid retry policy: {message}")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (
                isinstance(self.max_attempts, int) and self.max_attempts >= 1,
                "max_attempts must be an integer >= 1",
            ),
            (_finite(self.base_delay) and self.base_delay >= 0, "base_delay must be >= 0 seconds"),
            (_finite(self.multiplier) and self.multiplier >= 1, "multiplier must be >= 1"),
            (
                _finite(self.max_delay) and self.max_delay >= self.base_delay,
                "max_delay must be >= base_delay",
            ),
            (self.jitter in JITTERS, f"jitter must be one of {', '.join(JITTERS)}"),
            (
                self.deadline is None or (_finite(self.deadline) and self.deadline > 0),
                "deadline must be > 0 seconds",
            ),
            (
                _finite(self.max_retry_after) and self.max_retry_after >= 0,
                "max_retry_after must be >= 0 seconds",
            ),
        ]

    @classmethod
    def from_retries(cls, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any) -> RetryPolicy:
        """Build a policy from the seed's ``max_retries`` (retries after the first attempt)."""
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return cls(
            max_attempts=max_retries + 1, **{k: v for k, v in options.items() if v is not None}
        )


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or stop for ``reason``.

    ``retryable`` is false when the error itself is not worth a retry (one attempt, no "Retries
    exhausted"). ``deadline`` is true when the policy's deadline is what stopped it (the delay is
    then tweetgen's own wait, or the server's hint, that would not fit). ``stopped_by`` names what
    ended a retryable call, in words a summary can count: ``attempts``, ``server hint``,
    ``deadline``, ``retry budget`` or ``circuit breaker`` (``None`` when not retryable or the call
    goes on).
    """

    retry: bool
    delay: float = 0.0
    reason: str = ""
    deadline: bool = False
    stopped_by: str | None = None
    retryable: bool = True

    @property
    def gave_up(self) -> bool:
        """A retryable call stopped: the retries are exhausted (by attempts, a hint, a veto...)."""
        return self.retryable and not self.retry


#: a stop that the error would not explain by itself: its message says what stopped the call
SAID_STOPS = frozenset({"deadline", "retry budget", "circuit breaker"})
_NOT_RETRYABLE = Decision(False, reason="not retryable", retryable=False)
_BUDGET_STOP = Decision(
    False,
    reason="retry budget exhausted: retries are limited to a share of requests",
    stopped_by="retry budget",
)


def circuit_stop(name: str, retry_after: float, *, opened: bool = False) -> Decision:
    """The circuit breaker vetoes the retry (``opened``: it opened while the call waited)."""
    reason = f"circuit {name} opened" if opened else f"circuit {name} is open"
    return Decision(False, retry_after, reason, stopped_by="circuit breaker")


def budget_stop() -> Decision:
    """The retry budget vetoes the retry: retries are limited to a share of requests."""
    return _BUDGET_STOP


def backoff_delay(
    policy: RetryPolicy,
    attempt: int,
    *,
    previous: float | None = None,
    rng: random.Random | None = None,
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
        return min(
            policy.max_delay, rand.uniform(policy.base_delay, max(policy.base_delay, 3 * prev))
        )
    return ceiling


_RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504})
_NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ENETUNREACH,
     errno.EHOSTUNREACH, errno.ETIMEDOUT, errno.ENETDOWN, errno.EPIPE}
)  # fmt: skip
_NETWORK_TYPES = (httpx.TransportError, ConnectionError, TimeoutError, socket.gaierror)
#: what counts as the server's failure for the circuit breaker: the retryable errors, 429 excluded
SERVER_SIDE = RetryPolicy()


def is_retryable(error: BaseException, policy: RetryPolicy | None = None) -> bool:
    """Whether the policy retries this error (5xx, network, timeouts, bad answers; 429 if asked)."""
    policy = policy or SERVER_SIDE
    if policy.retry_on is not None:
        return policy.retry_on(error)
    if isinstance(error, RateLimitError):  # a spent quota (e.g. insufficient_quota) is not
        return policy.retry_rate_limits and error.retryable
    if isinstance(error, TweetGenError):
        return error.retryable
    status = http_status(error)
    if status is not None:
        return (
            status in _RETRYABLE_STATUS
            or status >= 500
            or (status == 429 and policy.retry_rate_limits)
        )
    if isinstance(error, _NETWORK_TYPES):
        return True
    if isinstance(error, urllib.error.URLError):  # urllib wraps the network failure in .reason
        return isinstance(error.reason, (OSError, TimeoutError))
    return isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS


def http_status(error: BaseException) -> int | None:
    """The HTTP status an exception of httpx, requests or urllib carries, if any."""
    response = getattr(error, "response", None)
    for candidate in (
        getattr(response, "status_code", None),
        getattr(error, "status", None),
        getattr(error, "code", None),
    ):
        if isinstance(candidate, bool) or not isinstance(candidate, int):
            continue
        if 100 <= candidate <= 599:
            return candidate
    return None


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
        return _NOT_RETRYABLE
    if attempt >= policy.max_attempts:
        return Decision(
            False, reason=f"all {policy.max_attempts} attempts failed", stopped_by="attempts"
        )
    delay = backoff_delay(policy, attempt + 1, previous=previous_delay, rng=rng)
    hint = getattr(error, "retry_after", None)
    if hint is not None:
        if hint > policy.max_retry_after:
            reason = (
                f"server asked to wait {hint:g}s, above max_retry_after {policy.max_retry_after:g}s"
            )
            return Decision(False, hint, reason, stopped_by="server hint")
        delay = max(delay, hint)
    if policy.deadline is not None and elapsed + delay >= policy.deadline:
        return _deadline_stop(policy.deadline, elapsed, delay)
    return Decision(True, delay)


def _deadline_stop(deadline: float, elapsed: float, delay: float) -> Decision:
    if elapsed >= deadline:
        reason = f"the {deadline:g}s deadline has passed"
    else:
        reason = f"waiting {delay:g}s would pass the {deadline:g}s deadline"
    return Decision(False, delay, reason, deadline=True, stopped_by="deadline")


def describe_error(error: BaseException) -> str:
    """The ``exception`` of retry events: ``HTTP 503: ...`` for API errors, else with the type."""
    if isinstance(error, APIError):
        return str(error)
    return f"{type(error).__name__}: {error}"
