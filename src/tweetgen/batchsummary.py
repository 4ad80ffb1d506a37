"""What one batch run did: counts, reasons, latencies, and the words a summary counts failures
in."""

from __future__ import annotations

import collections
import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    CircuitOpenError,
    InputError,
    InvalidResponseError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    TweetValidationError,
)
from .quotas import PER_DAY, PREPAY_DEPLETED, SPEND_CAP, TOKENS_PER_DAY, WORDS, reset_time
from .stats import percentile
from .store import StoreError

__all__ = ["BatchSummary", "dollars", "failure_kind", "quota_stop", "stops_batch"]


@dataclass
class BatchSummary:
    """Counts and timings of one run."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    abandoned: int = 0
    unsaved: int = 0
    #: rows whose last call, in an earlier run, failed (not called again without ``retry_failed``)
    still_failed: int = 0
    retries: int = 0
    #: why this run's rows failed, counted by kind (see :func:`failure_kind`)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))  # 8 bytes a row
    elapsed: float = 0.0
    interrupted: bool = False
    #: why the run stopped early because results could not be stored (the CLI then exits 1 with it)
    store_error: StoreError | None = None
    #: rows of the batch settled by other commands (a fleet on one store), not by this one
    others: int = 0
    #: rows this command took over from a worker whose lease expired
    takeovers: int = 0
    #: rows of the whole batch done so far, from the store (a fleet's progress); None: this run's
    batch_done: int | None = None
    #: why the run stopped at once for a quota no wait clears (a daily quota, a spend cap, no
    #: credits): the summary's line; the rows not attempted stay pending for the rerun
    quota_stop: str | None = None
    #: calls this run made (at least one attempt), what those with a known price cost in US
    #: dollars, and how many had an unknown price (an unknown model, or no usage in the answer)
    calls: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0

    _COUNTS = (
        "total", "ok", "failed", "skipped", "abandoned", "unsaved", "still_failed", "retries",
        "takeovers", "calls", "unknown_cost",
    )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """What a local worker process tells its parent command at its end (counts, reasons,
        latencies, whether it was interrupted, its store error's message)."""
        counts: dict[str, object] = {name: getattr(self, name) for name in self._COUNTS}
        return {
            **counts,
            "reasons": dict(self.reasons),
            "latencies": list(self.latencies),
            "interrupted": self.interrupted,
            "store_error": str(self.store_error) if self.store_error else None,
            "quota_stop": self.quota_stop,
            "cost_usd": self.cost_usd,
        }

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add a local worker's :meth:`to_json` to this command's summary."""
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + int(other.get(name, 0)))
        self.reasons.update({str(k): int(v) for k, v in other.get("reasons", {}).items()})
        self.latencies.extend(float(v) for v in other.get("latencies", ()))
        self.interrupted = self.interrupted or bool(other.get("interrupted"))
        message = other.get("store_error")
        if message and self.store_error is None:
            self.store_error = StoreError(str(message))
        self.quota_stop = self.quota_stop or (
            str(other["quota_stop"]) if other.get("quota_stop") else None
        )
        cost = other.get("cost_usd")
        if isinstance(cost, int | float) and math.isfinite(cost):
            self.cost_usd += float(cost)

    def spend(self, cost: float | None) -> None:
        """Count one finished call and its cost (``None``: unknown)."""
        self.calls += 1
        if cost is None or not math.isfinite(cost):
            self.unknown_cost += 1
        else:
            self.cost_usd += cost

    def percentile(self, q: float) -> float | None:
        """Latency percentile of this run's successful calls, in ms."""
        return percentile(self.latencies, q) if self.latencies else None

    def lines(self) -> list[str]:
        """A human summary."""
        p50, p95 = self.percentile(50), self.percentile(95)
        timing = (
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
            if p50 is not None and p95 is not None
            else "no calls"
        )
        earlier = (
            f", {self.still_failed} still failed from an earlier run" if self.still_failed else ""
        )
        if self.others:
            earlier += f", {self.others} by other workers"
        lines = [
            f"{self.total} rows: {self.ok} ok, {self.failed} failed, {self.skipped} already "
            f"done{earlier}; "
            f"{self.retries} retries; {timing}; {self.elapsed:.1f} s"
        ]
        if self.reasons:
            lines.append(
                "failed: " + ", ".join(f"{n} {kind}" for kind, n in self.reasons.most_common())
            )
        if self.takeovers:
            lines.append(
                f"{self.takeovers} rows were taken over from workers that stopped holding them"
            )
        if self.abandoned:
            lines.append(f"{self.abandoned} calls in flight were abandoned")
        if self.unsaved:
            lines.append(
                f"{self.unsaved} rows were generated but could not be stored; they run again next "
                "time"
            )
        if self.calls:
            unknown = (
                f" ({self.unknown_cost} call{'s' if self.unknown_cost != 1 else ''} at an unknown "
                "price)"
                if self.unknown_cost
                else ""
            )
            # only failed attempts (free) were priced: the spend is unknown, not $0
            priced = self.cost_usd > 0 or not self.unknown_cost
            known = dollars(self.cost_usd) if priced else "unknown"
            lines.append(f"spent: {known}{unknown}")
        if self.quota_stop:
            lines.append(self.quota_stop)
        if self.interrupted:
            lines.append(
                "interrupted: finished rows are saved; run the same command again to resume"
            )
        return lines


def dollars(amount: float) -> str:
    """US dollars for a summary: ``$12.35``, ``$0.0123``, ``$0.00012`` (two significant digits
    below a cent), ``$0``."""
    if amount <= 0:
        return "$0"
    if amount >= 1:
        return f"${amount:,.2f}"
    if amount >= 0.01:
        return f"${amount:.4f}"
    places = 1 - math.floor(math.log10(amount))
    return f"${amount:.{places}f}"


def stops_batch(error: BaseException) -> bool:
    """A rate limit that no wait clears (a daily quota, a spend cap, no credits, a zero limit):
    a batch stops at once, as every further row would fail the same way."""
    return isinstance(error, RateLimitError) and not error.retryable


_STOPPED = {
    SPEND_CAP: "the project's spend cap is reached for {model}; raise it in Google AI Studio, then",
    PREPAY_DEPLETED: "the project's prepaid credits are used up; add credits in Google AI Studio, "
    "then",
}


def quota_stop(error: BaseException, model: str) -> str:
    """The summary's line for a batch stopped by ``error`` (:func:`stops_batch`)."""
    kind = getattr(error, "quota_kind", None)
    if kind in (PER_DAY, TOKENS_PER_DAY):
        quota = "daily quota" if kind == PER_DAY else "daily token quota"
        resets = reset_time(getattr(error, "resets_at", None))
        return (
            f"the {quota} for {model} is spent; it resets at {resets}; rerun the same command then"
        )
    if kind in _STOPPED:
        return f"{_STOPPED[kind].format(model=model)} rerun the same command"
    if kind in WORDS:  # a quota of 0 on this tier
        return (
            f"the {WORDS[kind]} for {model} is 0 on this project; choose another model (--model) "
            "or enable billing, then rerun the same command"
        )
    return (
        f"the quota for {model} is exhausted and waiting will not help; rerun the same command "
        "when it is restored"
    )


def failure_kind(error: BaseException) -> str:
    """Why a call failed, in the words a summary counts: ``HTTP 503``, ``timeout``, ``tweet rules``,
    ``bad input``, and what stopped the retries when it was not the error itself
    (``retry budget (HTTP 503)``)."""
    if isinstance(error, InputError):
        return "bad input"
    if isinstance(error, TweetValidationError):
        return "tweet rules"
    if isinstance(error, CircuitOpenError):
        return "circuit breaker"
    if stops_batch(error):
        kind = getattr(error, "quota_kind", None)
        return f"{_QUOTA_WORDS.get(kind or '', 'quota exhausted')} (HTTP 429)"
    status = getattr(error, "status_code", None)
    if status is not None:
        kind = f"HTTP {status}"
    elif isinstance(error, RequestTimeoutError):
        kind = "timeout"
    elif isinstance(error, NetworkError):
        kind = "network error"
    elif isinstance(error, InvalidResponseError):
        kind = "invalid answer"
    else:
        kind = type(error).__name__
    stopped = getattr(error, "stopped_by", None)
    return (
        f"{stopped} ({kind})"
        if stopped in ("retry budget", "circuit breaker", "deadline")
        else kind
    )


_QUOTA_WORDS = {
    PER_DAY: "daily quota",
    TOKENS_PER_DAY: "daily token quota",
    SPEND_CAP: "spend cap",
    PREPAY_DEPLETED: "no credits",
}
