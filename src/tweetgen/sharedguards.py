"""The circuit breaker and the retry budget of a fleet (:mod:`tweetgen.shared`).

**Breaker.** One row per provider/model holds the fleet's state (``closed``, ``open``,
``half_open``), its streak of consecutive failures and its trial permits; one PL/pgSQL step
(:data:`tweetgen.sharedpg.BREAKER`) applies each event under the row's lock, so a transition happens
once: only the process whose step made it reports it (logs ``Circuit opened``, tells Prometheus).

- The fleet opens on ``consecutive_failures`` failures in a row *fleet-wide* (a failure adds one, a
  success resets it), or when one process's own failure-rate window trips (Resilience4j's rule, on
  the outcomes it saw: the :class:`SharedBreaker` itself is that local breaker, silent while the
  fleet is reachable).
- While open, every process fails fast: admission reads a view of the row at most :data:`VIEW_TTL`
  (0.2 s) old: refreshed in the background once half that old, so a busy process's admissions
  never wait for a round trip; a process idle for longer reads it first (one round trip).
  What the cache costs: a process learns that the fleet opened on its next failure report (a round
  trip later) or within 0.2 s, so in an outage each process sends at most the attempts it starts in
  that time beyond the streak (in practice its calls in flight).
- Half-open is fleet-wide: ``half_open_calls`` trial permits in all (each taken in one round trip,
  by the process that admits the trial); all must succeed to close, any failure re-opens. A round
  of trials still unfinished after ``open_seconds`` (a process killed holding a permit) starts
  again with fresh permits.
- Outcomes are reported without waiting (the private loop's thread applies them). A success is
  reported only while the streak last seen (from this process's own reports, or the view) is not
  zero, one report in flight at a time: a healthy fleet writes nothing per call. A success may so
  go unreported for up to one view refresh after another process's failure; the streak can count
  that process's failures across it (the failing process itself always sees its own streak).

**Budget.** Ten buckets per window in a table; one step, under an advisory lock, adds this process's
pending requests, attempts and accepts and decides a retry with
:class:`~tweetgen.budget.RetryBudget`'s rule on the fleet's totals. A retry waits for that round
trip (bounded); requests and attempts are flushed in the background at most every
:data:`FLUSH_EVERY`.

Whenever the fleet is unavailable, both are exactly today's local objects (they are subclasses that
keep counting locally), with today's logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from .budget import BudgetSnapshot, RetryBudget
from .errors import CircuitOpenError
from .resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerRegistry,
    BreakerSettings,
    BreakerSnapshot,
    CircuitBreaker,
    StateCallback,
)
from .shared import Fleet, SharedUnavailableError
from .sharedpg import BREAKER as _BREAKER_SQL
from .sharedpg import BUDGET as _BUDGET_SQL
from .sharedpg import ROUND_TRIP_BOUND

__all__ = [
    "FLUSH_EVERY",
    "VIEW_TTL",
    "SharedBreaker",
    "SharedBreakerRegistry",
    "SharedBudget",
]

#: the oldest view of the fleet's breaker a process admits a call on (seconds)
VIEW_TTL = 0.2
#: how often a process adds its pending budget counts to the fleet's (seconds)
FLUSH_EVERY = 0.25


class SharedBreaker(CircuitBreaker):
    """A breaker whose state is the fleet's; the inherited local breaker detects failure rates and
    takes over whenever the fleet is unreachable."""

    def __init__(
        self, *, fleet: Fleet, name: str, on_change: StateCallback | None, **settings: Any
    ) -> None:
        super().__init__(name=name, on_state_change=self._local_changed, **settings)
        self.fleet = fleet
        self._on_change = on_change
        self._view_lock = threading.Lock()
        self._state_seen = CLOSED
        self._streak_seen = 0  # the fleet's failure streak as last seen
        self._open_until = 0.0  # on this process's monotonic clock
        self._seen_at = float("-inf")
        self._asked_at = float("-inf")  # when the view was last asked for
        self._held = 0  # fleet trial permits this process holds
        self._reporting_since = float("-inf")  # when the success report in flight was sent
        self._success_pending = False

    # --- the fleet's view ---------------------------------------------------------------------

    def _step(self, event: str, trial: bool = False) -> Any:
        s = self.settings
        params = (
            self.name,
            event,
            trial,
            s.consecutive_failures,
            s.open_seconds,
            s.half_open_calls,
        )
        return self.fleet.fetch(_BREAKER_SQL, params)

    def _apply(self, row: Any) -> None:
        """A step's answer: remember the state; report a transition this step made."""
        old, new, left, streak, _permit = row
        with self._view_lock:
            self._state_seen = new
            self._streak_seen = int(streak)
            self._open_until = time.monotonic() + float(left)
            self._seen_at = time.monotonic()
        if old != new and self._on_change is not None:
            self._on_change(self.name, old, new)

    def _view(self) -> str:
        """The fleet's state as last seen; a stale view is refreshed in the background."""
        now = time.monotonic()
        if now - self._seen_at > VIEW_TTL:  # idle for a while: ask, and wait (bounded)
            with contextlib.suppress(SharedUnavailableError):
                self._apply(self.fleet.call(self._step("read")))
            return self._state_seen
        if now - self._seen_at > VIEW_TTL / 2 and now - self._asked_at > VIEW_TTL / 2:
            self._asked_at = now  # one read per VIEW_TTL at most, answered or not
            self.fleet.send(self._step("read"), self._apply)
        return self._state_seen

    def _left(self) -> float:
        return max(0.0, self._open_until - time.monotonic())

    # --- the breaker's interface --------------------------------------------------------------

    @property
    def state(self) -> str:
        if not self.fleet.available():
            return super().state
        state = self._view()
        return HALF_OPEN if state == OPEN and self._left() <= 0 else state

    def acquire(self) -> None:
        if not self.fleet.available():
            return super().acquire()
        state = self._view()
        if state == CLOSED:
            return None
        if state == OPEN and self._left() > 0:
            wait = self._left()
            message = f"circuit breaker {self.name!r} is open; it will try again in {wait:.1f}s"
            raise CircuitOpenError(message, retry_after=wait)
        try:  # open and due, or half-open: a trial permit is one round trip
            row = self.fleet.call(self._step("acquire"))
        except SharedUnavailableError:
            return super().acquire()
        self._apply(row)
        if not row[4]:
            raise self._rejection(time.monotonic())
        if row[1] == HALF_OPEN:
            with self._view_lock:
                self._held += 1
        return None

    def _rejection(self, now: float) -> CircuitOpenError:
        if self.fleet.available() and self._state_seen == OPEN:
            wait = self._left()
            message = f"circuit breaker {self.name!r} is open; it will try again in {wait:.1f}s"
            return CircuitOpenError(message, retry_after=wait)
        if self.fleet.available():
            calls = self.settings.half_open_calls
            message = (
                f"circuit breaker {self.name!r} is half-open with all {calls} trial calls of the "
                "fleet in flight; it will try again in 0s if they succeed, or in "
                f"{self.settings.open_seconds:.1f}s if one fails"
            )
            return CircuitOpenError(message, retry_after=0.0)
        return super()._rejection(now)

    def allows(self) -> bool:
        if not self.fleet.available():
            return super().allows()
        return not (self._view() == OPEN and self._left() > 0)

    def retry_after(self) -> float:
        if not self.fleet.available():
            return super().retry_after()
        return self._left() if self._view() == OPEN else 0.0

    def _trial(self) -> bool:
        with self._view_lock:
            if self._held:
                self._held -= 1
                return True
            return False

    def record_success(self) -> None:
        super().record_success()
        trial = self._trial()  # a permit is given back whatever happens to the report
        if not self.fleet.available():
            return
        if trial:
            self.fleet.send(self._step("success", True), self._apply)
        elif self._state_seen == CLOSED and self._streak_seen:
            self._report_success()

    def _report_success(self) -> None:
        """Reset the fleet's streak; one report in flight, one more if successes came meanwhile."""
        with self._view_lock:
            now = time.monotonic()
            if now - self._reporting_since < ROUND_TRIP_BOUND:  # one in flight (unless lost)
                self._success_pending = True
                return
            self._reporting_since = now

        def done(row: Any) -> None:
            self._apply(row)
            with self._view_lock:
                self._reporting_since, again = float("-inf"), self._success_pending
                self._success_pending = False
            if again:
                self._report_success()

        self.fleet.send(self._step("success"), done)

    def record_failure(self) -> None:
        super().record_failure()
        trial = self._trial()
        if self.fleet.available():
            self.fleet.send(self._step("failure", trial), self._apply)

    def record_ignored(self) -> None:
        super().record_ignored()
        if self._trial() and self.fleet.available():
            self.fleet.send(self._step("release", True), self._apply)

    def snapshot(self) -> BreakerSnapshot:
        local = super().snapshot()
        if not self.fleet.available():
            return local
        return dataclasses.replace(
            local, state=self.state, retry_after=self.retry_after(), trial_calls=self._held
        )

    def _local_changed(self, name: str, old: str, new: str) -> None:
        """The local breaker moved: while the fleet is reachable its opening trips the fleet and
        it starts afresh (it only detects); otherwise it is the breaker, reported as today."""
        if not self.fleet.available():
            if self._on_change is not None:
                self._on_change(name, old, new)
            return
        if new == OPEN:
            self.fleet.send(self._step("trip"), self._apply)
            with self._lock:
                self._state = CLOSED
                self._window.clear()
                self._failures = self._consecutive = self._trials = self._trial_successes = 0


