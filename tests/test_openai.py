"""Tests for tweetgen.providers.openai: wire format, error table, httpx clients, and the sandbox's
chat route."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import FakeTime, names
from optional_tools import given, settings, st

import tweetgen
from tweetgen.config import Secret, load_settings
from tweetgen.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
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
from tweetgen.logs import redact_text
from tweetgen.prompts import DEFAULT_TEMPLATE, TONES
from tweetgen.providers import OpenAIProvider
from tweetgen.providers.base import GenerationRequest, GenerationResult, Usage
from tweetgen.providers.openai import build_body, error_from_response, parse_response
from tweetgen.retry import is_retryable
from tweetgen.sandbox import SandboxServer, read_prompt
from tweetgen.sandbox.composer import compose_facts

KEY = "sk-test-openai-key-7f3a9c"
MODEL = "gpt-x"
SETTINGS = load_settings(env={}, dotenv_path=None)


def dumps(data: object) -> bytes:
    return json.dumps(data).encode()


def parse(data: object) -> GenerationResult:
    return parse_response(
        data if isinstance(data, bytes) else dumps(data), provider="openai", model=MODEL
    )


def choice(
    content: Any, finish: str | None = "stop", index: int = 0, **message: Any
) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish,
    }


# What the servers really send (OpenAI's API reference; Ollama's /v1 compatibility layer).
REAL_OPENAI: dict[str, Any] = json.loads("""{"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
 "object": "chat.completion", "created": 1741569952, "model": "gpt-4.1-2025-04-14",
 "choices": [{"index": 0, "message": {"role": "assistant",
   "content": "Hello! How can I assist you today?",
   "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
 "usage": {"prompt_tokens": 19, "completion_tokens": 74, "total_tokens": 93,
   "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
   "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0,
     "accepted_prediction_tokens": 0,
     "rejected_prediction_tokens": 0}},
 "service_tier": "default", "system_fingerprint": "fp_51e1070cf2"}""")
REAL_OLLAMA: dict[str, Any] = json.loads("""{"id": "chatcmpl-472", "object": "chat.completion",
 "created": 1737655214, "model": "llama3.2", "system_fingerprint": "fp_ollama",
 "choices": [{"index": 0,
   "message": {"role": "assistant", "content": "Tests keep us honest. #Testing"},
   "finish_reason": "stop"}],
 "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}""")


def openai_error(
    message: str, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


INSUFFICIENT_QUOTA = openai_error(
    "You exceeded your current quota, please check your plan and billing details.",
    "insufficient_quota",
    "insufficient_quota",
)
RATE_LIMITED = openai_error(
    "Rate limit reached for gpt-x in organization org-abc on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1.",
    "requests",
    "rate_limit_exceeded",
)


# --- build_body --------------------------------------------------------------------------


def test_build_body_minimal_has_no_optional_fields() -> None:
    assert build_body(GenerationRequest(prompt="Write a tweet"), model=MODEL) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a tweet"}],
        "max_tokens": 1024,
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
    body = build_body(request, model=MODEL, max_tokens_field="max_completion_tokens")
    assert body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "p"}],
        "max_completion_tokens": 512,
        "n": 3,
        "temperature": 0.0,  # 0 and 0.0 are real values, not "unset"
        "seed": 0,
    }


# --- parse_response: success ---------------------------------------------------------------


def test_parse_real_openai_body() -> None:
    result = parse(REAL_OPENAI)
    assert result.texts == ("Hello! How can I assist you today?",)
    assert result.finish_reasons == ("stop",)
    # completion_tokens include reasoning; output_tokens do not (as with Gemini).
    assert result.usage == Usage(
        input_tokens=19, output_tokens=10, thought_tokens=64, total_tokens=93
    )
    assert (result.model_version, result.response_id) == (
        "gpt-4.1-2025-04-14",
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    )
    assert (result.provider, result.model, result.status_code) == ("openai", MODEL, 200)


