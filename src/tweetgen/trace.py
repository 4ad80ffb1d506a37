"""What happened during one call, attempt by attempt, and the observers that want to know.

The generator opens a :class:`CallTrace` for each call (``call_scope``); the retry engine appends an
:class:`AttemptTrace` per attempt; observers (the SQLite store, Prometheus metrics, OpenTelemetry
spans) are told when calls and attempts start and end. Nothing here does I/O.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AttemptTrace",
    "CallContext",
    "CallTrace",
    "Observer",
    "call_scope",
    "current_trace",
]


@dataclass
class AttemptTrace:
    """One HTTP attempt: when, how long, and how it ended."""

    number: int
    delay_before: float = 0.0
    started_at: float = field(default_factory=time.time)
    latency_ms: float | None = None
    status_code: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    response_model: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the attempt returned a response the client could parse."""
        return self.error_type is None and self.latency_ms is not None

    def record(self, outcome: object, latency_ms: float) -> None:
        """Fill in how the attempt ended from its result or its exception."""
        self.latency_ms = latency_ms
        self.status_code = getattr(outcome, "status_code", None)
        if isinstance(outcome, BaseException):
            self.error_type = type(outcome).__name__
            self.error_message = (
                getattr(outcome, "message", None) or str(outcome) or self.error_type
            )
            return
        usage = getattr(outcome, "usage", None)
        self.input_tokens = getattr(usage, "input_tokens", 0)
        self.output_tokens = getattr(usage, "output_tokens", 0)
        reasons = getattr(outcome, "finish_reasons", ())
        self.finish_reason = reasons[0] if reasons else None
        self.response_model = getattr(outcome, "model_version", None)


@dataclass(frozen=True)
class CallContext:
    """What a caller attaches to one call for its records: a batch row's idempotency key, batch and
    row.

    Passed explicitly (``TweetGenerator.generate(..., context=...)``) and carried by the call's
    trace to the observers (the store writes it with the call)."""

    idempotency_key: str | None = None
    batch_id: str | None = None
    row_number: int | None = None


@dataclass
class CallTrace:
    """One logical call: its inputs, attempts, regenerations and outcome."""

    request_id: str
    provider: str
    model: str
    inputs: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    clock_start: float = 0.0
    attempts: list[AttemptTrace] = field(default_factory=list)
    regenerations: int = 0
    retries_denied: int = 0
    status: str = "running"
    text: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    observers: Sequence[Observer] = ()
    scratch: dict[str, Any] = field(default_factory=dict)
    context: CallContext = field(default_factory=CallContext)

    @property
    def waited_seconds(self) -> float:
        """Time spent waiting between attempts."""
        return sum(a.delay_before for a in self.attempts)

    def notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every observer. An optional observer's failure is logged and never
        breaks the call; a ``required`` one's (the store of a batch) is raised once every observer
        has been told."""
        failure: Exception | None = None
        for observer in self.observers:
            try:
                getattr(observer, hook)(self, *args)
            except Exception as error:
                if getattr(observer, "required", False):
                    failure = failure or error
                    continue
                from .events import observer_failed

                observer_failed(observer, hook)
        if failure is not None:
            raise failure


class Observer:
    """Base class of call observers; override the hooks you need (all are no-ops here)."""

    def call_started(self, call: CallTrace) -> None:
        """A call began."""

    def attempt_started(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """An attempt is about to be made."""

    def attempt_finished(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """An attempt ended (``attempt.error_type`` is set when it failed)."""

    def call_finished(self, call: CallTrace) -> None:
        """A call ended (``call.status`` is ``ok`` or ``failed``)."""


_current: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "tweetgen_call", default=None
)


def current_trace() -> CallTrace | None:
    """The trace of the call running in this context, if any."""
    return _current.get()


@contextmanager
def call_scope(trace: CallTrace) -> Iterator[CallTrace]:
    """Make ``trace`` current for the retry engine and observers within the block."""
    token = _current.set(trace)
    trace.notify("call_started")
    try:
        yield trace
    finally:
        _current.reset(token)
