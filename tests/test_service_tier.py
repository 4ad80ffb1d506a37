"""Service tiers (issue 15, part 3): ``serviceTier`` in the body over a real socket, a shed flex
call asked again at standard at once (configurable), and the tier that answered recorded on the
result, the trace and the tweet."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeTime, names

from tweetgen import TweetGenerator
from tweetgen.cli import main
from tweetgen.config import Settings, load_settings
from tweetgen.errors import ConfigurationError, RateLimitError, ServerError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.sandbox.gemini import SHED_FLEX
from tweetgen.tiers import is_shed
from tweetgen.trace import CallTrace

MODEL = "gemini-2.0-flash"  # no thinking field: the bodies hold only what this test is about


class _Calls:
    def __init__(self) -> None:
        self.calls: list[CallTrace] = []

    def call_finished(self, call: CallTrace) -> None:
        self.calls.append(call)


def _generator(server: SandboxServer, fake: FakeTime, **options: Any) -> TweetGenerator:
    provider = GeminiProvider(api_key="test-key-123", model=MODEL, base_url=server.url)
    return TweetGenerator(
        provider=provider,
        settings=Settings(model=MODEL),
        sleep=fake.sleep,
        clock=fake.clock,
        **options,
    )


def _tiers(server: SandboxServer) -> list[str | None]:
    return [r.body.get("serviceTier") for r in server.requests if r.body]


@pytest.mark.parametrize(
    ("tier", "sent", "recorded"),
    [("flex", "FLEX", "flex"), ("priority", "PRIORITY", "priority"), ("standard", None, None)],
)
def test_the_tier_is_sent_and_recorded(
    fake_time: FakeTime, tier: str, sent: str | None, recorded: str | None
) -> None:
    calls = _Calls()
    with (
        SandboxServer() as server,
        _generator(server, fake_time, service_tier=tier, observers=[calls]) as generator,
    ):
        tweet = generator.generate("tea")
    assert _tiers(server) == [sent]
    assert "serviceTier" in server.requests[0].body or sent is None  # type: ignore[operator]
    assert tweet.service_tier == recorded  # standard: nothing asked, nothing said
    (call,) = calls.calls
    assert call.attempts[-1].service_tier == recorded


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_shed_flex_call_is_asked_again_at_standard_at_once(
    fake_time: FakeTime, events: Callable[[], list[dict[str, Any]]], mode: str
) -> None:
    with SandboxServer() as server:
        generator = _generator(server, fake_time, service_tier="flex")
        if mode == "async":

            async def one() -> Any:
                try:
                    return await generator.agenerate(f"tea {SHED_FLEX}")
                finally:
                    await generator.aclose()

            tweet = asyncio.run(one())
        else:
            with generator:
                tweet = generator.generate(f"tea {SHED_FLEX}")
    assert _tiers(server) == ["FLEX", None]  # no backoff between: the standard call is at once
    assert server.answers == {503: 1, 200: 1}
    assert fake_time.sleeps == []
    assert tweet.service_tier == "standard"
    (shed,) = [e for e in events() if e["event"] == "Flex request shed"]
    assert shed["status_code"] == 503
    assert shed["level"] == "warning"
    assert "Retry attempt" not in names(events())


def test_any_503_on_a_flex_call_counts_as_shed(fake_time: FakeTime) -> None:
    with (
        SandboxServer(faults="503") as server,
        _generator(server, fake_time, service_tier="flex") as generator,
    ):
        tweet = generator.generate("tea")
    assert _tiers(server) == ["FLEX", None]
    assert tweet.service_tier == "standard"


def test_without_the_fallback_a_shed_flex_call_is_retried_at_flex(fake_time: FakeTime) -> None:
    with (
        SandboxServer() as server,
        _generator(
            server,
            fake_time,
            service_tier="flex",
            flex_fallback=False,
            policy=RetryPolicy(max_attempts=2),
        ) as generator,
        pytest.raises(ServerError),
    ):
        generator.generate(f"tea {SHED_FLEX}")
    assert _tiers(server) == ["FLEX", "FLEX"]


def test_a_standard_call_that_fails_is_not_moved(fake_time: FakeTime) -> None:
    with (
        SandboxServer(faults="503,ok") as server,
        _generator(server, fake_time, service_tier="priority") as generator,
    ):
        tweet = generator.generate("tea")
    assert _tiers(server) == ["PRIORITY", "PRIORITY"]  # retried by the policy, at its tier
    assert tweet.service_tier == "priority"


def test_a_429_naming_a_quota_is_the_callers_limit_not_a_shed() -> None:
    unnamed = RateLimitError("Resource exhausted", status_code=429)
    named = RateLimitError("quota", status_code=429)
    named.quota_kind = "per-day"  # type: ignore[attr-defined]
    assert is_shed(unnamed)
    assert not is_shed(named)
    assert is_shed(ServerError("overloaded", status_code=503))
    assert not is_shed(ServerError("internal", status_code=500))


def test_the_tier_the_api_names_in_its_header_wins() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        body = {
            "candidates": [{"content": {"parts": [{"text": "Tea is great. #tea"}]}}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5},
        }
        return httpx.Response(200, json=body, headers={"x-gemini-service-tier": "Standard"})

    provider = GeminiProvider(
        api_key="test-key-123", model=MODEL, transport=httpx.MockTransport(handler)
    )
    with TweetGenerator(provider=provider, settings=Settings(), service_tier="flex") as generator:
        tweet = generator.generate("tea")
    assert seen[0]["serviceTier"] == "FLEX"
    assert tweet.service_tier == "standard"


def test_settings_check_the_tier_and_the_switch(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\(from environment TWEETGEN_SERVICE_TIER\)"):
        load_settings(env={"TWEETGEN_SERVICE_TIER": "cheap"}, dotenv_path=None)
    with pytest.raises(ConfigurationError, match="TWEETGEN_FLEX_FALLBACK"):
        load_settings(env={"TWEETGEN_FLEX_FALLBACK": "maybe"}, dotenv_path=None)
    (tmp_path / ".env").write_text(
        "TWEETGEN_SERVICE_TIER=flex\nTWEETGEN_FLEX_FALLBACK=off\n", encoding="utf-8"
    )
    settings = load_settings(env={}, dotenv_path=tmp_path / ".env")
    assert (settings.service_tier, settings.flex_fallback) == ("flex", False)
    with pytest.raises(ConfigurationError, match="one of standard, flex, priority"):
        TweetGenerator(provider="sandbox", settings=Settings(), service_tier="cheap")


def test_the_cli_flag_and_variable_reach_the_body(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWEETGEN_LOG_FILE", "")
    monkeypatch.chdir(tmp_path)
    with SandboxServer() as server:
        monkeypatch.setenv("GEMINI_API_KEY", "test-key-123")
        monkeypatch.setenv("GEMINI_BASE_URL", server.url)
        argv = ["generate", "--topic", "AI", "-q", "--model", MODEL]
        assert main([*argv, "--service-tier", "flex"]) == 0
        monkeypatch.setenv("TWEETGEN_SERVICE_TIER", "priority")
        assert main(argv) == 0
        assert main([*argv, "--service-tier", "standard"]) == 0
        monkeypatch.setenv("TWEETGEN_SERVICE_TIER", "cheap")
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "TWEETGEN_SERVICE_TIER" in err
    assert _tiers(server) == ["FLEX", "PRIORITY", None]


def test_the_sandbox_names_the_tier_that_answered_as_the_api_does() -> None:
    from tweetgen.sandbox.gemini import GeminiRoute

    route = GeminiRoute(MODEL, "v1beta")
    assert route.answer_headers({"serviceTier": "FLEX"}) == {"x-gemini-service-tier": "flex"}
    assert route.answer_headers({}) == {"x-gemini-service-tier": "standard"}