def test_parse_real_ollama_body() -> None:
    result = parse(REAL_OLLAMA)
    assert result.text == "Tests keep us honest. #Testing"
    assert result.usage == Usage(input_tokens=30, output_tokens=12, total_tokens=42)
    assert result.model_version == "llama3.2"


def test_parse_content_parts_joins_text_parts_only() -> None:
    parts = [
        {"type": "text", "text": "Hello, "},
        {"type": "thinking", "text": "hmm"},
        {"type": "text", "text": "world"},
    ]
    assert parse({"choices": [choice(parts)]}).text == "Hello, world"


def test_parse_keeps_choices_with_text_and_drops_filtered_ones() -> None:
    data = {
        "choices": [
            choice("one"),
            choice("two", finish="length", index=1),
            choice("", index=2),
            choice("partial then filt", finish="content_filter", index=3),
        ]
    }
    result = parse(data)
    assert result.texts == ("one", "two")
    assert result.finish_reasons == ("stop", "length")


@pytest.mark.parametrize("finish", ["some_future_reason", None, "tool_calls"])
def test_unknown_or_missing_finish_reason_keeps_the_text(finish: str | None) -> None:
    assert parse({"choices": [choice("fine", finish=finish)]}).text == "fine"


def test_missing_usage_and_metadata_are_zero_and_none() -> None:
    result = parse(
        {"choices": [choice("hi")], "usage": {"prompt_tokens": True, "completion_tokens": -3}}
    )
    assert result.usage == Usage()
    assert (result.model_version, result.response_id) == (None, None)


# --- parse_response: blocked, empty, invalid -----------------------------------------------


def test_content_filter_without_text_is_blocked() -> None:
    with pytest.raises(ContentBlockedError, match="content_filter") as info:
        parse({"choices": [choice("", finish="content_filter")]})
    assert info.value.reason == "content_filter"
    assert not info.value.retryable


def test_refusal_is_blocked() -> None:
    with pytest.raises(ContentBlockedError, match="I can't help with that") as info:
        parse({"choices": [choice(None, refusal="I can't help with that.")]})
    assert info.value.reason == "refusal"


def test_length_without_text_is_empty_with_a_hint() -> None:
    with pytest.raises(EmptyResponseError, match="output token limit") as info:
        parse({"choices": [choice("", finish="length")]})
    assert info.value.finish_reason == "length"
    assert not info.value.retryable


@pytest.mark.parametrize("content", [None, "   ", [], [{"type": "image_url", "image_url": {}}]])
def test_no_text_is_empty(content: Any) -> None:
    with pytest.raises(EmptyResponseError):
        parse({"choices": [choice(content)]})


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<html><body><h1>502 Bad Gateway</h1></body></html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary"),
        pytest.param(b"[]", id="list"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"choices": []}', id="no-choices"),
        pytest.param(b'{"choices": "x"}', id="choices-string"),
        pytest.param(b'{"choices": [1, 2]}', id="choices-not-objects"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_invalid_bodies_raise_invalid_response(content: bytes) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse(content)
    assert info.value.retryable


def test_a_200_carrying_an_error_says_what_the_server_said() -> None:
    with pytest.raises(InvalidResponseError, match="upstream model crashed"):
        parse(openai_error("upstream model crashed", "server_error"))


def keys_of(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value))
    return set()


KEYS = st.sampled_from(
    sorted(keys_of([REAL_OPENAI, REAL_OLLAMA, INSUFFICIENT_QUOTA]) | {"text", "detail"})
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["text", "length"]),
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


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(400, 599),
    value=JSON | st.binary(max_size=50),
    retry=st.sampled_from(["", "2", "x"]),
)
def test_error_from_response_never_raises(status: int, value: object, retry: str) -> None:
    content = value if isinstance(value, bytes) else dumps(value)
    headers = {"retry-after": retry} if retry else {}
    error = error_from_response(
        httpx.Response(status, content=content, headers=headers), model=MODEL
    )
    assert isinstance(error, APIError)
    assert error.status_code == status
    assert str(error).startswith(f"HTTP {status}: ")


