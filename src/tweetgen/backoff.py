"""Retry decisions as pure functions: the policy, the backoff schedule, classification, server hints.

Delay before attempt ``n`` (n >= 2): ``min(max_delay, base_delay * multiplier ** (n - 2))``, then
jitter; a server hint (``Retry-After``, ``retry-after-ms``, Gemini ``RetryInfo``) on a retried error
raises the delay to the hint; a hint above ``max_retry_after`` or past the deadline stops at once.

Hints come from the server, so they are parsed defensively: negative, NaN, infinite or unparsable
values are no hint at all, and anything longer than :data:`MAX_HINT` (a day) counts as a day, so no
``Retry-After: 1000000000``, ``"1e400s"`` or date in the year 9999 can overflow a sleep or a clock.
"""

from __future__ import annotations

import email.utils
import errno
import math
import random
import re
import socket
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from .errors import APIError, ConfigurationError, RateLimitError, TweetGenError

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
#: the longest server hint kept, in seconds: a longer one means "not today", and is capped here so that no
#: later sum or sleep can overflow (``max_retry_after`` still decides whether it is honoured at all)
MAX_HINT = 86_400.0


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
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(f"invalid retry policy: {message}")

    @classmethod
    def from_retries(cls, max_retries: int = DEFAULT_MAX_RETRIES, **options: Any) -> RetryPolicy:
        """Build a policy from the seed's ``max_retries`` (retries after the first attempt)."""
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return cls(
            max_attempts=max_retries + 1, **{k: v for k, v in options.items() if v is not None}
        )

    def with_options(self, **options: Any) -> RetryPolicy:
        """Return a copy with the non-``None`` options replaced."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or stop for ``reason``.

    ``deadline`` is true when the policy's deadline is what stopped it (the delay is then tweetgen's
    own wait, or the server's hint, that would not fit). ``stopped_by`` names what ended a retryable
    call, in words a summary can count: ``attempts``, ``server hint``, ``deadline``, ``retry budget`` or
    ``circuit breaker`` (``None`` when the error is not retryable or the call goes on).
    """

    retry: bool
    delay: float = 0.0
    reason: str = ""
    deadline: bool = False
    stopped_by: str | None = None


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
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ETIMEDOUT,
     errno.ENETDOWN, errno.EPIPE}
)  # fmt: skip
#: what counts as the server's failure for the circuit breaker: the retryable errors, 429 excluded
SERVER_SIDE = RetryPolicy()


def is_retryable(error: BaseException, policy: RetryPolicy | None = None) -> bool:
    """Whether the policy retries this error (5xx, network, timeouts, invalid responses; 429 if asked)."""
    policy = policy or RetryPolicy()
    if policy.retry_on is not None:
        return policy.retry_on(error)
    if isinstance(error, RateLimitError):
        return (
            policy.retry_rate_limits and error.retryable
        )  # a spent quota (e.g. insufficient_quota) is not
    if isinstance(error, TweetGenError):
        return error.retryable
    status = http_status(error)
    if status is not None:
        return (
            status in _RETRYABLE_STATUS
            or status >= 500
            or (status == 429 and policy.retry_rate_limits)
        )
    if isinstance(error, (httpx.TransportError, ConnectionError, TimeoutError, socket.gaierror)):
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
        if (
            isinstance(candidate, int)
            and 100 <= candidate <= 599
            and not isinstance(candidate, bool)
        ):
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
        return Decision(False, reason="not retryable")
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
        if elapsed >= policy.deadline:
            reason = f"the {policy.deadline:g}s deadline has passed"
        else:
            reason = f"waiting {delay:g}s would pass the {policy.deadline:g}s deadline"
        return Decision(False, delay, reason, deadline=True, stopped_by="deadline")
    return Decision(True, delay)


_DURATION = re.compile(r"^\s*(\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})\s*s\s*$")


def _hint(seconds: float) -> float | None:
    """A server's wait in seconds, kept only when it is a finite number >= 0, and capped at :data:`MAX_HINT`."""
    return min(seconds, MAX_HINT) if math.isfinite(seconds) and seconds >= 0 else None


def parse_duration(value: object) -> float | None:
    """Seconds of a protobuf Duration string such as ``"26s"`` or ``"1.5s"``; ``None`` if not one.

    At most 30 digits either side of the point (longer is not a duration but an attack on the parser);
    capped at :data:`MAX_HINT`.
    """
    match = _DURATION.match(value) if isinstance(value, str) and len(value) <= 100 else None
    return _hint(float(match.group(1))) if match else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); ``None`` if absent.

    Negative, NaN, infinite or unparsable values are ignored; long waits are capped at :data:`MAX_HINT`.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = _number(lowered.get("retry-after-ms"))
    hint = _hint(ms / 1000) if ms is not None else None
    if hint is not None:
        return hint
    raw = lowered.get("retry-after")
    if raw is None or len(raw) > 100:  # an HTTP date is 29 characters; longer is no hint
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _hint(seconds)
    try:
        when = email.utils.parsedate_to_datetime(raw)
        current = time.time() if now is None else now
        return _hint(max(0.0, when.timestamp() - current))
    except (
        TypeError,
        ValueError,
        OverflowError,
        IndexError,
        OSError,
    ):  # the email parser's ways to say "no date"
        return None


def _number(raw: str | None) -> float | None:
    """``raw`` as a float, or ``None`` (not a number, or absurdly long)."""
    if raw is None or len(raw) > 100:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def describe_error(error: BaseException) -> str:
    """The ``exception`` text of retry events: ``HTTP 503: ...`` for API errors, else type and message."""
    if isinstance(error, APIError):
        return str(error)
    return f"{type(error).__name__}: {error}"
