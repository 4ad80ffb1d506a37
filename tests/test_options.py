"""Named, typed, keyword-only options: a wrong name fails at the caller's line and names the
argument; settings and policy are resolved once per distinct options and environment; the import
stays light."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tweetgen
from tweetgen import TweetGenerator, TweetGenError, api
from tweetgen.edge import ClientOptions, policy_for

HERE = os.path.normcase(os.path.abspath(__file__))

SYNC = [api.generate_tweet, api.generate, api.generate_variants, api.generate_thread]
ASYNC = [api.agenerate_tweet, api.agenerate]
METHODS = [
    "prompt",
    "generate",
    "generate_variants",
    "generate_thread",
    "agenerate",
    "agenerate_variants",
    "agenerate_thread",
]
#: the seed's positional parameters, exactly as the seed shows them
SEED_POSITIONAL = ["topic", "tone", "max_words", "max_retries"]
TWEET_OPTIONS = {
    "template",
    "hashtags",
    "emoji",
    "audience",
    "call_to_action",
    "language",
    "link",
    "banned_phrases",
    "seed",
    "temperature",
    "extra",
}
CLIENT_OPTIONS = {
    "api_key",
    "base_url",
    "api_version",
    "model",
    "timeout",
    "provider",
    "engine",
    "regenerations",
    "sleep",
    "base_delay",
    "max_delay",
    "jitter",
    "deadline",
    "retry_rate_limits",
    "max_retry_after",
}


@pytest.fixture(autouse=True)
def _sandbox_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "TWEETGEN_PROVIDER", "TWEETGEN_MODEL"):
        monkeypatch.delenv(name, raising=False)
    api.close_cached()
    yield
    api.close_cached()


def _last_frame(error: BaseException) -> traceback.FrameSummary:
    return traceback.extract_tb(error.__traceback__)[-1]


def _assert_callers_line(error: BaseException, line: int, function: str, name: str) -> None:
    message = str(error)
    assert message == f"{function}() got an unexpected keyword argument {name!r}"
    assert "TweetRequest" not in message
    assert "__init__" not in message
    frame = _last_frame(error)
    assert (os.path.normcase(frame.filename), frame.lineno) == (HERE, line)


@pytest.mark.parametrize("function", SYNC, ids=lambda f: f.__name__)
def test_a_misspelt_option_fails_at_the_callers_line(function: Callable[..., Any]) -> None:
    line = inspect.currentframe().f_lineno + 2  # type: ignore[union-attr]
    try:
        function("Python", jiter="full", provider="sandbox")
    except TypeError as error:
        _assert_callers_line(error, line, function.__name__, "jiter")
    else:
        pytest.fail("no TypeError")


@pytest.mark.parametrize("function", ASYNC, ids=lambda f: f.__name__)
def test_a_misspelt_option_fails_at_the_callers_line_async(function: Callable[..., Any]) -> None:
    async def caller() -> int:
        line = inspect.currentframe().f_lineno + 2  # type: ignore[union-attr]
        try:
            await function("Python", hashtag="none", provider="sandbox")
        except TypeError as error:
            _assert_callers_line(error, line, function.__name__, "hashtag")
            return line
        pytest.fail("no TypeError")

    assert asyncio.run(caller())


@pytest.mark.parametrize("method", METHODS)
def test_a_misspelt_option_of_a_method_fails_at_the_callers_line(method: str) -> None:
    with TweetGenerator(provider="sandbox") as generator:
        bound = getattr(generator, method)
        line = inspect.currentframe().f_lineno + 2  # type: ignore[union-attr]
        try:
            result = bound("Python", call_to_acton="Follow")
            if inspect.iscoroutine(result):  # pragma: no cover - the call itself raises
                result.close()
        except TypeError as error:
            _assert_callers_line(error, line, f"TweetGenerator.{method}", "call_to_acton")
        else:
            pytest.fail("no TypeError")


def _signature_names(function: Callable[..., Any]) -> tuple[list[str], set[str]]:
    parameters = inspect.signature(function).parameters.values()
    assert all(p.kind is not p.VAR_KEYWORD for p in parameters), "no **options in public calls"
    assert all(p.annotation is not p.empty for p in parameters if p.name != "self")
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    return positional, keyword


@pytest.mark.parametrize("function", SYNC + ASYNC, ids=lambda f: f.__name__)
def test_module_level_options_are_named_typed_and_keyword_only(
    function: Callable[..., Any],
) -> None:
    positional, keyword = _signature_names(function)
    if function in (api.generate_variants, api.generate_thread):
        assert positional == SEED_POSITIONAL[:3]  # as before: max_retries is keyword-only there
        assert "max_retries" in keyword
    else:
        assert positional == SEED_POSITIONAL
    assert keyword >= TWEET_OPTIONS | CLIENT_OPTIONS


@pytest.mark.parametrize("method", METHODS)
def test_method_options_are_named_typed_and_keyword_only(method: str) -> None:
    positional, keyword = _signature_names(getattr(TweetGenerator, method))
    assert positional == ["self", "topic", "tone", "max_words"]
    assert keyword >= TWEET_OPTIONS


def test_the_seeds_positional_call_still_works() -> None:
    text = api.generate_tweet("Python Programming", "witty", 20, 2, provider="sandbox")
    assert text
    assert len(text.split()) <= 20


def test_a_provider_chain_given_as_a_list_is_one_cache_entry() -> None:
    assert ClientOptions(provider=["gemini", "openai"]).provider == "gemini,openai"
    api.generate_tweet("AI", provider=["sandbox"])
    api.generate_tweet("AI", provider="sandbox")
    assert len(api._cache) == 1


def test_the_policy_is_built_once_per_distinct_options() -> None:
    policy_for.cache_clear()
    for _ in range(3):
        api.generate("AI", provider="sandbox", jitter="full")
    api.generate("AI", provider="sandbox", jitter="none")
    info = policy_for.cache_info()
    assert (info.misses, info.currsize) == (2, 2)
    assert ClientOptions(jitter="full").policy() is ClientOptions(jitter="full").policy()


def test_a_bad_policy_value_is_a_configuration_error_even_unhashable() -> None:
    with pytest.raises(TweetGenError, match="jitter must be one of"):
        api.generate_tweet("AI", provider="sandbox", jitter="fuller")
    with pytest.raises(TweetGenError, match="jitter must be one of"):
        api.generate_tweet("AI", provider="sandbox", jitter=["full"])  # type: ignore[arg-type]


def test_settings_follow_the_environment_between_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.generate("AI", provider="sandbox").provider == "sandbox"
    monkeypatch.setenv("TWEETGEN_PROVIDER", "nonsense")
    with pytest.raises(TweetGenError, match="unknown provider 'nonsense'"):
        api.generate("AI")
    monkeypatch.setenv("TWEETGEN_PROVIDER", "sandbox")
    assert api.generate("AI").provider == "sandbox"


def test_settings_follow_an_edited_dotenv_between_calls(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TWEETGEN_PROVIDER=sandbox\n", encoding="utf-8")
    assert api.generate("AI").provider == "sandbox"
    dotenv.write_text("TWEETGEN_PROVIDER=nonsense-value\n", encoding="utf-8")
    with pytest.raises(TweetGenError, match="unknown provider 'nonsense-value'"):
        api.generate("AI")
    dotenv.unlink()
    with pytest.raises(TweetGenError, match="no Gemini API key configured"):
        api.generate("AI")


def test_bad_input_fails_before_any_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWEETGEN_PROVIDER", "nonsense")
    with pytest.raises(tweetgen.InputError, match="hashtags must be none, auto"):
        api.generate_tweet("AI", hashtags=5)  # type: ignore[arg-type]


LIGHT = (
    "import sys, tweetgen; from tweetgen import Tweet, Thread, TweetGenError; "
    "print(sorted(m for m in sys.modules if m.split('.')[0] in {'httpx', 'structlog', 'tenacity'} "
    "or m.startswith('tweetgen.providers.') and m != 'tweetgen.providers.base'))"
)


def test_importing_the_results_loads_no_http_logging_or_retry_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_public_name_is_listed_and_resolves() -> None:
    assert {"ResponseTooLargeError", "RedirectError"} <= set(tweetgen.__all__)
    assert dir(tweetgen) == sorted(tweetgen.__all__)
    assert issubclass(tweetgen.ResponseTooLargeError, tweetgen.InvalidResponseError)
    assert callable(tweetgen.generate_tweet)
    assert callable(tweetgen.agenerate_tweet)
    assert not hasattr(tweetgen.TweetGenError, "exit_code")  # never read: removed


def test_an_unhashable_setting_is_a_configuration_error() -> None:
    with pytest.raises(tweetgen.ConfigurationError, match="the timeout must be a number"):
        api.generate_tweet("AI", provider="sandbox", timeout=[5])  # type: ignore[arg-type]
    assert not api._cache
