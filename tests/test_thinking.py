"""Thinking control (issue 15, part 1): the level sent per model family over a real socket (never
both fields), an all-thoughts MAX_TOKENS answer asked again with less thinking, thought tokens
recorded, and the setting's word checked in the flag, the environment and the library."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import names

from tweetgen import TweetGenerator
from tweetgen.cli import main
from tweetgen.config import Settings
from tweetgen.errors import ConfigurationError
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.thinking import ThoughtsExhaustedError, less_thinking

LEVELS = ("off", "low", "medium", "high", "auto")
#: (model, level) -> the thinkingConfig sent (None: no thinkingConfig at all)
EXPECTED: dict[tuple[str, str], dict[str, Any] | None] = {
    ("gemini-2.5-flash", "off"): {"thinkingBudget": 0},
    ("gemini-2.5-flash", "low"): {"thinkingBudget": 512},
    ("gemini-2.5-flash", "medium"): {"thinkingBudget": 2048},
    ("gemini-2.5-flash", "high"): {"thinkingBudget": 8192},
    ("gemini-2.5-flash", "auto"): {"thinkingBudget": -1},
    ("gemini-2.5-pro", "off"): {"thinkingBudget": 128},  # 2.5 Pro cannot stop thinking
    ("gemini-2.5-flash-lite", "off"): {"thinkingBudget": 0},
    ("gemini-3-flash-preview", "off"): {"thinkingLevel": "minimal"},
    ("gemini-3-flash-preview", "low"): {"thinkingLevel": "low"},
    ("gemini-3-flash-preview", "medium"): {"thinkingLevel": "medium"},
    ("gemini-3-flash-preview", "high"): {"thinkingLevel": "high"},
    ("gemini-3-flash-preview", "auto"): None,
    ("gemini-3-pro-preview", "off"): {"thinkingLevel": "low"},
    ("gemini-3-pro-preview", "medium"): {"thinkingLevel": "high"},  # 3.0 Pro: low and high only
    ("gemini-flash-latest", "off"): {"thinkingLevel": "minimal"},
    ("gemini-flash-latest", "auto"): None,
    ("gemini-2.0-flash", "high"): None,  # no thinking field for a model that does not think
}


def _provider(server: SandboxServer, model: str) -> GeminiProvider:
    return GeminiProvider(api_key="test-key-123", model=model, base_url=server.url)


def _sent(server: SandboxServer) -> list[dict[str, Any]]:
    return [r.body["generationConfig"] for r in server.requests if r.body]


def _ask(provider: GeminiProvider, request: GenerationRequest) -> None:
    """One attempt; an all-thoughts answer (at high, often) is an answer too."""
    try:
        text = provider.generate(request).text
    except ThoughtsExhaustedError as error:
        text = f"{error.thought_tokens} thought tokens"
    assert text


@pytest.mark.parametrize(("model", "level"), list(EXPECTED))
def test_the_level_is_sent_in_the_model_familys_field_over_a_socket(
    sandbox_server: SandboxServer, model: str, level: str
) -> None:
    with closing(_provider(sandbox_server, model)) as provider:
        _ask(provider, GenerationRequest("Write a tweet about tea.", thinking=level))
    (config,) = _sent(sandbox_server)
    assert config.get("thinkingConfig") == EXPECTED[model, level]
    assert set(sandbox_server.answers) == {200}  # the sandbox took it: a field it refuses is a 400
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget", 0)
    assert config["maxOutputTokens"] == 1024 + max(budget, 0)  # a budget gets its own room


def test_never_both_fields_for_any_model_or_level(sandbox_server: SandboxServer) -> None:
    models = sorted({m for m, _ in EXPECTED})
    for model in models:
        with closing(_provider(sandbox_server, model)) as provider:
            for level in (*LEVELS, None):
                _ask(provider, GenerationRequest("A tweet about tea.", thinking=level))
    sent = _sent(sandbox_server)
    assert len(sent) == len(models) * 6
    assert set(sandbox_server.answers) == {200}
    assert all(len(c.get("thinkingConfig") or {}) <= 1 for c in sent)


def test_the_sandbox_refuses_what_the_api_refuses(sandbox_server: SandboxServer) -> None:
    import httpx

    url = f"{sandbox_server.url}/v1beta/models/%s:generateContent"
    for model, thinking, message in (
        ("gemini-2.5-flash", {"thinkingBudget": 0, "thinkingLevel": "low"}, "only one of"),
        ("gemini-2.5-pro", {"thinkingBudget": 0}, "only works in thinking mode"),
        ("gemini-2.5-flash", {"thinkingLevel": "low"}, "not supported"),
    ):
        body = {
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": thinking},
        }
        answer = httpx.post(url % model, json=body)
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]


def test_thought_tokens_are_parsed_and_reach_the_tweet(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server, "gemini-2.5-flash", thinking="auto") as generator:
        tweet = generator.generate("tea", seed=1)
    assert tweet.usage.thought_tokens > 0
    assert tweet.usage.total_tokens == (
        tweet.usage.input_tokens + tweet.usage.output_tokens + tweet.usage.thought_tokens
    )


def _generator(server: SandboxServer, model: str, **options: Any) -> TweetGenerator:
    return TweetGenerator(
        provider=_provider(server, model), settings=Settings(model=model), **options
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_all_thoughts_answer_is_asked_again_with_less_thinking_never_empty(
    sandbox_server: SandboxServer, events: Callable[[], list[dict[str, Any]]], mode: str
) -> None:
    """At ``high`` the sandbox's Gemini 3 Flash spends every output token on thoughts for about
    four prompts in ten: each such answer is asked again one level lower, and every call ends in
    a tweet."""
    generator = _generator(sandbox_server, "gemini-3-flash-preview", thinking="high")

    async def both() -> list[Any]:
        try:
            return [await generator.agenerate("tea", seed=seed) for seed in range(20)]
        finally:
            await generator.aclose()

    with generator:
        if mode == "async":
            tweets = asyncio.run(both())
        else:
            tweets = [generator.generate("tea", seed=seed) for seed in range(20)]
    assert all(t.text.strip() for t in tweets)
    spent = [e for e in events() if e["event"] == "Thinking spent the answer"]
    assert spent, "some answer spent every token on thoughts"
    assert {(e["thinking"], e["next_thinking"]) for e in spent} <= {
        ("high", "medium"),
        ("medium", "low"),
    }
    assert all(e["thought_tokens"] == 1024 for e in spent)
    levels = [c["thinkingConfig"]["thinkingLevel"] for c in _sent(sandbox_server)]
    assert len(levels) == 20 + len(spent)
    assert levels.count("medium") == sum(e["thinking"] == "high" for e in spent)
    assert "Tweet rejected" not in names(events())


def test_recovery_is_bounded_and_then_the_error_says_why(sandbox_server: SandboxServer) -> None:
    """A model that thinks away every answer (the fault script's all-thoughts answer, every
    time): two more tries, then the error, never an empty tweet."""
    answer = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 9, "thoughtsTokenCount": 1024},
    }
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    provider = GeminiProvider(
        api_key="test-key-123",
        model="gemini-3-flash-preview",
        transport=httpx.MockTransport(handler),
    )
    with (
        TweetGenerator(provider=provider, settings=Settings(), thinking="medium") as generator,
        pytest.raises(ThoughtsExhaustedError, match="spent its output tokens on thinking"),
    ):
        generator.generate("tea")


def test_less_thinking_steps_down_then_makes_room() -> None:
    request = GenerationRequest("p", thinking="high")
    steps = []
    level: str | None = "high"
    while (request2 := less_thinking(request, level or "low")) is not None:
        steps.append((request2.thinking, request2.max_output_tokens))
        request, level = request2, request2.thinking
    assert steps == [
        ("medium", 1024),
        ("low", 1024),
        ("off", 1024),
        ("off", 2048),
        ("off", 4096),
        ("off", 8192),
    ]
    assert less_thinking(GenerationRequest("p", thinking="auto"), "auto").thinking == "low"


def test_the_library_and_settings_refuse_a_word_that_is_not_a_level() -> None:
    with pytest.raises(ConfigurationError, match="one of off, low, medium, high, auto"):
        TweetGenerator(provider="sandbox", settings=Settings(), thinking="lots")
    from tweetgen.config import load_settings

    with pytest.raises(ConfigurationError, match=r"\(from environment TWEETGEN_THINKING\)"):
        load_settings(env={"TWEETGEN_THINKING": "lots"}, dotenv_path=None)


def test_the_dotenv_file_sets_the_level(tmp_path: Path) -> None:
    from tweetgen.config import load_settings

    (tmp_path / ".env").write_text("TWEETGEN_THINKING=off\n", encoding="utf-8")
    settings = load_settings(env={}, dotenv_path=tmp_path / ".env")
    assert settings.thinking == "off"
    assert settings.sources["thinking"] == ".env TWEETGEN_THINKING"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWEETGEN_LOG_FILE", "")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_cli_names_the_variable_for_a_bad_level(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWEETGEN_THINKING", "lots")
    code = main(["generate", "--topic", "AI", "-q", "--provider", "sandbox"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TWEETGEN_THINKING" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as stop:
        main(["generate", "--topic", "AI", "-q", "--thinking", "lots"])
    assert stop.value.code == 2
    assert "--thinking" in capsys.readouterr().err


def test_the_cli_flag_reaches_the_request_body(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with SandboxServer() as server:
        monkeypatch.setenv("GEMINI_API_KEY", "test-key-123")
        monkeypatch.setenv("GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("TWEETGEN_THINKING", "high")  # the flag wins over the variable
        argv = ["generate", "--topic", "AI", "-q", "--model", "gemini-2.5-flash"]
        assert main([*argv, "--thinking", "off"]) == 0
        assert main(argv) == 0
    capsys.readouterr()
    budgets = [c["thinkingConfig"]["thinkingBudget"] for c in _sent(server)]
    assert budgets == [0, 8192]


def test_the_module_calls_take_the_level(clean_env: Path) -> None:
    import tweetgen
    from tweetgen.sandbox import default_sandbox

    server = default_sandbox()
    text = tweetgen.generate_tweet(
        "tea", provider="sandbox", model="gemini-2.5-flash", thinking="medium"
    )
    assert text.strip()  # the seed's call returns the text
    assert server.requests[-1].body["generationConfig"]["thinkingConfig"] == {  # type: ignore[index]
        "thinkingBudget": 2048
    }
    call = tweetgen.agenerate_tweet(
        "tea", provider="sandbox", model="gemini-2.5-flash", thinking="off"
    )
    assert asyncio.run(call).strip()
    assert server.requests[-1].body["generationConfig"]["thinkingConfig"] == {  # type: ignore[index]
        "thinkingBudget": 0
    }


def test_thought_parts_are_never_the_tweet(sandbox_server: SandboxServer) -> None:
    """With ``includeThoughts`` the sandbox answers ``thought: true`` parts, as Gemini does; they
    are no part of the text, and an answer of thoughts only is an all-thoughts answer."""
    import httpx

    from tweetgen.providers.gemini import parse_response

    url = f"{sandbox_server.url}/v1beta/models/gemini-3-flash-preview:generateContent"
    texts, exhausted = [], 0
    for seed in range(12):
        body = {
            "contents": [{"parts": [{"text": "Write a casual tweet about tea."}]}],
            "generationConfig": {
                "seed": seed,
                "maxOutputTokens": 1024,
                "thinkingConfig": {"thinkingLevel": "high", "includeThoughts": True},
            },
        }
        answer = httpx.post(url, json=body)
        parts = answer.json()["candidates"][0]["content"]["parts"]
        assert parts[0]["thought"] is True
        try:
            result = parse_response(answer.content, provider="gemini", model="m")
        except ThoughtsExhaustedError:
            exhausted += 1
            assert len(parts) == 1
            continue
        texts.append(result.text)
    assert exhausted
    assert texts
    assert all("Planning" not in text for text in texts)
