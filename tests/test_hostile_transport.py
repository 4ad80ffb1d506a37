"""Issue 11, bounded attempts and bounded reads, against a hostile server over real sockets
(tests/hostile.py).

Timing tests wait in real time by nature (a trickle is slow on purpose); each one is short and
bounded: the server gives up as soon as the client hangs up, and the assertion allows ``MARGIN``
seconds on top of the bound under test, which a busy machine needs and a per-read timeout (the old
behaviour) blows through.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import math
import os
import socket
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeTime, wait_until
from hostile import (
    Exchange,
    Handler,
    HostileServer,
    answer,
    echo,
    gemini_body,
    gemini_ok,
    gzip_bomb,
    header_trickle,
    huge,
    silent,
    trickle,
)
from optional_tools import given, st

from tweetgen.backoff import MAX_HINT, parse_duration, parse_retry_after
from tweetgen.config import DEFAULT_MAX_RESPONSE_BYTES, load_settings
from tweetgen.errors import (
    MAX_MESSAGE_LENGTH,
    ConfigurationError,
    InvalidResponseError,
    RateLimitError,
    RedirectError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    TweetGenError,
)
from tweetgen.providers._http import MAX_TOKEN_COUNT, install_deadline_backend, token_count
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider
from tweetgen.providers.openai import parse_response as openai_parse
from tweetgen.retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)

KEY = "test-key-123456"
REQUEST = GenerationRequest(prompt="Write a tweet about tests.")
# seconds on top of a bound: scheduling on a loaded machine, never a per-read timeout's worth
MARGIN = 1.5
MODES = ["sync", "async"]
MiB = 1024 * 1024


def _provider(server: HostileServer, **options: Any) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, model="gemini-test", base_url=server.url, **options)


def _call(provider: GeminiProvider | OpenAIProvider, mode: str) -> GenerationResult:
    """One attempt through the sync or the async client; the client is closed afterwards."""
    if mode == "sync":
        try:
            return provider.generate(REQUEST)
        finally:
            provider.close()

    async def run() -> GenerationResult:
        try:
            return await provider.agenerate(REQUEST)
        finally:
            await provider.aclose()

    return asyncio.run(run())


def _timed_failure(call: Callable[[], object]) -> tuple[TweetGenError, float]:
    started = time.monotonic()
    with pytest.raises(TweetGenError) as caught:
        call()
    return caught.value, time.monotonic() - started


# --- bounded attempts: the timeout bounds the whole attempt ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_trickled_body_ends_within_the_timeout(mode: str) -> None:
    # one byte every 50 ms: each read is quick, so a per-read timeout never fires (the old code took
    # ~13 s)
    with HostileServer(trickle(0.05)) as server:
        error, elapsed = _timed_failure(lambda: _call(_provider(server, timeout=0.5), mode))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN
    assert "within the 0.5s timeout" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_trickled_headers_end_within_the_timeout(mode: str) -> None:
    with HostileServer(header_trickle(0.05)) as server:
        error, elapsed = _timed_failure(lambda: _call(_provider(server, timeout=0.5), mode))
    assert isinstance(error, RequestTimeoutError)
    assert elapsed < 0.5 + MARGIN


@pytest.mark.parametrize("mode", MODES)
def test_a_silent_server_ends_within_the_timeout(mode: str) -> None:
    with HostileServer(silent) as server:
        error, elapsed = _timed_failure(lambda: _call(_provider(server, timeout=0.5), mode))
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
            error, elapsed = _timed_failure(lambda: _call(provider, "sync"))
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
    error, elapsed = _timed_failure(lambda: _call(provider, "sync"))
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
    error, elapsed = _timed_failure(lambda: _call(provider, "async"))
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

ENGINES = {
    "custom": (retry_with_custom_backoff, aretry_with_custom_backoff),
    "tenacity": (retry_with_tenacity, aretry_with_tenacity),
}


def _retried(
    provider: GeminiProvider, mode: str, engine: str, policy: RetryPolicy
) -> Callable[[], object]:
    sync_loop, async_loop = ENGINES[engine]
    fake = (
        FakeTime()
    )  # waits between attempts are virtual; only the attempt itself runs in real time

    if mode == "sync":

        def run_sync() -> object:
            try:
                return sync_loop(
                    lambda: provider.generate(REQUEST), policy=policy, sleep=fake.sleep
                )
            finally:
                provider.close()

        return run_sync

    async def run_async() -> object:
        try:
            return await async_loop(
                lambda: provider.agenerate(REQUEST), policy=policy, sleep=fake.asleep
            )
        finally:
            await provider.aclose()

    return lambda: asyncio.run(run_async())


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_cuts_an_attempt_in_flight(mode: str, engine: str) -> None:
    # a 10 s timeout, a 0.5 s deadline: the old code waited out the timeout (the issue: 30 s for
    # --deadline 5)
    policy = RetryPolicy(max_attempts=4, deadline=0.5)
    with HostileServer(silent) as server:
        error, elapsed = _timed_failure(
            _retried(_provider(server, timeout=10), mode, engine, policy)
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
        error, _ = _timed_failure(_retried(_provider(server), "sync", "custom", policy))
    assert isinstance(error, ServerError)
    assert error.retry_after is None
    assert str(error) == "HTTP 503: overloaded (stopped: waiting 20s would pass the 10s deadline)"


def test_a_deadline_leaves_an_attempt_its_own_timeout_when_that_is_shorter() -> None:
    policy = RetryPolicy(max_attempts=1, deadline=30)
    with HostileServer(silent) as server:
        error, elapsed = _timed_failure(
            _retried(_provider(server, timeout=0.3), "sync", "custom", policy)
        )
    assert "within the 0.3s timeout" in str(error)
    assert elapsed < 0.3 + MARGIN


# --- bounded reads --------------------------------------------------------------------------------


def _peak_memory(call: Callable[[], object]) -> tuple[BaseException, int]:
    """The error ``call`` raised and the peak of Python allocations meanwhile (the server's thread
    included)."""
    tracemalloc.start()
    try:
        with pytest.raises(TweetGenError) as caught:
            call()
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
@pytest.mark.parametrize("mode", MODES)
def test_a_50_mb_answer_is_refused_with_bounded_memory(mode: str, declared: bool) -> None:
    # the old code held the whole body (the issue measured 474 MB for 50 MB of text)
    with HostileServer(huge(50_000_000, declare_length=declared)) as server:
        error, peak = _peak_memory(lambda: _call(_provider(server), mode))
    assert isinstance(error, ResponseTooLargeError)
    assert not error.retryable
    assert isinstance(error, InvalidResponseError)
    assert "larger than 8,388,608 bytes" in str(error)
    assert "TWEETGEN_MAX_RESPONSE_BYTES" in str(error)
    assert peak < DEFAULT_MAX_RESPONSE_BYTES + 16 * MiB


@pytest.mark.parametrize("mode", MODES)
def test_a_gzip_bomb_is_refused_with_bounded_memory(mode: str) -> None:
    # about 1 MB on the wire, 1 GiB inflated: the old code inflated it all (the issue measured 2.1
    # GB)
    with HostileServer(gzip_bomb(1024)) as server:
        error, peak = _peak_memory(lambda: _call(_provider(server), mode))
    assert isinstance(error, ResponseTooLargeError)
    assert "counted after decompression" in str(error)
    assert peak < DEFAULT_MAX_RESPONSE_BYTES + 16 * MiB


def test_the_limit_is_configurable_per_provider() -> None:
    body = json.dumps(gemini_body("x" * 3000)).encode()
    with HostileServer(answer(200, body, headers=[("Content-Type", "application/json")])) as server:
        with pytest.raises(ResponseTooLargeError) as caught:
            _call(_provider(server, max_response_bytes=2048), "sync")
        assert caught.value.limit == 2048
        assert _call(_provider(server, max_response_bytes=len(body)), "sync").text == "x" * 3000


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "8"])
def test_a_bad_limit_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        GeminiProvider(api_key=KEY, model="m", max_response_bytes=value)


def test_the_limit_comes_from_the_environment() -> None:
    assert (
        load_settings(env={}, dotenv_path=None).max_response_bytes
        == DEFAULT_MAX_RESPONSE_BYTES
        == 8 * MiB
    )
    env = {"TWEETGEN_MAX_RESPONSE_BYTES": "65536"}
    assert load_settings(env=env, dotenv_path=None).max_response_bytes == 65536
    for bad in ("lots", "100", "1e9", str(2 << 30)):
        with pytest.raises(ConfigurationError, match="TWEETGEN_MAX_RESPONSE_BYTES"):
            load_settings(env={"TWEETGEN_MAX_RESPONSE_BYTES": bad}, dotenv_path=None)


@pytest.mark.parametrize("mode", MODES)
def test_an_error_body_over_the_limit_keeps_its_status(mode: str) -> None:
    with (
        HostileServer(huge(20_000_000, status=503)) as server,
        pytest.raises(ServerError) as caught,
    ):
        _call(_provider(server), mode)
    assert caught.value.retryable
    assert str(caught.value) == (
        "HTTP 503: Service Unavailable "
        "(the error body is larger than 8,388,608 bytes and was not read)"
    )


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _deflate_raw),
        ("identity", bytes),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "identity"],
)
@pytest.mark.parametrize("mode", MODES)
def test_compressed_answers_are_decoded(
    mode: str, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    body = encode(json.dumps(gemini_body("Compressed and fine.")).encode())
    headers = [("Content-Type", "application/json"), ("Content-Encoding", encoding)]
    with HostileServer(answer(200, body, headers=headers)) as server:
        assert _call(_provider(server), mode).text == "Compressed and fine."
        assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body"), [("br", b"\x0b\x02\x80{}\x03"), ("gzip", b"not gzip at all")]
)
def test_an_undecodable_body_is_an_invalid_response(encoding: str, body: bytes) -> None:
    undecodable = answer(200, body, headers=[("Content-Encoding", encoding)])
    with HostileServer(undecodable) as server, pytest.raises(InvalidResponseError) as caught:
        _call(_provider(server), "sync")
    assert type(caught.value) is InvalidResponseError
    assert caught.value.retryable


# --- every message is cut -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_error_message_is_cut(mode: str) -> None:
    body = {"error": {"code": 503, "message": "m" * 5_000_000, "status": "S" * 100_000}}
    with HostileServer(answer(503, json=body)) as server, pytest.raises(ServerError) as caught:
        _call(_provider(server), mode)
    message = str(caught.value)
    assert len(message) < 1100
    assert message.endswith("... [4,999,000 more characters cut]")
    assert caught.value.status is not None
    assert len(caught.value.status) < 1100


def test_a_huge_reason_phrase_is_cut() -> None:
    bad_gateway = answer(502, b"<html>not json</html>", reason="r" * 60_000)
    with HostileServer(bad_gateway) as server, pytest.raises(ServerError) as caught:
        _call(_provider(server), "sync")
    assert len(str(caught.value)) < 1100
    assert "more characters cut]" in str(caught.value)


def test_no_error_message_exceeds_the_cap_even_with_advice_added() -> None:
    # a 404 message is the server's text plus tweetgen's advice: the advice survives, the whole
    # stays capped
    body = {"error": {"code": 404, "message": "n" * 50_000}}
    with HostileServer(answer(404, json=body)) as server, pytest.raises(TweetGenError) as caught:
        _call(_provider(server), "sync")
    assert len(caught.value.message) <= MAX_MESSAGE_LENGTH + 50
    assert "TWEETGEN_MODEL" in caught.value.message
    assert len(str(TweetGenError("x" * 100_000))) <= MAX_MESSAGE_LENGTH + 50


# --- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_says_so_and_is_not_retried(mode: str) -> None:
    moved = answer(
        301, b"<html>moved</html>", headers=[("Location", "https://elsewhere.example/v1beta")]
    )
    policy = RetryPolicy(max_attempts=4)
    with HostileServer(moved) as server:
        error, _ = _timed_failure(_retried(_provider(server), mode, "custom", policy))
        assert server.count == 1
    assert isinstance(error, RedirectError)
    assert error.status_code == 301
    assert error.location == "https://elsewhere.example/v1beta"
    assert str(error) == (
        "the server answered with a redirect (HTTP 301 to https://elsewhere.example/v1beta); "
        "set GEMINI_BASE_URL to the final address"
    )


def test_an_openai_redirect_names_its_setting() -> None:
    with HostileServer(answer(308, headers=[("Location", "/v2/chat/completions")])) as server:
        provider = OpenAIProvider(api_key=KEY, model="gpt-test", base_url=server.url + "/v1")
        with pytest.raises(RedirectError, match="set OPENAI_BASE_URL to the final address"):
            _call(provider, "sync")


# --- absurd hints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "1000000000"}, MAX_HINT),
        ({"Retry-After": "1e400"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "NaN"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "9" * 5000}, None),
        ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, MAX_HINT),
        ({"Retry-After": "Mon, 01 Jan 99999 00:00:00 GMT"}, None),
        ({"retry-after-ms": "1e30"}, MAX_HINT),
        ({"retry-after-ms": "-1", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "26"}, 26.0),
    ],
)
def test_absurd_retry_after_headers_are_capped_or_ignored(
    headers: dict[str, str], expected: float | None
) -> None:
    assert parse_retry_after(headers, now=0.0) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e400s", None),
        ("9" * 30 + "s", MAX_HINT),
        ("9" * 400 + "s", None),
        ("-5s", None),
        ("26s", 26.0),
    ],
)
def test_absurd_retry_info_durations_are_capped_or_ignored(
    value: str, expected: float | None
) -> None:
    assert parse_duration(value) == expected


@given(st.dictionaries(st.sampled_from(["Retry-After", "retry-after-ms"]), st.text(max_size=60)))
def test_any_retry_hint_parses_to_nothing_or_a_finite_wait(headers: dict[str, str]) -> None:
    hint = parse_retry_after(headers)
    assert hint is None or (math.isfinite(hint) and 0 <= hint <= MAX_HINT)


@given(st.text(max_size=60) | st.from_regex(r"\d{1,400}(\.\d{0,400})?s", fullmatch=True))
def test_any_duration_parses_to_nothing_or_a_finite_wait(value: str) -> None:
    hint = parse_duration(value)
    assert hint is None or (math.isfinite(hint) and 0 <= hint <= MAX_HINT)


def test_an_absurd_hint_stops_retries_at_once() -> None:
    limited = answer(
        429,
        json={"error": {"code": 429, "message": "slow down", "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9" * 300 + "s"}
        ]}},
        headers=[("Retry-After", "1000000000")],
    )  # fmt: skip
    policy = RetryPolicy(max_attempts=4, retry_rate_limits=True)
    with HostileServer(limited) as server:
        error, elapsed = _timed_failure(_retried(_provider(server), "sync", "custom", policy))
        assert server.count == 1
    assert isinstance(error, RateLimitError)
    assert error.retry_after == MAX_HINT
    assert elapsed < MARGIN


# --- numbers from the server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (10**30, 0),
        (-5, 0),
        (True, 0),
        ("12", 0),
        (1.5, 0),
        (None, 0),
        (0, 0),
        (12, 12),
        (MAX_TOKEN_COUNT, None),
    ],
)
def test_token_counts_are_validated(value: object, kept: int | None) -> None:
    assert token_count(value) == (value if kept is None else kept)
    assert token_count(MAX_TOKEN_COUNT + 1) == 0


@pytest.mark.parametrize("mode", MODES)
def test_an_overflowing_token_count_counts_as_zero(mode: str) -> None:
    usage = {
        "promptTokenCount": 10**30,
        "candidatesTokenCount": True,
        "thoughtsTokenCount": -3,
        "totalTokenCount": 9,
    }
    with HostileServer(gemini_ok(usageMetadata=usage, modelVersion="v" * 10_000)) as server:
        result = _call(_provider(server), mode)
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.thought_tokens) == (
        0,
        0,
        0,
    )
    assert result.usage.total_tokens == 9
    assert result.model_version is not None
    assert len(result.model_version) < 250


def test_openai_token_counts_are_validated() -> None:
    body = {
        "choices": [{"message": {"content": "Fine."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10**30, "completion_tokens": 2**40, "total_tokens": 7},
    }
    usage = openai_parse(json.dumps(body).encode(), provider="openai", model="m").usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (0, 0, 7)


# --- the command line, one run per main finding ---------------------------------------------------


def _env(server: HostileServer, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    return {**env, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": KEY, **extra}


# runs tweetgen's CLI as ``python -m tweetgen`` does, then writes the process's peak RSS (VmHWM, in
# KiB) to the file HWM_FILE names: the peak of this process alone (the child's ru_maxrss would
# include the parent's, pytest's, RSS)
_RUN_AND_REPORT_PEAK = """
import atexit, os, runpy

