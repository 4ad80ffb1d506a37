"""Issue 11, bounded attempts, against a hostile server over real sockets (tests/hostile.py): the
timeout bounds the whole attempt, the deadline the whole call with the attempt in flight.

Timing tests wait in real time by nature (a trickle is slow on purpose); each one is short and
bounded: the server gives up as soon as the client hangs up, and the assertion allows ``MARGIN``
seconds on top of the bound under test, which a busy machine needs and a per-read timeout (the old
behaviour) blows through.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from hostile import HostileServer, answer, gemini_body, header_trickle, silent, trickle
from hostile_calls import (
    ENGINES,
    KEY,
    MARGIN,
    MODES,
    gemini_provider,
    retried,
    run_call,
    timed_failure,
)

from tweetgen.errors import RequestTimeoutError, ServerError
from tweetgen.providers._http import install_deadline_backend
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy

# --- bounded attempts: the timeout bounds the whole attempt ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_trickled_body_ends_within_the_timeout(mode: str) -> None:
    # one byte every 50 ms: each read is quick, so a per-read timeout never fires (the old code took
    # ~13 s)
    with HostileServer(trickle(0.05)) as server:
        error, elapsed = timed_failure(lambda: run_call(gemini_provider(server, timeout=0.5), mode))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN
    assert "within the 0.5s timeout" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_trickled_headers_end_within_the_timeout(mode: str) -> None:
    with HostileServer(header_trickle(0.05)) as server:
        error, elapsed = timed_failure(lambda: run_call(gemini_provider(server, timeout=0.5), mode))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN


@pytest.mark.parametrize("mode", MODES)
def test_a_silent_server_ends_within_the_timeout(mode: str) -> None:
    with HostileServer(silent) as server:
        error, elapsed = timed_failure(lambda: run_call(gemini_provider(server, timeout=0.5), mode))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN
    assert error.latency_ms is not None
    assert error.latency_ms >= 400


@pytest.mark.skipif(
    sys.platform != "linux", reason="Linux drops a SYN when the accept queue is full"
)
def test_a_connection_that_never_completes_ends_within_the_connect_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:  # never accepts
        port = listener.getsockname()[1]
        fillers = [
            socket.socket() for _ in range(4)
        ]  # fill the accept queue: later SYNs go unanswered
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            provider = GeminiProvider(
                api_key=KEY,
                model="m",
                base_url=f"http://127.0.0.1:{port}",
                timeout=10,
                connect_timeout=0.3,
            )
            error, elapsed = timed_failure(lambda: run_call(provider, "sync"))
        finally:
            for filler in fillers:
                filler.close()
    assert str(error) == "request timed out: no connection within the 0.3s connect timeout"
    assert elapsed < 0.3 + MARGIN


def test_an_injected_transport_is_bounded_between_reads_of_the_body() -> None:
    # no socket to bound here (tests inject httpx.MockTransport): the body loop checks the clock
    # itself
    class Slow(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for _ in range(200):
                time.sleep(0.02)  # the slow "server", not the test waiting
                yield b" "

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Slow()))
    provider = GeminiProvider(
        api_key=KEY, model="m", base_url="http://mock", timeout=0.3, transport=transport
    )
    error, elapsed = timed_failure(lambda: run_call(provider, "sync"))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.3 + MARGIN


def test_an_injected_async_transport_is_bounded_as_a_whole() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)  # cancelled when the attempt's time is up
        return httpx.Response(200, json=gemini_body())

    transport = httpx.MockTransport(handler)
    provider = GeminiProvider(
        api_key=KEY, model="m", base_url="http://mock", timeout=0.3, async_transport=transport
    )
    error, elapsed = timed_failure(lambda: run_call(provider, "async"))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.3 + MARGIN


def test_the_deadline_backend_sits_under_every_pool_of_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the one reach into httpx's private attributes: this fails if a release renames them
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with httpx.Client() as client:
        assert install_deadline_backend(client) == 2  # the direct pool and the proxy's
        assert install_deadline_backend(client) == 2  # idempotent
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert type(pool._network_backend).__name__ == "_DeadlineBackend"
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as mocked:
        assert (
            install_deadline_backend(mocked) == 0
        )  # a mock has no pool (and httpx then ignores env proxies)
    monkeypatch.delenv("HTTPS_PROXY")

    async def check() -> int:
        async with httpx.AsyncClient() as aclient:
            return install_deadline_backend(aclient)

    assert asyncio.run(check()) == 1


# --- bounded attempts: the deadline bounds the call, the attempt in flight included ---------------


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_cuts_an_attempt_in_flight(mode: str, engine: str) -> None:
    # a 10 s timeout, a 0.5 s deadline: the old code waited out the timeout (the issue: 30 s for
    # --deadline 5)
    policy = RetryPolicy(max_attempts=4, deadline=0.5)
    with HostileServer(silent) as server:
        error, elapsed = timed_failure(
            retried(gemini_provider(server, timeout=10), mode, engine, policy)
        )
        assert (
            server.count <= 1
        )  # one attempt (a loaded server may not have read it before the deadline)
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN
    assert "deadline ran out during the attempt" in str(error)
    assert str(error).endswith("(stopped: the 0.5s deadline has passed)")
    assert error.retry_after is None


def test_a_deadline_stop_does_not_say_the_server_asked_to_wait() -> None:
    # the 503 carries no hint: the 20 s wait that would pass the deadline is tweetgen's own backoff
    # (a deadline far above the answer's time, so a loaded machine still gets the 503 first)
    policy = RetryPolicy(max_attempts=4, base_delay=20.0, max_delay=20.0, deadline=10.0)
    with HostileServer(
        answer(503, json={"error": {"code": 503, "message": "overloaded"}})
    ) as server:
        error, _ = timed_failure(retried(gemini_provider(server), "sync", "custom", policy))
    assert isinstance(error, ServerError)
    assert error.retry_after is None
    assert str(error) == "HTTP 503: overloaded (stopped: waiting 20s would pass the 10s deadline)"


def test_a_deadline_leaves_an_attempt_its_own_timeout_when_that_is_shorter() -> None:
    policy = RetryPolicy(max_attempts=1, deadline=30)
    with HostileServer(silent) as server:
        error, elapsed = timed_failure(
            retried(gemini_provider(server, timeout=0.3), "sync", "custom", policy)
        )
    assert "within the 0.3s timeout" in str(error)
    assert elapsed < 0.3 + MARGIN
