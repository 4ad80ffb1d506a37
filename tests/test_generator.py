"""Valid tweets every time: options, variants, threads and the call trace, through the sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeTime

from tweetgen import (
    CallTrace,
    InputError,
    Observer,
    TweetGenerator,
    TweetRequest,
    TweetValidationError,
)
from tweetgen.cli import main
from tweetgen.config import load_settings
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import AttemptTrace
from tweetgen.tweets import count_hashtags, count_words, has_emoji, weighted_length

SETTINGS = load_settings(env={}, dotenv_path=None)


def _generator(
    server: SandboxServer, fake: FakeTime | None = None, **kwargs: Any
) -> TweetGenerator:
    fake = fake or FakeTime()
    provider = GeminiProvider(
        api_key="k",
        model="gemini-flash-latest",
        base_url=server.url,
        name="sandbox",
        secret_key=False,
    )
    return TweetGenerator(
        provider=provider, settings=SETTINGS, sleep=fake.sleep, clock=fake.clock, **kwargs
    )


def _prompt(server: SandboxServer, index: int = -1) -> str:
    body = server.requests[index].body
    assert body is not None
    return str(body["contents"][0]["parts"][0]["text"])


class Recorder(Observer):
    def __init__(self) -> None:
        self.hooks: list[tuple[str, Any]] = []

    def call_started(self, call: CallTrace) -> None:
        self.hooks.append(("call_started", call.request_id))

    def attempt_started(self, call: CallTrace, attempt: AttemptTrace) -> None:
        self.hooks.append(("attempt_started", attempt.number))

    def attempt_finished(self, call: CallTrace, attempt: AttemptTrace) -> None:
        self.hooks.append(
            ("attempt_finished", (attempt.number, attempt.status_code, attempt.error_type))
        )

    def call_finished(self, call: CallTrace) -> None:
        self.hooks.append(("call_finished", (call.status, len(call.attempts), call.waited_seconds)))


# --- the request --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hashtags": "not a tag!"}, "is not a hashtag"),
        ({"variants": 9}, "variants must be a whole number from 1 to 8"),
        ({"thread": 1}, "the number of tweets in a thread must be a whole number from 2 to 25"),
        ({"link": "example.com/x"}, "link must be an http"),
        ({"temperature": 3.0}, "the temperature must be a number from 0 to 2"),
        ({"audience": "  "}, "audience must be a non-empty text"),
    ],
)
def test_request_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        TweetRequest("AI", **options)


def test_request_options_reach_the_prompt_and_the_rules() -> None:
    request = TweetRequest(
        "AI",
        hashtags="python, #ai",
        emoji=False,
        audience="CTOs",
        call_to_action="Reply below",
        language="German",
        link="https://example.com/post",
    )
    text = request.instructions()
    assert "Include these hashtags: #python #ai." in text
    assert "Do not use emoji." in text
    assert "Write for this audience: CTOs." in text
    assert "End with this call to action: Reply below." in text
    assert "Write in German." in text
    rules = request.rules()
    assert (rules.required_text, rules.allow_emoji, rules.max_hashtags) == (
        "https://example.com/post",
        False,
        4,
    )
    assert request.words_for_model == 24
    assert request.finish("Hello #python") == "Hello #python #ai https://example.com/post"


def test_no_hashtags_means_zero_allowed() -> None:
    assert TweetRequest("AI", hashtags="none").rules().max_hashtags == 0
    assert "Do not use hashtags." in TweetRequest("AI", hashtags="none").instructions()


# --- generation ------------------------------------------------------------------------------


def test_options_shape_the_sandbox_tweet(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        tweet = generator.generate(
            "Python", "witty", 20, hashtags="none", link="https://example.com/p", emoji=False
        )
    assert tweet.text.endswith(" https://example.com/p")
    assert count_hashtags(tweet.text) == 0
    assert not has_emoji(tweet.text)
    assert tweet.words <= 20
    assert tweet.weighted_length == weighted_length(tweet.text)
    assert "Do not use hashtags." in _prompt(sandbox_server)


def test_given_hashtags_are_guaranteed(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        tweet = generator.generate("Rust", hashtags=["rustlang", "#systems"])
    assert "#rustlang" in tweet.text
    assert "#systems" in tweet.text


def test_banned_phrase_triggers_regeneration_then_a_validation_error() -> None:
    with SandboxServer() as server, _generator(server, regenerations=1) as generator:
        first = generator.generate("Python Programming", seed=1)
        banned = " ".join(first.text.split()[:2])
        with pytest.raises(TweetValidationError) as caught:
            generator.generate("Python Programming", seed=1, banned_phrases=(banned,))
        assert f"it contained the banned phrase '{banned}'" in _prompt(server)
    assert caught.value.best == first.text
    assert caught.value.reasons == (f"it contained the banned phrase '{banned}'",)


def test_variants_are_distinct_valid_and_from_one_call(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        tweets = generator.generate_variants("Open source", "casual", 25, n=3, seed=4)
    assert len(sandbox_server.requests) == 1
    config = sandbox_server.requests[0].body["generationConfig"]  # type: ignore[index]
    assert config["candidateCount"] == 1  # one candidate holding a JSON array of the three
    assert config["responseMimeType"] == "application/json"
    assert (config["responseJsonSchema"]["minItems"], config["responseJsonSchema"]["maxItems"]) == (
        3,
        3,
    )
    assert 1 <= len(tweets) <= 3
    assert len({t.text for t in tweets}) == len(tweets)
    assert all(t.valid and t.words <= 25 and t.attempts == 1 for t in tweets)
    words = [abs(t.words - 25) for t in tweets]
    assert words == sorted(words)


def test_variants_ask_again_for_the_missing_ones() -> None:
    with SandboxServer(faults="long") as server, _generator(server) as generator:
        tweets = generator.generate_variants("Open source", n=2)
        schemas = [r.body["generationConfig"]["responseJsonSchema"] for r in server.requests]  # type: ignore[index]
    counts = [schema["minItems"] for schema in schemas]
    assert counts[0] == 2
    assert len(counts) == 2
    assert len(tweets) >= 1


def test_thread_is_numbered_and_every_tweet_valid(sandbox_server: SandboxServer) -> None:
    with _generator(sandbox_server) as generator:
        thread = generator.generate_thread("Testing in Python", "informative", 30, tweets=4)
    assert len(thread.tweets) == 4
    assert [t.text.rsplit(" ", 1)[1] for t in thread.tweets] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(t.words <= 30 and t.weighted_length <= 280 for t in thread.tweets)
    assert "thread of 4 tweets" in _prompt(sandbox_server)
    assert thread.attempts == 1


def test_thread_with_the_wrong_count_is_regenerated_with_the_reason() -> None:
    with SandboxServer(faults="quoted") as server, _generator(server) as generator:
        thread = generator.generate_thread("Go", tweets=3, numbering=False)
    assert len(thread.tweets) == 3
    assert not any(t.text.endswith("/3") for t in thread.tweets)


def test_async_variants_and_thread(sandbox_server: SandboxServer) -> None:
    async def go() -> tuple[int, int]:
        generator = _generator(sandbox_server)
        try:
            variants = await generator.agenerate_variants("Kotlin", n=2)
            thread = await generator.agenerate_thread("Kotlin", tweets=2)
        finally:
            await generator.aclose()
        return len(variants), len(thread.tweets)

    n_variants, n_thread = asyncio.run(go())
    assert 1 <= n_variants <= 2
    assert n_thread == 2


# --- the call trace -------------------------------------------------------------------------------


def test_observers_see_every_attempt_and_the_outcome() -> None:
    recorder = Recorder()
    fake = FakeTime()
    with (
        SandboxServer(faults="503,drop") as server,
        _generator(server, fake, observers=[recorder]) as generator,
    ):
        tweet = generator.generate("AI")
    assert recorder.hooks == [
        ("call_started", tweet.request_id),
        ("attempt_started", 1),
        ("attempt_finished", (1, 503, "ServerError")),
        ("attempt_started", 2),
        ("attempt_finished", (2, None, "NetworkError")),
        ("attempt_started", 3),
        ("attempt_finished", (3, 200, None)),
        ("call_finished", ("ok", 3, 3.0)),
    ]
    assert tweet.attempts == 3
    assert tweet.latency_ms == 3000.0


def test_a_failing_observer_does_not_break_the_call(sandbox_server: SandboxServer) -> None:
    class Broken(Observer):
        def call_finished(self, call: CallTrace) -> None:
            raise RuntimeError("observer bug")

    with _generator(sandbox_server, observers=[Broken()]) as generator:
        assert generator.generate("AI").text


def test_failed_call_trace_has_a_redacted_error() -> None:
    recorder = Recorder()
    seen: list[CallTrace] = []

    class Keep(Observer):
        def call_finished(self, call: CallTrace) -> None:
            seen.append(call)

    key = "AIza" + "x" * 35
    with SandboxServer(faults="echo-key") as server:
        provider = GeminiProvider(api_key=key, model="m", base_url=server.url, name="sandbox")
        generator = TweetGenerator(
            provider=provider, settings=SETTINGS, observers=[recorder, Keep()]
        )
        with generator, pytest.raises(Exception, match="API key not valid"):
            generator.generate("AI")
    assert seen[0].status == "failed"
    assert seen[0].error_type == "BadRequestError"
    assert key not in (seen[0].error_message or "")


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "TWEETGEN_PROVIDER", "GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_variants_json(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["generate", "--topic", "Databases", "--variants", "3", "--json", "-q", "--seed", "2"])
        == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert isinstance(records, list)
    assert all(r["valid"] and r["provider"] == "sandbox" and r["words"] <= 25 for r in records)
    assert all(r["weighted_length"] <= 280 for r in records)


def test_cli_thread_text_and_json(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["thread", "--topic", "Databases", "--tweets", "3", "-q"]) == 0
    parts = capsys.readouterr().out.strip().split("\n\n")
    assert [p.rsplit(" ", 1)[1] for p in parts] == ["1/3", "2/3", "3/3"]
    assert (
        main(["thread", "--topic", "Databases", "--tweets", "3", "-q", "--json", "--no-numbering"])
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert len(record["tweets"]) == 3
    assert all(count_words(t["text"]) <= 40 for t in record["tweets"])


def test_cli_dry_run_shows_options(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "generate",
        "--topic",
        "AI",
        "--no-emoji",
        "--hashtags",
        "none",
        "--language",
        "French",
        "--dry-run",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Do not use emoji." in out
    assert "Write in French." in out
    assert main(["thread", "--topic", "AI", "--tweets", "6", "--dry-run"]) == 0
    assert "thread of 6 tweets" in capsys.readouterr().out


def test_cli_bad_option_exits_2(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--topic", "AI", "--variants", "20", "-q"]) == 2
    assert "variants must be a whole number from 1 to 8" in capsys.readouterr().err


def test_a_given_hashtag_is_not_hidden_inside_a_longer_one() -> None:
    request = TweetRequest("AI tools", hashtags="ai")
    assert request.finish("Great stuff #AITools") == "Great stuff #AITools #ai"
    assert request.finish("Great #AI stuff") == "Great #AI stuff"
