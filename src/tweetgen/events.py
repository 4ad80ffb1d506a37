"""The log schema: every event tweetgen logs, its level and its fields, and one emitter per event.

Nothing else in the package calls the logger (:mod:`tweetgen.logs` configures it). The names,
levels and fields of the seed's events are its contract (``docs/seed-readme.md``); the others follow
the same style. Every event of a call also carries the context bound around it (:data:`CONTEXT`).

Each emitter checks once whether its level is on before it builds anything, so an event that is off
costs one cached level check; previews go through :func:`tweetgen.logs.preview`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .logs import LOGGER_NAME, emit_direct, get_logger, preview, redact_text

if TYPE_CHECKING:
    from .providers.base import GenerationResult
    from .tweets import TweetCheck

__all__ = ["CONTEXT", "SCHEMA", "Event"]

_stdlib = logging.getLogger(LOGGER_NAME)
_log = get_logger()
INFO, WARNING, ERROR = logging.INFO, logging.WARNING, logging.ERROR


@dataclass(frozen=True)
class Event:
    """One event of the schema: its name (the ``event`` field), its level and its own fields."""

    name: str
    level: int
    fields: tuple[str, ...]

    @property
    def level_name(self) -> str:
        """The ``level`` field's value: ``info``, ``warning`` or ``error``."""
        return logging.getLevelName(self.level).lower()


#: fields bound around a call (request id, provider, model, the attempt) or added by the chain
#: (trace and span ids under OpenTelemetry, ``exception`` for an event logged with its traceback)
CONTEXT = frozenset(
    {"event", "level", "timestamp", "request_id", "provider", "model", "attempt"}
    | {"trace_id", "span_id", "exception"}
)

# --- one attempt (the providers) ------------------------------------------------------------------
REQUEST_STARTED = Event(
    "Making API request", INFO, ("url_endpoint", "prompt_length", "prompt_preview")
)
REQUEST_SUCCEEDED = Event(
    "API request successful",
    INFO,
    (
        *("status_code", "latency_ms", "response_length", "response_preview"),
        *("input_tokens", "output_tokens", "thought_tokens", "finish_reason"),
        *("service_tier", "cost_usd"),
    ),
)
# --- the retry engine -----------------------------------------------------------------------------
REQUEST_FAILED = Event(
    "API request failed",
    ERROR,
    ("status_code", "latency_ms", "error_message", "error_type", "retry_attempted"),
)
RETRY_ATTEMPT = Event(
    "Retry attempt", WARNING, ("attempt", "max_attempts", "delay_seconds", "exception")
)
RETRY_SUCCEEDED = Event("Retry succeeded", INFO, ("final_attempt",))
RETRIES_EXHAUSTED = Event("Retries exhausted", ERROR, ("attempts", "exception", "reason"))
RETRY_DENIED = Event("Retry denied", WARNING, ("reason", "budget"))
# --- the generator --------------------------------------------------------------------------------
_BREAKER_FIELDS = ("breaker", "previous_state")
CIRCUIT_OPENED = Event("Circuit opened", WARNING, _BREAKER_FIELDS)
CIRCUIT_HALF_OPEN = Event("Circuit half-open", INFO, _BREAKER_FIELDS)
CIRCUIT_CLOSED = Event("Circuit closed", INFO, _BREAKER_FIELDS)
PROVIDER_FALLBACK = Event(
    "Provider fallback", WARNING, ("from_provider", "to_provider", "error_type", "exception")
)
THOUGHTS_EXHAUSTED = Event(
    "Thinking spent the answer",
    WARNING,
    ("thought_tokens", "thinking", "next_thinking", "max_output_tokens", "recovery"),
)
FLEX_SHED = Event("Flex request shed", WARNING, ("status_code", "error_type", "exception"))
TWEET_REJECTED = Event(
    "Tweet rejected",
    WARNING,
    ("reasons", "regeneration", "max_regenerations", "words", "weighted_length", "text_preview"),
)
# --- the batch, its input, and the command line ---------------------------------------------------
ROW_UNPREPARED = Event("Row cannot be prepared", ERROR, ("row", "error_type"))
ROW_FAILED = Event("Row failed unexpectedly", ERROR, ("row", "error_type"))
ROW_UNREADABLE = Event("Input row unreadable", ERROR, ("row", "error_type"))
BATCH_STOPPED = Event("Batch stopped", ERROR, ("reason", "exception"))
BATCH_STOPPING = Event("Batch stopping", WARNING, ("in_flight", "reason"))
BATCH_ABANDONING = Event("Batch abandoning calls", WARNING, ("in_flight",))
UNEXPECTED_ERROR = Event("Unexpected error", ERROR, ("error_type",))

