"""Tests for tweetgen.config: precedence, aliases, secrets, validation and normalisation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tweetgen.config import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_LOG_FILE,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    Secret,
    Settings,
    load_settings,
)
from tweetgen.errors import ConfigurationError, TweetGenError


def load(
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    dotenv: dict[str, str] | None = None,
    **kw: Any,
) -> Settings:
    path = tmp_path / ".env"
    if dotenv is not None:
        path.write_text(
            "".join(f"{name}={value}\n" for name, value in dotenv.items()), encoding="utf-8"
        )
    return load_settings(env=env or {}, dotenv_path=path, **kw)


def value(settings: Settings, name: str) -> object:
    current = getattr(settings, name)
    return current.reveal() if isinstance(current, Secret) else current


# setting, variable, default, (raw, resolved) for .env, environment and argument
ROWS = [
    pytest.param(
        "api_key",
        "GEMINI_API_KEY",
        None,
        ("k-dotenv", "k-dotenv"),
        ("k-env", "k-env"),
        ("k-arg", "k-arg"),
        id="key",
    ),
    pytest.param(
        "api_key",
        "GOOGLE_API_KEY",
        None,
        ("g-dotenv", "g-dotenv"),
        ("g-env", "g-env"),
        ("g-arg", "g-arg"),
        id="gkey",
    ),
    pytest.param(
        "base_url",
        "GEMINI_BASE_URL",
        DEFAULT_BASE_URL,
        ("http://dotenv.test", "http://dotenv.test"),
        ("http://env.test/", "http://env.test"),
        ("https://arg.test/gemini", "https://arg.test/gemini"),
        id="base-url",
    ),
    pytest.param(
        "base_url",
        "GOOGLE_GEMINI_BASE_URL",
        DEFAULT_BASE_URL,
        ("http://gdotenv.test", "http://gdotenv.test"),
        ("http://genv.test", "http://genv.test"),
        ("http://garg.test", "http://garg.test"),
        id="google-base-url",
    ),
    pytest.param(
        "api_version",
        "TWEETGEN_API_VERSION",
        DEFAULT_API_VERSION,
        ("v1", "v1"),
        ("v1alpha", "v1alpha"),
        ("v2", "v2"),
    ),
    pytest.param(
        "model",
        "TWEETGEN_MODEL",
        DEFAULT_MODEL,
        ("gemini-dotenv", "gemini-dotenv"),
        ("models/gemini-env", "gemini-env"),
        ("gemini-arg", "gemini-arg"),
    ),
    pytest.param(
        "provider",
        "TWEETGEN_PROVIDER",
        None,
        ("gemini", "gemini"),
        ("sandbox", "sandbox"),
        ("auto", "auto"),
    ),
    pytest.param(
        "log_level",
        "TWEETGEN_LOG_LEVEL",
        "INFO",
        ("WARNING", "WARNING"),
        ("DEBUG", "DEBUG"),
        ("ERROR", "ERROR"),
    ),
    pytest.param(
        "log_file",
        "TWEETGEN_LOG_FILE",
        DEFAULT_LOG_FILE,
        ("d.log", "d.log"),
        ("e.log", "e.log"),
        ("a.log", "a.log"),
    ),
    pytest.param(
        "timeout", "TWEETGEN_TIMEOUT", DEFAULT_TIMEOUT, ("5", 5.0), ("7.5", 7.5), (9, 9.0)
    ),
]
Pair = tuple[object, object]


@pytest.mark.parametrize(("name", "var", "default", "dotenv", "env", "arg"), ROWS)
class TestPrecedence:
    def test_default(
        self,
        tmp_path: Path,
        name: str,
        var: str,
        default: object,
        dotenv: Pair,
        env: Pair,
        arg: Pair,
    ) -> None:
        settings = load(tmp_path)
        assert value(settings, name) == default
        assert name not in settings.sources

    def test_dotenv_beats_default(
        self,
        tmp_path: Path,
        name: str,
        var: str,
        default: object,
        dotenv: Pair,
        env: Pair,
        arg: Pair,
    ) -> None:
        settings = load(tmp_path, dotenv={var: str(dotenv[0])})
        assert value(settings, name) == dotenv[1]
        assert settings.sources[name] == f".env {var}"

    def test_environment_beats_dotenv(
        self,
        tmp_path: Path,
        name: str,
        var: str,
        default: object,
        dotenv: Pair,
        env: Pair,
        arg: Pair,
    ) -> None:
        settings = load(tmp_path, env={var: str(env[0])}, dotenv={var: str(dotenv[0])})
        assert value(settings, name) == env[1]
        assert settings.sources[name] == f"environment {var}"

    def test_argument_beats_environment(
        self,
        tmp_path: Path,
        name: str,
        var: str,
        default: object,
        dotenv: Pair,
        env: Pair,
        arg: Pair,
    ) -> None:
        settings = load(
            tmp_path, env={var: str(env[0])}, dotenv={var: str(dotenv[0])}, **{name: arg[0]}
        )
        assert value(settings, name) == arg[1]
        assert settings.sources[name] == "argument"

    def test_empty_values_are_ignored(
        self,
        tmp_path: Path,
        name: str,
        var: str,
        default: object,
        dotenv: Pair,
        env: Pair,
        arg: Pair,
    ) -> None:
        assert value(load(tmp_path, env={var: ""}, dotenv={var: str(dotenv[0])}), name) == dotenv[1]
        assert value(load(tmp_path, env={var: "   "}, dotenv={var: ""}), name) == default
        assert value(load(tmp_path, env={var: str(env[0])}, **{name: None}), name) == env[1]


@pytest.mark.parametrize(
    ("first", "second", "name"),
    [
        ("GEMINI_API_KEY", "GOOGLE_API_KEY", "api_key"),
        ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "base_url"),
    ],
)
class TestAliases:
    def test_first_alias_wins_in_the_environment(
        self, tmp_path: Path, first: str, second: str, name: str
    ) -> None:
        settings = load(tmp_path, env={second: "http://second.test", first: "http://first.test"})
        assert value(settings, name) == "http://first.test"

    def test_first_alias_wins_in_dotenv(
        self, tmp_path: Path, first: str, second: str, name: str
    ) -> None:
        settings = load(tmp_path, dotenv={second: "http://second.test", first: "http://first.test"})
        assert value(settings, name) == "http://first.test"

    def test_environment_second_alias_beats_dotenv_first_alias(
        self, tmp_path: Path, first: str, second: str, name: str
    ) -> None:
        settings = load(
            tmp_path, env={second: "http://env.test"}, dotenv={first: "http://dotenv.test"}
        )
        assert value(settings, name) == "http://env.test"

    def test_empty_first_alias_falls_through(
        self, tmp_path: Path, first: str, second: str, name: str
    ) -> None:
        settings = load(tmp_path, env={first: "", second: "http://second.test"})
        assert value(settings, name) == "http://second.test"


def test_missing_dotenv_file_and_disabled_dotenv(tmp_path: Path) -> None:
    assert load_settings(env={}, dotenv_path=tmp_path / "absent.env") == Settings()
    (tmp_path / ".env").write_text("TWEETGEN_MODEL=from-dotenv\n", encoding="utf-8")
    assert load_settings(env={}, dotenv_path=None).model == DEFAULT_MODEL


def test_dotenv_does_not_touch_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWEETGEN_LOG_FILE", raising=False)
    assert load(tmp_path, dotenv={"TWEETGEN_LOG_FILE": "x.log"}).log_file == "x.log"
    assert "TWEETGEN_LOG_FILE" not in os.environ


def test_dotenv_quotes_and_comments(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        '# comment\nGEMINI_API_KEY="quoted-key"\nTWEETGEN_MODEL=m1 # trailing\n'
    )
    settings = load_settings(env={}, dotenv_path=tmp_path / ".env")
    assert settings.api_key == Secret("quoted-key")
    assert settings.model == "m1"


def test_default_env_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWEETGEN_MODEL", "from-os-environ")
    assert load_settings(dotenv_path=tmp_path / ".env").model == "from-os-environ"


# --- secrets ---------------------------------------------------------------------


def test_secret_never_prints() -> None:
    secret = Secret("AIzaSySecretValue123")
    assert repr(secret) == str(secret) == f"{secret}" == f"{secret!r}" == "%s" % secret == "***"  # noqa: UP031
    assert secret.reveal() == "AIzaSySecretValue123"
    assert secret == Secret("AIzaSySecretValue123")
    assert secret != Secret("other")
    assert secret != "AIzaSySecretValue123"


@pytest.mark.parametrize("source", ["argument", "environment", "dotenv"])
def test_settings_never_print_the_key(tmp_path: Path, source: str) -> None:
    key = "AIzaSySecretValue123"
    if source == "argument":
        settings = load(tmp_path, api_key=key)
    elif source == "environment":
        settings = load(tmp_path, env={"GEMINI_API_KEY": key})
    else:
        settings = load(tmp_path, dotenv={"GEMINI_API_KEY": key})
    assert isinstance(settings.api_key, Secret)
    assert settings.api_key.reveal() == key
    for text in (
        repr(settings),
        str(settings),
        f"{settings}",
        f"{settings!r}",
        f"{settings.api_key}",
    ):
        assert key not in text
    assert "api_key=***" in repr(settings)


def test_with_overrides_wraps_the_key_and_validates() -> None:
    settings = Settings().with_overrides(
        api_key="new-key", model="models/m2", base_url="http://h/", timeout=None
    )
    assert settings.api_key == Secret("new-key")
    assert (settings.model, settings.base_url, settings.timeout) == (
        "m2",
        "http://h",
        DEFAULT_TIMEOUT,
    )
    with pytest.raises(ConfigurationError):
        Settings().with_overrides(provider="bogus")


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "env", "fragment"),
    [
        pytest.param({"timeout": "abc"}, {}, "timeout", id="timeout-arg"),
        pytest.param({}, {"TWEETGEN_TIMEOUT": "abc"}, "TWEETGEN_TIMEOUT", id="timeout-env"),
        pytest.param({"timeout": 0}, {}, "timeout", id="timeout-zero"),
        pytest.param({"timeout": -5}, {}, "timeout", id="timeout-negative"),
        pytest.param({}, {"TWEETGEN_TIMEOUT": "nan"}, "timeout", id="timeout-nan"),
        pytest.param({"timeout": 10_000}, {}, "timeout", id="timeout-huge"),
        pytest.param({"base_url": "ftp://x"}, {}, "base URL", id="base-url-scheme"),
        pytest.param({}, {"GEMINI_BASE_URL": "not a url"}, "base URL", id="base-url-env"),
        pytest.param({"base_url": "http://"}, {}, "base URL", id="base-url-no-host"),
        pytest.param({"provider": "bogus"}, {}, "provider", id="provider-arg"),
        pytest.param({}, {"TWEETGEN_PROVIDER": "bogus"}, "TWEETGEN_PROVIDER", id="provider-env"),
        pytest.param({"model": ""}, {}, "model", id="model-empty"),
        pytest.param({"model": "   "}, {}, "model", id="model-blank"),
        pytest.param({"model": "publishers/google/models/x"}, {}, "model", id="model-path"),
        pytest.param({"no_such_setting": 1}, {}, "no_such_setting", id="unknown-setting"),
    ],
)
def test_bad_values_raise_configuration_error(
    tmp_path: Path, kwargs: dict[str, Any], env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        load(tmp_path, env=env, **kwargs)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TweetGenError)
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("models/gemini-3.5-flash", "gemini-3.5-flash"), ("gemini-3.5-flash", "gemini-3.5-flash")],
)
def test_models_prefix_is_stripped(tmp_path: Path, raw: str, expected: str) -> None:
    assert load(tmp_path, model=raw).model == expected
    assert load(tmp_path, env={"TWEETGEN_MODEL": raw}).model == expected
    assert load(tmp_path, dotenv={"TWEETGEN_MODEL": raw}).model == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://generativelanguage.googleapis.com/", DEFAULT_BASE_URL),
        ("http://127.0.0.1:8000/gemini/", "http://127.0.0.1:8000/gemini"),
        ("http://h//", "http://h"),
        ("http://h/some/prefix", "http://h/some/prefix"),
    ],
)
def test_base_url_trailing_slash_is_stripped(tmp_path: Path, raw: str, expected: str) -> None:
    assert load(tmp_path, base_url=raw).base_url == expected
    assert load(tmp_path, env={"GOOGLE_GEMINI_BASE_URL": raw}).base_url == expected


def test_environment_values_are_trimmed(tmp_path: Path) -> None:
    settings = load(tmp_path, env={"TWEETGEN_MODEL": "  gemini-x  ", "GEMINI_API_KEY": " k \n"})
    assert settings.model == "gemini-x"
    assert settings.api_key == Secret("k")


@pytest.mark.parametrize("key", ["“AIza123”", "abc def", "clé"])
def test_keys_a_header_cannot_carry_are_rejected_without_echoing_them(key: str) -> None:
    with pytest.raises(ConfigurationError, match="paste the key alone") as caught:
        load_settings(env={"GEMINI_API_KEY": key}, dotenv_path=None)
    assert key not in str(caught.value)


def test_an_edited_dotenv_is_read_again(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("TWEETGEN_MODEL=first\n")
    assert load_settings(env={}, dotenv_path=dotenv).model == "first"
    dotenv.write_text("TWEETGEN_MODEL=second-model\n")  # a different size, so a different cache key
    assert load_settings(env={}, dotenv_path=dotenv).model == "second-model"
    (tmp_path / "dir.env").mkdir()
    assert load_settings(env={}, dotenv_path=tmp_path / "dir.env").model == "gemini-flash-latest"


@pytest.mark.parametrize("key", ['"AIzaQuoted"', "'abc'"])
def test_keys_pasted_with_their_quotes_are_rejected(key: str) -> None:
    with pytest.raises(ConfigurationError, match="paste the key alone"):
        load_settings(env={"GEMINI_API_KEY": key}, dotenv_path=None)