# --- error_from_response ---------------------------------------------------------------------


def error_for(code: int, body: object = None, headers: dict[str, str] | None = None) -> APIError:
    content = body if isinstance(body, bytes) else dumps(body) if body is not None else b""
    return error_from_response(httpx.Response(code, content=content, headers=headers), model=MODEL)


ERROR_TABLE = [
    pytest.param(
        400,
        openai_error("Invalid type for 'messages'.", "invalid_request_error"),
        BadRequestError,
        id="400",
    ),
    pytest.param(
        401,
        openai_error(
            "Incorrect API key provided: sk-abc***xyz.", "invalid_request_error", "invalid_api_key"
        ),
        AuthenticationError,
        id="401",
    ),
    pytest.param(
        403,
        openai_error("Country not supported", "request_forbidden"),
        AuthenticationError,
        id="403",
    ),
    pytest.param(
        404,
        openai_error(
            "The model `gpt-x` does not exist.", "invalid_request_error", "model_not_found"
        ),
        ModelNotFoundError,
        id="404",
    ),
    pytest.param(
        404,
        {"error": 'model "gpt-x" not found, try pulling it first'},
        ModelNotFoundError,
        id="404-ollama",
    ),
    pytest.param(
        408,
        openai_error("Request timed out.", "invalid_request_error"),
        ServerError,
        id="408-retried",
    ),
    pytest.param(
        409, openai_error("Conflict.", "invalid_request_error"), ServerError, id="409-retried"
    ),
    pytest.param(413, {"error": "request body too large"}, BadRequestError, id="413-ollama"),
    pytest.param(422, {"detail": "Field required: messages"}, BadRequestError, id="422-fastapi"),
    pytest.param(
        400,
        {
            "object": "error",
            "message": "n must be at most 4",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        BadRequestError,
        id="400-vllm-flat",
    ),
    pytest.param(429, RATE_LIMITED, RateLimitError, id="429"),
    pytest.param(
        500, openai_error("The server had an error.", "server_error"), ServerError, id="500"
    ),
    pytest.param(
        503,
        openai_error("The server is overloaded or not ready yet.", "server_error"),
        ServerError,
        id="503",
    ),
]


@pytest.mark.parametrize(("code", "body", "expected"), ERROR_TABLE)
def test_error_table(code: int, body: dict[str, Any], expected: type[APIError]) -> None:
    error = error_for(code, body)
    said = (
        body["error"]
        if isinstance(body.get("error"), str)
        else body.get("detail") or body.get("message")
    )
    said = said or body["error"]["message"]
    assert type(error) is expected
    assert error.status_code == code
    assert said in error.message
    assert error.retryable is (expected in (ServerError, RateLimitError))
    assert is_retryable(error) is (expected is ServerError)
    assert str(error) == f"HTTP {code}: {error.message}"


def test_openai_error_fields_become_status_and_details() -> None:
    error = error_for(
        401, openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    )
    assert error.status == "invalid_api_key"
    assert error.details == [
        openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")[
            "error"
        ]
    ]
    assert (
        error_for(400, openai_error("bad", "invalid_request_error")).status
        == "invalid_request_error"
    )
    assert error_for(500, {"error": "oops"}).status is None


def test_a_401_says_where_the_key_comes_from() -> None:
    assert "OPENAI_API_KEY" in error_for(401, {"error": "Invalid API Key"}).message
    assert (
        "OPENAI_API_KEY"
        not in error_for(403, openai_error("Country not supported", "request_forbidden")).message
    )