def report_peak():
    try:
        with open("/proc/self/status") as status:
            peak = next(line for line in status if line.startswith("VmHWM")).split()[1]
    except OSError:  # not Linux
        peak = "0"
    with open(os.environ["HWM_FILE"], "w") as out:
        out.write(peak)

atexit.register(report_peak)
runpy.run_module("tweetgen", run_name="__main__", alter_sys=True)
"""


def _cli(
    tmp_path: Path, handler: Handler, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run ``tweetgen generate`` against ``handler``: the result, the wall time and the child's peak
    RSS in KiB."""
    command = [
        sys.executable,
        "-c",
        _RUN_AND_REPORT_PEAK,
        "generate",
        "--provider",
        "gemini",
        "--topic",
        "testing",
    ]
    peak = tmp_path / "peak"
    with HostileServer(handler) as server:
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--quiet", "--log-file", str(tmp_path / "log.jsonl"), *args],
            env=_env(server, HWM_FILE=str(peak), **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    return result, elapsed, int(peak.read_text())


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("tweetgen: failed (after 1 attempt): ")
    return result.stderr.strip()


def test_cli_trickle_fails_within_the_timeout(tmp_path: Path) -> None:
    # one byte a second: the whole answer would take minutes (the old code waited for all of it)
    result, elapsed, _ = _cli(tmp_path, trickle(1.0), "--timeout", "0.5", "--max-retries", "0")
    assert result.returncode == 1
    assert _one_line(result).endswith(
        "request timed out: no complete answer within the 0.5s timeout (ReadTimeout)"
    )
    # the interpreter's start-up on a busy machine counts here; the old code ran > 250 s
    assert elapsed < 60


def test_cli_deadline_cuts_a_silent_server(tmp_path: Path) -> None:
    result, elapsed, _ = _cli(tmp_path, silent, "--deadline", "1", "--timeout", "300")
    assert result.returncode == 1
    line = _one_line(result)
    assert "the call's deadline ran out during the attempt" in line
    assert "asked to wait" not in line
    # start-up on a busy machine counts; without the deadline: the 300 s timeout
    assert elapsed < 60


def test_cli_deadline_stop_names_the_deadline(tmp_path: Path) -> None:
    overloaded = answer(503, json={"error": {"code": 503, "message": "overloaded"}})
    result, _, _ = _cli(
        tmp_path, overloaded, "--deadline", "2", "--base-delay", "3", "--max-delay", "3"
    )
    assert result.returncode == 1
    assert _one_line(result) == (
        "tweetgen: failed (after 1 attempt): HTTP 503: overloaded "
        "(stopped: waiting 3s would pass the 2s deadline)"
    )


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)"
)
@pytest.mark.parametrize("handler", [huge(50_000_000), gzip_bomb(1024)], ids=["50MB", "gzip-bomb"])
def test_cli_refuses_a_huge_answer_in_bounded_memory(tmp_path: Path, handler: Handler) -> None:
    baseline, _, normal_rss = _cli(tmp_path, gemini_ok())
    assert baseline.returncode == 0, baseline.stderr
    result, _, rss = _cli(tmp_path, handler, "--max-retries", "0")
    assert result.returncode == 1
    assert "the answer is larger than 8,388,608 bytes" in _one_line(result)
    assert rss - normal_rss < 64 * 1024  # KiB: the old code needed 474 MB and 2.1 GB


