"""Circuit breaker and retry budget: state transitions as tables, a simulated outage, threads,
properties."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import math
import random
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import FakeTime
from optional_tools import given, st

from tweetgen import resilience
from tweetgen.errors import CircuitOpenError, ConfigurationError
from tweetgen.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerRegistry,
    BreakerSettings,
    CircuitBreaker,
    RetryBudget,
)
from tweetgen.retry import DEFAULT_MAX_RETRIES

NAME = "gemini/gemini-flash-latest"
_RECORD: dict[str, Callable[[CircuitBreaker], None]] = {
    "S": CircuitBreaker.record_success,
    "F": CircuitBreaker.record_failure,
    "I": CircuitBreaker.record_ignored,
}


#: small, explicit settings for the state-machine tables (the defaults are tested on their own)
SMALL = {"window_size": 20, "minimum_calls": 10, "consecutive_failures": 5}


def _breaker(time: FakeTime, **options: Any) -> CircuitBreaker:
    return CircuitBreaker(**{"name": NAME, "clock": time.clock, **SMALL, **options})


def _play(breaker: CircuitBreaker, outcomes: str) -> None:
    """Record one outcome per letter: S success, F failure, I ignored."""
    for letter in outcomes:
        _RECORD[letter](breaker)


def _half_open(time: FakeTime, **options: Any) -> CircuitBreaker:
    breaker = _breaker(time, **options)
    _play(breaker, "F" * breaker.settings.consecutive_failures)
    time.sleep(breaker.settings.open_seconds)
    assert breaker.state == HALF_OPEN
    return breaker


# --- closed -> open -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ("FFFF", CLOSED),
        ("FFFFF", OPEN),
        ("FFFFSFFFF", CLOSED),  # a success ends the streak
        ("FFFFIF", OPEN),  # a non-counting error does not
        ("SSSSSSSSSFFFFF", OPEN),  # 5 of 14 is a low rate, but 5 in a row
    ],
)
def test_opens_after_consecutive_failures(fake_time: FakeTime, outcomes: str, state: str) -> None:
    breaker = _breaker(fake_time)
    _play(breaker, outcomes)
    assert breaker.state == state


@pytest.mark.parametrize(
    ("options", "outcomes", "state", "rate"),
    [
        ({}, "FSFSFSFSF", CLOSED, 5 / 9),  # above the threshold, but fewer than minimum_calls
        (
            {},
            "FSFSFSFSFS",
            OPEN,
            0.0,
        ),  # the 10th call reaches minimum_calls at 50 %, even as a success
        ({}, "FSFSFSFSSS", CLOSED, 0.4),
        ({"minimum_calls": 20}, "SF" * 9 + "SS", CLOSED, 0.45),  # just below 50 %
        ({"minimum_calls": 20}, "SF" * 10, OPEN, 0.0),  # exactly 50 %
        ({"failure_rate_threshold": 0.3, "window_size": 10}, "FFSSSSSSSS", CLOSED, 0.2),
        (
            {"failure_rate_threshold": 0.3, "window_size": 10},
            "FFFSSSSSSS",
            OPEN,
            0.0,
        ),  # 3/10 >= 0.3, no float slip
    ],
)
def test_opens_on_failure_rate_only_after_minimum_calls(
    fake_time: FakeTime, options: dict[str, Any], outcomes: str, state: str, rate: float
) -> None:
    breaker = _breaker(fake_time, consecutive_failures=100, **options)
    _play(breaker, outcomes)
    snapshot = breaker.snapshot()
    assert snapshot.state == state
    assert snapshot.failure_rate == pytest.approx(rate)


@pytest.mark.parametrize(
    ("outcomes", "state", "calls", "failures"),
    [
        ("S" * 10 + "FFFFF", OPEN, 0, 0),  # the last ten are 50 % failures (all fifteen only 33 %)
        ("FFFF" + "S" * 10 + "FFFF", CLOSED, 10, 4),  # the first four failures slid out
        ("F" * 4 + "S" * 30, CLOSED, 10, 0),
    ],
)
def test_window_slides(
    fake_time: FakeTime, outcomes: str, state: str, calls: int, failures: int
) -> None:
    breaker = _breaker(fake_time, window_size=10, minimum_calls=10, consecutive_failures=100)
    _play(breaker, outcomes)
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.calls, snapshot.failures) == (state, calls, failures)


# --- open -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "state", "retry_after"),
    [
        (0.0, OPEN, 30.0),
        (12.0, OPEN, 18.0),
        (29.999, OPEN, 0.001),
        (30.0, HALF_OPEN, 0.0),
        (500.0, HALF_OPEN, 0.0),
    ],
)
def test_open_turns_half_open_after_open_seconds(
    fake_time: FakeTime, elapsed: float, state: str, retry_after: float
) -> None:
    breaker = _breaker(fake_time)
    _play(breaker, "FFFFF")
    fake_time.sleep(elapsed)
    assert breaker.state == state
    assert breaker.retry_after() == pytest.approx(retry_after)
    assert breaker.allows() is (state == HALF_OPEN)


def test_acquire_while_open_fails_fast_with_the_remaining_seconds(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _play(breaker, "FFFFF")
    fake_time.sleep(12)
    with pytest.raises(CircuitOpenError) as caught:
        breaker.acquire()
    assert caught.value.retry_after == pytest.approx(18.0)
    assert caught.value.message == f"circuit breaker '{NAME}' is open; it will try again in 18.0s"
    assert not caught.value.retryable


def test_outcomes_while_open_are_stale_and_dropped(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _play(breaker, "FFFFF")
    fake_time.sleep(10)
    _play(breaker, "SSSSSSSSSSSSFFI")
    assert (breaker.state, breaker.retry_after()) == (OPEN, 20.0)


# --- half-open ------------------------------------------------------------------------------------


def test_half_open_admits_exactly_the_trial_calls(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=3)
    for _ in range(3):
        breaker.acquire()
    assert not breaker.allows()
    with pytest.raises(
        CircuitOpenError, match="half-open with all 3 trial calls in flight"
    ) as caught:
        breaker.acquire()
    assert caught.value.retry_after == 0.0
    assert breaker.snapshot().trial_calls == 3


def test_all_trial_successes_close_the_breaker(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=3)
    for _ in range(3):
        breaker.acquire()
    _play(breaker, "SS")
    assert breaker.state == HALF_OPEN
    assert not breaker.allows()  # two succeeded and one is in flight: the three permits are spent
    _play(breaker, "S")
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.calls, snapshot.trial_calls) == (CLOSED, 0, 0)


def test_one_trial_failure_reopens_and_restarts_the_timer(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=3)
    breaker.acquire()
    breaker.acquire()
    fake_time.sleep(5)
    _play(breaker, "F")
    assert (breaker.state, breaker.retry_after()) == (OPEN, 30.0)
    _play(breaker, "S")  # the other trial reports after the re-open: stale
    fake_time.sleep(29.9)
    assert breaker.state == OPEN
    fake_time.sleep(0.1)
    assert breaker.state == HALF_OPEN


def test_record_ignored_releases_a_trial_permit(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=1)
    breaker.acquire()
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    _play(breaker, "I")
    assert (breaker.state, breaker.snapshot().trial_calls, breaker.allows()) == (HALF_OPEN, 0, True)
    breaker.acquire()
    _play(breaker, "S")
    assert breaker.state == CLOSED


def test_half_open_drops_outcomes_without_a_permit(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=1)
    _play(breaker, "SIF")
    assert (breaker.state, breaker.snapshot().trial_calls) == (HALF_OPEN, 0)


def test_state_changes_are_reported_in_order_outside_the_lock(fake_time: FakeTime) -> None:
    seen: list[tuple[str, str, str, str]] = []
    breaker: CircuitBreaker

    def on_change(name: str, old: str, new: str) -> None:
        seen.append(
            (name, old, new, breaker.snapshot().state)
        )  # would deadlock if called under the lock

    breaker = _breaker(fake_time, half_open_calls=2, on_state_change=on_change)
    _play(breaker, "FFFFF")
    fake_time.sleep(30)
    breaker.acquire()
    _play(breaker, "F")
    fake_time.sleep(30)
    for _ in range(2):
        breaker.acquire()
    _play(breaker, "SS")
    assert seen == [
        (NAME, CLOSED, OPEN, OPEN),
        (NAME, OPEN, HALF_OPEN, HALF_OPEN),
        (NAME, HALF_OPEN, OPEN, OPEN),
        (NAME, OPEN, HALF_OPEN, HALF_OPEN),
        (NAME, HALF_OPEN, CLOSED, CLOSED),
    ]


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"failure_rate_threshold": math.nan}, "failure_rate_threshold"),
        ({"window_size": 0}, "window_size"),
        ({"window_size": 2.5}, "window_size"),
        ({"window_size": "20"}, "window_size"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"minimum_calls": 21}, r"minimum_calls must be <= window_size \(20\), got 21"),
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"consecutive_failures": True}, "consecutive_failures"),
        ({"open_seconds": 0}, "open_seconds"),
        ({"open_seconds": math.inf}, "open_seconds"),
        ({"half_open_calls": 0}, "half_open_calls"),
    ],
)
def test_invalid_breaker_settings_are_rejected(
    fake_time: FakeTime, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"invalid circuit breaker settings: {field}"):
        _breaker(fake_time, **options)


def test_breaker_defaults_match_the_settings_defaults() -> None:
    parameters = inspect.signature(CircuitBreaker).parameters
    defaults = {f.name: f.default for f in dataclasses.fields(BreakerSettings)}
    assert {name: parameters[name].default for name in defaults} == defaults
    assert CircuitBreaker(name=NAME).settings == BreakerSettings()


def test_exported_names_exist() -> None:
    assert all(hasattr(resilience, name) for name in resilience.__all__)


# --- registry -------------------------------------------------------------------------------------


def test_registry_hands_out_one_breaker_per_key(fake_time: FakeTime) -> None:
    changes: list[tuple[str, str, str]] = []
    settings = BreakerSettings(consecutive_failures=2, open_seconds=5)
    registry = BreakerRegistry(
        settings=settings, clock=fake_time.clock, on_state_change=lambda *c: changes.append(c)
    )
    flash = registry.get(NAME)
    assert registry.get(NAME) is flash
    pro = registry.get("gemini/gemini-pro")
    _play(flash, "FF")
    assert (flash.state, pro.state, pro.settings) == (OPEN, CLOSED, settings)
    assert changes == [(NAME, CLOSED, OPEN)]
    assert registry.all() == {NAME: flash, "gemini/gemini-pro": pro}
    fake_time.sleep(5)
    assert flash.state == HALF_OPEN


def test_registry_rejects_bad_settings_and_keys() -> None:
    with pytest.raises(ConfigurationError, match="window_size"):
        BreakerRegistry(settings=BreakerSettings(window_size=0))
    with pytest.raises(ConfigurationError, match="name"):
        BreakerRegistry().get("")


def test_registry_is_thread_safe() -> None:
    registry = BreakerRegistry()
    with ThreadPoolExecutor(8) as pool:
        breakers = list(pool.map(lambda i: registry.get(f"key-{i % 4}"), range(400)))
    assert len({id(b) for b in breakers}) == 4
    assert sorted(registry.all()) == ["key-0", "key-1", "key-2", "key-3"]


# --- retry budget ---------------------------------------------------------------------------------


def test_a_lone_call_keeps_its_retries(fake_time: FakeTime) -> None:
    budget = RetryBudget(clock=fake_time.clock)
    budget.record_request()
    assert [budget.try_spend() for _ in range(DEFAULT_MAX_RETRIES)] == [True] * DEFAULT_MAX_RETRIES


@pytest.mark.parametrize(
    ("ratio", "reserve", "requests", "allowed"),
    [
        (0.1, 3, 0, 3),
        (0.1, 3, 1, 4),  # retries < 3.1
        (0.1, 3, 10, 4),  # retries < 4.0
        (0.1, 3, 11, 5),
        (0.2, 10, 50, 20),
        (0.0, 0, 100, 0),
    ],
)
def test_budget_allows_reserve_plus_ratio(
    fake_time: FakeTime, ratio: float, reserve: int, requests: int, allowed: int
) -> None:
    budget = RetryBudget(ratio=ratio, reserve=reserve, clock=fake_time.clock)
    for _ in range(requests):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(100)) == allowed
    snapshot = budget.snapshot()
    assert (snapshot.requests, snapshot.retries, snapshot.limit) == (
        requests,
        allowed,
        reserve + ratio * requests,
    )


def _outage(calls: int, seconds_per_call: float) -> float:
    """Requests per logical call when every attempt fails and each wants the seed's 3 retries."""
    time = FakeTime()
    budget = RetryBudget(clock=time.clock)
    attempts = 0
    for _ in range(calls):
        budget.record_request()
        attempts += 1
        for _retry in range(DEFAULT_MAX_RETRIES):
            if not budget.try_spend():
                break
            attempts += 1
        time.sleep(seconds_per_call)
    return attempts / calls