def test_not_found_names_the_model_the_setting_and_where_to_look() -> None:
    error = error_for(
        404,
        openai_error(
            "The model `gpt-x` does not exist.", "invalid_request_error", "model_not_found"
        ),
    )
    assert "'gpt-x'" in error.message
    assert "TWEETGEN_OPENAI_MODEL" in error.message
    assert "https://api.openai.com/v1/models" in error.message


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(404, text="404 page not found"), id="ollama-plain-text"),
        pytest.param(httpx.Response(404, json={"detail": "Not Found"}), id="fastapi"),
    ],
)
def test_a_bare_404_points_at_the_base_url(response: httpx.Response) -> None:
    error = error_from_response(response, model="llama3.2", base_url="http://localhost:11434/")
    assert isinstance(error, ModelNotFoundError)
    assert "http://localhost:11434/chat/completions" in error.message
    assert "/v1" in error.message
    assert "TWEETGEN_OPENAI_MODEL" in error.message


def test_unsupported_max_tokens_says_what_to_pass() -> None:
    message = (
        "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens'."
    )
    error = error_for(
        400, openai_error(message, "invalid_request_error", "unsupported_parameter", "max_tokens")
    )
    assert isinstance(error, BadRequestError)
    assert "max_tokens_field='max_completion_tokens'" in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"retry-after-ms": "1500"}, 1.5, id="retry-after-ms"),
        pytest.param({"retry-after": "20"}, 20.0, id="retry-after"),
        pytest.param({"retry-after-ms": "250", "retry-after": "1"}, 0.25, id="ms-wins"),
        pytest.param({"retry-after": "soon"}, None, id="unreadable"),
        pytest.param({}, None, id="no-hint"),
    ],
)
def test_rate_limit_retry_after(headers: dict[str, str], expected: float | None) -> None:
    error = error_for(429, RATE_LIMITED, headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected
    assert error.status == "rate_limit_exceeded"


def test_insufficient_quota_is_a_rate_limit_that_says_quota_and_will_not_clear() -> None:
    error = error_for(429, INSUFFICIENT_QUOTA, {"retry-after": "20"})
    assert isinstance(error, RateLimitError)
    assert error.message.startswith("quota exhausted (insufficient_quota)")
    assert "check your plan and billing" in error.message
    assert error.retry_after is None
    assert error.retryable is False
    assert RateLimitError("x", status_code=429).retryable is True  # the class is untouched


@pytest.mark.parametrize(
    ("code", "content"),
    [
        pytest.param(
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
            id="html",
        ),
        pytest.param(503, b"", id="empty"),
        pytest.param(504, b'{"error": {"code": 504}}', id="no-message"),
        pytest.param(500, b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_server_errors_without_an_api_body(code: int, content: bytes) -> None:
    error = error_for(code, content)
    assert isinstance(error, ServerError)
    assert error.status is None
    assert "<" not in error.message
    assert error.message == httpx.codes.get_reason_phrase(code)


# --- OpenAIProvider over MockTransport ---------------------------------------------------------


def ok_handler(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REAL_OPENAI)

    return handler


def make_provider(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> OpenAIProvider:
    mock = httpx.MockTransport(handler)
    options: dict[str, Any] = {"api_key": KEY, "model": MODEL, "base_url": "http://h/v1", **kwargs}
    return OpenAIProvider(transport=mock, async_transport=mock, **options)


REQUEST = GenerationRequest(
    prompt="Generate a witty tweet about tests.", system_instruction="be brief", seed=3
)
MODES = ["sync", "async"]


def call(provider: OpenAIProvider, mode: str, times: int = 1) -> GenerationResult:
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
    ("base_url", "expected"),
    [
        ("http://h/v1", "http://h/v1/chat/completions"),
        ("http://localhost:11434/v1/", "http://localhost:11434/v1/chat/completions"),
        ("https://proxy.example/openai/v1", "https://proxy.example/openai/v1/chat/completions"),
    ],
)
def test_request_url_headers_and_body(base_url: str, expected: str, mode: str) -> None:
    seen: list[httpx.Request] = []
    result = call(make_provider(ok_handler(seen), base_url=base_url), mode)
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", expected)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == build_body(REQUEST, model=MODEL)
    assert (result.text, result.provider, result.model) == (
        "Hello! How can I assist you today?",
        "openai",
        MODEL,
    )
    assert result.latency_ms >= 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", [None, ""])
def test_no_authorization_header_without_a_key(key: str | None, mode: str) -> None:
    seen: list[httpx.Request] = []
    call(make_provider(ok_handler(seen), api_key=key), mode)
    assert "authorization" not in seen[0].headers


def test_a_secret_key_is_sent_and_registered_for_redaction() -> None:
    seen: list[httpx.Request] = []
    call(make_provider(ok_handler(seen), api_key=Secret(KEY + "-secret")), "sync")
    assert seen[0].headers["authorization"] == f"Bearer {KEY}-secret"
    assert redact_text(f"key {KEY}-secret") == "key [REDACTED]"


def test_max_tokens_field_is_sent_and_checked() -> None:
    seen: list[httpx.Request] = []
    call(make_provider(ok_handler(seen), max_tokens_field="max_completion_tokens"), "sync")
    assert json.loads(seen[0].content)["max_completion_tokens"] == 1024
    with pytest.raises(ConfigurationError, match="max_tokens_field"):
        OpenAIProvider(api_key=None, model=MODEL, max_tokens_field="limit")


@pytest.mark.parametrize("mode", MODES)
def test_http_error_becomes_typed_error_with_latency(mode: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=openai_error("overloaded", "server_error"))

    with pytest.raises(ServerError, match="overloaded") as info:
        call(make_provider(handler), mode)
    assert info.value.latency_ms is not None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("exc_type", "expected"),
    [
        (httpx.ConnectError, NetworkError),
        (httpx.ReadTimeout, RequestTimeoutError),
        (httpx.ReadError, NetworkError),
    ],
)
def test_transport_errors(
    exc_type: type[httpx.TransportError], expected: type[NetworkError], mode: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    with pytest.raises(expected) as info:
        call(make_provider(handler), mode)
    assert type(info.value) is expected
    assert info.value.latency_ms is not None
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


def test_telemetry_events(events: Any) -> None:
    call(make_provider(ok_handler([])), "sync")
    started, done = events()
    assert (started["event"], started["url_endpoint"], started["prompt_length"]) == (
        "Making API request",
        MODEL,
        len(REQUEST.prompt),
    )
    assert done["event"] == "API request successful"
    assert (done["status_code"], done["response_length"], done["finish_reason"]) == (
        200,
        34,
        "stop",
    )
    assert (done["input_tokens"], done["output_tokens"], done["thought_tokens"]) == (19, 10, 64)


@pytest.mark.parametrize(("key", "shown"), [(KEY, "api_key=***"), (None, "api_key=None")])
def test_repr_hides_the_key(key: str | None, shown: str) -> None:
    provider = OpenAIProvider(api_key=key, model=MODEL)
    assert KEY not in repr(provider)
    assert shown in repr(provider)
    assert "https://api.openai.com/v1/chat/completions" in repr(provider)


# --- the sandbox's chat route over loopback ------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as http:
        yield http


def prompt_for(topic: str, tone: str, max_words: int) -> str:
    return DEFAULT_TEMPLATE.render(
        topic=topic, tone=tone, tone_description=TONES[tone], max_words=max_words
    )


PROMPT = prompt_for("unit tests", "witty", 20)


def chat_body(prompt: str = PROMPT, **options: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]
    return {"model": MODEL, "messages": messages, **options}


def chat(
    client: httpx.Client, server: SandboxServer, body: object = None, **headers: str
) -> httpx.Response:
    return client.post(
        f"{server.url}/v1/chat/completions", json=body or chat_body(), headers=headers
    )


def test_sandbox_chat_answers_and_records(client: httpx.Client) -> None:
    with SandboxServer(prefix="/p") as server:
        response = chat(client, server, chat_body(seed=5, n=3), authorization="Bearer sandbox-key")
    assert response.status_code == 200
    data = response.json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert data["choices"][0]["message"]["content"] == compose_facts(read_prompt(PROMPT), seed=5)
    assert {c["finish_reason"] for c in data["choices"]} == {"stop"}
    assert data["model"] == MODEL
    assert data["id"].startswith("chatcmpl-")
    assert (
        data["usage"]["total_tokens"]
        == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )
    (recorded,) = server.requests
    assert (recorded.path, recorded.headers["authorization"]) == (
        "/p/v1/chat/completions",
        "Bearer sandbox-key",
    )
    assert recorded.body == chat_body(seed=5, n=3)


def test_sandbox_reads_the_last_user_message_and_content_parts(client: httpx.Client) -> None:
    parts = [{"type": "text", "text": prompt_for("tea", "casual", 12)}]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "ignored"}, {"role": "user", "content": parts}],
    }
    with SandboxServer() as server:
        text = chat(client, server, body).json()["choices"][0]["message"]["content"]
    assert text == compose_facts(read_prompt(prompt_for("tea", "casual", 12)))


def test_sandbox_status_faults_have_openai_bodies(client: httpx.Client) -> None:
    with SandboxServer(faults="503,404,429:26s,503:retry-after=2") as server:
        overloaded, missing, limited, hinted = (chat(client, server) for _ in range(4))
    assert overloaded.status_code == 503
    assert overloaded.json() == openai_error(
        "The server is overloaded or not ready yet.", "server_error"
    )
    assert missing.json()["error"]["code"] == "model_not_found"
    assert f"`{MODEL}`" in missing.json()["error"]["message"]
    assert (
        limited.status_code,
        limited.headers["retry-after"],
        limited.headers["retry-after-ms"],
    ) == (
        429,
        "26",
        "26000",
    )
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert hinted.headers["retry-after"] == "2"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("blocked", ContentBlockedError),
        ("max-tokens", EmptyResponseError),
        ("html", InvalidResponseError),
        ("drop", NetworkError),
        ("invalid-key", AuthenticationError),
        ("404", ModelNotFoundError),
    ],
)
def test_sandbox_faults_through_the_provider(fault: str, expected: type[TweetGenError]) -> None:
    with SandboxServer(faults=fault) as server:
        provider = OpenAIProvider(
            api_key="k", model=MODEL, base_url=server.url + "/v1", secret_key=False
        )
        with pytest.raises(expected):
            call(provider, "sync")


