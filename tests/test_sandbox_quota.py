"""The sandbox's project quota (issue 14, item 6): a sliding window shared by every client, Gemini's
429 RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo (OpenAI's rate_limit_exceeded on the chat
path), refused requests consuming nothing; unit tests on an injected clock, then real sockets: the
sandbox in this process and tweetgen's own providers (``tweetgen sandbox serve --quota-rps`` as a
child process is in test_sandbox_server.py)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import FakeTime
from prometheus_client import CollectorRegistry

from tweetgen.backoff import RetryPolicy
from tweetgen.config import load_settings
from tweetgen.errors import RateLimitError
from tweetgen.generator import TweetGenerator
from tweetgen.hints import parse_duration, parse_retry_after
from tweetgen.metrics import SandboxCollector
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider
from tweetgen.sandbox import Quota, SandboxServer
from tweetgen.sandbox.quota import format_delay

QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
HELP = "type.googleapis.com/google.rpc.Help"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Generate a witty tweet about cats."}]}]}
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "a tweet about cats"}]}
REQUEST = GenerationRequest(prompt="Generate a witty tweet about cats.\nWrite at most 20 words.")


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the window, on an injected clock ----------------------------------------------------------


def test_limit_per_window_then_the_oldest_slot_frees_exactly_at_the_edge() -> None:
    clock = Clock()
    quota = Quota(3, 1.0, clock=clock)
    assert [quota.admit() for _ in range(3)] == [None, None, None]
    assert quota.admit() == pytest.approx(1.0)
    clock.now += 0.999
    assert quota.admit() == pytest.approx(0.001)
    clock.now = 1001.0  # the first three leave the window at exactly +1 s
    assert [quota.admit() for _ in range(4)] == [None, None, None, pytest.approx(1.0)]
    assert (quota.accepted, quota.refused) == (6, 3)


def test_the_window_slides_one_admission_at_a_time() -> None:
    clock = Clock(0.0)
    quota = Quota(3, 1.0, clock=clock)
    for t in (0.0, 0.5, 0.9):
        clock.now = t
        assert quota.admit() is None
    clock.now = 1.0  # only the admission at 0.0 has left: one slot
    assert quota.admit() is None
    clock.now = 1.2  # 0.5, 0.9 and 1.0 are in the window: wait until 0.5 leaves
    assert quota.admit() == pytest.approx(0.3)
    stats = quota.stats()
    assert (stats.in_window, stats.accepted, stats.refused) == (3, 4, 1)
    assert stats.retry_in == pytest.approx(0.3)


def test_refused_requests_consume_nothing() -> None:
    clock = Clock()
    quota = Quota.per_minute(2, clock=clock)
    assert quota.admit() is None
    clock.now += 30
    assert quota.admit() is None
    for _ in range(100):  # a client hammering after the 429 does not push its next slot away
        clock.now += 0.1
        assert quota.admit() is not None
    clock.now = 1060.0  # the first admission leaves: one slot, at the time the first 429 said
    assert quota.admit() is None
    assert (quota.accepted, quota.refused, quota.stats().in_window) == (3, 100, 2)


def test_no_window_long_interval_ever_holds_more_than_the_limit() -> None:
    clock = Clock(0.0)
    quota = Quota(5, 1.0, clock=clock)
    rng = random.Random(14)
    for _ in range(2000):
        clock.now += rng.expovariate(20.0)  # 4x the quota, in bursts and gaps
        quota.admit()
    times = quota.history()
    assert len(times) == quota.accepted
    assert quota.refused > 0
    assert all(b - a >= 1.0 for a, b in zip(times, times[5:], strict=False))
    # and the quota is used: every refusal came with a slot free within the window
    assert quota.rate(0.0, clock.now) == pytest.approx(5.0, rel=0.1)


def test_threads_hammering_get_exactly_the_limit_per_window() -> None:
    clock = Clock()
    quota = Quota(37, 60.0, clock=clock)
    admitted: list[int] = []
    start = threading.Barrier(16)

    def hammer() -> None:
        start.wait(timeout=30)
        count = sum(quota.admit() is None for _ in range(50))
        admitted.append(count)

    for _window in range(3):
        admitted.clear()
        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sum(admitted) == 37
        clock.now += 60.0
    assert (quota.accepted, quota.refused) == (3 * 37, 3 * (16 * 50 - 37))


def test_history_is_bounded_and_stats_say_first_and_last() -> None:
    clock = Clock(0.0)
    quota = Quota(1, 1.0, clock=clock, history=3)
    for t in range(10):
        clock.now = float(t)
        assert quota.admit() is None
    assert quota.history() == [7.0, 8.0, 9.0]
    stats = quota.stats()
    assert (stats.first_accepted, stats.last_accepted, stats.accepted) == (0.0, 9.0, 10)
    assert stats.as_dict()["limit"] == 1
    assert quota.rate(7.0, 10.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "limit", [0, -1, 2.5, math.nan, math.inf, True, "5", 1e10], ids=lambda v: repr(v)
)
def test_an_absurd_quota_is_refused_in_words(limit: Any) -> None:
    with pytest.raises(ValueError, match="the quota must be a whole number of requests") as info:
        Quota(limit)
    assert "got" in str(info.value)


@pytest.mark.parametrize("window", [0, -1.0, math.nan, math.inf])
def test_an_absurd_window_is_refused(window: float) -> None:
    with pytest.raises(ValueError, match="the quota window must be a number of seconds"):
        Quota(5, window)


def test_quota_ids_and_words_follow_the_window() -> None:
    assert Quota.per_minute(100).quota_id == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    assert Quota.per_second(5).quota_id == "GenerateRequestsPerSecondPerProjectPerModel-FreeTier"
    assert Quota(3, 2.5).quota_id == "GenerateRequestsPer2.5SecondsPerProjectPerModel-FreeTier"
    assert Quota.per_second(5).describe() == "5 requests per second (sliding window)"
    assert Quota(1, 2.5).describe() == "1 request per 2.5 seconds (sliding window)"


# --- retryDelay: formatted as Gemini does, read back by tweetgen's parser ----------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (26.0, "26s"),
        (1.5, "1.5s"),
        (0.25, "0.25s"),
        (0.0001, "0.001s"),
        (47.434392449, "47.435s"),
        (59.9999999, "60s"),
        (0.0, "0s"),
    ],
)
def test_retry_delay_is_a_duration_rounded_up_to_the_millisecond(seconds: float, text: str) -> None:
    assert format_delay(seconds) == text
    assert parse_duration(text) == pytest.approx(math.ceil(round(seconds * 1000, 6)) / 1000)


def test_retry_delay_round_trips_through_the_parser_never_early() -> None:
    rng = random.Random(6)
    for _ in range(1000):
        seconds = rng.uniform(0, 120)
        parsed = parse_duration(format_delay(seconds))
        assert parsed is not None
        assert seconds <= parsed < seconds + 0.001 + 1e-9


# --- the sandbox over loopback, clock injected ------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[SandboxServer]:
    with SandboxServer(quota=Quota(2, 60.0, clock=clock), require_key="test-key") as sandbox:
        yield sandbox


def _gemini(server: SandboxServer, key: str = "test-key", body: object = BODY) -> httpx.Response:
    url = f"{server.url}/v1beta/models/gemini-test:generateContent"
    return httpx.post(url, json=body, headers={"x-goog-api-key": key}, timeout=10)


def _chat(server: SandboxServer) -> httpx.Response:
    headers = {"authorization": "Bearer test-key"}
    return httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=headers, timeout=10)


def test_above_the_quota_gemini_answers_resource_exhausted_with_its_details(
    server: SandboxServer, clock: Clock
) -> None:
    assert [_gemini(server).status_code for _ in range(2)] == [200, 200]
    clock.now += 33.5
    refused = _gemini(server)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers  # Gemini sends none
    error = refused.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["message"].startswith("You exceeded your current quota")
    assert error["message"].endswith("Please retry in 26.5s.")
    assert [d["@type"] for d in error["details"]] == [QUOTA_FAILURE, HELP, RETRY_INFO]
    (violation,) = error["details"][0]["violations"]
    assert violation == {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": "gemini-test"},
        "quotaValue": "2",
    }
    assert error["details"][2]["retryDelay"] == "26.5s"
    assert server.answers == {200: 2, 429: 1}


def test_one_quota_for_every_key_connection_and_dialect(
    server: SandboxServer, clock: Clock
) -> None:
    assert _gemini(server).status_code == 200
    assert _chat(server).status_code == 200  # a new connection, the other dialect: same quota
    refused = _chat(server)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "Limit 2" in error["message"]
    assert "in 60s" in error["message"]
    assert parse_retry_after(refused.headers) == 60.0
    assert (refused.headers["retry-after"], refused.headers["retry-after-ms"]) == ("60", "60000")
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    clock.now += 60
    assert _chat(server).status_code == 200


def test_bad_requests_and_wrong_keys_consume_nothing(server: SandboxServer) -> None:
    assert _gemini(server, key="wrong-key").status_code == 400
    assert _gemini(server, body={"contents": "no"}).status_code == 400
    assert [_gemini(server).status_code for _ in range(3)] == [200, 200, 429]
    assert server.quota is not None
    assert (server.quota.accepted, server.quota.refused) == (2, 1)


def test_a_scripted_fault_spends_its_slot(server: SandboxServer) -> None:
    server.script("503")
    assert [_gemini(server).status_code for _ in range(3)] == [503, 200, 429]


def test_get_quota_and_the_prometheus_collector_report_the_counts(server: SandboxServer) -> None:
    for _ in range(5):
        _gemini(server)
    stats = httpx.get(f"{server.url}/quota", timeout=10).json()
    assert {k: stats[k] for k in ("limit", "window", "accepted", "refused", "in_window")} == {
        "limit": 2,
        "window": 60.0,
        "accepted": 2,
        "refused": 3,
        "in_window": 2,
    }
    assert stats["retry_in"] == pytest.approx(60.0)
    registry = CollectorRegistry()
    registry.register(SandboxCollector(server))
    assert registry.get_sample_value("tweetgen_sandbox_quota_accepted_total") == 2
    assert registry.get_sample_value("tweetgen_sandbox_quota_refused_total") == 3
    assert registry.get_sample_value("tweetgen_sandbox_quota_limit") == 2
    assert registry.get_sample_value("tweetgen_sandbox_answers_total", {"status_code": "429"}) == 3


def test_without_a_quota_nothing_is_refused_and_get_quota_says_so() -> None:
    with SandboxServer() as server:
        assert server.quota is None
        assert {_gemini(server).status_code for _ in range(20)} == {200}
        answer = httpx.get(f"{server.url}/quota", timeout=10)
        assert answer.status_code == 404
        assert "--quota-rpm" in answer.json()["error"]["message"]


def test_the_server_takes_one_quota_in_words() -> None:
    with SandboxServer(quota_rps=5) as server:
        assert server.quota is not None
        assert (server.quota.limit, server.quota.window) == (5, 1.0)
    with pytest.raises(ValueError, match="choose one quota"):
        SandboxServer(quota_rpm=60, quota_rps=1)
    with pytest.raises(ValueError, match="whole number of requests"):
        SandboxServer(quota_rpm=0)


# --- tweetgen's own providers see the quota ----------------------------------------------------


def test_the_gemini_provider_raises_rate_limit_with_retry_info_as_retry_after(
    server: SandboxServer, clock: Clock
) -> None:
    provider = GeminiProvider(api_key="test-key", model="gemini-test", base_url=server.url)
    try:
        provider.generate(REQUEST)
        clock.now += 12.25
        provider.generate(REQUEST)
        with pytest.raises(RateLimitError) as info:
            provider.generate(REQUEST)
    finally:
        provider.close()
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.retry_after == 47.75  # 60 - 12.25, from RetryInfo


def test_the_openai_provider_reads_retry_after_ms() -> None:
    clock = Clock()
    with SandboxServer(quota=Quota(1, 1.0, clock=clock)) as server:
        provider = OpenAIProvider(api_key="test-key", model="gpt-test", base_url=server.url + "/v1")
        try:
            provider.generate(REQUEST)
            clock.now += 0.2
            with pytest.raises(RateLimitError) as info:
                provider.generate(REQUEST)
        finally:
            provider.close()
    assert info.value.status == "rate_limit_exceeded"
    assert info.value.retry_after == 0.8


def test_gemini_provider_against_a_real_per_second_quota() -> None:
    with SandboxServer(quota_rps=3) as server:
        provider = GeminiProvider(api_key="test-key", model="gemini-test", base_url=server.url)
        errors: list[RateLimitError] = []
        try:
            for _ in range(200):  # a few ms each: the fourth within a second is refused
                try:
                    provider.generate(REQUEST)
                except RateLimitError as error:
                    errors.append(error)
                    break
        finally:
            provider.close()
        assert server.quota is not None
        assert errors, f"no 429 in 200 calls against 3 per second: {server.quota.stats()}"
        retry_after = errors[0].retry_after
        assert retry_after is not None
        assert 0 < retry_after <= 1.0
        assert server.quota.refused == 1
        assert server.answers[429] == 1


def test_tweetgen_waits_the_retry_delay_on_the_sandboxs_clock_and_is_admitted() -> None:
    fake = FakeTime()  # the client's sleeps move the quota's clock: no real wait
    with SandboxServer(quota=Quota(2, 10.0, clock=fake.clock)) as server:
        provider = GeminiProvider(api_key="test-key", model="gemini-test", base_url=server.url)
        settings = load_settings(env={}, dotenv_path=None)
        generator = TweetGenerator(
            provider=provider,
            settings=settings,
            policy=RetryPolicy(retry_rate_limits=True),  # tweetgen retries a 429 only if asked
            sleep=fake.sleep,
            clock=fake.clock,
        )
        try:
            tweets = [generator.generate("cats", "witty") for _ in range(3)]
        finally:
            generator.close()
        assert server.quota is not None
        assert (server.quota.accepted, server.quota.refused) == (3, 1)
    assert all(tweet.text for tweet in tweets)
    (waited,) = fake.sleeps
    assert waited >= 10.0  # the whole retryDelay, not an early retry refused again
