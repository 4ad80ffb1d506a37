"""A total outage over real sockets: the retry budget caps the load, the breaker fails fast and
recovers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import FakeTime, names

from tweetgen import CircuitOpenError, ServerError, TweetGenerator
from tweetgen.config import load_settings
from tweetgen.metrics import PrometheusObserver
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import BreakerSettings
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer

SETTINGS = load_settings(env={}, dotenv_path=None)
CALLERS = 50


def _generator(server: SandboxServer, fake: FakeTime, **kwargs: Any) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
    )
    return TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        policy=RetryPolicy.from_retries(3),
        sleep=fake.sleep,
        async_sleep=fake.asleep,
        clock=fake.clock,
        **kwargs,
    )


def _outage(generator: TweetGenerator, callers: int = CALLERS) -> list[BaseException | object]:
    async def go() -> list[BaseException | object]:
        try:
            calls = [generator.agenerate(f"topic {i}") for i in range(callers)]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await generator.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("budget", "most"),
    [(False, 4.0), (True, 1.2)],
    ids=["no-budget", "budget"],
)
def test_requests_per_call_under_a_total_outage(budget: bool, most: float) -> None:
    fake = FakeTime()
    with SandboxServer(faults="503*1000") as server:
        results = _outage(_generator(server, fake, circuit_breaker=False, retry_budget=budget))
        amplification = len(server.requests) / CALLERS
    assert all(isinstance(r, ServerError) for r in results)
    assert amplification <= most
    if budget:
        # 50 first attempts + a reserve of 3 retries + 10 % of 50 requests
        assert amplification == pytest.approx(1.16)
    else:
        assert amplification == 4.0


def test_budget_denials_are_logged_and_counted(events: Any) -> None:
    observer = PrometheusObserver()
    with SandboxServer(faults="503*1000") as server:
        _outage(
            _generator(server, FakeTime(), circuit_breaker=False, observers=[observer]), callers=10
        )
    denied = [e for e in events() if e["event"] == "Retry denied"]
    exhausted = [
        e for e in events() if e["event"] == "Retries exhausted" and "budget" in e["reason"]
    ]
    assert denied
    assert len(exhausted) == len(denied)
    total = observer.registry.get_sample_value(
        "tweetgen_retries_denied_total", {"provider": "sandbox", "model": "m"}
    )
    assert total == len(denied)


def test_breaker_opens_fails_fast_and_closes_after_recovery(events: Any) -> None:
    fake = FakeTime()
    settings = BreakerSettings(consecutive_failures=5, open_seconds=30.0, half_open_calls=2)
    with SandboxServer(faults="503*8") as server:
        generator = _generator(server, fake, circuit_breaker=settings, retry_budget=False)
        with generator:
            with pytest.raises(ServerError) as first:
                generator.generate("AI")
            with pytest.raises(ServerError) as second:
                generator.generate("AI")
            # 4 + 1 attempts reached the server; the 5th consecutive failure opened the circuit
            assert (first.value.attempts, second.value.attempts) == (4, 1)
            assert generator.breaker is not None
            assert generator.breaker.state == "open"
            seen = len(server.requests)
            with pytest.raises(CircuitOpenError) as fast:
                generator.generate("AI")
            assert len(server.requests) == seen
            assert fast.value.retry_after == pytest.approx(30.0)
            assert "try again in 30" in str(fast.value)
            fake.now += 30.0
            server.faults.clear()
            assert generator.generate("AI").text
            assert generator.generate("AI").text
            assert generator.breaker.state == "closed"
    logged = [e["event"] for e in events() if e["event"].startswith("Circuit")]
    assert logged == ["Circuit opened", "Circuit half-open", "Circuit closed"]


def test_client_errors_do_not_open_the_breaker() -> None:
    fake = FakeTime()
    with SandboxServer(faults="400*10") as server, _generator(server, fake) as generator:
        for _ in range(10):
            with pytest.raises(Exception, match="HTTP 400"):
                generator.generate("AI")
        assert generator.breaker is not None
        assert generator.breaker.state == "closed"


def test_a_lone_call_keeps_the_seed_schedule_with_budget_and_breaker_on(events: Any) -> None:
    fake = FakeTime()
    with SandboxServer(faults="503*3") as server, _generator(server, fake) as generator:
        tweet = generator.generate("AI")
    assert tweet.attempts == 4
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert "Retry denied" not in names(events())