def test_sandbox_blocked_and_max_tokens_shapes(client: httpx.Client) -> None:
    with SandboxServer(faults="blocked,max-tokens") as server:
        blocked, spent = chat(client, server).json(), chat(client, server).json()
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] == ""
    assert spent["choices"][0]["finish_reason"] == "length"
    assert spent["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.parametrize(
    ("sent", "status"), [("Bearer wrong", 401), (None, 401), ("Bearer right-key", 200)]
)
def test_sandbox_require_key_reads_the_bearer_token(
    client: httpx.Client, sent: str | None, status: int
) -> None:
    headers = {"authorization": sent} if sent else {}
    with SandboxServer(require_key="right-key") as server:
        response = chat(client, server, **headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "invalid_api_key"


def test_sandbox_echo_key(client: httpx.Client) -> None:
    with SandboxServer(faults="echo-key") as server:
        response = chat(client, server, authorization="Bearer echoed-key")
    assert response.status_code == 401
    assert "echoed-key" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        dumps({"messages": [{"role": "user", "content": "x"}]}),
        dumps({"model": MODEL, "messages": []}),
        dumps({"model": MODEL, "messages": ["x"]}),
        dumps(chat_body(n=0)),
        dumps(chat_body(n="2")),
    ],
)
def test_sandbox_invalid_chat_request_is_400(client: httpx.Client, body: bytes) -> None:
    with SandboxServer(faults="503") as server:
        url = f"{server.url}/v1/chat/completions"
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        assert len(server.faults) == 1  # a rejected request consumes no fault
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_one_fault_script_serves_both_paths(client: httpx.Client) -> None:
    gemini = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    with SandboxServer(faults="503,503") as server:
        first = chat(client, server)
        second = client.post(f"{server.url}/v1beta/models/m:generateContent", json=gemini)
        third = chat(client, server)
    assert (first.json()["error"]["type"], second.json()["error"]["status"]) == (
        "server_error",
        "UNAVAILABLE",
    )
    assert third.status_code == 200


