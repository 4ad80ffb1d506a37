"""A batch meets a quota no wait clears (issue 15, part 2): a daily quota spent in the middle of a
500-row batch stops it at once (no request after the round in flight, counted at the sandbox), the
rows are kept, exit 1, the summary names the reset time, and the same command, rerun once the quota
is back, finishes the rest; the summary's spend line."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tweetgen.batch import _Spend
from tweetgen.batchsummary import BatchSummary, dollars, failure_kind, quota_stop
from tweetgen.errors import RateLimitError
from tweetgen.quotas import next_pacific_midnight, reset_time
from tweetgen.sandbox import Quota, SandboxServer
from tweetgen.trace import AttemptTrace, CallTrace

ROWS, DAILY, CONCURRENCY = 500, 180, 4


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "batch-test-key"}


def _batch(tmp_path: Path, server: SandboxServer) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / "in.csv"),
        "-o", str(tmp_path / "out.jsonl"), "--db", str(tmp_path / "t.db"),
        "--log-file", str(tmp_path / "t.log"), "-q", "--base-delay", "0", "--workers", "1",
        "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip
    return subprocess.run(command, env=_env(server), capture_output=True, text=True, timeout=300)


def _db(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(tmp_path / "t.db")) as connection:
        return connection.execute(sql).fetchall()


def test_a_daily_quota_spent_mid_batch_stops_it_and_the_rerun_finishes(tmp_path: Path) -> None:
    lines = ["topic,tone,max_words"] + [f"Topic number {i},casual,20" for i in range(ROWS)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    before = reset_time(next_pacific_midnight(dt.datetime.now(dt.timezone.utc)))
    with SandboxServer(quota=Quota.per_day(DAILY)) as server:
        first = _batch(tmp_path, server)
        after = reset_time(next_pacific_midnight(dt.datetime.now(dt.timezone.utc)))
        assert server.quota is not None
        accepted, refused = server.quota.accepted, server.quota.refused
        sent = len(server.requests)
        ok = _db(tmp_path, "SELECT COUNT(*) FROM calls WHERE status = 'ok'")
        failed = _db(tmp_path, "SELECT quota_kind, COUNT(*) FROM calls WHERE status = 'failed'")
        server.quota = None  # the quota is back (midnight Pacific came)
        again = _batch(tmp_path, server)
        resent = len(server.requests) - sent
    assert first.returncode == 1, first.stderr
    assert accepted == DAILY
    # the round in flight when the first daily 429 came back, and not one request more
    assert 1 <= refused <= CONCURRENCY
    assert sent == accepted + refused
    pattern = (
        r"the daily quota for \S+ is spent; it resets at (\d\d:\d\d UTC); rerun the same command "
        "then"
    )
    found = re.search(pattern, first.stderr)
    assert found is not None, first.stderr
    assert found.group(1) in (before, after)  # a run across midnight Pacific may say either
    assert "daily quota (HTTP 429)" in first.stderr
    assert ok == [(DAILY,)]
    assert failed == [("per-day", refused)]  # kept; the rows never attempted are not stored
    # the rerun: the rows that met the quota and those never attempted, nothing twice
    assert again.returncode == 0, again.stderr
    assert resent == ROWS - DAILY
    assert _db(
        tmp_path, "SELECT COUNT(DISTINCT idempotency_key) FROM calls WHERE status = 'ok'"
    ) == [(ROWS,)]
    records = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(records) == ROWS


def _daily() -> RateLimitError:
    error = RateLimitError(
        "the daily request quota ...",
        status_code=429,
        quota_kind="per-day",
        resets_at=dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.timezone.utc),
    )
    error.retryable = False
    return error


def test_the_stop_lines_for_each_final_kind() -> None:
    assert quota_stop(_daily(), "gemini-x") == (
        "the daily quota for gemini-x is spent; it resets at 08:00 UTC; rerun the same command then"
    )
    capped = RateLimitError("x", status_code=429, quota_kind="spend-cap")
    assert "spend cap is reached for gemini-x" in quota_stop(capped, "gemini-x")
    broke = RateLimitError("x", status_code=429, quota_kind="prepay-depleted")
    assert "prepaid credits are used up" in quota_stop(broke, "gemini-x")
    assert failure_kind(_daily()) == "daily quota (HTTP 429)"
    assert failure_kind(RateLimitError("x", status_code=429)) == "HTTP 429"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0.0, "$0"), (0.0123, "$0.0123"), (0.000123, "$0.00012"), (3.14159, "$3.14"),
     (1234.5, "$1,234.50"), (0.0000004, "$0.00000040")],
)  # fmt: skip
def test_dollars_for_tiny_and_large_amounts(amount: float, shown: str) -> None:
    assert dollars(amount) == shown


def _call(*costs: float | None) -> CallTrace:
    attempts = [AttemptTrace(number=i + 1, cost_usd=c) for i, c in enumerate(costs)]
    return CallTrace(request_id="r", provider="p", model="m", attempts=attempts)


def test_the_spend_line_sums_known_calls_and_counts_unknown_ones() -> None:
    summary = BatchSummary(total=4, ok=3)
    spend = _Spend(summary)
    spend.call_finished(_call(0.0, 0.01))  # a failed attempt, then an answer
    spend.call_finished(_call(0.0023))
    spend.call_finished(_call(0.0, None))  # an answer at an unknown price
    spend.call_finished(_call())  # no attempt (refused before sending): not a call
    assert (summary.calls, summary.unknown_cost) == (3, 1)
    assert summary.cost_usd == pytest.approx(0.0123)
    assert "spent: $0.0123 (1 call at an unknown price)" in summary.lines()
    merged = BatchSummary()
    merged.merge(summary.to_json())
    merged.merge(summary.to_json())
    assert (merged.calls, merged.unknown_cost) == (6, 2)
    assert merged.cost_usd == pytest.approx(0.0246)
    assert not any(line.startswith("spent") for line in BatchSummary().lines())
    unknown = BatchSummary(calls=2, unknown_cost=2)
    assert "spent: unknown (2 calls at an unknown price)" in unknown.lines()
