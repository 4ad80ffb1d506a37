"""Fleet-wide limits on PostgreSQL (issue 14, item 3), in one process: several :class:`Fleet`
handles on one database stand for several processes (each has its own connection and private
loop). The fleet of real processes is tests/test_shared_fleet.py.

No test sleeps to wait for something: waits are the limiter's own answers (seconds to the slot,
checked without sleeping them) or :func:`wait_until` a condition.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import wait_until
from shared_proxy import Proxy

from tweetgen import CircuitOpenError, ServerError, TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import ConfigurationError
from tweetgen.metrics import PrometheusObserver
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import BreakerSettings
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.shared import Fleet, SharedUnavailableError, fleet
from tweetgen.sharedguards import SharedBreaker, SharedBudget
from tweetgen.sharedpg import CONNECT_BOUND, ROUND_TRIP_BOUND
from tweetgen.throttle import ThrottledProvider, estimate_tokens

SETTINGS = load_settings(env={}, dotenv_path=None)
UNAVAILABLE = "Shared state unavailable"


@pytest.fixture
def fleets(postgres_url: str) -> Iterator[list[Fleet]]:
    """Four handles on one fresh database: four processes of a fleet."""
    handles = [Fleet(postgres_url) for _ in range(4)]
    try:
        yield handles
    finally:
        for handle in handles:
            handle.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _generator(server: SandboxServer, shared: str, **options: Any) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="test-key", model="m", base_url=server.url, name="sandbox", secret_key=False
    )
    return TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        policy=RetryPolicy.from_retries(3, base_delay=0.01),
        shared=shared,
        **options,
    )


def _breakers(
    fleets: list[Fleet], changes: list[tuple[str, str, str]], open_seconds: float = 0.5
) -> list[SharedBreaker]:
    """One breaker per process; ``open_seconds`` long enough for the steps a test takes while the
    fleet is open (a busy machine), short enough to wait for."""
    return [
        SharedBreaker(
            fleet=f,
            name="sandbox/m",
            on_change=lambda *change: changes.append(change),
            consecutive_failures=10,
            open_seconds=open_seconds,
            half_open_calls=2,
        )
        for f in fleets
    ]


# --- the rate limit -------------------------------------------------------------------------------


def test_the_fleet_grants_one_slot_per_interval_whoever_asks(fleets: list[Fleet]) -> None:
    """30 acquires from 4 processes' connections in parallel, 10 s per request: the slots are 0,
    10, ..., 290 s from now, each granted once (GCRA on the database's clock; the waits are read,
    not slept)."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        waits = list(pool.map(lambda i: fleets[i % 4].acquire("p/m", 10.0, 0.0)[0], range(30)))
    assert [round(w / 10) for w in sorted(waits)] == list(range(30))


def test_tokens_are_counted_before_and_corrected_after(fleets: list[Fleet]) -> None:
    a, b = fleets[:2]
    assert a.acquire("p/m", 0.0, 20.0)[0] == pytest.approx(0.0, abs=3)
    assert b.acquire("p/m", 0.0, 20.0)[0] == pytest.approx(20.0, abs=3)
    b.correct("p/m", 15.0)  # the answer used 15 s worth of tokens less than estimated
    wait_until(lambda: a.acquire("p/m", 0.0, 0.0)[0] < 30.0, what="the correction to land")
    assert estimate_tokens(GenerationRequest(prompt="x" * 401)) == 101 + 1024
    assert estimate_tokens(GenerationRequest(prompt="", candidate_count=3)) == 3 * 1024


def test_a_429_hint_pauses_every_process(fleets: list[Fleet]) -> None:
    fleets[0].pause("p/m", 50.0)
    wait, paused = wait_until(
        lambda: (got := fleets[3].acquire("p/m", 0.1, 0.0))[1] > 0 and got,
        what="the pause to reach another process",
    )
    assert 40.0 < paused <= 50.0
    assert wait == pytest.approx(paused, abs=2)


# --- the circuit breaker --------------------------------------------------------------------------