@pytest.mark.parametrize(
    ("calls", "seconds_per_call", "amplification"),
    [
        (50, 0.1, 1.16),  # 50 requests + 8 retries (3 reserve + 10 % of 50)
        (1000, 0.1, 1.13),  # steady state: 100 requests per window, 13 retries
        (5000, 0.02, 1.106),  # 500 requests per window, 53 retries
    ],
)
def test_outage_amplification_stays_under_1_2(
    calls: int, seconds_per_call: float, amplification: float
) -> None:
    measured = _outage(calls, seconds_per_call)
    assert measured <= 1.2
    assert measured == pytest.approx(amplification, abs=0.005)


def test_at_low_traffic_the_reserve_bounds_retries_per_window() -> None:
    # one call every 2 s: 5 requests per window, so 3 + 0.5 retries per window, not 10 % of traffic
    assert _outage(100, 2.0) == pytest.approx(1.8)


@pytest.mark.parametrize(
    ("elapsed", "requests", "retries"),
    [(0.0, 20, 5), (5.0, 20, 5), (9.99, 20, 5), (10.0, 0, 0), (60.0, 0, 0)],
)
def test_old_requests_age_out(
    fake_time: FakeTime, elapsed: float, requests: int, retries: int
) -> None:
    budget = RetryBudget(clock=fake_time.clock)
    for _ in range(20):
        budget.record_request()
    assert sum(budget.try_spend() for _ in range(10)) == 5
    fake_time.sleep(elapsed)
    snapshot = budget.snapshot()
    assert (snapshot.requests, snapshot.retries) == (requests, retries)


