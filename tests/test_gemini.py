"""Tests for tweetgen.providers.gemini: the wire format, the error table and the httpx clients (no
network)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from optional_tools import given, settings, st

from tweetgen.errors import (
    APIError,
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
from tweetgen.providers.base import GenerationRequest, GenerationResult, Usage
from tweetgen.providers.gemini import (
    GeminiProvider,
    build_body,
    error_from_response,
    parse_response,
)

KEY = "test-gemini-key-5c1e0a"
MODEL = "gemini-3.5-flash"


def dumps(data: object) -> bytes:
    return json.dumps(data).encode()


def parse(data: object) -> Any:
    return parse_response(
        data if isinstance(data, bytes) else dumps(data), provider="gemini", model=MODEL
    )


def candidate(*parts: dict[str, Any], finish: str | None = "STOP") -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish is not None:
        out["finishReason"] = finish
    return out


# The documented bodies (gemini-api.md "Response body" and "Errors"), as the server sends them.
REAL_SUCCESS: dict[str, Any] = json.loads("""{"candidates": [{"content": {"role": "model",
  "parts": [{"text": "thought...", "thought": true}, {"text": "the answer"}]},
  "finishReason": "STOP", "index": 0,
  "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}],
 "usageMetadata": {"promptTokenCount": 28, "candidatesTokenCount": 40, "thoughtsTokenCount": 12,
   "totalTokenCount": 80},
 "modelVersion": "gemini-3.5-flash-001", "responseId": "resp-123"}""")
INVALID_KEY_BODY: dict[str, Any] = json.loads("""{"error": {"code": 400,
  "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
  "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}""")


def rate_limit_body(delay: str | None = "26s") -> dict[str, Any]:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"url": "https://ai.google.dev/gemini-api/docs"}],
        },
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    message = "You exceeded your current quota. Please retry in 47.434392449s."
    return {
        "error": {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": details,
        }
    }


def error_body(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


# --- build_body --------------------------------------------------------------


def test_build_body_minimal_is_camel_case_without_optional_fields() -> None:
    body = build_body(GenerationRequest(prompt="Write a tweet"))
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "Write a tweet"}]}],
        "generationConfig": {"maxOutputTokens": 1024, "candidateCount": 1},
    }


def test_build_body_with_every_option() -> None:
    request = GenerationRequest(
        prompt="p",
        system_instruction="be brief",
        temperature=0.0,
        max_output_tokens=512,
        candidate_count=3,
        seed=0,
    )
    body = build_body(request)
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    # 0 and 0.0 are real values, not "unset".
    assert body["generationConfig"] == {
        "maxOutputTokens": 512,
        "candidateCount": 3,
        "temperature": 0.0,
        "seed": 0,
    }
    assert json.loads(json.dumps(body)) == body


# --- parse_response: success ---------------------------------------------------


def test_parse_real_body_skips_thoughts_and_reads_metadata() -> None:
    result = parse(REAL_SUCCESS)
    assert result.texts == ("the answer",)
    assert result.text == "the answer"
    assert result.finish_reasons == ("STOP",)
    assert result.usage == Usage(
        input_tokens=28, output_tokens=40, thought_tokens=12, total_tokens=80
    )
    assert (result.model_version, result.response_id) == ("gemini-3.5-flash-001", "resp-123")
    assert (result.provider, result.model, result.status_code) == ("gemini", MODEL, 200)


def test_parse_joins_text_parts_and_ignores_non_text_parts() -> None:
    data = {"candidates": [candidate({"text": "Hello, "}, {"inlineData": {}}, {"text": "world!"})]}
    assert parse(data).text == "Hello, world!"


def test_parse_omitted_usage_fields_are_zero_and_metadata_optional() -> None:
    data = {"candidates": [candidate({"text": "hi"})], "usageMetadata": {"promptTokenCount": 9}}
    result = parse(data)
    assert result.usage == Usage(input_tokens=9)
    assert result.model_version is None
    assert result.response_id is None
    assert parse({"candidates": [candidate({"text": "hi"})]}).usage == Usage()


def test_parse_multiple_candidates_keeps_those_with_text() -> None:
    data = {
        "candidates": [
            candidate({"text": "one"}),
            candidate({"text": "two"}, finish="MAX_TOKENS"),
            candidate(finish="STOP"),
            candidate({"text": "blocked"}, finish="SAFETY"),
        ]
    }
    result = parse(data)
    assert result.texts == ("one", "two")
    assert result.finish_reasons == ("STOP", "MAX_TOKENS")