# --- TweetGenerator through the sandbox --------------------------------------------------------


def generator(
    server: SandboxServer, fake: FakeTime, policy: tweetgen.RetryPolicy | None = None
) -> Any:
    provider = OpenAIProvider(
        api_key="k", model=MODEL, base_url=server.url + "/v1", name="openai", secret_key=False
    )
    options: dict[str, Any] = {"policy": policy} if policy else {}
    return tweetgen.TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        sleep=fake.sleep,
        async_sleep=fake.asleep,
        clock=fake.clock,
        **options,
    )


def test_a_normal_tweet(events: Any) -> None:
    fake = FakeTime()
    with SandboxServer() as server, generator(server, fake) as gen:
        tweet = gen.generate("Python testing", "witty", 20)
        (request,) = server.requests
    assert (tweet.provider, tweet.model, tweet.attempts) == ("openai", MODEL, 1)
    assert tweet.text == compose_facts(read_prompt(request.body["messages"][-1]["content"]))  # type: ignore[index]
    assert request.headers["authorization"] == "Bearer k"
    assert names(events()) == ["Making API request", "API request successful"]
    assert fake.sleeps == []


@pytest.mark.parametrize(("fault", "status"), [("503", 503), ("drop", None), ("408", 408)])
def test_transient_failures_are_retried(fault: str, status: int | None, events: Any) -> None:
    fake = FakeTime()
    with SandboxServer(faults=fault) as server, generator(server, fake) as gen:
        tweet = gen.generate("Python testing")
        assert len(server.requests) == 2
    assert (tweet.attempts, fake.sleeps) == (2, [1.0])
    failed = next(e for e in events() if e["event"] == "API request failed")
    assert (failed["status_code"], failed["retry_attempted"]) == (status, True)


