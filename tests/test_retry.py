"""The retry engine: pure decisions tested directly, then every scenario against all four loops."""

from __future__ import annotations

import asyncio
import email.utils
import errno
import random
import socket
import urllib.error
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import FakeTime, names

from tweetgen.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentBlockedError,
    EmptyResponseError,
    InvalidResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TweetValidationError,
)
from tweetgen.retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    backoff_delay,
    decide,
    describe_error,
    is_retryable,
    parse_duration,
    parse_retry_after,
    retry_with_custom_backoff,
    retry_with_tenacity,
)


def _server_error(retry_after: float | None = None) -> ServerError:
    return ServerError(
        "Service temporarily unavailable",
        status_code=503,
        status="UNAVAILABLE",
        retry_after=retry_after,
    )


def _rate_limit(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError("Rate limit exceeded", status_code=429, retry_after=retry_after)


# --- pure decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": -1}, "base_delay"),
        ({"max_delay": 0.5}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "random"}, "jitter"),
        ({"deadline": 0}, "deadline"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"base_delay": float("nan")}, "base_delay"),
    ],
)
def test_policy_rejects_nonsense(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(**options)


def test_policy_from_retries_counts_the_first_attempt() -> None:
    assert RetryPolicy.from_retries(3).max_attempts == 4
    assert RetryPolicy.from_retries(0).max_attempts == 1
    with pytest.raises(ConfigurationError, match="max_retries"):
        RetryPolicy.from_retries(-1)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 10.0), (9, 10.0)],
)
def test_seed_schedule_without_jitter(attempt: int, expected: float) -> None:
    assert backoff_delay(RetryPolicy(), attempt) == expected


