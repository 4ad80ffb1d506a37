"""The sandbox's project quota (``sandbox serve --quota-rpm N`` / ``--quota-rps N`` /
``--quota-rpd N``), and the 429 bodies of the quota faults (``429day``, ``429tpm``, ``429spend``,
``429prepay``).

Gemini's limits apply per Google Cloud project: every key and every connection of the project draws
on one quota, and a request above it is answered ``429 RESOURCE_EXHAUSTED`` with a
``google.rpc.QuotaFailure`` naming the quota and a ``google.rpc.RetryInfo`` saying when to retry.
A :class:`Quota` is that quota for one sandbox: all of its clients, every model, both of its
dialects (``generateContent`` and ``/v1/chat/completions``) share it.

How it counts (decided here; Gemini's documentation does not say):

- **A sliding (rolling) window**: a request is admitted when fewer than ``limit`` requests were
  admitted in the last ``window`` seconds, so no window-long interval, wherever it starts, holds
  more than ``limit`` admitted requests (a fixed window would let ``2 * limit`` through around its
  edge). Gemini's per-minute quota behaves like a rolling window.
- **A refused request consumes nothing**: only admitted requests are counted against the quota (as
  Gemini: a 429 does not spend quota), so a client that retries too early does not push its next
  admission further away.
- **retryDelay is the real wait**: the time until the oldest admitted request leaves the window,
  rounded *up* to the millisecond, so a client that waits exactly that long is admitted (if no one
  else took the slot first). Written as a protobuf Duration (``"26s"``, ``"0.25s"``), which
  :func:`tweetgen.hints.parse_duration` reads back to the same number.
- **A daily quota answers a short retryDelay**, as the real API does (langchain-google #1445: a
  per-day 429 says "retry in 33s"): the seconds to the next minute of the wait, never the hours
  until the window frees. Its window is a sliding day, not Pacific midnight (a client must not rely
  on either: it reads the quotaId, :mod:`tweetgen.quotas`).
- The sandbox checks the quota after a request is found well formed and its key accepted (a 400 or
  an invalid key consumes nothing) and before the fault script, so a scripted ``503`` still spends
  a slot; a refused request is answered at once (no ``--latency``).

Memory is bounded: the window keeps at most ``limit`` timestamps; :meth:`Quota.history` the last
``history`` admitted times (100,000 by default); the totals are two integers. The clock is
injectable (``clock=``; ``time.monotonic`` by default) so tests need no real sleeps. Every method is
thread-safe: the check and the count happen under one lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "MAX_LIMIT",
    "QUOTA_FAULTS",
    "Quota",
    "QuotaStats",
    "chat_quota_error",
    "chat_quota_fault",
    "format_delay",
    "gemini_quota_error",
    "gemini_quota_fault",
]

#: the largest quota accepted, per window (above it the number is a typo, not a quota)
MAX_LIMIT = 1_000_000_000
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
RATE_LIMITS_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"
_PERIODS = {1.0: "Second", 60.0: "Minute", 3600.0: "Hour", 86400.0: "Day"}  # quotaId words
_UNITS = {1.0: "sec (RPS)", 60.0: "min (RPM)", 3600.0: "hour", 86400.0: "day (RPD)"}


def format_delay(seconds: float) -> str:
    """A protobuf Duration string for a wait, rounded up to the millisecond: ``"26s"``,
    ``"1.5s"``, ``"0.001s"``."""
    millis = max(0, math.ceil(round(seconds * 1000, 6)))
    whole, rest = divmod(millis, 1000)
    return f"{whole}.{rest:03d}".rstrip("0") + "s" if rest else f"{whole}s"


def _check_limit(limit: float) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise ValueError(f"the quota must be a whole number of requests above 0, got {limit!r}")
    if not math.isfinite(limit) or limit != int(limit) or not 1 <= limit <= MAX_LIMIT:
        shown = f"{limit:g}" if math.isfinite(limit) else str(limit)
        raise ValueError(
            f"the quota must be a whole number of requests from 1 to {MAX_LIMIT:,}, got {shown}"
        )
    return int(limit)


@dataclass(frozen=True)
class QuotaStats:
    """A consistent snapshot of a :class:`Quota` (all times on the quota's clock, in seconds)."""

    limit: int
    window: float
    accepted: int  #: requests admitted since the start
    refused: int  #: requests answered 429 since the start
    in_window: int  #: requests admitted in the last ``window`` seconds
    retry_in: float  #: seconds until the next request would be admitted (0: now)
    first_accepted: float | None
    last_accepted: float | None
    now: float

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (what ``GET /quota`` answers)."""
        return asdict(self)


class Quota:
    """At most ``limit`` admitted requests in any ``window`` seconds (a sliding window).

    ``Quota(5, 1.0)`` is ``--quota-rps 5``; ``Quota.per_minute(100)`` is ``--quota-rpm 100``.
    ``limit`` must be a whole number from 1 to :data:`MAX_LIMIT` (a quota of 0 would refuse
    everything: use the fault script ``429*N`` for that) and ``window`` a finite number of seconds
    above 0; anything else raises ``ValueError`` in words. ``quota_id`` is the QuotaFailure's
    ``quotaId`` (by default Gemini's name for the window, e.g.
    ``GenerateRequestsPerMinutePerProjectPerModel-FreeTier``).
    """

    def __init__(
        self,
        limit: float,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        history: int = 100_000,
        quota_id: str | None = None,
    ) -> None:
        self.limit = _check_limit(limit)
        if isinstance(window, bool) or not isinstance(window, int | float):
            raise ValueError(f"the quota window must be a number of seconds, got {window!r}")
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"the quota window must be a number of seconds above 0, got {window}")
        if history < 0:
            raise ValueError(f"the quota history must be 0 or more, got {history}")
        self.window = float(window)
        period = _PERIODS.get(self.window, f"{self.window:g}Seconds")
        self.quota_id = quota_id or f"GenerateRequestsPer{period}PerProjectPerModel-FreeTier"
        self.clock = clock
        self._admitted: deque[float] = deque()
        self._history: deque[float] = deque(maxlen=history)
        self._accepted = 0
        self._refused = 0
        self._first: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def per_minute(cls, limit: float, **options: Any) -> Quota:
        """``limit`` requests per minute (``--quota-rpm``)."""
        return cls(limit, 60.0, **options)

    @classmethod
    def per_day(cls, limit: float, **options: Any) -> Quota:
        """``limit`` requests per day (``--quota-rpd``): 429s with Gemini's per-day quotaId."""
        return cls(limit, 86400.0, **options)

    @classmethod
    def per_second(cls, limit: float, **options: Any) -> Quota:
        """``limit`` requests per second (``--quota-rps``, for fast tests)."""
        return cls(limit, 1.0, **options)

    def describe(self) -> str:
        """The quota in words: ``"5 requests per second (sliding window)"``."""
        unit = _PERIODS.get(self.window)
        per = f"per {unit.lower()}" if unit else f"per {self.window:g} seconds"
        return f"{self.limit} request{'s' if self.limit != 1 else ''} {per} (sliding window)"

    def _trim(self, now: float) -> None:
        """Forget admissions that left the window (call under the lock)."""
        edge = now - self.window
        while self._admitted and self._admitted[0] <= edge:
            self._admitted.popleft()

    def _wait(self, now: float) -> float:
        """Seconds until a slot frees (call under the lock, after ``_trim``)."""
        if len(self._admitted) < self.limit:
            return 0.0
        return max(0.0, self._admitted[0] + self.window - now)

    def admit(self) -> float | None:
        """Admit one request now (``None``) or refuse it: the seconds until a slot frees.

        Atomic: under concurrent calls, exactly ``limit`` are admitted per window. A refusal is
        counted in :attr:`refused` and consumes nothing.
        """
        with self._lock:
            now = self.clock()
            self._trim(now)
            if len(self._admitted) >= self.limit:
                self._refused += 1
                # never a zero wait: a slot frees only once now > oldest + window
                return max(self._wait(now), 0.001)
            self._admitted.append(now)
            self._history.append(now)
            self._accepted += 1
            if self._first is None:
                self._first = now
            return None

    @property
    def accepted(self) -> int:
        """Requests admitted since the start."""
        with self._lock:
            return self._accepted

    @property
    def refused(self) -> int:
        """Requests refused (answered 429) since the start."""
        with self._lock:
            return self._refused

    def stats(self) -> QuotaStats:
        """A consistent snapshot: totals, the current window, the wait, first and last admission."""
        with self._lock:
            now = self.clock()
            self._trim(now)
            return QuotaStats(
                limit=self.limit,
                window=self.window,
                accepted=self._accepted,
                refused=self._refused,
                in_window=len(self._admitted),
                retry_in=self._wait(now),
                first_accepted=self._first,
                last_accepted=self._history[-1] if self._history else None,
                now=now,
            )

    def history(self) -> list[float]:
        """The clock times of the last admitted requests (at most ``history`` of them), oldest
        first: a fleet test computes the server-observed rate from them."""
        with self._lock:
            return list(self._history)

    def rate(self, start: float, end: float) -> float:
        """Admitted requests per second in ``[start, end)`` (from :meth:`history`)."""
        if not end > start:
            raise ValueError(f"the rate needs end > start, got {start} and {end}")
        with self._lock:
            count = sum(1 for t in self._history if start <= t < end)
        return count / (end - start)


def _unit(quota: Quota) -> str:
    return _UNITS.get(quota.window, f"{quota.window:g} seconds")


def gemini_quota_error(quota: Quota, delay: float, model: str) -> dict[str, Any]:
    """Gemini's 429 body for a spent project quota: QuotaFailure, Help and RetryInfo (a daily
    quota's retryDelay is short, as the real API's)."""
    retry = format_delay(delay if quota.window < 86400 else max(1.0, delay % 60))
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        f"information on this error, head to: {RATE_LIMITS_URL}.\n* Quota exceeded for metric: "
        f"{QUOTA_METRIC}, limit: {quota.limit}, model: {model}\nPlease retry in {retry}."
    )
    violation = {
        "quotaMetric": QUOTA_METRIC,
        "quotaId": quota.quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": str(quota.limit),
    }
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry},
    ]
    error = {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}
    return {"error": error}


