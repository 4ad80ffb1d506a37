"""The fault matrix over real loopback sockets: sandbox server, Gemini client, both retry loops,
sync and async."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
from conftest import FakeTime, names

from tweetgen import Tweet, TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import (
    AuthenticationError,
    BadRequestError,
    ContentBlockedError,
    EmptyResponseError,
    InvalidResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TweetGenError,
)
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.tweets import weighted_length

SETTINGS = load_settings(env={}, dotenv_path=None)


def _generator(
    url: str, fake: FakeTime, engine: str, policy: RetryPolicy | None = None, **kw: Any
) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="k-test", model="gemini-flash-latest", base_url=url, name="sandbox", **kw
    )
    return TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        policy=policy or RetryPolicy.from_retries(3),
        engine=engine,
        sleep=fake.sleep,
        async_sleep=fake.asleep,
        clock=fake.clock,
    )


Mode = Callable[[TweetGenerator], Tweet]


def _sync(generator: TweetGenerator) -> Tweet:
    with generator:
        return generator.generate("Python Programming", "professional", 25)


def _async(generator: TweetGenerator) -> Tweet:
    async def go() -> Tweet:
        try:
            return await generator.agenerate("Python Programming", "professional", 25)
        finally:
            await generator.aclose()

    return asyncio.run(go())


@pytest.fixture(params=["custom", "tenacity"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[_sync, _async], ids=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("500", ServerError),
        ("502", ServerError),
        ("503", ServerError),
        ("504", ServerError),
        ("drop", NetworkError),
        ("html", InvalidResponseError),
    ],
)
def test_transient_faults_are_retried_to_the_limit(
    engine: str, mode: Mode, fault: str, error: type[Exception]
) -> None:
    fake = FakeTime()
    with SandboxServer(faults=f"{fault}*4") as server:
        with pytest.raises(error) as caught:
            mode(_generator(server.url, fake, engine))
        assert len(server.requests) == 4
    assert caught.value.attempts == 4  # type: ignore[attr-defined]
    assert fake.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("fault", ["503", "drop", "html", "500"])
def test_transient_fault_then_success(engine: str, mode: Mode, fault: str) -> None:
    fake = FakeTime()
    with SandboxServer(faults=f"{fault}*3") as server:
        tweet = mode(_generator(server.url, fake, engine))
    assert tweet.attempts == 4
    assert tweet.provider == "sandbox"
    assert fake.sleeps == [1.0, 2.0, 4.0]


# The hung answers come only when the server stops. A timeout that must let a healthy answer through
# is long enough for a loaded machine; one that only has to expire can be tiny.
HUNG_TWICE, TIMEOUT, TINY_TIMEOUT = "hang:600*2", 1.0, 0.05


def test_read_timeout_is_retried(engine: str) -> None:
    fake = FakeTime()
    with SandboxServer(faults=HUNG_TWICE) as server:
        tweet = _sync(_generator(server.url, fake, engine, timeout=TIMEOUT))
    assert tweet.attempts == 3
    assert fake.sleeps == [1.0, 2.0]


def test_read_timeout_error_type(engine: str) -> None:
    fake = FakeTime()
    with SandboxServer(faults=HUNG_TWICE) as server, pytest.raises(RequestTimeoutError):
        _sync(
            _generator(server.url, fake, engine, RetryPolicy(max_attempts=2), timeout=TINY_TIMEOUT)
        )


def test_connection_refused_is_retried(engine: str, mode: Mode) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake = FakeTime()
    with pytest.raises(NetworkError) as caught:
        mode(_generator(f"http://127.0.0.1:{port}", fake, engine))
    assert caught.value.attempts == 4
    assert fake.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("400", BadRequestError),
        ("invalid-key", AuthenticationError),
        ("401", AuthenticationError),
        ("403", AuthenticationError),
        ("404", ModelNotFoundError),
        ("blocked", ContentBlockedError),
        ("max-tokens", EmptyResponseError),
        ("429", RateLimitError),
        ("429:26s", RateLimitError),
    ],
)
def test_permanent_faults_get_exactly_one_attempt(
    engine: str, mode: Mode, fault: str, error: type[Exception]
) -> None:
    fake = FakeTime()
    with SandboxServer(faults=f"{fault}*4") as server:
        with pytest.raises(error) as caught:
            mode(_generator(server.url, fake, engine))
        assert len(server.requests) == 1
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert fake.sleeps == []


def test_model_not_found_names_the_model_and_the_setting(engine: str) -> None:
    with SandboxServer(faults="404") as server, pytest.raises(ModelNotFoundError) as caught:
        _sync(_generator(server.url, FakeTime(), engine))
    assert "gemini-flash-latest" in str(caught.value)
    assert "TWEETGEN_MODEL" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "wait"), [("429:26s", 26.0), ("429:1.5s", 1.5), ("429:retry-after=7", 7.0)]
)
def test_rate_limit_retries_wait_for_the_server_hint(
    engine: str, mode: Mode, fault: str, wait: float
) -> None:
    fake = FakeTime()
    policy = RetryPolicy.from_retries(3, retry_rate_limits=True)
    with SandboxServer(faults=fault) as server:
        tweet = mode(_generator(server.url, fake, engine, policy))
    assert tweet.attempts == 2
    assert fake.sleeps == [max(1.0, wait)]


def test_rate_limit_hint_above_cap_stops_at_once(engine: str, mode: Mode) -> None:
    fake = FakeTime()
    policy = RetryPolicy.from_retries(3, retry_rate_limits=True, max_retry_after=10)
    with SandboxServer(faults="429:26s*2") as server:
        with pytest.raises(RateLimitError) as caught:
            mode(_generator(server.url, fake, engine, policy))
        assert len(server.requests) == 1
    assert caught.value.retry_after == 26.0
    assert fake.sleeps == []


def test_seed_event_sequence_over_sockets(engine: str, events: Any) -> None:
    with SandboxServer(faults="503") as server:
        tweet = _sync(_generator(server.url, FakeTime(), engine))
    logged = events()
    assert names(logged) == [
        "Making API request",
        "API request failed",
        "Retry attempt",
        "Making API request",
        "API request successful",
        "Retry succeeded",
    ]
    assert {e["request_id"] for e in logged} == {tweet.request_id}
    failed, retry, success = logged[1], logged[2], logged[4]
    assert (failed["status_code"], failed["retry_attempted"], failed["attempt"]) == (503, True, 1)
    assert (retry["attempt"], retry["delay_seconds"], retry["exception"]) == (
        1,
        1.0,
        "HTTP 503: Service temporarily unavailable",
    )
    assert (success["status_code"], success["attempt"], success["provider"], success["model"]) == (
        200,
        2,
        "sandbox",
        "gemini-flash-latest",
    )
    assert success["response_length"] == len(tweet.text)
    assert success["input_tokens"] > 0
    assert logged[-1]["final_attempt"] == 2


def test_key_goes_in_the_header_only(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server.url, FakeTime(), "custom") as generator:
        generator.generate("Python Programming")
    request = sandbox_server.requests[0]
    assert request.headers["x-goog-api-key"] == "k-test"
    assert "k-test" not in request.path
    assert request.path == "/v1beta/models/gemini-flash-latest:generateContent"


def test_one_client_is_reused_across_calls(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server.url, FakeTime(), "custom") as generator:
        for _ in range(3):
            generator.generate("Python Programming")
        client = generator.provider._client  # type: ignore[attr-defined]
        generator.generate("Rust")
        assert generator.provider._client is client  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", ["long", "quoted", "preamble", "emoji"])
def test_rule_breaking_answers_are_cleaned_or_regenerated(fault: str, events: Any) -> None:
    with SandboxServer(faults=fault) as server:
        tweet = _sync(_generator(server.url, FakeTime(), "custom"))
    assert tweet.words <= 25
    assert tweet.weighted_length <= 280
    assert not tweet.text.startswith(('"', "Here"))
    rejected = [e for e in events() if e["event"] == "Tweet rejected"]
    assert len(rejected) == tweet.regenerations
    assert tweet.regenerations == (1 if fault in ("long", "emoji") else 0)


def test_validation_error_after_the_configured_regenerations(events: Any) -> None:
    from tweetgen.errors import TweetValidationError

    with SandboxServer(faults="long*3") as server:
        with pytest.raises(TweetValidationError) as caught:
            _sync(_generator(server.url, FakeTime(), "custom"))
        assert (
            "that was 60 words; the limit is 25"
            in server.requests[1].body["contents"][0]["parts"][0]["text"]
        )  # type: ignore[index]
    assert caught.value.best is not None
    assert caught.value.reasons == (
        "that was 60 words; the limit is 25",
        f"that was {weighted_length(caught.value.best)} weighted characters; the limit is 280",
        "that had 3 hashtags; the limit is 2",
    )
    assert len([e for e in events() if e["event"] == "Tweet rejected"]) == 3


def test_every_error_is_a_tweetgen_error() -> None:
    for kind in ("400", "401", "404", "429", "503", "drop", "html", "blocked", "max-tokens"):
        with SandboxServer(faults=f"{kind}*4") as server, pytest.raises(TweetGenError):
            _sync(_generator(server.url, FakeTime(), "custom", RetryPolicy(max_attempts=1)))
