"""Structured output (issue 15, part 5): variants and threads asked for as one JSON array over a
real socket; invalid or truncated JSON is a rejected answer, regenerated with its reason, never an
empty result or a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tweetgen import TweetGenerator
from tweetgen.config import Settings
from tweetgen.errors import TweetValidationError
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider, build_body
from tweetgen.sandbox import SandboxServer
from tweetgen.sandbox.gemini import BAD_JSON, CUT_JSON
from tweetgen.structured import parse_items

MODEL = "gemini-2.0-flash"


def _generator(server: SandboxServer, **options: Any) -> TweetGenerator:
    provider = GeminiProvider(api_key="test-key-123", model=MODEL, base_url=server.url)
    return TweetGenerator(provider=provider, settings=Settings(model=MODEL), **options)


def _configs(server: SandboxServer) -> list[dict[str, Any]]:
    return [r.body["generationConfig"] for r in server.requests if r.body]


def _rejections(events: Callable[[], list[dict[str, Any]]]) -> list[list[str]]:
    return [e["reasons"] for e in events() if e["event"] == "Tweet rejected"]


def test_variants_are_one_json_array_of_n(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        tweets = generator.generate_variants("Open source", n=4, seed=2)
    (config,) = _configs(sandbox_server)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 4,
        "maxItems": 4,
    }
    assert config["candidateCount"] == 1
    prompt = sandbox_server.requests[0].body["contents"][0]["parts"][0]["text"]  # type: ignore[index]
    assert "JSON array of exactly 4 strings" in prompt
    assert len(tweets) == 4
    assert len({t.text for t in tweets}) == 4
    assert all(t.valid for t in tweets)


def test_a_thread_is_one_json_array_of_its_tweets(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        thread = generator.generate_thread("Testing in Python", "informative", 30, tweets=4)
    (config,) = _configs(sandbox_server)
    assert config["responseJsonSchema"]["minItems"] == 4
    assert [t.text.rsplit(" ", 1)[-1] for t in thread.tweets] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("---" not in t.text for t in thread.tweets)


@pytest.mark.parametrize("marker", [BAD_JSON, CUT_JSON])
@pytest.mark.parametrize("what", ["variants", "thread"])
def test_invalid_or_cut_json_is_rejected_and_asked_again(
    sandbox_server: SandboxServer,
    events: Callable[[], list[dict[str, Any]]],
    marker: str,
    what: str,
) -> None:
    with _generator(sandbox_server) as generator:
        if what == "variants":
            result: Any = generator.generate_variants(f"tea {marker}", n=3)
            assert len(result) == 3
        else:
            result = generator.generate_thread(f"tea {marker}", tweets=3)
            assert len(result.tweets) == 3
    assert len(sandbox_server.requests) == 2
    (reasons,) = _rejections(events)
    assert reasons[0].startswith("the answer was not a JSON array of 3 strings")
    second = sandbox_server.requests[1].body["contents"][0]["parts"][0]["text"]  # type: ignore[index]
    assert "Your previous answer was rejected: the answer was not a JSON array" in second


def _always(text: str, reason: str = "STOP") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "candidates": [{"content": {"parts": [{"text": text}]}, "finishReason": reason}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 9},
        }
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("text", "reason"),
    [('["one tweet", "two', "MAX_TOKENS"), ('{"a": 1}', "STOP"), ("[]", "STOP")],
)
def test_json_that_never_parses_ends_in_a_validation_error(text: str, reason: str) -> None:
    provider = GeminiProvider(api_key="test-key-123", model=MODEL, transport=_always(text, reason))
    with TweetGenerator(provider=provider, settings=Settings(), regenerations=1) as generator:
        with pytest.raises(TweetValidationError) as variants:
            generator.generate_variants("tea", n=2)
        with pytest.raises(TweetValidationError) as thread:
            generator.generate_thread("tea", tweets=2)
    for caught in (variants.value, thread.value):
        assert "JSON" in caught.reasons[0]
        assert "regeneration" in str(caught)


def test_parse_items() -> None:
    assert parse_items('["a", " ", "b"]', 3) == (["a", "b"], None)
    assert parse_items('{"tweets": ["a"]}', 1) == (["a"], None)
    texts, why = parse_items('["a", "b', 2)
    assert texts == []
    assert why is not None
    assert "cut off" in why


def test_openai_asks_for_a_json_schema_only_when_told() -> None:
    request = GenerationRequest("p", json_items=3)
    body = build_body(request, model="m")
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["response_format"]["type"] == "json_schema"
    assert schema["properties"]["tweets"]["minItems"] == 3
    assert not OpenAIProvider(api_key=None, model="m", base_url="http://h/v1").structured_output
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = json.dumps({"tweets": ["Tea calms. #tea", "Tea wakes. #tea"]})
        body = {
            "choices": [{"message": {"content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9},
        }
        return httpx.Response(200, json=body)

    provider = OpenAIProvider(
        api_key=None,
        model="m",
        base_url="http://h/v1",
        structured_output=True,
        transport=httpx.MockTransport(handler),
    )
    with TweetGenerator(provider=provider, settings=Settings()) as generator:
        tweets = generator.generate_variants("tea", n=2)
    assert {t.text for t in tweets} == {"Tea calms. #tea", "Tea wakes. #tea"}
    assert "n" not in seen[0]
    assert seen[0]["response_format"]["json_schema"]["name"] == "tweets"


def test_openai_and_thinking_fields_only_when_set() -> None:
    plain = build_body(GenerationRequest("p"), model="m")
    assert "reasoning_effort" not in plain
    assert "service_tier" not in plain
    asked = build_body(GenerationRequest("p", thinking="off", service_tier="flex"), model="m")
    assert (asked["reasoning_effort"], asked["service_tier"]) == ("minimal", "flex")
    assert "reasoning_effort" not in build_body(GenerationRequest("p", thinking="auto"), model="m")


def test_a_server_that_ignores_the_schema_is_read_as_plain_text() -> None:
    thread = "Tea calms the mind. #tea\n---\nTea wakes the body. #tea\n---\nTea joins friends. #tea"
    provider = GeminiProvider(api_key="test-key-123", model=MODEL, transport=_always(thread))
    with TweetGenerator(provider=provider, settings=Settings()) as generator:
        result = generator.generate_thread("tea", tweets=3)
    assert result.tweets[0].text == "Tea calms the mind. #tea 1/3"
    assert parse_items("One tweet. #tea", 2) == (["One tweet. #tea"], None)