#: every event, by name
SCHEMA: Mapping[str, Event] = {
    e.name: e
    for e in (
        REQUEST_STARTED,
        REQUEST_SUCCEEDED,
        REQUEST_FAILED,
        RETRY_ATTEMPT,
        RETRY_SUCCEEDED,
        RETRIES_EXHAUSTED,
        RETRY_DENIED,
        CIRCUIT_OPENED,
        CIRCUIT_HALF_OPEN,
        CIRCUIT_CLOSED,
        PROVIDER_FALLBACK,
        THOUGHTS_EXHAUSTED,
        FLEX_SHED,
        TWEET_REJECTED,
        ROW_UNPREPARED,
        ROW_FAILED,
        ROW_UNREADABLE,
        BATCH_STOPPED,
        BATCH_STOPPING,
        BATCH_ABANDONING,
        UNEXPECTED_ERROR,
    )
}
_CIRCUIT = {"open": CIRCUIT_OPENED, "half_open": CIRCUIT_HALF_OPEN, "closed": CIRCUIT_CLOSED}
_METHODS = {INFO: "info", WARNING: "warning", ERROR: "error"}


def _on(event: Event) -> bool:
    return _stdlib.isEnabledFor(event.level)


def _emit(event: Event, **fields: Any) -> None:
    if not emit_direct(event.name, event.level, fields):
        getattr(_log, _METHODS[event.level])(event.name, **fields)


# --- one attempt ----------------------------------------------------------------------------------


def request_started(model: str, prompt: str) -> None:
    """``Making API request``: an attempt starts (the endpoint is the model)."""
    if _on(REQUEST_STARTED):
        _emit(
            REQUEST_STARTED,
            url_endpoint=model,
            prompt_length=len(prompt),
            prompt_preview=preview(prompt),
        )


def request_succeeded(status_code: int, latency_ms: float, result: GenerationResult) -> None:
    """``API request successful``: the attempt's answer was parsed."""
    if _on(REQUEST_SUCCEEDED):
        usage, reasons = result.usage, result.finish_reasons
        _emit(
            REQUEST_SUCCEEDED,
            status_code=status_code,
            latency_ms=latency_ms,
            response_length=len(result.text),
            response_preview=preview(result.text),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            thought_tokens=usage.thought_tokens,
            finish_reason=reasons[0] if reasons else None,
            service_tier=result.service_tier,
            cost_usd=result.cost_usd,
        )


# --- the retry engine -----------------------------------------------------------------------------


def request_failed(error: BaseException, latency_ms: float, *, retry_attempted: bool) -> None:
    """``API request failed``: an attempt failed (``status_code`` is null for network errors)."""
    if _on(REQUEST_FAILED):
        _emit(
            REQUEST_FAILED,
            status_code=getattr(error, "status_code", None),
            latency_ms=latency_ms,
            error_message=getattr(error, "message", None) or str(error) or type(error).__name__,
            error_type=type(error).__name__,
            retry_attempted=retry_attempted,
        )


