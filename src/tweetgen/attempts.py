"""One retried call, attempt by attempt: decisions as values, and what hangs off them.

:class:`RetriedCall` turns each failed attempt into a :class:`~tweetgen.backoff.Decision` (the pure
:func:`~tweetgen.backoff.decide`, then the vetoes of its guards) and hands it on:

- **guards** (the circuit breaker, the retry budget) admit each attempt, are told every outcome, and
  may turn a retry into a stop;
- **listeners** are fed each step and its decision: the call trace (:class:`TraceRecorder`) and the
  log events (:class:`EventLog`);
- the error that ends the call is stamped (``attempts``, ``stopped_by``, ``retry_after``, what
  stopped it) in one place, :func:`stamp`.

The four loops of :mod:`tweetgen.retry` (our own and tenacity's, sync and async) drive one
:class:`RetriedCall` each, so they share one behaviour and one set of events.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from . import events
from .backoff import (
    SAID_STOPS,
    SERVER_SIDE,
    Decision,
    RetryPolicy,
    budget_stop,
    circuit_stop,
    decide,
    describe_error,
    is_retryable,
)
from .deadlines import Token, reset_call_deadline, set_call_deadline
from .errors import CircuitOpenError, RateLimitError, TweetGenError
from .trace import AttemptTrace, CallTrace, LogField, current_trace

if TYPE_CHECKING:
    from .resilience import CircuitBreaker, RetryBudget

__all__ = ["Failure", "Guard", "Listener", "RetriedCall", "stamp"]

T = TypeVar("T")

#: the ``attempt`` key of the log context, bound while an attempt runs
_ATTEMPT = LogField("attempt")


@dataclass(frozen=True)
class Failure:
    """A failed attempt (``attempt``, its ``error`` and latency) and the decision taken about it."""

    attempt: int
    error: BaseException
    latency_ms: float
    decision: Decision


# --- guards: vetoes on retries --------------------------------------------------------------------


class Guard:
    """Admits each attempt, is told every outcome, and may veto a retry; all no-ops here."""

    __slots__ = ()

    def admit(self, attempt: int) -> Decision | None:
        """Before ``attempt``: ``None`` to go on, or the decision that stops the call."""
        return None

    def settle(self, error: BaseException | None) -> None:
        """The attempt ended: with ``error``, or successfully (``None``)."""

    def veto(self) -> Decision | None:
        """A retry was decided: ``None`` to allow it, or the decision that stops the call."""
        return None

    def release(self) -> None:
        """The attempt was interrupted (cancelled, Ctrl-C): count nothing."""


class BreakerGuard(Guard):
    """The circuit breaker: a permit per attempt, server failures counted, no retry while open."""

    __slots__ = ("breaker",)

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker

    def admit(self, attempt: int) -> Decision | None:
        try:
            self.breaker.acquire()
        except CircuitOpenError as error:
            if attempt == 1:  # nothing was tried yet: the call fails fast with this error
                raise
            return circuit_stop(self.breaker.name, error.retry_after or 0.0, opened=True)
        return None

    def settle(self, error: BaseException | None) -> None:
        if error is None:
            self.breaker.record_success()
        elif is_retryable(error, SERVER_SIDE):
            self.breaker.record_failure()
        else:
            self.breaker.record_ignored()

    def veto(self) -> Decision | None:
        if self.breaker.allows():
            return None
        return circuit_stop(self.breaker.name, self.breaker.retry_after())

    def release(self) -> None:
        self.breaker.record_ignored()


class BudgetGuard(Guard):
    """The retry budget: retries are limited to a share of requests."""

    __slots__ = ("budget",)

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget

    def admit(self, attempt: int) -> Decision | None:
        if attempt == 1:
            self.budget.record_request()
        return None

    def settle(self, error: BaseException | None) -> None:
        refused = error is not None and (
            is_retryable(error, SERVER_SIDE) or isinstance(error, RateLimitError)
        )
        self.budget.record_attempt(accepted=not refused)

    def veto(self) -> Decision | None:
        return None if self.budget.try_spend() else budget_stop()


# --- listeners: fed each step and its decision ----------------------------------------------------


class Listener:
    """Fed each step of a retried call; all no-ops here."""

    __slots__ = ()

    def started(self, attempt: int, delay_before: float) -> None:
        """An attempt starts, ``delay_before`` seconds after the previous one failed."""

    def failed(self, failure: Failure) -> None:
        """An attempt failed; ``failure.decision`` says whether the call goes on."""

    def stopped(self, failure: Failure) -> None:
        """The call stops with ``failure`` (after :meth:`failed`, or when a guard ends the wait)."""

    def succeeded(self, attempt: int, result: object, latency_ms: float) -> None:
        """``attempt`` succeeded with ``result``."""


class TraceRecorder(Listener):
    """Records each attempt on the call's trace and tells its observers."""

    __slots__ = ("_attempt", "trace")

    def __init__(self, trace: CallTrace) -> None:
        self.trace = trace
        self._attempt: AttemptTrace | None = None

    def started(self, attempt: int, delay_before: float) -> None:
        self._attempt = AttemptTrace(number=attempt, delay_before=delay_before)
        self.trace.attempts.append(self._attempt)
        self.trace.notify("attempt_started", self._attempt)

    def failed(self, failure: Failure) -> None:
        if failure.decision.stopped_by == "retry budget":
            self.trace.retries_denied += 1
        self._finish(failure.error, failure.latency_ms)

    def succeeded(self, attempt: int, result: object, latency_ms: float) -> None:
        self._finish(result, latency_ms)

    def _finish(self, outcome: object, latency_ms: float) -> None:
        if self._attempt is not None:
            self._attempt.record(outcome, latency_ms)
            self.trace.notify("attempt_finished", self._attempt)
            self._attempt = None


