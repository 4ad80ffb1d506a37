"""Stats over a real store: hand-computed figures, percentiles, --since, and the text and JSON
reports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import FakeTime
from store_backends import any_target as any_target
from store_backends import other_target as other_target

from tweetgen import TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import InputError, ServerError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.stats import (
    LATENCY_BUCKETS_MS,
    LatencyRow,
    Stats,
    compute_stats,
    parse_since,
    percentile,
    render_json,
    render_text,
    summarize,
)
from tweetgen.store import Store
from tweetgen.trace import AttemptTrace, CallTrace

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
OK, FAIL = "ok", "failed"


def _attempt(
    number: int, status: int | None, error: str | None = None, delay: float = 0.0
) -> AttemptTrace:
    trace = AttemptTrace(
        number=number, delay_before=delay, latency_ms=10.0, status_code=status, error_type=error
    )
    if error is None:
        trace.input_tokens, trace.output_tokens = 10, 5
    else:
        trace.error_message = f"{error} {status}"
    return trace


# (provider, model, status, final error type, latency ms, regenerations, attempts as (status, error,
# delay))
DATASET: list[
    tuple[str, str, str, str | None, float, int, list[tuple[int | None, str | None, float]]]
] = [
    ("sandbox", "m1", OK, None, 100, 0, [(200, None, 0)]),
    ("sandbox", "m1", OK, None, 1200, 0, [(503, "ServerError", 0), (200, None, 1)]),
    (
        "sandbox",
        "m1",
        OK,
        None,
        3500,
        0,
        [(503, "ServerError", 0), (None, "NetworkError", 1), (200, None, 2)],
    ),
    (
        "sandbox",
        "m1",
        FAIL,
        "ServerError",
        7300,
        0,
        [(503, "ServerError", d) for d in (0, 1, 2, 4)],
    ),
    ("gemini", "m2", FAIL, "AuthenticationError", 50, 0, [(401, "AuthenticationError", 0)]),
    ("gemini", "m2", OK, None, 300, 1, [(200, None, 0), (200, None, 0)]),
    ("gemini", "m2", OK, None, 80, 0, [(200, None, 0)]),
]


def _trace(index: int) -> CallTrace:
    provider, model, status, error, latency, regenerations, attempts = DATASET[index]
    return CallTrace(
        request_id=f"c{index + 1}",
        provider=provider,
        model=model,
        inputs={"topic": "Python", "tone": "casual", "max_words": 20},
        started_at=(T0 + timedelta(minutes=index)).timestamp(),
        attempts=[_attempt(n, *spec) for n, spec in enumerate(attempts, 1)],
        regenerations=regenerations,
        status=status,
        text="A tweet." if status == OK else None,
        error_type=error,
        error_message=error and f"{error}: boom",
        latency_ms=latency,
    )


@pytest.fixture
def store(any_target: str) -> Iterator[Store]:
    with Store(any_target) as opened:
        observer = opened.observer()
        for index in range(len(DATASET)):
            observer.call_finished(_trace(index))
        yield opened


@pytest.fixture
def empty(other_target: str) -> Iterator[Store]:
    with Store(other_target) as opened:
        yield opened


# --- percentiles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (99, 50), (100, 50)]
)
def test_nearest_rank_percentiles_are_values_that_occurred(q: float, expected: float) -> None:
    assert percentile([50, 15, 40, 35, 20], q) == expected


def test_percentiles_of_one_to_a_hundred_are_exact() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert [percentile(values, q) for q in (50, 95, 99)] == [50.0, 95.0, 99.0]
    assert percentile([7.5], 99) == 7.5


@pytest.mark.parametrize(
    ("values", "q", "message"), [([], 50, "no values"), ([1.0], 101, "between 0 and 100")]
)
def test_percentile_refuses_nonsense(values: list[float], q: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        percentile(values, q)


# --- the figures -----------------------------------------------------------------------------


def test_stats_match_the_hand_computed_figures(store: Store) -> None:
    stats = compute_stats(store)
    assert (stats.calls, stats.ok, stats.failed) == (7, 5, 2)
    assert (stats.first_attempt_ok, stats.retried_ok) == (2, 3)
    assert stats.success_rate == pytest.approx(5 / 7)
    assert stats.first_attempt_rate == pytest.approx(2 / 7)
    assert stats.retried_rate == pytest.approx(3 / 7)
    assert stats.attempts == 14
    assert stats.attempts_histogram == {1: 3, 2: 2, 3: 1, 4: 1}
    assert stats.waited_seconds == pytest.approx(11.0)
    assert stats.waited_per_call == pytest.approx(11 / 7)
    assert stats.regenerations == 1
    assert (stats.input_tokens, stats.output_tokens) == (60, 30)
    assert list(stats.errors_by_status.items()) == [("503", 6), ("401", 1), ("none", 1)]
    assert list(stats.errors_by_type.items()) == [
        ("ServerError", 6),
        ("AuthenticationError", 1),
        ("NetworkError", 1),
    ]
    assert stats.failures_by_type == {"AuthenticationError": 1, "ServerError": 1}
    assert stats.latency == (
        LatencyRow("gemini", "m2", 2, 80, 300, 300, 300),
        LatencyRow("sandbox", "m1", 3, 1200, 3500, 3500, 3500),
    )
    assert {k: v for k, v in stats.latency_histogram.items() if v} == {
        "<100ms": 1,
        "100-250ms": 1,
        "250-500ms": 1,
        "1-2.5s": 1,
        "2.5-5s": 1,
    }
    assert list(stats.latency_histogram) == [label for label, _ in LATENCY_BUCKETS_MS]
    assert (stats.since, stats.first_call, stats.last_call) == (
        None,
        "2024-05-01T12:00:00.000000Z",
        "2024-05-01T12:06:00.000000Z",
    )


def test_since_keeps_only_later_calls_and_their_attempts(store: Store) -> None:
    stats = compute_stats(store, T0 + timedelta(minutes=3))
    assert stats.since == "2024-05-01T12:03:00.000000Z"
    assert (stats.calls, stats.ok, stats.failed, stats.attempts) == (4, 2, 2, 8)
    assert stats.errors_by_status == {"503": 4, "401": 1}
    assert stats.waited_seconds == pytest.approx(7.0)
    assert [(r.provider, r.count) for r in stats.latency] == [("gemini", 2)]


def test_an_empty_store_gives_zeros_and_no_rates(empty: Store) -> None:
    stats = compute_stats(empty)
    assert stats == Stats(
        latency_histogram=dict.fromkeys((label for label, _ in LATENCY_BUCKETS_MS), 0)
    )
    assert (stats.success_rate, stats.first_attempt_rate, stats.waited_per_call) == (
        None,
        None,
        None,
    )
    assert render_text(stats) == "tweetgen stats (all time): no calls recorded\n"
    assert json.loads(render_json(stats))["calls"] == 0


def test_attempt_histogram_gaps_are_filled_with_zeros() -> None:
    stats = summarize([], [])
    assert stats.attempts_histogram == {}
    with Store(":memory:") as store:
        store.record(_trace(0))
        store.record(_trace(3))
        assert compute_stats(store).attempts_histogram == {1: 1, 2: 0, 3: 0, 4: 1}


def test_a_real_generator_run_is_counted(any_target: str) -> None:
    fake = FakeTime()
    with Store(any_target) as store, SandboxServer(faults="503*2") as server:
        provider = GeminiProvider(
            api_key="k", model="gemini-flash-latest", base_url=server.url, name="sandbox"
        )
        generator = TweetGenerator(
            provider=provider,
            settings=load_settings(env={}, dotenv_path=None),
            policy=RetryPolicy.from_retries(1),
            sleep=fake.sleep,
            clock=fake.clock,
            observers=[store.observer()],
        )
        with generator, pytest.raises(ServerError):
            generator.generate("Python", "casual", 20)
        with generator:
            generator.generate("Python", "casual", 20)
        stats = compute_stats(store)
    assert (stats.calls, stats.ok, stats.failed, stats.first_attempt_ok) == (2, 1, 1, 1)
    assert stats.attempts_histogram == {1: 1, 2: 1}
    assert stats.errors_by_status == {"503": 2}
    assert stats.failures_by_type == {"ServerError": 1}
    assert stats.waited_seconds == pytest.approx(1.0)
    assert [(r.provider, r.model, r.count) for r in stats.latency] == [
        ("sandbox", "gemini-flash-latest", 1)
    ]


# --- --since ---------------------------------------------------------------------------------

NOW = datetime(2024, 5, 8, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("1h", NOW - timedelta(hours=1)),
        (" 7d ", NOW - timedelta(days=7)),
        ("2W", NOW - timedelta(weeks=2)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        ("2024-05-01T12:30", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        ("2024-05-01T14:30:00+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
    ],
)
def test_since_accepts_iso_moments_and_ages(text: str, expected: datetime) -> None:
    parsed = parse_since(text, now=NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_naive_now_means_utc() -> None:
    assert parse_since("1h", now=NOW.replace(tzinfo=None)) == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "1y", "-1h", "h", "2024-13-01", "99999999999999d", "1.5h"]
)
def test_bad_since_values_are_input_errors(text: str) -> None:
    with pytest.raises(
        InputError, match=r"invalid --since value .*ISO date.*30m, 1h, 7d"
    ) as caught:
        parse_since(text, now=NOW)
    assert not caught.value.retryable  # exit 2 comes from its type (cli.py)


# --- rendering -------------------------------------------------------------------------------

BAR = re.compile(r"^ +(\S+) \| (█*) ?(\d+)$")


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def _bars(text: str, title: str) -> dict[str, tuple[int, int]]:
    """Label -> (bar length, count) of a bar histogram section."""
    found = {}
    for line in _section(text, title):
        match = BAR.match(line)
        assert match, line
        found[match[1]] = (len(match[2]), int(match[3]))
    return found


def test_the_text_report_shows_the_figures(store: Store) -> None:
    text = render_text(compute_stats(store))
    calls = {line[:26].strip(): line[26:].split() for line in _section(text, "Calls")}
    assert calls["total"] == ["7"]
    assert calls["ok"] == ["5", "71.4%"]
    assert calls["failed"] == ["2", "28.6%"]
    assert calls["ok on first attempt"] == ["2", "28.6%"]
    assert calls["ok after more attempts"] == ["3", "42.9%"]
    assert calls["attempts"] == ["14"]
    assert calls["tokens in / out"] == ["60", "/", "30"]
    assert calls["retry overhead (waiting)"] == ["11.00", "s", "1.57", "s", "per", "call"]
    assert _bars(text, "Attempts per call") == {
        "1": (50, 3),
        "2": (33, 2),
        "3": (17, 1),
        "4": (17, 1),
    }
    assert _section(text, "Failed attempts by status code") == [
        "  503                              6",
        "  401                              1",
        "  none                             1",
    ]
    latency = [line.split() for line in _section(text, "Latency of ok calls (ms)")]
    assert latency == [
        ["provider", "model", "calls", "p50", "p95", "p99", "max"],
        ["gemini", "m2", "2", "80.0", "300.0", "300.0", "300.0"],
        ["sandbox", "m1", "3", "1200.0", "3500.0", "3500.0", "3500.0"],
    ]
    histogram = _bars(text, "Latency histogram of ok calls")
    assert list(histogram) == ["<100ms", "100-250ms", "250-500ms", "500ms-1s", "1-2.5s", "2.5-5s"]
    assert [count for _, count in histogram.values()] == [1, 1, 1, 0, 1, 1]
    assert histogram["500ms-1s"] == (0, 0)
    assert text.startswith(
        "tweetgen stats (all time)\n  calls from 2024-05-01 12:00:00Z to 2024-05-01 12:06:00Z\n"
    )


def test_the_text_report_fits_80_columns_whatever_the_names(any_target: str) -> None:
    with Store(any_target) as store:
        trace = _trace(3)
        trace.provider, trace.model = "p" * 40, "a-model-name-that-goes-on-" + "and-on-" * 10
        trace.attempts[0].error_type = "AVeryLongErrorTypeNameThatWouldOverflowTheColumns" * 2
        store.record(trace)
        wide = _trace(0)
        wide.provider, wide.model, wide.latency_ms = trace.provider, trace.model, 123456789.0
        store.record(wide)
        for n in range(120):
            store.record(_trace(6), idempotency_key=str(n))
        text = render_text(compute_stats(store, parse_since("2000-01-01")))
    assert all(len(line) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "…" in text
    assert _bars(text, "Attempts per call")["1"] == (50, 121)


def test_the_json_report_parses_and_keeps_its_keys(store: Store, empty: Store) -> None:
    full = json.loads(render_json(compute_stats(store)))
    blank = json.loads(render_json(compute_stats(empty)))
    assert list(full) == list(blank)
    assert full["attempts_histogram"] == {"1": 3, "2": 2, "3": 1, "4": 1}
    assert (full["success_rate"], full["first_attempt_rate"], full["waited_per_call"]) == (
        0.7143,
        0.2857,
        1.571,
    )
    assert full["latency_ms"][1] == {
        "provider": "sandbox",
        "model": "m1",
        "count": 3,
        "p50": 1200.0,
        "p95": 3500.0,
        "p99": 3500.0,
        "max": 3500.0,
    }
    assert full["errors_by_type"] == {"ServerError": 6, "AuthenticationError": 1, "NetworkError": 1}
    assert blank["success_rate"] is None
    assert blank["latency_ms"] == []
    since = json.loads(render_json(compute_stats(store, parse_since("2024-05-01T12:05Z"))))
    assert (since["since"], since["calls"]) == ("2024-05-01T12:05:00.000000Z", 2)


def test_stats_to_dict_is_what_render_json_prints(store: Store) -> None:
    stats = compute_stats(store)
    data: dict[str, Any] = stats.to_dict()
    assert json.loads(render_json(stats)) == json.loads(json.dumps(data))