@pytest.mark.parametrize("seed", range(20))
def test_jitter_bounds(seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(2, 8):
        ceiling = min(10.0, 2.0 ** (attempt - 2))
        full = backoff_delay(RetryPolicy(jitter="full"), attempt, rng=rng)
        equal = backoff_delay(RetryPolicy(jitter="equal"), attempt, rng=rng)
        assert 0 <= full <= ceiling
        assert ceiling / 2 <= equal <= ceiling
        previous = rng.uniform(1, 10)
        decorrelated = backoff_delay(
            RetryPolicy(jitter="decorrelated"), attempt, previous=previous, rng=rng
        )
        assert 1.0 <= decorrelated <= min(10.0, 3 * previous)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_server_error(), True),
        (ServerError("boom", status_code=500), True),
        (NetworkError("refused"), True),
        (RequestTimeoutError("read timeout"), True),
        (InvalidResponseError("not JSON"), True),
        (httpx.ConnectError("refused"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (_rate_limit(), False),
        (AuthenticationError("bad key", status_code=400), False),
        (AuthenticationError("no", status_code=401), False),
        (BadRequestError("bad", status_code=400), False),
        (ModelNotFoundError("gone", status_code=404), False),
        (ContentBlockedError("blocked", reason="SAFETY"), False),
        (EmptyResponseError("empty"), False),
        (TweetValidationError("rules", best=None, reasons=()), False),
        (ValueError("user bug"), False),
        (KeyError("x"), False),
    ],
)
def test_is_retryable_over_the_error_tree(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


def test_rate_limits_are_retried_only_when_asked() -> None:
    assert is_retryable(_rate_limit(), RetryPolicy(retry_rate_limits=True))


def test_http_status_errors_from_user_functions_are_classified() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")

    def status_error(code: int) -> httpx.HTTPStatusError:
        return httpx.HTTPStatusError(
            "x", request=request, response=httpx.Response(code, request=request)
        )

    assert is_retryable(status_error(503))
    assert is_retryable(status_error(500))
    assert not is_retryable(status_error(404))
    assert not is_retryable(status_error(429))


def test_hint_raises_the_delay_and_a_long_hint_stops() -> None:
    policy = RetryPolicy(retry_rate_limits=True)
    assert decide(policy, _rate_limit(26.0), attempt=1, elapsed=0).delay == 26.0
    assert decide(policy, _server_error(0.2), attempt=1, elapsed=0).delay == 1.0
    stop = decide(policy, _rate_limit(61.0), attempt=1, elapsed=0)
    assert not stop.retry
    assert "61s" in stop.reason
    assert "max_retry_after" in stop.reason


def test_deadline_stops_before_a_wait_that_would_pass_it() -> None:
    policy = RetryPolicy(deadline=2.5)
    assert decide(policy, _server_error(), attempt=1, elapsed=0.1).retry
    late = decide(policy, _server_error(), attempt=2, elapsed=1.1)
    assert not late.retry
    assert "deadline" in late.reason


def test_exhausted_attempts_stop() -> None:
    decision = decide(RetryPolicy(max_attempts=2), _server_error(), attempt=2, elapsed=0)
    assert not decision.retry
    assert decision.reason == "all 2 attempts failed"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("26s", 26.0),
        ("1.5s", 1.5),
        ("0.25s", 0.25),
        (" 3s ", 3.0),
        ("26", None),
        ("s", None),
        (None, None),
    ],
)
def test_parse_duration(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_parse_retry_after_forms() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30.0, abs=1)
    assert (
        parse_retry_after({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, now=now)
        == 0.0
    )
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    assert parse_retry_after({}) is None


def test_describe_error_matches_the_seed() -> None:
    assert describe_error(_server_error()) == "HTTP 503: Service temporarily unavailable"
    assert describe_error(ValueError("bad")) == "ValueError: bad"


# --- the four loops, one behaviour -----------------------------------------------------------

Runner = Callable[..., Any]


def _sync(engine: Callable[..., Any]) -> Runner:
    def run(func: Callable[[], Any], fake: FakeTime, **kwargs: Any) -> Any:
        return engine(func, sleep=fake.sleep, clock=fake.clock, **kwargs)

    return run


def _async(engine: Callable[..., Any]) -> Runner:
    def run(func: Callable[[], Any], fake: FakeTime, **kwargs: Any) -> Any:
        async def call() -> Any:
            return func()

        return asyncio.run(engine(call, sleep=fake.asleep, clock=fake.clock, **kwargs))

    return run


RUNNERS = {
    "custom": _sync(retry_with_custom_backoff),
    "tenacity": _sync(retry_with_tenacity),
    "async-custom": _async(aretry_with_custom_backoff),
    "async-tenacity": _async(aretry_with_tenacity),
}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> Runner:
    return RUNNERS[request.param]


def _script(*outcomes: object) -> Callable[[], Any]:
    """A function that raises or returns the outcomes in order, counting its calls."""
    queue = list(outcomes)

    def func() -> Any:
        func.calls += 1  # type: ignore[attr-defined]
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    func.calls = 0  # type: ignore[attr-defined]
    return func


def test_seed_schedule_three_503s_then_success(
    run: Runner, fake_time: FakeTime, events: Any
) -> None:
    func = _script(_server_error(), _server_error(), _server_error(), "tweet")
    assert run(func, fake_time, max_attempts=4) == "tweet"
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    logged = events()
    retries = [e for e in logged if e["event"] == "Retry attempt"]
    assert [(e["attempt"], e["delay_seconds"], e["max_attempts"]) for e in retries] == [
        (1, 1.0, 4),
        (2, 2.0, 4),
        (3, 4.0, 4),
    ]
    assert retries[0]["exception"] == "HTTP 503: Service temporarily unavailable"
    assert retries[0]["level"] == "warning"
    assert logged[-1] == {
        **logged[-1],
        "event": "Retry succeeded",
        "final_attempt": 4,
        "level": "info",
    }


def test_success_first_time_logs_no_retry_events(
    run: Runner, fake_time: FakeTime, events: Any
) -> None:
    assert run(_script("ok"), fake_time) == "ok"
    assert fake_time.sleeps == []
    assert events() == []


def test_exhausted_raises_the_last_error_with_attempts(
    run: Runner, fake_time: FakeTime, events: Any
) -> None:
    last = ServerError("still down", status_code=504)
    func = _script(_server_error(), _server_error(), last)
    with pytest.raises(ServerError) as caught:
        run(func, fake_time, max_attempts=3)
    assert caught.value is last
    assert caught.value.attempts == 3
    assert fake_time.sleeps == [1.0, 2.0]
    logged = events()
    assert names(logged) == ["API request failed", "Retry attempt"] * 2 + [
        "API request failed",
        "Retries exhausted",
    ]
    assert [e["retry_attempted"] for e in logged if e["event"] == "API request failed"] == [
        True,
        True,
        False,
    ]
    assert logged[-1]["attempts"] == 3
    assert logged[-1]["exception"] == "HTTP 504: still down"


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("bad", status_code=400),
        AuthenticationError("API key not valid", status_code=400),
        ModelNotFoundError("gone", status_code=404),
        ContentBlockedError("blocked", reason="SAFETY"),
        _rate_limit(5.0),
        ValueError("a bug in the caller"),
    ],
)
def test_non_retryable_errors_get_one_attempt(
    run: Runner, fake_time: FakeTime, events: Any, error: Exception
) -> None:
    func = _script(error, "never")
    with pytest.raises(type(error)) as caught:
        run(func, fake_time, max_attempts=4)
    assert caught.value is error
    assert func.calls == 1  # type: ignore[attr-defined]
    assert fake_time.sleeps == []
    failed = [e for e in events() if e["event"] == "API request failed"]
    assert len(failed) == 1
    assert failed[0]["retry_attempted"] is False
    assert "Retries exhausted" not in names(events())


