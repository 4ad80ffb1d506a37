"""What one batch run did: counts, reasons, latencies, and the words a summary counts failures
in."""

from __future__ import annotations

import collections
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    CircuitOpenError,
    InputError,
    InvalidResponseError,
    NetworkError,
    RequestTimeoutError,
    TweetValidationError,
)
from .stats import percentile
from .store import StoreError

__all__ = ["BatchSummary", "failure_kind"]


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

    _COUNTS = (
        "total", "ok", "failed", "skipped", "abandoned", "unsaved", "still_failed", "retries",
        "takeovers",
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
        if self.interrupted:
            lines.append(
                "interrupted: finished rows are saved; run the same command again to resume"
            )
        return lines


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