def retry_attempt(attempt: int, max_attempts: int, delay: float, exception: str) -> None:
    """``Retry attempt``: ``attempt`` failed and the next one starts after ``delay`` seconds."""
    if _on(RETRY_ATTEMPT):
        _emit(
            RETRY_ATTEMPT,
            attempt=attempt,
            max_attempts=max_attempts,
            delay_seconds=round(delay, 3),
            exception=exception,
        )


def retry_succeeded(final_attempt: int) -> None:
    """``Retry succeeded``: an attempt after the first one succeeded."""
    if _on(RETRY_SUCCEEDED):
        _emit(RETRY_SUCCEEDED, final_attempt=final_attempt)


def retries_exhausted(attempts: int, exception: str, reason: str) -> None:
    """``Retries exhausted``: a retryable call stopped (attempts, a hint, the deadline, a veto)."""
    if _on(RETRIES_EXHAUSTED):
        _emit(RETRIES_EXHAUSTED, attempts=attempts, exception=exception, reason=reason)


def retry_denied(budget: Mapping[str, Any]) -> None:
    """``Retry denied``: the retry budget refused a retry (``budget``: its figures)."""
    if _on(RETRY_DENIED):
        _emit(RETRY_DENIED, reason="retry budget exhausted", budget=dict(budget))


# --- the generator --------------------------------------------------------------------------------


def circuit_changed(name: str, old: str, new: str) -> None:
    """``Circuit opened`` (a warning), ``Circuit half-open`` or ``Circuit closed``."""
    event = _CIRCUIT[new]
    if _on(event):
        _emit(event, breaker=name, previous_state=old)


def provider_fallback(from_provider: str, to_provider: str, error: BaseException) -> None:
    """``Provider fallback``: the chain moves on to the next provider after ``error``."""
    if _on(PROVIDER_FALLBACK):
        _emit(
            PROVIDER_FALLBACK,
            from_provider=from_provider,
            to_provider=to_provider,
            error_type=type(error).__name__,
            exception=redact_text(str(error)),
        )


def thoughts_exhausted(
    thought_tokens: int, thinking: str, next_thinking: str, max_output_tokens: int, recovery: int
) -> None:
    """``Thinking spent the answer``: the model wrote no text, its output tokens all spent on
    thoughts; asked again with ``next_thinking`` and ``max_output_tokens`` (recovery N, from 0)."""
    if _on(THOUGHTS_EXHAUSTED):
        _emit(
            THOUGHTS_EXHAUSTED,
            thought_tokens=thought_tokens,
            thinking=thinking,
            next_thinking=next_thinking,
            max_output_tokens=max_output_tokens,
            recovery=recovery,
        )


def flex_shed(error: BaseException) -> None:
    """``Flex request shed``: the flex tier refused the call; it is asked again at standard."""
    if _on(FLEX_SHED):
        _emit(
            FLEX_SHED,
            status_code=getattr(error, "status_code", None),
            error_type=type(error).__name__,
            exception=redact_text(str(error)),
        )


def tweet_rejected(
    reasons: Sequence[str], regeneration: int, max_regenerations: int, check: TweetCheck | None
) -> None:
    """``Tweet rejected``: a candidate broke the rules (its best text, previewed, goes along)."""
    if _on(TWEET_REJECTED):
        _emit(
            TWEET_REJECTED,
            reasons=list(reasons),
            regeneration=regeneration,
            max_regenerations=max_regenerations,
            words=check.words if check else None,
            weighted_length=check.weighted_length if check else None,
            text_preview=preview(check.text) if check else None,
        )


# --- the batch, its input and the command line (called inside the ``except`` they report) --------


def row_unprepared(row: int, error: BaseException) -> None:
    """``Row cannot be prepared``, with the traceback: a bug fails the row, not the batch."""
    _emit(ROW_UNPREPARED, row=row, error_type=type(error).__name__, exc_info=True)