def test_the_fleet_breaker_opens_once_and_every_process_fails_fast(fleets: list[Fleet]) -> None:
    changes: list[tuple[str, str, str]] = []
    breakers = _breakers(fleets, changes, open_seconds=3.0)
    for i in range(12):  # 12 failures in a row, from 4 processes: the streak is the fleet's
        breaker = breakers[i % 4]
        breaker.acquire()
        breaker.record_failure()
    wait_until(lambda: all(b.state != "closed" for b in breakers), what="every process to see it")
    assert changes == [("sandbox/m", "closed", "open")]
    for breaker in breakers:
        with pytest.raises(CircuitOpenError):
            breaker.acquire()
    # half-open is the fleet's too: 2 trial permits in all, then closed once
    wait_until(lambda: breakers[0].state == "half_open", what="the open period to end")
    breakers[0].acquire()
    breakers[1].acquire()
    with pytest.raises(CircuitOpenError, match="trial calls of the fleet"):
        breakers[2].acquire()
    breakers[0].record_success()
    breakers[1].record_success()
    wait_until(lambda: ("sandbox/m", "half_open", "closed") in changes, what="the fleet to close")
    assert [c[2] for c in changes] == ["open", "half_open", "closed"]


def test_permits_of_a_process_that_died_are_given_again(fleets: list[Fleet]) -> None:
    changes: list[tuple[str, str, str]] = []
    breakers = _breakers(fleets, changes, open_seconds=2.0)
    for i in range(10):
        breakers[i % 4].record_failure()
    wait_until(lambda: breakers[0].state == "half_open", what="the open period to end")
    breakers[0].acquire()  # two permits taken by processes that are then killed
    breakers[1].acquire()

    def admitted() -> bool:
        try:
            breakers[2].acquire()
        except CircuitOpenError:
            return False
        return True

    wait_until(admitted, what="a new round of trials after open_seconds")
    breakers[2].record_success()
    wait_until(lambda: breakers[3].state == "half_open", what="its view (0.2 s old at most)")
    breakers[3].acquire()
    breakers[3].record_success()
    wait_until(lambda: breakers[3].state == "closed", what="the fleet to close")


def test_a_success_anywhere_resets_the_fleets_streak(fleets: list[Fleet]) -> None:
    changes: list[tuple[str, str, str]] = []
    breakers = _breakers(fleets, changes)

    def streak() -> int:
        return int(fleets[0].call(breakers[0]._step("read"))[3])

    def seen_by_the_fourth() -> int:  # its view, refreshed as it admits calls
        breakers[3].acquire()
        return breakers[3]._streak_seen

    for round_ in range(3):  # 9 failures, a success: 27 failures in all, never 10 in a row
        for i in range(9):
            breakers[i % 3].record_failure()
        wait_until(lambda: streak() == 9, what=f"round {round_}'s failures to land")
        wait_until(lambda: seen_by_the_fourth() == 9, what="the fourth process to see them")
        breakers[3].record_success()  # a process that saw no failure itself
        wait_until(lambda: streak() == 0, what=f"round {round_}'s success to reset the streak")
    assert changes == []


# --- the retry budget -----------------------------------------------------------------------------


def test_the_retry_budget_is_the_fleets(fleets: list[Fleet]) -> None:
    budgets = [SharedBudget(f, ratio=0.0, reserve=2, k=2.0) for f in fleets[:2]]
    for budget in budgets:
        budget.record_request()
        budget.record_attempt(accepted=False)
    spent = [budgets[i % 2].try_spend() for i in range(4)]
    assert spent == [True, True, False, False]
    assert budgets[1].snapshot().retries == 2
    assert budgets[1].snapshot().requests == 2


# --- the fleet through a generator ----------------------------------------------------------------