class EventLog(Listener):
    """The retry engine's log events (:mod:`tweetgen.events`), from the decisions."""

    __slots__ = ("budget", "max_attempts")

    def __init__(self, max_attempts: int, budget: RetryBudget | None) -> None:
        self.max_attempts = max_attempts
        self.budget = budget

    def failed(self, failure: Failure) -> None:
        decision, error = failure.decision, failure.error
        if decision.stopped_by == "retry budget" and self.budget is not None:
            events.retry_denied(vars(self.budget.snapshot()))
        events.request_failed(error, failure.latency_ms, retry_attempted=decision.retry)
        if decision.retry:
            events.retry_attempt(
                failure.attempt, self.max_attempts, decision.delay, describe_error(error)
            )

    def stopped(self, failure: Failure) -> None:
        if failure.decision.gave_up:
            exception = describe_error(failure.error)
            events.retries_exhausted(failure.attempt, exception, failure.decision.reason)

    def succeeded(self, attempt: int, result: object, latency_ms: float) -> None:
        if attempt > 1:
            events.retry_succeeded(attempt)


# --- the error that ends the call -----------------------------------------------------------------


def stamp(failure: Failure) -> None:
    """Write on the error that ends the call what the caller reads: ``attempts``, and for a
    retryable one ``stopped_by``, the wait it should honour (``retry_after``) and, when the error
    itself would not tell (the deadline, the budget, the breaker), what stopped it."""
    error, decision = failure.error, failure.decision
    with contextlib.suppress(AttributeError):  # an exception type that refuses attributes
        error.attempts = failure.attempt  # type: ignore[attr-defined]
    if not decision.gave_up:
        return
    if isinstance(error, TweetGenError):
        # a deadline's delay is our own wait or a hint that would not fit: no wait to honour
        if error.retry_after is None and decision.delay and not decision.deadline:
            error.retry_after = decision.delay
        error.stopped_by = decision.stopped_by
    if decision.stopped_by in SAID_STOPS:
        _say_stopped(error, decision.reason)