def chat_quota_error(
    quota: Quota, delay: float, model: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """OpenAI's 429 ``rate_limit_exceeded`` body and headers (``retry-after``, ``retry-after-ms``,
    ``x-ratelimit-*``) for a spent project quota."""
    retry = format_delay(delay)
    millis = math.ceil(round(delay * 1000, 6))
    message = (
        f"Rate limit reached for {model} in organization org-sandbox on requests per "
        f"{_unit(quota)}: Limit {quota.limit}, Used {quota.limit}, Requested 1. Please try again "
        f"in {retry}. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    body = {
        "error": {
            "message": message,
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    headers = {
        "retry-after": str(math.ceil(millis / 1000)),
        "retry-after-ms": str(millis),
        "x-ratelimit-limit-requests": str(quota.limit),
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": retry,
    }
    return body, headers


#: the quota faults of a fault script (``429day`` ...) and the kind of quota each one is
QUOTA_FAULTS = {
    "429day": "per-day",
    "429tpm": "tokens-per-minute",
    "429spend": "spend-cap",
    "429prepay": "prepay-depleted",
}
_INPUT_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
_PREPAY_MESSAGE = (  # a real body's message (quoted in public logs); the body has no details
    "Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects to "
    "manage your project and billing. Learn more at "
    "https://ai.google.dev/gemini-api/docs/billing#prepay. "
)
_SPEND_MESSAGE = (  # UNCONFIRMED: no real body of a spend-cap refusal was found; words assumed
    "Your project has reached its spend cap. Please go to AI Studio at https://ai.studio/projects "
    "to manage your project's spend cap and billing."
)


def gemini_quota_fault(kind: str, model: str, retry_delay: str | None = None) -> dict[str, Any]:
    """Gemini's 429 body for a quota fault of a script (``kind``: a :data:`QUOTA_FAULTS` value):
    a daily or token quota with its QuotaFailure and a short RetryInfo (``retry_delay``, "33s" by
    default), or the message-only bodies of depleted credits and a spend cap."""
    if kind in ("prepay-depleted", "spend-cap"):
        message = _PREPAY_MESSAGE if kind == "prepay-depleted" else _SPEND_MESSAGE
        return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    tokens = kind == "tokens-per-minute"
    quota = Quota(
        250_000 if tokens else 250,
        60.0 if tokens else 86400.0,
        quota_id="GenerateContentInputTokensPerModelPerMinute-FreeTier" if tokens else None,
    )
    body = gemini_quota_error(quota, 33.0, model)
    if tokens:
        body["error"]["details"][0]["violations"][0]["quotaMetric"] = _INPUT_METRIC
        body["error"]["message"] = body["error"]["message"].replace(QUOTA_METRIC, _INPUT_METRIC)
    if retry_delay:
        body["error"]["details"][-1]["retryDelay"] = retry_delay
    return body


def chat_quota_fault(kind: str, model: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The OpenAI-compatible 429 of a quota fault: ``insufficient_quota`` for credits and spend
    caps (what OpenAI answers for both), ``rate_limit_exceeded`` for the rest."""
    if kind in ("prepay-depleted", "spend-cap"):
        message = _PREPAY_MESSAGE if kind == "prepay-depleted" else _SPEND_MESSAGE
        error = {"message": message, "type": "insufficient_quota", "param": None}
        return {"error": {**error, "code": "insufficient_quota"}}, {}
    return chat_quota_error(Quota(250, 86400.0), 33.0, model)
