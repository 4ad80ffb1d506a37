"""Circuit breakers and retry budgets: the guards that stop a failing API from being hammered.

A :class:`CircuitBreaker` fails fast while a dependency is down; a :class:`RetryBudget` caps retries
at a fraction of the traffic so a brown-out does not become a retry storm (SRE book: ~1.1x the load,
not 4x). Both are pure state machines: no I/O, no sleeping, an injectable ``clock``, and one
``threading.Lock`` held only around their own bookkeeping. Design choices, against pybreaker,
circuitbreaker and aiobreaker:

* **No call serialisation.** pybreaker holds its lock for the whole wrapped call, so concurrent
  calls queue behind a slow one. Here the caller brackets its own call: ``acquire()`` before it,
  ``record_success()`` / ``record_failure()`` / ``record_ignored()`` after it (in a ``finally``, so
  a cancelled call still hands back its permit). The lock never covers the call, so one object
  serves threads and asyncio tasks alike.
* **A failure rate, not only a streak.** As in Resilience4j, a count-based window of the last
  ``window_size`` outcomes opens the breaker when the failure rate reaches
  ``failure_rate_threshold``, but only once it holds ``minimum_calls`` outcomes (two failures in
  three calls do not trip it). A streak of ``consecutive_failures`` opens it at once, before the
  window fills. Every transition starts a fresh window.
* **Trial permits.** Half-open admits exactly ``half_open_calls`` trial calls (pybreaker: one); all
  must succeed to close, any failure re-opens and restarts the open timer, and a trial that ends in
  a non-counting error (``record_ignored``: a 400, a blocked prompt) hands its permit back. The
  caller decides what counts: only failures that say the server is unhealthy (5xx, timeouts,
  connection).
* **Stale outcomes are dropped.** ``acquire`` hands out no ticket, so an outcome that arrives while
  open, or half-open with no trial permit outstanding, belongs to a call started before the breaker
  opened: it can neither extend the open period nor close the breaker.
* **Transitions are reported, not logged.** ``on_state_change(name, old, new)`` runs outside the
  lock, one call at a time, in transition order; it must not raise (the error would reach the
  caller).

The retry budget follows Finagle: a retry is allowed while the retries of the last
``window_seconds`` stay below ``reserve + ratio * requests``; the window is ten buckets, so old
traffic ages out in tenths of it. The reserve lets a lone call keep its retries; the ratio bounds
the amplification.

**Degraded is not down.** A ratio alone cannot tell the two apart: a service failing 20 % of
attempts at random needs about 0.25 retries per request to deliver 99.8 % of calls with three
retries, while a total outage must not be amplified beyond ~1.1-1.2x. So the ratio applies only
while the service looks *down*; while it looks *healthy*, every retry the policy wants is allowed.
The test is the one of the SRE book's client-side adaptive throttling (which starts rejecting once
``attempts > K * accepts`` over the window, K = 2): the budget counts every attempt and the ones the
server accepted (anything but a server-side failure or a 429), and the service counts as healthy
while ``accepts * k >= attempts``, i.e. while at least half of the attempts get through. Below that,
only the Finagle budget's ``reserve + ratio * requests`` retries are allowed, and the circuit
breaker (also at a 50 % failure rate, over a longer window) opens soon after. The breaker's defaults
follow Resilience4j's failure-rate rule (50 % over the last 100 calls, judged once 50 are in): the
earlier 20-call window with a 5-failure streak tripped in about 40 % of runs of a 20 %-failing
service, which turned a degraded service into a down one (a simulation of 650 Bernoulli attempts;
0 % with the new window). A streak of 10 consecutive failures still opens it at once, so a total
outage fails fast.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .budget import DEFAULT_RETRY_RESERVE, BudgetSnapshot, RetryBudget, _check, _count, _finite
from .errors import CircuitOpenError

__all__ = [
    "CLOSED",
    "DEFAULT_RETRY_RESERVE",
    "HALF_OPEN",
    "OPEN",
    "BreakerRegistry",
    "BreakerSettings",
    "BreakerSnapshot",
    "BudgetSnapshot",
    "CircuitBreaker",
    "RetryBudget",
    "StateCallback",
]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

StateCallback = Callable[[str, str, str], None]


@dataclass(frozen=True)
class BreakerSettings:
    """The tuning shared by every breaker of a :class:`BreakerRegistry`; validated on creation."""

    failure_rate_threshold: float = 0.5
    window_size: int = 100
    minimum_calls: int = 50
    consecutive_failures: int = 10
    open_seconds: float = 30.0
    half_open_calls: int = 3

    def __post_init__(self) -> None:
        window, minimum, rate = self.window_size, self.minimum_calls, self.failure_rate_threshold
        streak, seconds, trials = self.consecutive_failures, self.open_seconds, self.half_open_calls
        _check(
            "circuit breaker settings",
            [
                ("failure_rate_threshold", rate, _finite(rate) and 0 < rate <= 1, "in (0, 1]"),
                ("window_size", window, _count(window, 1), "an integer >= 1"),
                ("minimum_calls", minimum, _count(minimum, 1), "an integer >= 1"),
                (
                    "minimum_calls",
                    minimum,
                    _count(window, 1) and minimum <= window,
                    f"<= window_size ({window})",
                ),
                ("consecutive_failures", streak, _count(streak, 1), "an integer >= 1"),
                ("open_seconds", seconds, _finite(seconds) and seconds > 0, "> 0"),
                ("half_open_calls", trials, _count(trials, 1), "an integer >= 1"),
            ],
        )


@dataclass(frozen=True)
class BreakerSnapshot:
    """A consistent view of one breaker, for logs, metrics and tests."""

    name: str
    state: str
    failure_rate: float
    calls: int
    failures: int
    consecutive_failures: int
    trial_calls: int
    retry_after: float


class CircuitBreaker:
    """A Resilience4j-style breaker: failure-rate window, consecutive-failure trip, half-open trial
    permits."""

    def __init__(
        self,
        *,
        name: str,
        failure_rate_threshold: float = 0.5,
        window_size: int = 100,
        minimum_calls: int = 50,
        consecutive_failures: int = 10,
        open_seconds: float = 30.0,
        half_open_calls: int = 3,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateCallback | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            _check("circuit breaker settings", [("name", name, False, "a non-empty string")])
        self.name = name
        self.settings = BreakerSettings(
            failure_rate_threshold=failure_rate_threshold,
            window_size=window_size,
            minimum_calls=minimum_calls,
            consecutive_failures=consecutive_failures,
            open_seconds=open_seconds,
            half_open_calls=half_open_calls,
        )
        self._clock = clock
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        self._notify_lock = threading.RLock()
        self._changes: list[tuple[str, str]] = []
        self._state = CLOSED
        self._window: collections.deque[bool] = collections.deque(maxlen=window_size)
        self._changed_at = 0.0
        self._failures = self._consecutive = self._trials = self._trial_successes = 0

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (open until ``open_seconds`` pass)."""
        with self._guard():
            return self._state

    def acquire(self) -> None:
        """Admit one call, or raise :class:`CircuitOpenError` carrying ``retry_after``."""
        try:  # _guard inlined on the two steps of every call (a generator costs 3x more)
            with self._lock:
                now = self._tick()
                if self._state == HALF_OPEN and self._has_permit():
                    self._trials += 1
                elif self._state != CLOSED:
                    raise self._rejection(now)
        finally:
            if self._changes:
                self._notify()

    def allows(self) -> bool:
        """Whether :meth:`acquire` would succeed now (takes no permit)."""
        with self._guard():
            return self._state == CLOSED or (self._state == HALF_OPEN and self._has_permit())

    def retry_after(self) -> float:
        """Seconds until an open breaker turns half-open; ``0.0`` when not open."""
        with self._guard() as now:
            return self._remaining(now)

    def record_success(self) -> None:
        """Count a call that succeeded."""
        try:
            with self._lock:
                now = self._tick()
                if self._state == CLOSED:
                    self._consecutive = 0
                    self._push(False, now)
                elif self._state == HALF_OPEN and self._trials:
                    self._trials -= 1
                    self._trial_successes += 1
                    if self._trial_successes >= self.settings.half_open_calls:
                        self._move(CLOSED, now)
        finally:
            if self._changes:
                self._notify()

    def record_failure(self) -> None:
        """Count a call that failed in a way that says the server is unhealthy."""
        with self._guard() as now:
            if self._state == CLOSED:
                self._consecutive += 1
                self._push(True, now)
            elif self._state == HALF_OPEN and self._trials:
                self._move(OPEN, now)

    def record_ignored(self) -> None:
        """A call ended in a non-counting error: its trial permit is freed, nothing counted."""
        with self._guard():
            if self._state == HALF_OPEN and self._trials:
                self._trials -= 1

    def snapshot(self) -> BreakerSnapshot:
        """The state and counters, read under the lock."""
        with self._guard() as now:
            calls = len(self._window)
            return BreakerSnapshot(
                name=self.name,
                state=self._state,
                failure_rate=self._failures / calls if calls else 0.0,
                calls=calls,
                failures=self._failures,
                consecutive_failures=self._consecutive,
                trial_calls=self._trials,
                retry_after=self._remaining(now),
            )

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self._state!r})"

    @contextlib.contextmanager
    def _guard(self) -> Iterator[float]:
        """Hold the lock for one bookkeeping step after the lazy open -> half-open check; report
        transitions after."""
        try:
            with self._lock:
                yield self._tick()
        finally:
            self._notify()

    def _tick(self) -> float:
        """Now, after the lazy open -> half-open move (with the lock held)."""
        now = self._clock()
        if self._state == OPEN and now - self._changed_at >= self.settings.open_seconds:
            self._move(HALF_OPEN, now)
        return now

    def _notify(self) -> None:
        callback = self._on_state_change
        if (
            callback is None or not self._changes
        ):  # a thread that changed state always notifies itself
            return
        with (
            self._notify_lock
        ):  # one callback at a time, in transition order, with the bookkeeping lock free
            with self._lock:
                changes, self._changes = self._changes, []
            for old, new in changes:
                callback(self.name, old, new)

    def _move(self, new: str, now: float) -> None:
        if self._on_state_change is not None:
            self._changes.append((self._state, new))
        self._state = new
        self._changed_at = now
        self._window.clear()
        self._failures = self._consecutive = self._trials = self._trial_successes = 0

    def _push(self, failed: bool, now: float) -> None:
        window = self._window
        if len(window) == window.maxlen and window[0]:
            self._failures -= 1
        window.append(failed)
        if failed:
            self._failures += 1
        calls, settings = len(window), self.settings
        tripped = (
            calls >= settings.minimum_calls
            and self._failures / calls >= settings.failure_rate_threshold
        )
        if tripped or self._consecutive >= settings.consecutive_failures:
            self._move(OPEN, now)

    def _has_permit(self) -> bool:
        return self._trials + self._trial_successes < self.settings.half_open_calls

    def _remaining(self, now: float) -> float:
        if self._state != OPEN:
            return 0.0
        return max(0.0, self.settings.open_seconds - (now - self._changed_at))

    def _rejection(self, now: float) -> CircuitOpenError:
        if self._state == OPEN:
            wait = self._remaining(now)
            message = f"circuit breaker {self.name!r} is open; it will try again in {wait:.1f}s"
            return CircuitOpenError(message, retry_after=wait)
        calls, seconds = self.settings.half_open_calls, self.settings.open_seconds
        message = (
            f"circuit breaker {self.name!r} is half-open with all {calls} trial calls in flight; "
            f"it will try again in 0s if they succeed, or in {seconds:.1f}s if one fails"
        )
        return CircuitOpenError(message, retry_after=0.0)


class BreakerRegistry:
    """One :class:`CircuitBreaker` per key (``"gemini/gemini-flash-latest"``), all tuned alike."""

    def __init__(
        self,
        *,
        settings: BreakerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateCallback | None = None,
    ) -> None:
        self.settings = settings if settings is not None else BreakerSettings()
        self._clock = clock
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        """The breaker for ``key``, created on first use."""
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                settings = dataclasses.asdict(self.settings)
                breaker = CircuitBreaker(
                    name=key, clock=self._clock, on_state_change=self._on_state_change, **settings
                )
                self._breakers[key] = breaker
            return breaker

    def all(self) -> dict[str, CircuitBreaker]:
        """A copy of the key -> breaker map, in creation order."""
        with self._lock:
            return dict(self._breakers)