def test_generation_is_shared_sync_and_async(postgres_url: str, events: Any) -> None:
    metrics = PrometheusObserver()
    with (
        SandboxServer() as server,
        _generator(server, postgres_url, observers=[metrics]) as generator,
    ):
        assert generator.generate("AI").text
        labels = {"shared": fleet(postgres_url).safe}
        sample = metrics.registry.get_sample_value("tweetgen_shared_state_available", labels)
        assert sample == 1.0

        async def one() -> None:
            await generator.agenerate("AI")
            await generator.aclose()

        asyncio.run(one())
        shared = fleet(postgres_url)
        assert shared.acquire("sandbox/m", 0.0, 0.0)[0] == pytest.approx(0.0, abs=0.5)
        row = shared.call(shared.fetch("SELECT count(*) FROM tweetgen_shared_limit", ()))
        assert row[0] >= 1
    assert UNAVAILABLE not in [e["event"] for e in events()]


# --- when the shared state cannot be reached ------------------------------------------------------


def test_an_unreachable_server_means_local_limits_one_warning_and_no_wait(events: Any) -> None:
    url = f"postgresql://tweetgen:s3cret-pw@127.0.0.1:{_free_port()}/fleet"
    metrics = PrometheusObserver()
    started = time.monotonic()
    with SandboxServer() as server, _generator(server, url, observers=[metrics]) as generator:
        for i in range(5):
            assert generator.generate(f"topic {i}").text

        async def some() -> None:
            await asyncio.gather(*(generator.agenerate(f"async {i}") for i in range(5)))
            await generator.aclose()

        asyncio.run(some())
    assert time.monotonic() - started < CONNECT_BOUND + 10  # no call waited for a dead server
    warnings = [e for e in events() if e["event"] == UNAVAILABLE]
    assert len(warnings) == 1
    assert warnings[0]["fallback"] == "local limits"
    assert "s3cret-pw" not in str(events())
    assert "127.0.0.1" in warnings[0]["shared"]
    labels = {"shared": fleet(url).safe}
    sample = metrics.registry.get_sample_value("tweetgen_shared_state_available", labels)
    assert sample == 0.0


def test_without_the_fleet_the_local_breaker_opens_and_says_so(events: Any) -> None:
    url = f"postgresql://u@127.0.0.1:{_free_port()}/fleet"
    settings = BreakerSettings(consecutive_failures=3)
    with SandboxServer(faults="503*100") as server:
        with _generator(server, url, circuit_breaker=settings, retry_budget=False) as generator:
            with pytest.raises(ServerError):
                generator.generate("AI")
            with pytest.raises(CircuitOpenError):
                generator.generate("AI")
        assert len(server.requests) == 3
    assert [e["event"] for e in events()].count("Circuit opened") == 1


def test_a_server_dropped_mid_run_then_back(postgres_url: str, events: Any) -> None:
    proxy = Proxy(postgres_url)
    shared = Fleet(proxy.url)
    try:
        assert shared.acquire("p/m", 0.0, 0.0)[0] == pytest.approx(0.0, abs=0.5)
        proxy.cut()
        with pytest.raises(SharedUnavailableError):
            shared.acquire("p/m", 0.0, 0.0)
        assert not shared.available()  # no round trip any more: callers use local limits
        assert [e["event"] for e in events()].count(UNAVAILABLE) == 1
        proxy = Proxy(postgres_url, port=proxy.port)  # the server is back
        # the probe's thread makes the state available, then logs it: wait for both
        wait_until(
            lambda: (
                shared.available() and "Shared state restored" in [e["event"] for e in events()]
            ),
            what="the probe to reconnect and say so",
            timeout=30,
        )
        assert shared.acquire("p/m", 0.0, 0.0)[0] == pytest.approx(0.0, abs=0.5)
    finally:
        proxy.cut()
        shared.close()


