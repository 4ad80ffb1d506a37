"""Degraded is not down: with the default settings, a service failing 20 % of attempts at random
still gets the configured retries (single calls, 50 threads, a 500-row batch), while a total outage
is not amplified.

Every scenario runs over real sockets against the sandbox with seeded random 503s; waits are
virtual. With ``max_retries=3`` a call fails only when all four attempts fail: 0.2 ** 4 = 0.16 %, so
>= 99 % must succeed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeTime

from tweetgen import TweetGenerator
from tweetgen.api import close_cached, generate_tweet
from tweetgen.batch import prepared_rows, run_batch
from tweetgen.config import load_settings
from tweetgen.errors import TweetGenError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import RetryBudget
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import FaultScript, SandboxServer
from tweetgen.store import Store

SETTINGS = load_settings(env={}, dotenv_path=None)
RATE = 0.2


def _degraded(seed: int) -> SandboxServer:
    server = SandboxServer()
    server.faults = FaultScript(error_rate=RATE, seed=seed)
    return server


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
        **kwargs,
    )


def test_one_caller_keeps_its_retries_through_a_degraded_service() -> None:
    fake = FakeTime()
    ok = 0
    with _degraded(seed=1) as server, _generator(server, fake) as generator:
        for i in range(300):
            try:
                generator.generate(f"topic {i}")
                ok += 1
            except TweetGenError:
                pass
        failed_attempts = server.answers.get(503, 0)
    assert failed_attempts > 40  # the service really was degraded
    assert ok / 300 >= 0.99


def test_fifty_threads_of_generate_tweet_keep_their_retries() -> None:
    """The seed's module-level function: 50 threads x 10 calls share one breaker and one retry
    budget."""
    fake = FakeTime()

    def caller(index: int) -> int:
        done = 0
        for j in range(10):
            try:
                generate_tweet(
                    f"topic {index}-{j}", api_key="k", base_url=server.url, sleep=fake.sleep
                )
                done += 1
            except TweetGenError:
                pass
        return done

    try:
        with _degraded(seed=2) as server, ThreadPoolExecutor(max_workers=50) as pool:
            ok = sum(pool.map(caller, range(50)))
            failed_attempts = server.answers.get(503, 0)
    finally:
        close_cached()
    assert failed_attempts > 60
    assert ok / 500 >= 0.99


def test_a_batch_with_the_cli_defaults_loses_no_rows_to_a_degraded_service(tmp_path: Path) -> None:
    """The CLI's batch defaults: full jitter, a 20 % budget, the breaker on, 50 rows in flight."""
    fake = FakeTime()
    (tmp_path / "in.txt").write_text("".join(f"topic number {i}\n" for i in range(500)))
    policy = RetryPolicy.from_retries(3, jitter="full")
    with Store(tmp_path / "t.db") as store, _degraded(seed=3) as server:
        provider = GeminiProvider(
            api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
        )
        generator = TweetGenerator(
            provider=provider,
            settings=SETTINGS,
            policy=policy,
            retry_budget=RetryBudget(ratio=0.2, reserve=3),
            observers=[store.observer()],
            async_sleep=fake.asleep,
        )

        async def go() -> Any:
            try:
                rows = prepared_rows(
                    tmp_path / "in.txt", None, {"provider": "sandbox", "model": "m"}
                )
                return await run_batch(rows, generator, store, batch_id="b", concurrency=50)
            finally:
                await generator.aclose()

        summary = asyncio.run(go())
        failed_attempts = server.answers.get(503, 0)
    assert failed_attempts > 80
    assert summary.ok / 500 >= 0.99, summary.lines()


@pytest.mark.parametrize("callers", [1, 50])
def test_a_total_outage_is_still_not_amplified_with_the_defaults(callers: int) -> None:
    """The same defaults under a total outage: at most 1.2 requests per call, and the circuit
    opens."""
    fake = FakeTime()
    calls = 200 if callers == 1 else 4 * callers

    async def go(generator: TweetGenerator) -> list[Any]:
        try:
            if callers == 1:
                results: list[Any] = []
                for i in range(calls):
                    try:
                        results.append(await generator.agenerate(f"topic {i}"))
                    except TweetGenError as error:
                        results.append(error)
                return results
            waves: list[Any] = []
            for wave in range(
                calls // callers
            ):  # waves of concurrent callers: later waves meet the open circuit
                tasks = [generator.agenerate(f"topic {wave}-{i}") for i in range(callers)]
                waves += await asyncio.gather(*tasks, return_exceptions=True)
            return waves
        finally:
            await generator.aclose()

    with SandboxServer(faults="503*100000") as server:
        results = asyncio.run(go(_generator(server, fake)))
        amplification = len(server.requests) / calls
    assert all(isinstance(r, TweetGenError) for r in results)
    assert any(type(r).__name__ == "CircuitOpenError" for r in results)
    assert amplification <= 1.2