def test_window_slides_bucket_by_bucket(fake_time: FakeTime) -> None:
    budget = RetryBudget(reserve=0, ratio=1.0, clock=fake_time.clock)
    budget.record_request()
    fake_time.sleep(5)
    budget.record_request()
    budget.record_request()
    fake_time.sleep(5)
    assert (
        budget.snapshot().requests == 2
    )  # the first request left the window, the later two did not
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": math.nan}, "ratio"),
        ({"reserve": -1}, "reserve"),
        ({"reserve": 1.5}, "reserve"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"window_seconds": math.inf}, "window_seconds"),
    ],
)
def test_invalid_budget_settings_are_rejected(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"invalid retry budget: {field}"):
        RetryBudget(**options)


# --- concurrency ----------------------------------------------------------------------------------


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Make the interpreter switch threads every microsecond, so races get a chance to happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


class _TickingClock:
    """Advances 10 ms on every read; the breaker reads it under its lock, so reads never race."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


_ALLOWED = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (HALF_OPEN, CLOSED)}


@pytest.mark.usefixtures("switch_often")
def test_breaker_stays_consistent_under_eight_threads() -> None:
    changes: list[tuple[str, str, str]] = []
    breaker = CircuitBreaker(
        name="hammer",
        window_size=10,
        minimum_calls=5,
        consecutive_failures=3,
        open_seconds=0.5,
        half_open_calls=2,
        clock=_TickingClock(),
        on_state_change=lambda *change: changes.append(change),
    )

    def worker(seed: int) -> tuple[int, int, int]:
        rng, admitted, rejected, peak = random.Random(seed), 0, 0, 0
        for _ in range(1000):
            try:
                breaker.acquire()
            except CircuitOpenError:
                rejected += 1
                continue
            admitted += 1
            peak = max(peak, breaker.snapshot().trial_calls)
            _RECORD[rng.choice("SSSSFFI")](breaker)
        return admitted, rejected, peak

    with ThreadPoolExecutor(8) as pool:
        admitted, rejected, peaks = zip(*pool.map(worker, range(8)), strict=True)
    assert sum(admitted) + sum(rejected) == 8000
    assert min(sum(admitted), sum(rejected)) > 0  # the breaker really cycled
    assert max(peaks) <= 2
    assert breaker.snapshot().trial_calls == 0  # every permit was reported
    # read last: every read of the ticking clock moves time, so an earlier read can be overtaken by
    # the lazy open -> half-open move that a later read (the snapshot above) makes and reports
    final = breaker.state
    assert {(old, new) for _, old, new in changes} <= _ALLOWED
    assert changes[0][1] == CLOSED
    assert all(a[2] == b[1] for a, b in itertools.pairwise(changes))  # an unbroken chain, in order
    assert changes[-1][2] == final


@pytest.mark.usefixtures("switch_often")
def test_budget_stays_consistent_under_eight_threads(fake_time: FakeTime) -> None:
    budget = RetryBudget(clock=fake_time.clock)

    def worker(_: int) -> int:
        spent = 0
        for _ in range(1000):
            budget.record_request()
            spent += sum(budget.try_spend() for _ in range(3))
        return spent

    with ThreadPoolExecutor(8) as pool:
        spent = sum(pool.map(worker, range(8)))
    snapshot = budget.snapshot()
    assert (snapshot.requests, snapshot.retries) == (8000, spent)
    assert spent <= 3 + 0.1 * 8000


@pytest.mark.usefixtures("switch_often")
def test_budget_never_overspends_under_eight_threads(fake_time: FakeTime) -> None:
    budget = RetryBudget(clock=fake_time.clock)
    for _ in range(100):
        budget.record_request()
    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(lambda _: sum(budget.try_spend() for _ in range(1000)), range(8)))
    assert (
        granted == budget.snapshot().retries == 13
    )  # 3 + 10 % of 100, however the threads interleave


@pytest.mark.usefixtures("switch_often")
def test_half_open_never_grants_extra_permits_under_eight_threads(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=3)

    def worker(_: int) -> int:
        granted = 0
        for _ in range(1000):
            with contextlib.suppress(CircuitOpenError):
                breaker.acquire()
                granted += 1
        return granted

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(worker, range(8)))
    assert granted == breaker.snapshot().trial_calls == 3


@pytest.mark.usefixtures("switch_often")
def test_window_counts_stay_exact_under_eight_threads(fake_time: FakeTime) -> None:
    breaker = _breaker(
        fake_time,
        window_size=50,
        minimum_calls=50,
        consecutive_failures=10**6,
        failure_rate_threshold=1.0,
    )

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(1000):
            _RECORD[rng.choice("SF")](breaker)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.calls) == (CLOSED, 50)
    assert 0 < snapshot.failures < 50
    _play(
        breaker, "S" * 50
    )  # pushes every earlier outcome out: a lost update would leave a stray count
    assert (breaker.snapshot().failures, breaker.snapshot().failure_rate) == (0, 0.0)


@pytest.mark.parametrize("half_open", [False, True])
def test_calls_run_concurrently_between_acquire_and_record(
    fake_time: FakeTime, half_open: bool
) -> None:
    breaker = _half_open(fake_time, half_open_calls=2) if half_open else _breaker(fake_time)
    barrier = threading.Barrier(2, timeout=5)

    def call(_: int) -> str:
        breaker.acquire()
        barrier.wait()  # both calls are inside at once: a lock held across the call breaks this
        state = breaker.snapshot().state
        breaker.record_success()
        return state

    with ThreadPoolExecutor(2) as pool:
        states = list(pool.map(call, range(2)))
    assert states[0] == (HALF_OPEN if half_open else CLOSED)
    assert breaker.state == CLOSED


def test_asyncio_tasks_share_trial_permits(fake_time: FakeTime) -> None:
    breaker = _half_open(fake_time, half_open_calls=3)
    inside = peak = 0

    async def call() -> bool:
        nonlocal inside, peak
        try:
            breaker.acquire()
        except CircuitOpenError:
            return False
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0)
        inside -= 1
        breaker.record_success()
        return True

    async def main() -> list[bool]:
        return await asyncio.gather(*(call() for _ in range(5)))

    assert asyncio.run(main()) == [True, True, True, False, False]
    assert (peak, breaker.state) == (3, CLOSED)


# --- properties -----------------------------------------------------------------------------------


@st.composite
def _settings(draw: st.DrawFn) -> BreakerSettings:
    window = draw(st.integers(1, 10))
    return BreakerSettings(
        failure_rate_threshold=draw(st.sampled_from([0.1, 0.5, 1.0])),
        window_size=window,
        minimum_calls=draw(st.integers(1, window)),
        consecutive_failures=draw(st.integers(1, 6)),
        open_seconds=draw(st.sampled_from([1.0, 30.0])),
        half_open_calls=draw(st.integers(1, 4)),
    )


_ACTIONS = st.one_of(st.sampled_from(["acquire", "S", "F", "I"]), st.floats(0, 40, allow_nan=False))


@given(settings=_settings(), actions=st.lists(_ACTIONS, max_size=60))
def test_breaker_invariants_hold_for_any_sequence(
    settings: BreakerSettings, actions: list[str | float]
) -> None:
    time = FakeTime()
    breaker = CircuitBreaker(name=NAME, clock=time.clock, **dataclasses.asdict(settings))
    for action in actions:
        if isinstance(action, float):
            time.sleep(action)
        elif action == "acquire" and breaker.allows():
            breaker.acquire()
        elif action == "acquire":
            with pytest.raises(CircuitOpenError) as caught:
                breaker.acquire()
            retry_after = caught.value.retry_after
            assert retry_after is not None
            assert 0 <= retry_after <= settings.open_seconds
        else:
            _RECORD[action](breaker)
        snapshot = breaker.snapshot()
        assert snapshot.state in {CLOSED, OPEN, HALF_OPEN}
        assert 0 <= snapshot.trial_calls <= settings.half_open_calls
        assert snapshot.trial_calls == 0 or snapshot.state == HALF_OPEN
        assert 0 <= snapshot.calls <= settings.window_size
        assert 0.0 <= snapshot.failure_rate <= 1.0
        assert 0.0 <= snapshot.retry_after <= settings.open_seconds
