"""A batch row is done only when the store says so; batch-wide waits obey the caps and end on a
signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PROGRESS_TIMEOUT, Children, FakeTime, wait_until

from tweetgen import TweetGenerator, cli
from tweetgen.batch import ThrottledProvider, prepared_rows, run_batch
from tweetgen.config import load_settings
from tweetgen.errors import RateLimitError
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store, StoreError
from tweetgen.trace import AttemptTrace, CallTrace

SETTINGS = load_settings(env={}, dotenv_path=None)
KEY_SETTINGS = {"provider": "sandbox", "model": "m"}


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "hardening-test-key"}


def _topics(path: Path, count: int) -> Path:
    path.write_text("".join(f"topic number {i}\n" for i in range(count)))
    return path


def _limit_pages(monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
    """Make every store connection see a disk that is full after ``pages`` pages (SQLite's
    SQLITE_FULL)."""
    from tweetgen import store as store_module

    real = store_module._connect

    def connect(path: str, timeout: float) -> sqlite3.Connection:
        connection = real(path, timeout)
        connection.execute(f"PRAGMA max_page_count = {pages:d}")
        return connection

    monkeypatch.setattr(store_module, "_connect", connect)


# --- a row is ok only once it is stored ---------------------------------------------------------


def test_a_full_store_stops_the_batch_and_nothing_is_counted_that_was_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit_pages(monkeypatch, 12)
    source = _topics(tmp_path / "in.txt", 400)
    fake = FakeTime()
    with Store(tmp_path / "t.db") as store, SandboxServer() as server:
        provider = GeminiProvider(
            api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
        )
        generator = TweetGenerator(
            provider=provider,
            settings=SETTINGS,
            observers=[store.observer(required=True)],
            async_sleep=fake.asleep,
        )

        async def go() -> Any:
            try:
                return await run_batch(
                    prepared_rows(source, None, KEY_SETTINGS), generator, store, concurrency=8
                )
            finally:
                await generator.aclose()

        summary = asyncio.run(go())
        requests = len(server.requests)
        stored_ok = sum(1 for call in store.calls() if call.ok)
    assert isinstance(summary.store_error, StoreError)
    assert "database or disk is full" in str(summary.store_error)
    assert summary.ok == stored_ok  # every row counted ok is in the store
    assert 0 < stored_ok < 400
    assert summary.unsaved >= 1
    assert (
        requests <= stored_ok + summary.unsaved + 8
    )  # it stopped calling: at most the calls in flight more
    assert summary.total < 400


def test_the_cli_exits_1_with_a_sentence_when_the_store_fills_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _limit_pages(monkeypatch, 12)
    source = _topics(tmp_path / "in.txt", 300)
    out = tmp_path / "out.jsonl"
    with SandboxServer() as server:
        for name, value in _env(server).items():
            monkeypatch.setenv(name, value)
        argv = ["batch", str(source), "-o", str(out), "--db", str(tmp_path / "t.db")]
        # one process (--workers 1): its connections are the ones made to fill up
        code = cli.main([*argv, "--log-file", "", "-q", "--workers", "1"])
        requests = len(server.requests)
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot write to the tweetgen database" in err
    assert "database or disk is full" in err
    assert "Traceback" not in err
    assert requests < 300
    with Store(tmp_path / "t.db") as store:
        stored = [call for call in store.calls() if call.ok]
    summary = next(line for line in err.splitlines() if " rows: " in line)
    assert f" {len(stored)} ok," in summary  # the summary counts exactly what was kept
    records = [
        json.loads(line) for line in out.read_text().splitlines()
    ]  # what was kept is written out
    assert sum(r["status"] == "ok" for r in records) == len(stored)


def test_server_numbers_that_overflow_sqlite_are_clamped_not_fatal(tmp_path: Path) -> None:
    trace = CallTrace(request_id="r", provider="p", model="m", inputs={"topic": "t"})
    attempt = AttemptTrace(number=1)
    attempt.input_tokens, attempt.output_tokens, attempt.latency_ms = (
        10**30,
        -(10**40),
        float("inf"),
    )
    trace.attempts.append(attempt)
    trace.status, trace.text, trace.latency_ms = "ok", "text", float("nan")
    with Store(tmp_path / "t.db") as store:
        store.record(trace)
        (call,) = store.calls()
        (stored,) = store.attempts()
    assert stored.input_tokens == 2**63 - 1
    assert stored.output_tokens == -(2**63 - 1)
    assert stored.latency_ms is None
    assert call.latency_ms is None


def test_a_key_in_an_error_message_never_reaches_the_store(tmp_path: Path) -> None:
    from tweetgen.logs import register_secret

    key = "store-secret-" + "x7" * 12
    register_secret(key)
    trace = CallTrace(request_id="r", provider="p", model="m", inputs={"topic": "t"})
    attempt = AttemptTrace(number=1)
    attempt.error_type, attempt.error_message = "BadRequestError", f"API key not valid: {key}"
    trace.attempts.append(attempt)
    trace.status, trace.error_type, trace.error_message = (
        "failed",
        "BadRequestError",
        f"bad key {key}",
    )
    with Store(tmp_path / "t.db") as store:
        store.record(trace)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in raw
    assert b"[REDACTED]" in raw


# --- batch-wide waits ---------------------------------------------------------------------------


class _Limited:
    """A provider whose first attempt is a 429 with ``hint``; then it answers."""

    name, model = "fake", "m"

    def __init__(self, hint: float) -> None:
        self.hint = hint
        self.calls = 0

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        self.calls += 1
        if self.calls == 1:
            raise RateLimitError("Rate limit exceeded", status_code=429, retry_after=self.hint)
        return GenerationResult(texts=("ok",), provider="fake", model="m")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("hint", "paused"), [(30.0, True), (60.0, True), (61.0, False), (1e9, False)]
)
def test_only_hints_the_policy_would_honour_pause_the_batch(hint: float, paused: bool) -> None:
    fake = FakeTime()
    throttled = ThrottledProvider(
        _Limited(hint), max_pause=60.0, clock=fake.clock, sleep=fake.asleep
    )

    async def go() -> None:
        with pytest.raises(RateLimitError):
            await throttled.agenerate(GenerationRequest(prompt="p"))
        await throttled.agenerate(GenerationRequest(prompt="p"))

    asyncio.run(go())
    assert (throttled.pauses == 1) is paused
    assert fake.sleeps == ([pytest.approx(hint)] if paused else [])


def test_a_pause_past_the_calls_deadline_ends_the_attempt_at_once() -> None:
    fake = FakeTime()
    inner = _Limited(50.0)
    throttled = ThrottledProvider(inner, max_pause=60.0, clock=fake.clock, sleep=fake.asleep)
    throttled.pause_until = fake.now + 50.0
    generator = TweetGenerator(
        provider=throttled,
        settings=SETTINGS,
        policy=RetryPolicy(max_attempts=3, deadline=5.0, retry_rate_limits=True),
        async_sleep=fake.asleep,
        clock=fake.clock,
    )
    started = time.monotonic()
    with pytest.raises(RateLimitError, match="paused for 50s") as caught:
        asyncio.run(generator.agenerate("topic"))
    assert (
        time.monotonic() - started < PROGRESS_TIMEOUT
    )  # (virtual waits: this is a sanity bound only)
    assert inner.calls == 0  # nothing was sent while the batch was paused
    assert fake.sleeps == []
    assert caught.value.retry_after == pytest.approx(50.0)


def test_a_stop_ends_a_batch_wide_pause_at_once() -> None:
    """The first signal cancels waits: a row waiting in a pause is abandoned (run again next time),
    not failed."""

    class Blocking:
        def __init__(self) -> None:
            self.started = asyncio.Event()

        async def sleep(self, seconds: float) -> None:
            self.started.set()
            await asyncio.Event().wait()  # a wait that never ends by itself

    blocking = Blocking()
    throttled = ThrottledProvider(_Limited(1.0), sleep=blocking.sleep)
    throttled.pause_until = time.monotonic() + 3600

    async def go() -> None:
        throttled.stopping = asyncio.Event()
        task = asyncio.ensure_future(throttled.agenerate(GenerationRequest(prompt="p")))
        await blocking.started.wait()
        throttled.stopping.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=PROGRESS_TIMEOUT)

    asyncio.run(go())


def _batch_command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / "in.txt"), "-o",
        str(tmp_path / "out.jsonl"),
        "--db", str(tmp_path / "t.db"), "--log-file", str(tmp_path / "t.log"), "-q", *extra,
    ]  # fmt: skip


def test_an_absurd_retry_after_neither_freezes_the_batch_nor_stops_other_rows(
    tmp_path: Path,
) -> None:
    _topics(tmp_path / "in.txt", 20)
    with SandboxServer(faults="429:retry-after=1000000000") as server:
        result = subprocess.run(
            _batch_command(tmp_path, "--concurrency", "1", "--base-delay", "0"),
            env=_env(server),
            capture_output=True,
            text=True,
            timeout=PROGRESS_TIMEOUT * 2,
        )
        requests = len(server.requests)
    assert result.returncode == 1, result.stderr
    assert requests == 20  # every row was tried once: the hint above max_retry_after paused nobody
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records].count("ok") == 19
    assert "20 rows: 19 ok, 1 failed" in result.stderr


def test_the_first_sigterm_ends_a_long_rate_limit_wait_at_once(
    tmp_path: Path, children: Children
) -> None:
    _topics(tmp_path / "in.txt", 5)
    with SandboxServer(
        faults="429:50s"
    ) as server:  # a hint the policy honours: every row would wait 50 s
        process = children.start(
            _batch_command(tmp_path, "--concurrency", "1"),
            env=_env(server),
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: server.answers.get(429, 0) >= 1, what="the 429 answer", process=process)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(timeout=PROGRESS_TIMEOUT)
        took = time.monotonic() - signalled
        requests = len(server.requests)
        stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 130, stderr
    assert (
        took < 30
    )  # far below the 50 s wait (generous for a loaded machine; typically well under a second)
    assert requests == 1
    assert "run the same command again to resume" in stderr


def test_a_damaged_store_is_exit_2_with_a_sentence_and_the_output_is_kept(tmp_path: Path) -> None:
    _topics(tmp_path / "in.txt", 300)
    command = [*_batch_command(tmp_path), "--workers", "1"]  # the file holds calls, no work queue
    with SandboxServer() as server:
        first = subprocess.run(
            command, env=_env(server), capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        kept = (tmp_path / "out.jsonl").read_bytes()
        data = bytearray((tmp_path / "t.db").read_bytes())
        # damaged pages across the middle half of the file: the calls' and the attempts' pages
        # both (one page in the middle may land in an index neither command reads)
        start, end = len(data) // 4, 3 * len(data) // 4
        data[start:end] = b"\x13" * (end - start)
        (tmp_path / "t.db").write_bytes(bytes(data))
        again = subprocess.run(
            command, env=_env(server), capture_output=True, text=True, timeout=120
        )
        stats = subprocess.run(
            [sys.executable, "-m", "tweetgen", "stats", "--db", str(tmp_path / "t.db")],
            env=_env(server), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    for result in (again, stats):
        assert result.returncode == 2, result.stderr
        assert "cannot read the tweetgen database" in result.stderr
        assert "malformed" in result.stderr
        assert "Traceback" not in result.stderr
    assert (
        tmp_path / "out.jsonl"
    ).read_bytes() == kept  # nothing half-written over the good output


@pytest.mark.parametrize("signals", [1, 2])
def test_a_signal_ends_the_batch_within_the_timeout_of_calls_in_flight(
    tmp_path: Path, children: Children, signals: int
) -> None:
    """One signal: calls in flight end within --timeout and nothing new starts; two: they are
    abandoned."""
    from hostile import HostileServer, silent

    _topics(tmp_path / "in.txt", 10)
    timeout = 3.0 if signals == 1 else 60.0
    with HostileServer(silent) as server:
        env = _env(server)  # type: ignore[arg-type]  # only .url is read (a SandboxServer() here leaked its socket)
        process = children.start(
            _batch_command(tmp_path, "--concurrency", "2", "--timeout", f"{timeout:g}"),
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: server.count >= 2, what="two calls in flight", process=process)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        if (
            signals == 2
        ):  # signals sent back to back merge into one: wait until the first was handled
            log = tmp_path / "t.log"
            wait_until(
                lambda: log.exists() and "Batch stopping" in log.read_text(),
                what="the first",
                process=process,
            )
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=PROGRESS_TIMEOUT)
        took = time.monotonic() - signalled
        requests = server.count
    assert process.returncode == 130
    assert requests == 2  # nothing new was started after the signal
    assert took < (timeout + 1 if signals == 1 else 1) + 10  # + slack for a loaded machine
    if signals == 2:
        assert took < timeout / 2