def test_async_503_is_retried() -> None:
    fake = FakeTime()

    async def go(gen: Any) -> Any:
        try:
            return await gen.agenerate("Python testing")
        finally:
            await gen.aclose()

    with SandboxServer(faults="503") as server:
        tweet = asyncio.run(go(generator(server, fake)))
    assert (tweet.attempts, fake.sleeps) == (2, [1.0])


def test_401_is_not_retried() -> None:
    fake = FakeTime()
    with SandboxServer(faults="401*4") as server, generator(server, fake) as gen:
        with pytest.raises(AuthenticationError) as caught:
            gen.generate("Python testing")
        assert len(server.requests) == 1
    assert caught.value.status == "invalid_api_key"
    assert fake.sleeps == []


def test_429_waits_the_retry_after_when_asked() -> None:
    fake = FakeTime()
    policy = tweetgen.RetryPolicy(retry_rate_limits=True)
    with SandboxServer(faults="429:2s") as server, generator(server, fake, policy) as gen:
        tweet = gen.generate("Python testing")
        assert len(server.requests) == 2
    assert (tweet.attempts, fake.sleeps) == (2, [2.0])


def test_429_is_not_retried_by_default() -> None:
    fake = FakeTime()
    with SandboxServer(faults="429:2s") as server, generator(server, fake) as gen:
        with pytest.raises(RateLimitError) as caught:
            gen.generate("Python testing")
        assert len(server.requests) == 1
    assert caught.value.retry_after == 2.0
    assert fake.sleeps == []