@pytest.mark.parametrize("finish", ["SOME_FUTURE_REASON", None, "OTHER", "LANGUAGE"])
def test_parse_unknown_or_missing_finish_reason_keeps_the_text(finish: str | None) -> None:
    assert parse({"candidates": [candidate({"text": "fine"}, finish=finish)]}).text == "fine"


# --- parse_response: blocked, empty, invalid -----------------------------------


@pytest.mark.parametrize("reason", ["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT"])
def test_blocked_prompt_raises_content_blocked(reason: str) -> None:
    with pytest.raises(ContentBlockedError, match=reason) as info:
        parse({"promptFeedback": {"blockReason": reason}, "usageMetadata": {"promptTokenCount": 9}})
    assert info.value.reason == reason
    assert not info.value.retryable


@pytest.mark.parametrize(
    "reason", ["SAFETY", "PROHIBITED_CONTENT", "RECITATION", "SPII", "BLOCKLIST"]
)
def test_blocking_finish_reason_without_text_raises_content_blocked(reason: str) -> None:
    data = {
        "candidates": [{"content": {"role": "model"}, "finishReason": reason, "safetyRatings": []}]
    }
    with pytest.raises(ContentBlockedError) as info:
        parse(data)
    assert info.value.reason == reason


def test_max_tokens_without_parts_raises_empty_response() -> None:
    data = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}]
    }
    with pytest.raises(EmptyResponseError, match="MAX_TOKENS") as info:
        parse(data)
    assert info.value.finish_reason == "MAX_TOKENS"
    assert not info.value.retryable


