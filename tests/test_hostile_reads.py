"""Issue 11, bounded reads, against a hostile server over real sockets (tests/hostile.py): huge and
compressed bodies, huge messages, redirects, absurd wait hints and numbers from the server.
"""

from __future__ import annotations

import gzip
import json
import math
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hostile import HostileServer, answer, gemini_body, gemini_ok, gzip_bomb, huge
from hostile_calls import KEY, MARGIN, MODES, MiB, gemini_provider, retried, run_call, timed_failure
from optional_tools import given, st

from tweetgen.backoff import MAX_HINT, parse_duration, parse_retry_after
from tweetgen.config import DEFAULT_MAX_RESPONSE_BYTES, load_settings
from tweetgen.errors import (
    MAX_MESSAGE_LENGTH,
    ConfigurationError,
    InvalidResponseError,
    RateLimitError,
    RedirectError,
    ResponseTooLargeError,
    ServerError,
    TweetGenError,
)
from tweetgen.providers._http import MAX_TOKEN_COUNT, token_count
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider
from tweetgen.providers.openai import parse_response as openai_parse
from tweetgen.retry import RetryPolicy

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
        error, peak = _peak_memory(lambda: run_call(gemini_provider(server), mode))
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
        error, peak = _peak_memory(lambda: run_call(gemini_provider(server), mode))
    assert isinstance(error, ResponseTooLargeError)
    assert "counted after decompression" in str(error)
    assert peak < DEFAULT_MAX_RESPONSE_BYTES + 16 * MiB


def test_the_limit_is_configurable_per_provider() -> None:
    body = json.dumps(gemini_body("x" * 3000)).encode()
    with HostileServer(answer(200, body, headers=[("Content-Type", "application/json")])) as server:
        with pytest.raises(ResponseTooLargeError) as caught:
            run_call(gemini_provider(server, max_response_bytes=2048), "sync")
        assert caught.value.limit == 2048
        assert (
            run_call(gemini_provider(server, max_response_bytes=len(body)), "sync").text
            == "x" * 3000
        )


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
        run_call(gemini_provider(server), mode)
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
        assert run_call(gemini_provider(server), mode).text == "Compressed and fine."
        assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body"), [("br", b"\x0b\x02\x80{}\x03"), ("gzip", b"not gzip at all")]
)
def test_an_undecodable_body_is_an_invalid_response(encoding: str, body: bytes) -> None:
    undecodable = answer(200, body, headers=[("Content-Encoding", encoding)])
    with HostileServer(undecodable) as server, pytest.raises(InvalidResponseError) as caught:
        run_call(gemini_provider(server), "sync")
    assert type(caught.value) is InvalidResponseError
    assert caught.value.retryable


# --- every message is cut -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_error_message_is_cut(mode: str) -> None:
    body = {"error": {"code": 503, "message": "m" * 5_000_000, "status": "S" * 100_000}}
    with HostileServer(answer(503, json=body)) as server, pytest.raises(ServerError) as caught:
        run_call(gemini_provider(server), mode)
    message = str(caught.value)
    assert len(message) < 1100
    assert message.endswith("... [4,999,000 more characters cut]")
    assert caught.value.status is not None
    assert len(caught.value.status) < 1100


def test_a_huge_reason_phrase_is_cut() -> None:
    bad_gateway = answer(502, b"<html>not json</html>", reason="r" * 60_000)
    with HostileServer(bad_gateway) as server, pytest.raises(ServerError) as caught:
        run_call(gemini_provider(server), "sync")
    assert len(str(caught.value)) < 1100
    assert "more characters cut]" in str(caught.value)


def test_no_error_message_exceeds_the_cap_even_with_advice_added() -> None:
    # a 404 message is the server's text plus tweetgen's advice: the advice survives, the whole
    # stays capped
    body = {"error": {"code": 404, "message": "n" * 50_000}}
    with HostileServer(answer(404, json=body)) as server, pytest.raises(TweetGenError) as caught:
        run_call(gemini_provider(server), "sync")
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
        error, _ = timed_failure(retried(gemini_provider(server), mode, "custom", policy))
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
            run_call(provider, "sync")


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
        error, elapsed = timed_failure(retried(gemini_provider(server), "sync", "custom", policy))
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
        result = run_call(gemini_provider(server), mode)
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