def test_rate_limit_retry_waits_at_least_the_hint(run: Runner, fake_time: FakeTime) -> None:
    func = _script(_rate_limit(26.0), "ok")
    assert run(func, fake_time, max_attempts=4, retry_rate_limits=True) == "ok"
    assert fake_time.sleeps == [26.0]


def test_hint_above_the_cap_stops_at_once_and_says_how_long(
    run: Runner, fake_time: FakeTime, events: Any
) -> None:
    func = _script(_rate_limit(90.0), "never")
    with pytest.raises(RateLimitError) as caught:
        run(func, fake_time, max_attempts=4, retry_rate_limits=True)
    assert caught.value.retry_after == 90.0
    assert func.calls == 1  # type: ignore[attr-defined]
    exhausted = [e for e in events() if e["event"] == "Retries exhausted"]
    assert "above max_retry_after" in exhausted[0]["reason"]


def test_deadline_covers_attempts_and_waits(run: Runner, fake_time: FakeTime) -> None:
    def slow_failure() -> None:
        fake_time.now += 0.5
        raise _server_error()

    with pytest.raises(ServerError) as caught:
        run(slow_failure, fake_time, max_attempts=10, deadline=5.0)
    # 0.5 fail, wait 1, 2.0 fail, wait 2, 4.5 fail: a 4 s wait would pass 5 s
    assert fake_time.sleeps == [1.0, 2.0]
    assert caught.value.attempts == 3
    assert (
        caught.value.retry_after is None
    )  # the 4 s wait was ours, not the server's: no "server asked to wait"
    assert caught.value.message.endswith("(stopped: waiting 4s would pass the 5s deadline)")


def test_max_delay_caps_the_schedule(run: Runner, fake_time: FakeTime) -> None:
    func = _script(*[_server_error()] * 5, "ok")
    assert run(func, fake_time, max_attempts=6, max_delay=3.0) == "ok"
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_custom_predicate_replaces_the_classification(run: Runner, fake_time: FakeTime) -> None:
    func = _script(KeyError("flaky"), "ok")
    policy = RetryPolicy(max_attempts=2, retry_on=lambda e: isinstance(e, KeyError))
    assert run(func, fake_time, policy=policy) == "ok"


def test_full_jitter_is_seeded_and_identical_across_loops(fake_time: FakeTime) -> None:
    waits = []
    for runner in RUNNERS.values():
        fake = FakeTime()
        func = _script(_server_error(), _server_error(), _server_error(), "ok")
        runner(func, fake, max_attempts=4, jitter="full", rng=random.Random(7))
        waits.append(fake.sleeps)
    assert all(w == waits[0] for w in waits)
    assert waits[0] != [1.0, 2.0, 4.0]
    assert all(0 <= w <= c for w, c in zip(waits[0], [1, 2, 4], strict=True))


def test_every_loop_logs_the_same_events(events: Any) -> None:
    sequences = []
    for runner in RUNNERS.values():
        start = len(events())
        func = _script(_server_error(), NetworkError("reset"), "ok")
        runner(func, FakeTime(), max_attempts=4)
        sequences.append(
            [
                {k: v for k, v in e.items() if k not in ("timestamp", "latency_ms")}
                for e in events()[start:]
            ]
        )
    assert all(seq == sequences[0] for seq in sequences)
    assert names(sequences[0]) == ["API request failed", "Retry attempt"] * 2 + ["Retry succeeded"]
    assert sequences[0][2]["status_code"] is None
    assert sequences[0][3]["exception"] == "NetworkError: reset"


# --- review fixes: interruptions, other libraries' errors, a circuit opening mid-call ------------


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, asyncio.CancelledError])
def test_interruptions_are_never_retried_or_logged(
    run: Runner, fake_time: FakeTime, events: Any, interruption: type[BaseException]
) -> None:
    func = _script(interruption(), "ok")
    policy = RetryPolicy(max_attempts=4, retry_on=lambda error: True)
    with pytest.raises(interruption):
        run(func, fake_time, policy=policy)
    assert func.calls == 1  # type: ignore[attr-defined]
    assert events() == []