def test_cli_limit_from_the_environment(tmp_path: Path) -> None:
    result, _, _ = _cli(
        tmp_path, gemini_ok(), "--max-retries", "0", TWEETGEN_MAX_RESPONSE_BYTES="1024"
    )
    assert result.returncode == 0, result.stderr  # the answer is smaller
    result, _, _ = _cli(
        tmp_path, huge(4096), "--max-retries", "0", TWEETGEN_MAX_RESPONSE_BYTES="1024"
    )
    assert "larger than 1,024 bytes" in _one_line(result)
    result, _, _ = _cli(tmp_path, gemini_ok(), TWEETGEN_MAX_RESPONSE_BYTES="a lot")
    assert result.returncode == 2
    assert "TWEETGEN_MAX_RESPONSE_BYTES" in result.stderr


def test_cli_huge_error_message_is_cut_in_stderr_and_log(tmp_path: Path) -> None:
    body = {"error": {"code": 503, "message": "m" * 5_000_000, "status": "UNAVAILABLE"}}
    result, _, _ = _cli(tmp_path, answer(503, json=body), "--max-retries", "0")
    assert result.returncode == 1
    assert len(_one_line(result)) < 1200
    assert (
        tmp_path / "log.jsonl"
    ).stat().st_size < 50_000  # the old code wrote 105 MB of log for 50 MB


