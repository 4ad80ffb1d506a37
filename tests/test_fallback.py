"""Provider fallback chains over real sockets: Gemini down, the OpenAI-compatible provider
answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeTime, names

from tweetgen import BadRequestError, ContentBlockedError, Observer, TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import ConfigurationError
from tweetgen.providers import GeminiProvider, OpenAIProvider
from tweetgen.providers.factory import resolve_providers
from tweetgen.resilience import BreakerSettings
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import CallTrace

SETTINGS = load_settings(env={}, dotenv_path=None)


def _chain(
    gemini: SandboxServer, openai: SandboxServer, fake: FakeTime, **kwargs: Any
) -> TweetGenerator:
    providers = [
        GeminiProvider(
            api_key="g", model="gemini-flash-latest", base_url=gemini.url, secret_key=False
        ),
        OpenAIProvider(api_key="o", model="gpt-x", base_url=openai.url + "/v1", secret_key=False),
    ]
    return TweetGenerator(
        provider=providers, settings=SETTINGS, sleep=fake.sleep, clock=fake.clock, **kwargs
    )


def test_exhausted_gemini_falls_back_to_openai(events: Any) -> None:
    fake = FakeTime()
    seen: list[CallTrace] = []

    class Keep(Observer):
        def call_finished(self, call: CallTrace) -> None:
            seen.append(call)

    with SandboxServer(faults="503*4") as gemini, SandboxServer() as openai:
        with _chain(gemini, openai, fake, observers=[Keep()]) as generator:
            tweet = generator.generate("Python")
        assert len(gemini.requests) == 4
        assert [r.path for r in openai.requests] == ["/v1/chat/completions"]
    assert (tweet.provider, tweet.model, tweet.attempts) == ("openai", "gpt-x", 5)
    assert fake.sleeps == [1.0, 2.0, 4.0]
    fallback = [e for e in events() if e["event"] == "Provider fallback"]
    assert [(e["from_provider"], e["to_provider"], e["error_type"]) for e in fallback] == [
        ("gemini", "openai", "ServerError")
    ]
    success = [e for e in events() if e["event"] == "API request successful"]
    assert (success[-1]["provider"], success[-1]["model"]) == ("openai", "gpt-x")
    assert (seen[0].provider, seen[0].status) == ("openai", "ok")


def test_open_breaker_moves_on_without_calling_gemini() -> None:
    fake = FakeTime()
    with SandboxServer(faults="503*20") as gemini, SandboxServer() as openai:
        with _chain(gemini, openai, fake, retry_budget=False) as generator:
            streak = BreakerSettings().consecutive_failures
            while (
                len(gemini.requests) < streak
            ):  # 4 failures a call until the streak opens the breaker
                generator.generate("AI")
            calls = len(gemini.requests)
            tweet = generator.generate("AI")
        assert len(gemini.requests) == calls == streak
    assert tweet.provider == "openai"


@pytest.mark.parametrize(
    ("fault", "error"), [("400", BadRequestError), ("blocked", ContentBlockedError)]
)
def test_caller_and_content_errors_do_not_fall_back(
    fault: str, error: type[Exception], events: Any
) -> None:
    with SandboxServer(faults=fault) as gemini, SandboxServer() as openai:
        with _chain(gemini, openai, FakeTime()) as generator, pytest.raises(error):
            generator.generate("AI")
        assert openai.requests == []
    assert "Provider fallback" not in names(events())


def test_provider_specs() -> None:
    keys = load_settings(env={"GEMINI_API_KEY": "g", "OPENAI_API_KEY": "o"}, dotenv_path=None)
    assert resolve_providers(keys, "gemini,openai") == ["gemini", "openai"]
    assert resolve_providers(keys, "auto") == ["gemini"]
    local = load_settings(env={"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, dotenv_path=None)
    assert resolve_providers(local, "openai") == ["openai"]
    with pytest.raises(ConfigurationError, match="no OpenAI API key"):
        resolve_providers(SETTINGS, "openai")
    with pytest.raises(ConfigurationError, match="twice"):
        resolve_providers(keys, "gemini,gemini")
    with pytest.raises(ConfigurationError, match="includes auto, which cannot be part"):
        resolve_providers(keys, "auto,openai")


def test_cli_chain(tmp_path: Path) -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    with SandboxServer(faults="503*4") as gemini, SandboxServer() as openai:
        env = {
            **base,
            "GEMINI_BASE_URL": gemini.url,
            "GEMINI_API_KEY": "g-key-1",
            "OPENAI_BASE_URL": openai.url + "/v1",
        }
        command = [sys.executable, "-m", "tweetgen", "generate", "--topic", "AI",
                   "--provider", "gemini,openai", "--json", "-q", "--base-delay", "0",
                   "--log-file", str(tmp_path / "log.jsonl")]  # fmt: skip
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["provider"], record["attempts"]) == ("openai", 5)
    logged = [
        json.loads(line)["event"] for line in (tmp_path / "log.jsonl").read_text().splitlines()
    ]
    assert "Provider fallback" in logged
    bad = subprocess.run(
        [*command[:7], "gemini,bing"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "unknown provider in 'gemini,bing'" in bad.stderr


def test_auto_never_means_canned_text_in_the_library() -> None:
    settings = load_settings(env={"TWEETGEN_PROVIDER": "auto"}, dotenv_path=None)
    with pytest.raises(ConfigurationError, match="no Gemini API key configured"):
        resolve_providers(settings)
    assert resolve_providers(settings, offline=True) == ["sandbox"]