class _RequestsLikeError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("Response", (), {"status_code": status})()


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (urllib.error.HTTPError("http://x", 503, "Service Unavailable", {}, None), True),  # type: ignore[arg-type]
        (urllib.error.HTTPError("http://x", 404, "Not Found", {}, None), False),  # type: ignore[arg-type]
        (urllib.error.URLError(ConnectionRefusedError()), True),
        (urllib.error.URLError("unknown url type"), False),
        (socket.gaierror(-2, "Name or service not known"), True),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), True),
        (OSError(errno.ENOENT, "No such file"), False),
        (_RequestsLikeError(502), True),
        (_RequestsLikeError(400), False),
    ],
    ids=[
        "urllib-503",
        "urllib-404",
        "urlerror-refused",
        "urlerror-type",
        "dns",
        "unreachable",
        "enoent",
        "req-502",
        "req-400",
    ],
)
def test_other_libraries_errors_are_classified(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


@pytest.mark.parametrize("engine", [retry_with_custom_backoff, retry_with_tenacity])
def test_a_circuit_opening_during_the_wait_ends_with_the_last_real_error(
    engine: Any, events: Any
) -> None:
    from tweetgen.resilience import CircuitBreaker

    fake = FakeTime()
    breaker = CircuitBreaker(name="shared", consecutive_failures=3, clock=fake.clock)
    last = ServerError("down", status_code=503)

    def others_fail_while_we_wait(seconds: float) -> None:
        fake.sleep(seconds)
        for _ in range(3):
            breaker.record_failure()

    def func() -> str:
        raise last

    with pytest.raises(ServerError) as caught:
        engine(
            func, max_attempts=4, breaker=breaker, sleep=others_fail_while_we_wait, clock=fake.clock
        )
    assert caught.value is last
    assert caught.value.attempts == 1
    assert caught.value.retry_after == pytest.approx(30.0)
    assert [e["reason"] for e in events() if e["event"] == "Retries exhausted"] == [
        "circuit shared opened"
    ]


# --- options and a policy: never one silently ignored -----------------------------------------

ENGINES = {
    "retry_with_custom_backoff": retry_with_custom_backoff,
    "retry_with_tenacity": retry_with_tenacity,
    "aretry_with_custom_backoff": aretry_with_custom_backoff,
    "aretry_with_tenacity": aretry_with_tenacity,
}


def _call(name: str, *args: Any, **kwargs: Any) -> Any:
    engine = ENGINES[name]
    if name.startswith("a"):

        async def call() -> str:
            return "ok"

        return asyncio.run(engine(call, *args, **kwargs))
    return engine(lambda: "ok", *args, **kwargs)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_positional_option_that_disagrees_with_the_policy_fails_naming_both(name: str) -> None:
    with pytest.raises(TypeError) as caught:
        _call(name, 10, policy=RetryPolicy(max_attempts=4))
    message = str(caught.value)
    assert message.startswith(f"{name}(): max_attempts=10 disagrees with policy.max_attempts=4")
    with pytest.raises(TypeError, match=r"jitter='full' disagrees with policy.jitter='none'"):
        _call(name, policy=RetryPolicy(), jitter="full")


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_options_that_agree_with_the_policy_or_no_policy_at_all_work(name: str) -> None:
    assert _call(name, 4, 1.0, policy=RetryPolicy(max_attempts=4)) == "ok"
    assert _call(name, 3, 1.0, 10.0, jitter="full") == "ok"
    assert _call(name, max_attempts=3, base_delay=1.0, max_delay=10.0) == "ok"  # the seed's form


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_a_misspelt_option_names_the_callers_argument(name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument 'jiter'"):
        _call(name, jiter="full")


def test_the_seed_defaults_still_apply_without_a_policy(fake_time: FakeTime) -> None:
    func = _script(*[_server_error()] * 3, "never")
    with pytest.raises(ServerError) as caught:
        retry_with_custom_backoff(func, sleep=fake_time.sleep, clock=fake_time.clock)
    assert caught.value.attempts == 3
    assert fake_time.sleeps == [1.0, 2.0]


def test_decisions_are_values_that_say_what_stopped_the_call() -> None:
    from tweetgen.backoff import budget_stop, circuit_stop

    not_retryable = decide(
        RetryPolicy(), BadRequestError("no", status_code=400), attempt=1, elapsed=0
    )
    assert not not_retryable.retryable
    assert not not_retryable.gave_up
    exhausted = decide(RetryPolicy(max_attempts=1), _server_error(), attempt=1, elapsed=0)
    assert exhausted.gave_up
    assert exhausted.stopped_by == "attempts"
    assert circuit_stop("g/m", 5.0).reason == "circuit g/m is open"
    assert circuit_stop("g/m", 5.0, opened=True).reason == "circuit g/m opened"
    assert budget_stop().stopped_by == "retry budget"
    assert budget_stop().gave_up