def test_cli_redirect(tmp_path: Path) -> None:
    result, _, _ = _cli(tmp_path, answer(302, headers=[("Location", "https://elsewhere.example/")]))
    assert result.returncode == 1
    assert _one_line(result).endswith(
        "the server answered with a redirect (HTTP 302 to https://elsewhere.example/); "
        "set GEMINI_BASE_URL to the final address"
    )


def test_cli_absurd_retry_after_stops_at_once(tmp_path: Path) -> None:
    limited = answer(
        429, json={"error": {"code": 429, "message": "slow down"}}, headers=[("Retry-After", "1e9")]
    )
    result, elapsed, _ = _cli(tmp_path, limited, "--retry-rate-limits")
    assert result.returncode == 1
    assert _one_line(result) == (
        "tweetgen: failed (after 1 attempt): HTTP 429: slow down; the server asked to wait 86400s"
    )
    assert elapsed < 10


def test_cli_overflowing_token_count_is_kept_as_zero(tmp_path: Path) -> None:
    # the old code crashed storing 10**30 in SQLite (the store's observer logged it and the call was
    # lost)
    db = tmp_path / "calls.db"
    overflowing = gemini_ok(usageMetadata={"promptTokenCount": 10**30, "candidatesTokenCount": 9})
    result, _, _ = _cli(tmp_path, overflowing, "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "Tests keep code honest and teams calm."
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute(
            "SELECT status, input_tokens, output_tokens FROM calls"
        ).fetchall() == [("ok", 0, 9)]


@pytest.mark.parametrize("where", ["message", "reason", "body", "header"])
def test_hostile_server_echoes_a_request_header(where: str) -> None:
    with HostileServer(echo(where=where)) as server, httpx.Client() as client:
        response = client.post(server.url, headers={"x-goog-api-key": "echo-me-123"}, content=b"{}")
    said = {
        "message": response.text,
        "reason": response.reason_phrase,
        "body": response.text,
        "header": response.headers.get("x-echo", ""),
    }[where]
    assert response.status_code == 400
    assert "echo-me-123" in said
    assert server.requests[0].body == b"{}"


def test_hostile_server_stops_when_the_client_hangs_up() -> None:
    # the server's own promise: a handler that waits ends when the client goes, so tests never wait
    # on it
    def slow(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", "1000")])
        exchange.trickle(b"x" * 1000, 0.5)

    with HostileServer(slow) as server:
        with httpx.Client() as client, client.stream("GET", server.url) as response:
            assert response.status_code == 200
        hung_up = time.monotonic()
        wait_until(lambda: server.connections == 0, what="the handler to notice the client left")
        assert time.monotonic() - hung_up < 0.5 * 1000  # not the 500 s the trickle would take
        assert not server.errors
        assert server.count == 1