def _say_stopped(error: BaseException, reason: str) -> None:
    """Add to the error's message what stopped the retries, once."""
    note = f" (stopped: {reason})"
    if isinstance(error, TweetGenError):
        if not error.message.endswith(note):
            error.add_to_message(note)
    elif hasattr(error, "add_note"):  # Python 3.11+: any other exception gets a note
        error.add_note(note.strip(" ()"))


# --- the call -------------------------------------------------------------------------------------


class RetriedCall:
    """The state of one retried call; each loop calls :meth:`begin`, then one of :meth:`failed`,
    :meth:`succeeded` or :meth:`abandon`, per attempt."""

    __slots__ = (
        *("policy", "clock", "rng", "guards", "listeners", "start", "attempt_start"),
        *("previous_delay", "last", "_token", "_deadline"),
    )

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random | None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.guards: list[Guard] = []
        if breaker is not None:
            self.guards.append(BreakerGuard(breaker))
        if budget is not None:
            self.guards.append(BudgetGuard(budget))
        trace = current_trace()
        self.listeners: list[Listener] = [] if trace is None else [TraceRecorder(trace)]
        self.listeners.append(EventLog(policy.max_attempts, budget))
        self.start = self.attempt_start = clock()
        self.previous_delay: float | None = None
        self.last: Failure | None = None
        self._token: contextvars.Token[Any] | None = None
        self._deadline: Token[float | None] | None = None

    def begin(self, attempt: int) -> None:
        """Admit ``attempt``, or raise the last error when a guard stops the call in the wait."""
        for guard in self.guards:
            stop = guard.admit(attempt)
            if stop is not None and self.last is not None:
                self._stop(replace(self.last, decision=stop))
                raise self.last.error from None
        self.attempt_start = self.clock()
        self._token = _ATTEMPT.bind(attempt)
        if self.policy.deadline is not None:
            elapsed = self.attempt_start - self.start
            self._deadline = set_call_deadline(max(0.0, self.policy.deadline - elapsed))
        delay = self.previous_delay if attempt > 1 and self.previous_delay is not None else 0.0
        for listener in self.listeners:
            listener.started(attempt, delay)

    def failed(self, error: BaseException, attempt: int) -> Decision:
        """Decide about ``error``, feed the decision to the guards and listeners, and return it."""
        now = self.clock()
        decision = decide(
            self.policy,
            error,
            attempt=attempt,
            elapsed=now - self.start,
            previous_delay=self.previous_delay,
            rng=self.rng,
        )
        for guard in self.guards:
            guard.settle(error)
        if decision.retry:
            vetoes = (guard.veto() for guard in self.guards)
            decision = next((stop for stop in vetoes if stop is not None), decision)
        latency = getattr(error, "latency_ms", None)
        if latency is None:
            latency = round((now - self.attempt_start) * 1000, 2)
        self.last = failure = Failure(attempt, error, latency, decision)
        for listener in self.listeners:
            listener.failed(failure)
        if decision.retry:
            self.previous_delay = decision.delay
        else:
            self._stop(failure)
        self._end()
        return decision

    def succeeded(self, result: T, attempt: int) -> T:
        """``attempt`` returned ``result``: tell the guards and listeners, and hand it back."""
        for guard in self.guards:
            guard.settle(None)
        latency = getattr(result, "latency_ms", None)
        if latency is None:
            latency = round((self.clock() - self.attempt_start) * 1000, 2)
        self._end()
        for listener in self.listeners:
            listener.succeeded(attempt, result, latency)
        return result

    def abandon(self) -> None:
        """The attempt was interrupted (cancelled, Ctrl-C): release the breaker's permit."""
        for guard in self.guards:
            guard.release()
        self._end()

    def _stop(self, failure: Failure) -> None:
        for listener in self.listeners:
            listener.stopped(failure)
        stamp(failure)

    def _end(self) -> None:
        if self._token is not None:
            _ATTEMPT.reset(self._token)
            self._token = None
        if self._deadline is not None:
            reset_call_deadline(self._deadline)
            self._deadline = None