def test_a_breaker_follows_the_fleet_again_once_it_is_back(fleets: list[Fleet]) -> None:
    proxy = Proxy(fleets[0].url)
    changes: list[tuple[str, str, str]] = []
    through = Fleet(proxy.url)
    breaker, other = _breakers([through, fleets[0]], changes)
    try:
        assert breaker.state == "closed"
        wait_until(lambda: through.up and breaker._seen_at > 0, what="a first view")
        proxy.cut()
        wait_until(lambda: breaker.state == "closed" and not through.up, what="the fallback")
        for _ in range(10):  # the fleet opens while this process cannot see it
            other.record_failure()
        wait_until(lambda: other.state == "open", what="the fleet to open")
        proxy = Proxy(fleets[0].url, port=proxy.port)
        # open, or half-open already if reconnecting took longer than open_seconds (0.5 s)
        wait_until(lambda: breaker.state != "closed", what="the view to follow the fleet again")
    finally:
        proxy.cut()
        through.close()


def test_a_hung_server_delays_a_call_by_the_bound_only(postgres_url: str, events: Any) -> None:
    proxy = Proxy(postgres_url)
    shared = None
    try:
        with SandboxServer() as server:
            provider = GeminiProvider(
                api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
            )
            shared = Fleet(proxy.url)
            throttled = ThrottledProvider(provider, rpm=6000, shared=shared)
            assert throttled.generate(GenerationRequest(prompt="warm up")).texts
            proxy.hung.set()  # connections stay open, nothing comes back
            started = time.monotonic()
            assert throttled.generate(GenerationRequest(prompt="during the hang")).texts
            assert time.monotonic() - started < ROUND_TRIP_BOUND + CONNECT_BOUND + 1.0
            assert not shared.available()  # local limits now: no round trip is tried
            assert throttled.generate(GenerationRequest(prompt="after")).texts
            throttled.close()
    finally:
        proxy.cut()
        if shared is not None:
            shared.close()
    assert [e["event"] for e in events()].count(UNAVAILABLE) == 1


def test_without_psycopg_a_postgresql_url_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'tweetgen\[postgres\]'"):
        Fleet("postgresql://u@127.0.0.1:1/x")


def test_naming_a_shared_state_imports_no_driver_until_it_is_used() -> None:
    code = (
        "import sys, tweetgen.throttle, tweetgen.sharedguards, tweetgen.edge\n"
        "from tweetgen.config import load_settings\n"
        "s = load_settings(env={'TWEETGEN_SHARED': 'postgresql://u@db/x'}, dotenv_path=None)\n"
        "assert s.shared == 'postgresql://u@db/x' and 'psycopg' not in sys.modules\n"
        "assert 'postgresql' not in repr(s)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_option_is_typed_and_part_of_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from tweetgen import api
    from tweetgen.edge import ClientOptions, _cache

    url = f"postgresql://u@127.0.0.1:{_free_port()}/x"
    assert ClientOptions(shared=url) != ClientOptions()
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    try:
        assert api.generate_tweet("AI", provider="sandbox", shared=url)
        assert api.generate_tweet("AI", provider="sandbox")
        keyed = [key[0].shared for key in _cache]
        assert url in keyed
        assert None in keyed
    finally:
        api.close_cached()


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "TWEETGEN_SHARED", "TWEETGEN_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TWEETGEN_LOG_FILE", "")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_with_an_unreachable_shared_state_still_answers(
    workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tweetgen.cli import main

    url = f"postgresql://tweetgen:s3cret-pw@127.0.0.1:{_free_port()}/fleet"
    assert main(["generate", "--topic", "AI", "--shared", url]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert captured.err.count(UNAVAILABLE) == 1
    assert "s3cret-pw" not in captured.out + captured.err


def test_batch_shares_its_rpm_and_tpm(
    workdir: Any, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tweetgen.cli import main

    (workdir / "in.txt").write_text("Rust\nGo\nZig\n", encoding="utf-8")
    command = ["batch", "in.txt", "-o", "out.jsonl", "--workers", "1", "--shared", postgres_url]
    assert main([*command, "--rpm", "6000", "--tpm", "1000000"]) == 0, capsys.readouterr().err
    assert len((workdir / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    shared = fleet(postgres_url)
    sql = "SELECT key FROM tweetgen_shared_limit WHERE tat_requests > slot"
    assert shared.call(shared.fetch(sql, ())) == ("sandbox/gemini-flash-latest",)