def row_failed(row: int, error: BaseException) -> None:
    """``Row failed unexpectedly``, with the traceback: a bug fails the row, not the batch."""
    _emit(ROW_FAILED, row=row, error_type=type(error).__name__, exc_info=True)


def row_unreadable(row: int, error: BaseException) -> None:
    """``Input row unreadable``, with the traceback: the input reader met something unforeseen."""
    _emit(ROW_UNREADABLE, row=row, error_type=type(error).__name__, exc_info=True)


def batch_stopped(reason: str, exception: str) -> None:
    """``Batch stopped``: the batch cannot go on (e.g. the store cannot write)."""
    _emit(BATCH_STOPPED, reason=reason, exception=exception)


def batch_stopping(in_flight: int, reason: str) -> None:
    """``Batch stopping``: a first signal; calls in flight may finish."""
    _emit(BATCH_STOPPING, in_flight=in_flight, reason=reason)


def batch_abandoning(in_flight: int) -> None:
    """``Batch abandoning calls``: a second signal; calls in flight are cancelled."""
    _emit(BATCH_ABANDONING, in_flight=in_flight)


def unexpected_error(error: BaseException) -> None:
    """``Unexpected error``, with the traceback: the command line met a bug."""
    _emit(UNEXPECTED_ERROR, error_type=type(error).__name__, exc_info=True)


def observer_failed(observer: object, hook: str) -> None:
    """A plain stdlib record with the traceback (not a structured event): an observer raised."""
    _stdlib.exception("observer %r failed in %s", observer, hook)


# --- fleet-wide limits (tweetgen.shared) ----------------------------------------------------------
SHARED_UNAVAILABLE = Event(
    "Shared state unavailable", WARNING, ("shared", "reason", "retry_in", "fallback")
)
SHARED_RESTORED = Event("Shared state restored", INFO, ("shared", "down_seconds"))
SCHEMA = {
    **SCHEMA,
    SHARED_UNAVAILABLE.name: SHARED_UNAVAILABLE,
    SHARED_RESTORED.name: SHARED_RESTORED,
}


def shared_unavailable(shared: str, reason: str, retry_in: float) -> None:
    """``Shared state unavailable``: once per outage of the shared backend (its URL without a
    password); calls go on with this process's own limits until it is back."""
    _emit(
        SHARED_UNAVAILABLE,
        shared=shared,
        reason=redact_text(reason),
        retry_in=round(retry_in, 2),
        fallback="local limits",
    )


def shared_restored(shared: str, down_seconds: float) -> None:
    """``Shared state restored``: the shared backend answers again; the fleet's limits apply."""
    _emit(SHARED_RESTORED, shared=shared, down_seconds=round(down_seconds, 2))


# --- one batch, many workers (tweetgen.batchfleet, tweetgen.batchworkers) ------------------------
BATCH_ROWS_TAKEN_OVER = Event("Batch rows taken over", WARNING, ("batch_id", "rows", "worker"))
BATCH_WORKER_ENDED = Event("Batch worker ended", WARNING, ("worker", "pid", "exit_code"))
SCHEMA = {
    **SCHEMA,
    BATCH_ROWS_TAKEN_OVER.name: BATCH_ROWS_TAKEN_OVER,
    BATCH_WORKER_ENDED.name: BATCH_WORKER_ENDED,
}


def batch_rows_taken_over(batch_id: str, rows: int, worker: str) -> None:
    """``Batch rows taken over``: this worker claimed rows whose lease had expired (their worker
    was killed or stalled); a row already stored by it is only marked done."""
    _emit(BATCH_ROWS_TAKEN_OVER, batch_id=batch_id, rows=rows, worker=worker)


def batch_worker_ended(worker: str, pid: int, exit_code: int) -> None:
    """``Batch worker ended``: a local worker process ended before its batch did, or failed; its
    leases end at once and its rows are taken over."""
    _emit(BATCH_WORKER_ENDED, worker=worker, pid=pid, exit_code=exit_code)
