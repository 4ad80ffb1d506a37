"""What happened during one call, attempt by attempt, and the observers that want to know.

The generator opens a :class:`CallTrace` for each call (``call_scope``); the retry engine appends an
:class:`AttemptTrace` per attempt; observers (the SQLite store, Prometheus metrics, OpenTelemetry
spans) are told when calls and attempts start and end. Nothing here does I/O.
"""

from __future__ import annotations

import contextvars
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AttemptTrace",
    "CallContext",
    "CallScope",
    "CallTrace",
    "LogField",
    "Observer",
    "call_scope",
    "current_trace",
    "enter_call",
    "leave_call",
    "new_request_id",
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
    thought_tokens: int = 0
    #: the service tier that answered (standard, flex, priority, batch; None: not said)
    service_tier: str | None = None
    #: what the answer cost in US dollars (None: unknown; a failed attempt costs 0)
    cost_usd: float | None = 0.0
    #: the kind of quota a 429 named (:mod:`tweetgen.quotas`), else None
    quota_kind: str | None = None

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
            self.quota_kind = getattr(outcome, "quota_kind", None)
            usage = getattr(outcome, "usage", None)  # an all-thoughts answer was billed
            if usage is not None:
                self.input_tokens = getattr(usage, "input_tokens", 0)
                self.output_tokens = getattr(usage, "output_tokens", 0)
                self.thought_tokens = getattr(usage, "thought_tokens", 0)
                self.cost_usd = getattr(outcome, "cost_usd", None)
            return
        usage = getattr(outcome, "usage", None)
        self.input_tokens = getattr(usage, "input_tokens", 0)
        self.output_tokens = getattr(usage, "output_tokens", 0)
        self.thought_tokens = getattr(usage, "thought_tokens", 0)
        self.service_tier = getattr(outcome, "service_tier", None)
        self.cost_usd = getattr(outcome, "cost_usd", None)
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


def enter_call(trace: CallTrace) -> contextvars.Token[CallTrace | None]:
    """Make ``trace`` current and tell its observers (:func:`call_scope` without a generator)."""
    token = _current.set(trace)
    try:
        trace.notify("call_started")
    except BaseException:
        _current.reset(token)
        raise
    return token


def leave_call(token: contextvars.Token[CallTrace | None]) -> None:
    """Undo :func:`enter_call`."""
    _current.reset(token)


class LogField:
    """One key of structlog's context-local log context, set and reset through its ContextVar:
    what ``bind_contextvars(key=...)`` / ``reset_contextvars(key=...)`` do, without building and
    reading keyword dicts on every call. structlog is imported on the first bind only."""

    __slots__ = ("name", "var")

    def __init__(self, name: str) -> None:
        self.name = name
        self.var: contextvars.ContextVar[Any] | None = None

    def bind(self, value: object) -> contextvars.Token[Any]:
        """Set the key to ``value``; the token undoes it (:meth:`reset`)."""
        var = self.var
        if var is None:
            import structlog.contextvars

            token = structlog.contextvars.bind_contextvars(**{self.name: value})[self.name]
            self.var = token.var
            return token
        return var.set(value)

    def reset(self, token: contextvars.Token[Any]) -> None:
        """Put back the value the key had before :meth:`bind` (absent: structlog's ``...``)."""
        try:
            token.var.reset(token)
        except ValueError:  # set in another context: put the old value back by hand
            old = token.old_value
            token.var.set(Ellipsis if old is contextvars.Token.MISSING else old)


#: request ids: 64 random bits from a generator of our own (seeded from os.urandom, again in a
#: forked child), so a caller's ``random.seed`` never repeats them; no system call per id, unlike
#: ``uuid.uuid4()``
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def new_request_id() -> str:
    """A call's request id: 16 lowercase hex digits."""
    return f"{_ids.getrandbits(64):016x}"


_REQUEST_ID, _PROVIDER, _MODEL = LogField("request_id"), LogField("provider"), LogField("model")


class CallScope:
    """One call's scope (``with``): its log context (request id, provider, model) bound and its
    trace current; how it ended recorded, and the observers told it started and finished."""

    __slots__ = ("_clock", "_current", "_tokens", "trace")

    def __init__(self, trace: CallTrace, clock: Callable[[], float]) -> None:
        self.trace = trace
        self._clock = clock

    def __enter__(self) -> CallTrace:
        trace = self.trace
        trace.clock_start = self._clock()
        self._tokens = (
            _REQUEST_ID.bind(trace.request_id),
            _PROVIDER.bind(trace.provider),
            _MODEL.bind(trace.model),
        )
        try:
            self._current = enter_call(trace)
        except BaseException:
            self._unbind()
            raise
        return trace

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        trace = self.trace
        try:
            if error is not None:
                from .redaction import redact_text

                trace.status = "failed"
                trace.error_type = type(error).__name__
                trace.error_message = redact_text(str(error))
            trace.latency_ms = round((self._clock() - trace.clock_start) * 1000, 2)
            trace.notify("call_finished")
        finally:
            leave_call(self._current)
            self._unbind()

    def _unbind(self) -> None:
        request_id, provider, model = self._tokens
        _MODEL.reset(model)
        _PROVIDER.reset(provider)
        _REQUEST_ID.reset(request_id)


@contextmanager
def call_scope(trace: CallTrace) -> Iterator[CallTrace]:
    """Make ``trace`` current for the retry engine and observers within the block."""
    token = _current.set(trace)
    trace.notify("call_started")
    try:
        yield trace
    finally:
        _current.reset(token)