class SharedBreakerRegistry(BreakerRegistry):
    """One :class:`SharedBreaker` per key, all tuned alike, all on one fleet."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        settings: BreakerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateCallback | None = None,
    ) -> None:
        super().__init__(settings=settings, clock=clock, on_state_change=on_state_change)
        self.fleet = fleet

    def get(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = SharedBreaker(
                    fleet=self.fleet,
                    name=key,
                    on_change=self._on_state_change,
                    clock=self._clock,
                    **dataclasses.asdict(self.settings),
                )
                self._breakers[key] = breaker
            return breaker


class SharedBudget(RetryBudget):
    """A retry budget over the fleet's window; the inherited local budget keeps counting and takes
    over whenever the fleet is unreachable."""

    def __init__(self, fleet: Fleet, key: str = "default", **options: Any) -> None:
        super().__init__(**options)
        self.fleet = fleet
        self.key = key
        self._pending = [0, 0, 0]  # requests, attempts, accepts not yet added to the fleet's
        self._flushed_at = time.monotonic()
        self._seen: BudgetSnapshot | None = None

    @classmethod
    def like(cls, budget: RetryBudget, fleet: Fleet) -> SharedBudget:
        """A shared budget with ``budget``'s settings."""
        return cls(
            fleet,
            ratio=budget.ratio,
            reserve=budget.reserve,
            window_seconds=budget.window_seconds,
            k=budget.k,
            clock=budget._clock,
        )

    def _take(self) -> tuple[int, int, int]:
        with self._lock:
            taken = (self._pending[0], self._pending[1], self._pending[2])
            self._pending = [0, 0, 0]
            self._flushed_at = time.monotonic()
            return taken

    def _step(self, spend: bool) -> Any:
        requests, attempts, accepts = self._take()
        params = (self.key, self._width, requests, attempts, accepts, spend)
        return self.fleet.fetch(_BUDGET_SQL, (*params, self.ratio, self.reserve, self.k))

    def _remember(self, row: Any) -> bool:
        spent, requests, retries, attempts, accepts = row
        healthy = self.k > 0 and accepts > 0 and accepts * self.k >= attempts
        limit = self.reserve + self.ratio * requests
        self._seen = BudgetSnapshot(requests, retries, limit, attempts, accepts, healthy)
        return bool(spent)

    def _count(self, index: int, accepted: bool | None = None) -> None:
        with self._lock:
            self._pending[index] += 1
            if accepted:
                self._pending[2] += 1
            due = time.monotonic() - self._flushed_at >= FLUSH_EVERY
        if due and self.fleet.available():
            self.fleet.send(self._step(False), self._remember)

    def record_request(self) -> None:
        super().record_request()
        self._count(0)

    def record_attempt(self, *, accepted: bool) -> None:
        super().record_attempt(accepted=accepted)
        self._count(1, accepted)

    def try_spend(self) -> bool:
        if self.fleet.available():
            try:
                return self._remember(self.fleet.call(self._step(True)))
            except SharedUnavailableError:
                pass
        return super().try_spend()

    def snapshot(self) -> BudgetSnapshot:
        if self.fleet.available() and self._seen is not None:
            return self._seen
        return super().snapshot()


def fleet_guards(generator: Any, url: str) -> tuple[tuple[Any, ...], Any, RetryBudget | None]:
    """A generator's providers, breakers and budget on the fleet at ``url``: providers throttled
    by it (its 429 pause, and its limits when a batch gives ``--rpm``/``--tpm``), breakers and
    budget shared (a registry or budget already shared is kept as given)."""
    from .shared import fleet
    from .throttle import ThrottledProvider

    shared = fleet(url)
    max_pause = generator.policy.max_retry_after
    providers = tuple(
        p
        if isinstance(p, ThrottledProvider)
        else ThrottledProvider(p, shared=shared, max_pause=max_pause)
        for p in generator.providers
    )
    breakers = generator.breakers
    if breakers is not None and not isinstance(breakers, SharedBreakerRegistry):
        breakers = SharedBreakerRegistry(
            shared,
            settings=breakers.settings,
            clock=breakers._clock,
            on_state_change=breakers._on_state_change,
        )
    budget = generator.budget
    if budget is not None and not isinstance(budget, SharedBudget):
        budget = SharedBudget.like(budget, shared)
    return providers, breakers, budget
