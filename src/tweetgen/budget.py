"""The retry budget: retries capped at a fraction of the traffic while the service looks down.

See :mod:`tweetgen.resilience` for the design (Finagle's budget, stepped aside while the SRE book's
adaptive-throttling test says the service is healthy). :meth:`RetryBudget.for_policy` is the one
place a budget's reserve is sized.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .backoff import RetryPolicy

__all__ = ["DEFAULT_RETRY_RESERVE", "BudgetSnapshot", "RetryBudget"]

_BUCKETS = 10
#: the retry budget's reserve: a lone call always keeps at least the seed's 3 retries
DEFAULT_RETRY_RESERVE = 3


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check(what: str, checks: list[tuple[str, object, bool, str]]) -> None:
    for field, value, ok, rule in checks:
        if not ok:
            raise ConfigurationError(f"invalid {what}: {field} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class BudgetSnapshot:
    """The window's requests, retries, attempts and accepts, and the retry limit they give."""

    requests: int
    retries: int
    limit: float
    attempts: int = 0
    accepts: int = 0
    healthy: bool = False


@dataclass
class _Bucket:
    requests: int = 0
    retries: int = 0
    attempts: int = 0
    accepts: int = 0


class RetryBudget:
    """A Finagle-style retry budget that steps aside while the service is healthy.

    Retries stay under ``reserve + ratio * requests`` per sliding window, unless at least ``1 / k``
    of the window's attempts were accepted by the server (``k = 0`` turns that exemption off: a
    plain ratio budget).
    """

    def __init__(
        self,
        *,
        ratio: float = 0.1,
        reserve: int = 3,
        window_seconds: float = 10.0,
        k: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check(
            "retry budget",
            [
                ("ratio", ratio, _finite(ratio) and ratio >= 0, ">= 0"),
                ("reserve", reserve, _count(reserve, 0), "an integer >= 0"),
                (
                    "window_seconds",
                    window_seconds,
                    _finite(window_seconds) and window_seconds > 0,
                    "> 0",
                ),
                ("k", k, _finite(k) and k >= 0, ">= 0 (0: no exemption while healthy)"),
            ],
        )
        self.ratio = ratio
        self.reserve = reserve
        self.window_seconds = window_seconds
        self.k = k
        self._width = window_seconds / _BUCKETS
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, _Bucket] = {}
        self._floor = 0  # the smallest epoch in _buckets (when there is one)

    @classmethod
    def for_policy(
        cls, policy: RetryPolicy, *, ratio: float = 0.1, clock: Callable[[], float] = time.monotonic
    ) -> RetryBudget:
        """The budget sized for ``policy``, the one place its reserve is chosen: a lone call always
        keeps its configured retries, and at least the seed's 3 (``DEFAULT_RETRY_RESERVE``)."""
        reserve = max(DEFAULT_RETRY_RESERVE, policy.max_attempts - 1)
        return cls(ratio=ratio, reserve=reserve, clock=clock)

    def record_request(self) -> None:
        """Count the first attempt of a logical call."""
        with self._lock:
            self._current().requests += 1

    def record_attempt(self, *, accepted: bool) -> None:
        """Count a finished attempt: ``accepted`` unless it failed server-side (5xx, network,
        timeout, 429)."""
        with self._lock:
            bucket = self._current()
            bucket.attempts += 1
            bucket.accepts += accepted

    def try_spend(self) -> bool:
        """Take one retry from the budget if the window allows it; ``False`` means do not retry."""
        with self._lock:
            bucket = self._current()
            totals = self._totals()
            if (
                not self._healthy(totals)
                and totals.retries >= self.reserve + self.ratio * totals.requests
            ):
                return False
            bucket.retries += 1
            return True

    def snapshot(self) -> BudgetSnapshot:
        """The window's counts, read under the lock."""
        with self._lock:
            self._current()
            totals = self._totals()
            return BudgetSnapshot(
                requests=totals.requests,
                retries=totals.retries,
                limit=self.reserve + self.ratio * totals.requests,
                attempts=totals.attempts,
                accepts=totals.accepts,
                healthy=self._healthy(totals),
            )

    def _healthy(self, totals: _Bucket) -> bool:
        return self.k > 0 and totals.accepts > 0 and totals.accepts * self.k >= totals.attempts

    def _current(self) -> _Bucket:
        """The bucket for now, after dropping the buckets that left the window (``_floor``, the
        oldest bucket's epoch, spares the scan while none did)."""
        epoch = math.floor(self._clock() / self._width)
        buckets = self._buckets
        if buckets and self._floor <= epoch - _BUCKETS:
            for old in [e for e in buckets if e <= epoch - _BUCKETS]:
                del buckets[old]
            self._floor = min(buckets, default=epoch)
        bucket = buckets.get(epoch)
        if bucket is None:
            self._floor = min(self._floor, epoch) if buckets else epoch
            bucket = buckets[epoch] = _Bucket()
        return bucket

    def _totals(self) -> _Bucket:
        total = _Bucket()
        for b in self._buckets.values():
            total.requests += b.requests
            total.retries += b.retries
            total.attempts += b.attempts
            total.accepts += b.accepts
        return total