def test_only_thought_parts_is_empty() -> None:
    with pytest.raises(EmptyResponseError):
        parse({"candidates": [candidate({"text": "hmm", "thought": True}, {"text": "   "})]})


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<html><body><h1>502 Bad Gateway</h1></body></html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary"),
        pytest.param(b"[]", id="list"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"42", id="number"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"candidates": []}', id="no-candidates"),
        pytest.param(b'{"candidates": "x"}', id="candidates-string"),
        pytest.param(b'{"candidates": [1, 2]}', id="candidates-not-objects"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_invalid_bodies_raise_invalid_response(content: bytes) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse(content)
    assert info.value.retryable


@pytest.mark.parametrize(
    "data",
    [
        {"candidates": [{"content": "x"}]},
        {"candidates": [{"content": {"parts": 5}}]},
        {"candidates": [{"content": {"parts": [None, 3, "s", {"text": 7}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": {"odd": 1}}]},
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": [1]},
        {"promptFeedback": "SAFETY", "candidates": [{}]},
    ],
)
def test_odd_shapes_raise_only_tweetgen_errors(data: object) -> None:
    with contextlib.suppress(TweetGenError):
        parse(data)


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value))
    return set()


# Gemini's own keys make the generated shapes close to real bodies.
KEYS = st.sampled_from(
    sorted(
        keys_of([REAL_SUCCESS, INVALID_KEY_BODY, rate_limit_body()])
        | {"promptFeedback", "blockReason"}
    )
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_parse_response_on_any_json_raises_only_tweetgen_errors(value: object) -> None:
    try:
        result = parse(value)
    except TweetGenError:
        return
    assert result.texts
    assert all(isinstance(t, str) and t for t in result.texts)


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=200))
def test_parse_response_on_any_bytes_raises_only_tweetgen_errors(content: bytes) -> None:
    with contextlib.suppress(TweetGenError):
        parse(content)


@settings(max_examples=200, deadline=None)
@given(status=st.integers(400, 599), value=JSON | st.binary(max_size=50))
def test_error_from_response_never_raises(status: int, value: object) -> None:
    content = value if isinstance(value, bytes) else dumps(value)
    error = error_from_response(httpx.Response(status, content=content), model=MODEL)
    assert isinstance(error, APIError)
    assert error.status_code == status
    assert str(error).startswith(f"HTTP {status}: ")


# --- error_from_response --------------------------------------------------------


ERROR_TABLE = [
    pytest.param(
        error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
        BadRequestError,
        id="400",
    ),
    pytest.param(INVALID_KEY_BODY, AuthenticationError, id="400-api-key-invalid"),
    pytest.param(
        error_body(400, "FAILED_PRECONDITION", "User location is not supported."),
        BadRequestError,
        id="400-fp",
    ),
    pytest.param(
        error_body(401, "UNAUTHENTICATED", "Invalid API key"), AuthenticationError, id="401"
    ),
    pytest.param(
        error_body(403, "PERMISSION_DENIED", "Method doesn't allow"), AuthenticationError, id="403"
    ),
    pytest.param(
        error_body(404, "NOT_FOUND", "models/x is not found"), ModelNotFoundError, id="404"
    ),
    pytest.param(
        error_body(408, "DEADLINE_EXCEEDED", "Request timed out."), ServerError, id="408-transient"
    ),
    pytest.param(rate_limit_body(), RateLimitError, id="429"),
    pytest.param(
        error_body(500, "INTERNAL", "An internal error has occurred."), ServerError, id="500"
    ),
    pytest.param(
        error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        ServerError,
        id="503",
    ),
    pytest.param(error_body(504, "DEADLINE_EXCEEDED", "Timed out."), ServerError, id="504"),
]


@pytest.mark.parametrize(("body", "expected"), ERROR_TABLE)
def test_error_table(body: dict[str, Any], expected: type[APIError]) -> None:
    code, status = body["error"]["code"], body["error"]["status"]
    error = error_from_response(httpx.Response(code, json=body), model=MODEL)
    assert type(error) is expected
    assert error.status_code == code
    assert error.status == status
    assert body["error"]["message"] in error.message
    assert error.details == body["error"].get("details", [])  # missing details are fine
    assert error.retryable is (expected in (ServerError, RateLimitError))
    assert str(error) == f"HTTP {code}: {error.message}"


def test_invalid_key_keeps_details_and_says_where_the_key_comes_from() -> None:
    error = error_from_response(httpx.Response(400, json=INVALID_KEY_BODY), model=MODEL)
    assert error.details[0]["reason"] == "API_KEY_INVALID"
    assert "GEMINI_API_KEY" in error.message


def test_not_found_names_the_model_the_version_and_the_setting() -> None:
    body = error_body(404, "NOT_FOUND", "models/gemini-1.5-pro is not found for API version v1")
    error = error_from_response(
        httpx.Response(404, json=body), model="gemini-1.5-pro", api_version="v1"
    )
    assert "gemini-1.5-pro" in error.message
    assert "v1" in error.message
    assert "TWEETGEN_MODEL" in error.message


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        pytest.param(rate_limit_body("26s"), {}, 26.0, id="retry-info"),
        pytest.param(rate_limit_body(None), {"Retry-After": "7"}, 7.0, id="retry-after-header"),
        pytest.param(rate_limit_body("3s"), {"Retry-After": "10"}, 10.0, id="both-header-larger"),
        pytest.param(
            rate_limit_body("26s"), {"Retry-After": "10"}, 26.0, id="both-retry-info-larger"
        ),
        pytest.param(rate_limit_body("1.5s"), {}, 1.5, id="fractional"),
        pytest.param(rate_limit_body(None), {}, None, id="no-hint"),
    ],
)
def test_rate_limit_retry_after(
    body: dict[str, Any], headers: dict[str, str], expected: float | None
) -> None:
    error = error_from_response(httpx.Response(429, json=body, headers=headers), model=MODEL)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


def test_server_error_with_retry_after_header() -> None:
    response = httpx.Response(
        503, json=error_body(503, "UNAVAILABLE", "busy"), headers={"Retry-After": "2"}
    )
    assert error_from_response(response, model=MODEL).retry_after == 2.0


@pytest.mark.parametrize(
    ("code", "content"),
    [
        pytest.param(
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            id="html",
        ),
        pytest.param(503, b"", id="empty"),
        pytest.param(500, b'{"error": "oops"}', id="error-not-object"),
        pytest.param(504, b'{"error": {"code": 504}}', id="no-message"),
        pytest.param(502, b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_server_errors_without_a_gemini_body(code: int, content: bytes) -> None:
    error = error_from_response(
        httpx.Response(code, content=content, headers={"content-type": "text/html"}), model="m"
    )
    assert isinstance(error, ServerError)
    assert error.retryable
    assert error.status is None
    assert error.details == []
    assert "<" not in error.message
    assert error.message == httpx.codes.get_reason_phrase(code)
    assert str(error) == f"HTTP {code}: {error.message}"


# --- GeminiProvider over MockTransport -----------------------------------------


def ok_handler(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REAL_SUCCESS)

    return handler


def raising(exc_type: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    return handler


def make_provider(
    handler: Callable[[httpx.Request], Any], base_url: str = "http://h", **kwargs: Any
) -> GeminiProvider:
    mock = httpx.MockTransport(handler)
    return GeminiProvider(
        api_key=KEY, model=MODEL, base_url=base_url, transport=mock, async_transport=mock, **kwargs
    )


REQUEST = GenerationRequest(prompt="Generate a witty tweet about tests.", seed=3)
MODES = ["sync", "async"]


def call(provider: GeminiProvider, mode: str, times: int = 1) -> GenerationResult:
    """Make ``times`` calls through the sync or the async client, then close it."""
    if mode == "sync":
        try:
            return [provider.generate(REQUEST) for _ in range(times)][-1]
        finally:
            provider.close()

    async def run() -> GenerationResult:
        try:
            return [await provider.agenerate(REQUEST) for _ in range(times)][-1]
        finally:
            await provider.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("base_url", "version", "expected"),
    [
        ("http://h", "v1beta", f"http://h/v1beta/models/{MODEL}:generateContent"),
        ("http://h/", "v1", f"http://h/v1/models/{MODEL}:generateContent"),
        (
            "http://h/some/prefix",
            "v1beta",
            f"http://h/some/prefix/v1beta/models/{MODEL}:generateContent",
        ),
        (
            "https://h:8443/gemini/",
            "v1",
            f"https://h:8443/gemini/v1/models/{MODEL}:generateContent",
        ),
    ],
)
def test_request_url_headers_and_body(
    base_url: str, version: str, expected: str, mode: str
) -> None:
    seen: list[httpx.Request] = []
    result = call(make_provider(ok_handler(seen), base_url=base_url, api_version=version), mode)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == expected
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in str(request.url)
    assert "key" not in request.url.params
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == build_body(REQUEST, model=MODEL)
    assert (result.text, result.provider, result.model) == ("the answer", "gemini", MODEL)
    assert result.latency_ms >= 0


@pytest.mark.parametrize("mode", MODES)
def test_http_error_becomes_typed_error_with_latency(mode: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=error_body(503, "UNAVAILABLE", "overloaded"))

    with pytest.raises(ServerError, match="overloaded") as info:
        call(make_provider(handler), mode)
    assert info.value.latency_ms is not None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("exc_type", "expected"),
    [
        (httpx.ConnectError, NetworkError),
        (httpx.ReadTimeout, RequestTimeoutError),
        (httpx.ConnectTimeout, RequestTimeoutError),
        (httpx.RemoteProtocolError, NetworkError),
        (httpx.ReadError, NetworkError),
    ],
)
def test_transport_errors(
    exc_type: type[httpx.TransportError], expected: type[NetworkError], mode: str
) -> None:
    with pytest.raises(expected) as info:
        call(make_provider(raising(exc_type)), mode)
    assert type(info.value) is expected
    assert info.value.retryable
    assert info.value.latency_ms is not None
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, exc_type)


@pytest.mark.parametrize("mode", MODES)
def test_one_client_is_reused(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    created: list[httpx.Client | httpx.AsyncClient] = []

    def counting(base: type[Any]) -> type[Any]:
        class Counting(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                created.append(self)

        return Counting

    monkeypatch.setattr(httpx, "Client", counting(httpx.Client))
    monkeypatch.setattr(httpx, "AsyncClient", counting(httpx.AsyncClient))
    seen: list[httpx.Request] = []
    call(make_provider(ok_handler(seen)), mode, times=3)
    assert len(seen) == 3
    assert len(created) == 1
    assert created[0].is_closed


def test_repr_hides_the_key() -> None:
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url="http://h")
    for text in (repr(provider), str(provider), f"{provider}"):
        assert KEY not in text
        assert "api_key=***" in text
        assert MODEL in text


def test_undecodable_body_is_an_invalid_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("broken gzip", request=request)

    provider = GeminiProvider(
        api_key="k", model="m", base_url="http://h", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(InvalidResponseError, match="could not be decoded") as caught:
        provider.generate(GenerationRequest(prompt="p"))
    assert caught.value.retryable
    provider.close()


def test_not_found_never_suggests_the_model_that_failed() -> None:
    response = httpx.Response(
        404, json={"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}
    )
    assert "such as gemini-pro-latest" in str(
        error_from_response(response, model="gemini-flash-latest")
    )
    assert "such as gemini-flash-latest" in str(
        error_from_response(response, model="gemini-1.5-flash")
    )
