"""The CLI's words (issue 12, items 7 to 10): errors name flags and environment variables, never
Python parameters; help has examples, the environment, exit codes and defaults; a usage error is
three short lines; ``--otel`` says when nothing would receive its spans; the test suite runs without
the optional test tools.

The table runs ``tweetgen.cli.main`` in this process (a bad value fails before any call, so each
case costs milliseconds); the end-to-end checks run ``python -m tweetgen`` as a shell would.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tweetgen import backoff, cli
from tweetgen.cli import EXAMPLES, FLAGS, main
from tweetgen.config import OTEL_INSTALL_HINT
from tweetgen.request import SETTING_WORDS

ROOT = Path(__file__).resolve().parent.parent

#: what Python syntax looks like in a message: a keyword argument (log_file=, api_key=...), a call
#: (register_tone()), a quoted parameter value (provider='sandbox'), a snake_case parameter name, an
#: errno, a float where a whole number was typed
PYTHON_WORDS = [
    re.compile(r"(?<![A-Z_])[a-z][a-z_]*="),
    re.compile(r"\w\(\)"),
    re.compile(
        r"\b(?:max_words|call_to_action|log_file|api_key|base_delay|max_delay|max_retries|banned_phrases)\b"
    ),
    re.compile(r"\[Errno"),
    re.compile(r"Traceback"),
    re.compile(r"got -?\d+\.0\b"),
]


def _python_words(text: str) -> list[str]:
    return [match.group() for pattern in PYTHON_WORDS for match in pattern.finditer(text)]


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory, no tweetgen, Gemini or OpenAI settings, no log file."""
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TWEETGEN_LOG_FILE", "")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory\n", encoding="utf-8")
    (tmp_path / "topics.csv").write_text("topic\nRust\n", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    return tmp_path


G = ("generate", "--topic", "AI", "-q")
T = ("thread", "--topic", "AI", "-q")
B = ("batch", "topics.csv", "-o", "out.jsonl", "-q")
LONG = "x" * 300

#: (id, arguments, environment, what the error line must say): every flag that takes a value, and
#: every environment variable, with a bad value
CASES: list[tuple[str, tuple[str, ...], dict[str, str], str]] = [
    (
        "topic-empty",
        ("generate", "--topic", " ", "-q"),
        {},
        "--topic: the topic must be a non-empty text",
    ),
    (
        "topic-long",
        ("generate", "--topic", LONG, "-q"),
        {},
        "--topic: the topic is 300 characters long",
    ),
    (
        "topic-control",
        ("generate", "--topic", "a\x01b", "-q"),
        {},
        "--topic: the topic contains a control character",
    ),
    ("tone", (*G, "--tone", "grumpy"), {}, "--tone: unknown tone 'grumpy'; choose one of casual"),
    (
        "max-words-0",
        (*G, "--max-words", "0"),
        {},
        "--max-words: the word limit must be a whole number from 1 to 60",
    ),
    (
        "max-words-61",
        (*G, "--max-words", "61"),
        {},
        "--max-words: the word limit must be a whole number",
    ),
    (
        "max-words-text",
        (*G, "--max-words", "ten"),
        {},
        "argument --max-words: expected a whole number, got 'ten'",
    ),
    (
        "hashtags-empty",
        (*G, "--hashtags", ",,"),
        {},
        "--hashtags: hashtags must be 'none', 'auto' or one or more",
    ),
    ("hashtags-bad", (*G, "--hashtags", "c++"), {}, "--hashtags: 'c++' is not a hashtag"),
    ("audience", (*G, "--audience", " "), {}, "--audience: the audience must be a non-empty text"),
    (
        "cta",
        (*G, "--cta", LONG),
        {},
        "--cta: the call to action must be a non-empty text of at most 200 characters",
    ),
    ("language", (*G, "--language", ""), {}, "--language: the language must be a non-empty text"),
    ("link", (*G, "--link", "example.com"), {}, "--link: the link must be an http(s) URL"),
    (
        "link-words",
        (*G, "--link", "https://example.com", "--max-words", "1"),
        {},
        "--max-words: a link counts",
    ),
    ("ban", (*G, "--ban", " "), {}, "--ban: a banned phrase must be a non-empty text"),
    (
        "seed-big",
        (*G, "--seed", str(2**40)),
        {},
        "--seed: the seed must be a whole number from -2147483648",
    ),
    (
        "seed-text",
        (*G, "--seed", "lucky"),
        {},
        "argument --seed: expected a whole number, got 'lucky'",
    ),
    (
        "temperature",
        (*G, "--temperature", "3"),
        {},
        "--temperature: the temperature must be a number from 0 to 2, got 3",
    ),
    (
        "temperature-text",
        (*G, "--temperature", "hot"),
        {},
        "argument --temperature: expected a number, got 'hot'",
    ),
    (
        "template",
        (*G, "--template", "nope"),
        {},
        "--template: unknown template 'nope'; known templates",
    ),
    (
        "templates-missing",
        (*G, "--templates-file", "nope.json"),
        {},
        "--templates-file: cannot read template file",
    ),
    (
        "templates-bad",
        (*G, "--templates-file", "bad.json"),
        {},
        "--templates-file: bad.json is not valid JSON",
    ),
    (
        "regenerations",
        (*G, "--regenerations", "-1"),
        {},
        "argument --regenerations: expected a whole number, 0 or",
    ),
    (
        "model",
        (*G, "--model", "a model"),
        {},
        "--model: the model must be a model name such as gemini-flash-latest",
    ),
    ("provider", (*G, "--provider", "bing"), {}, "argument --provider: unknown provider in 'bing'"),
    (
        "provider-no-key",
        (*G, "--provider", "gemini"),
        {},
        "no Gemini API key configured: set GEMINI_API_KEY",
    ),
    (
        "provider-auto-chain",
        (*G, "--provider", "auto,gemini"),
        {},
        "the provider chain 'auto,gemini' includes auto",
    ),
    ("provider-twice", (*G, "--provider", "sandbox,sandbox"), {}, "names a provider twice"),
    (
        "timeout-0",
        (*G, "--timeout", "0"),
        {},
        "--timeout: the timeout must be more than 0 seconds and at most 3600 (an hour), got 0",
    ),
    (
        "timeout-big",
        (*G, "--timeout", "5000"),
        {},
        "--timeout: the timeout must be more than 0 seconds and at most",
    ),
    (
        "timeout-text",
        (*G, "--timeout", "soon"),
        {},
        "argument --timeout: expected a number of seconds, got 'soon'",
    ),
    (
        "timeout-negative",
        (*G, "--timeout", "-1"),
        {},
        "argument --timeout: expected a number of seconds, 0 or more",
    ),
    (
        "max-response-bytes",
        (*G, "--max-response-bytes", "5"),
        {},
        "--max-response-bytes: the largest answer to read",
    ),
    (
        "db-under-a-file",
        (*G, "--db", "a-file/x.db"),
        {},
        "a-file is a file, not a directory; pass --db PATH",
    ),
    (
        "variants-0",
        (*G, "--variants", "0"),
        {},
        "--variants: the number of variants must be a whole number from 1 to 8",
    ),
    (
        "variants-text",
        (*G, "--variants", "many"),
        {},
        "argument --variants: expected a whole number, got 'many'",
    ),
    (
        "max-retries",
        (*G, "--max-retries", "-1"),
        {},
        "argument --max-retries: expected a whole number, 0 or more",
    ),
    (
        "base-delay",
        (*G, "--base-delay", "-1"),
        {},
        "argument --base-delay: expected a number of seconds, 0 or more",
    ),
    (
        "base-over-max",
        (*G, "--base-delay", "100"),
        {},
        "--base-delay (100 seconds) is longer than --max-delay (10",
    ),
    (
        "max-delay",
        (*G, "--max-delay", "0.5"),
        {},
        "--base-delay (1 second, its default) is longer than --max-delay",
    ),
    (
        "max-delay-text",
        (*G, "--max-delay", "long"),
        {},
        "argument --max-delay: expected a number of seconds",
    ),
    ("jitter", (*G, "--jitter", "some"), {}, "argument --jitter: invalid choice: 'some'"),
    (
        "deadline-0",
        (*G, "--deadline", "0"),
        {},
        "argument --deadline: expected a number of seconds above 0, got '0'",
    ),
    (
        "max-retry-after",
        (*G, "--max-retry-after", "-5"),
        {},
        "argument --max-retry-after: expected a number of",
    ),
    ("engine", (*G, "--engine", "fast"), {}, "argument --engine: invalid choice: 'fast'"),
    (
        "retry-budget",
        (*G, "--retry-budget", "2"),
        {},
        "argument --retry-budget: expected a ratio from 0 to 1, got '2'",
    ),
    ("log-level", (*G, "--log-level", "loud"), {}, "argument --log-level: invalid choice: 'LOUD'"),
    (
        "log-file",
        (*G, "--log-file", "a-file/log.jsonl"),
        {},
        "--log-file: cannot write log file a-file/log.jsonl",
    ),
    (
        "tweets-1",
        (*T, "--tweets", "1"),
        {},
        "--tweets: the number of tweets in a thread must be a whole number from 2",
    ),
    (
        "tweets-text",
        (*T, "--tweets", "five"),
        {},
        "argument --tweets: expected a whole number, got 'five'",
    ),
    (
        "input-missing",
        ("batch", "nope.csv", "-o", "out.jsonl"),
        {},
        "input file nope.csv does not exist",
    ),
    (
        "output-under-a-file",
        ("batch", "topics.csv", "-o", "a-file/out.jsonl"),
        {},
        "cannot write output",
    ),
    (
        "batch-db",
        (*B, "--db", "a-file/x.db"),
        {},
        "a-file is a file, not a directory; pass --db PATH",
    ),
    ("concurrency", (*B, "--concurrency", "0"), {}, "--concurrency must be from 1 to 256, got 0"),
    ("workers", (*B, "--workers", "65"), {}, "--workers must be from 1 to 64, got 65"),
    (
        "rpm",
        (*B, "--rpm", "-1"),
        {},
        "argument --rpm: expected a number of requests per minute, 0 or more",
    ),
    (
        "tpm",
        (*B, "--tpm", "-5"),
        {},
        "argument --tpm: expected a number of tokens per minute, 0 or more",
    ),
    (
        "shared-scheme",
        (*G, "--shared", "mysql://user:hunter2@db/x"),
        {},
        "--shared: the shared state must be a postgresql:// URL such as",
    ),
    (
        "shared-variable",
        G,
        {"TWEETGEN_SHARED": "redis://cache:6379"},
        "the shared state (from environment TWEETGEN_SHARED) must be a postgresql:// URL",
    ),
    (
        "metrics-port",
        (*B, "--metrics-port", "70000"),
        {},
        "argument --metrics-port: a port is from 0 to 65535",
    ),
    (
        "input-format",
        (*B, "--input-format", "xml"),
        {},
        "argument --input-format: invalid choice: 'xml'",
    ),
    ("format", (*B, "--format", "xml"), {}, "argument --format: invalid choice: 'xml'"),
    ("stats-db", ("stats", "--db", "nope.db"), {}, "no store at nope.db"),
    (
        "stats-since",
        ("stats", "--db", "a-file", "--since", "yesterday"),
        {},
        "invalid --since value 'yesterday'",
    ),
    (
        "serve-port",
        ("sandbox", "serve", "--port", "70000"),
        {},
        "argument --port: a port is from 0 to 65535",
    ),
    (
        "serve-faults",
        ("sandbox", "serve", "--port", "0", "--faults", "bogus"),
        {},
        "unknown fault 'bogus'",
    ),
    (
        "serve-latency",
        ("sandbox", "serve", "--latency", "-1"),
        {},
        "argument --latency: expected a number of seconds",
    ),
    (
        "serve-error-rate",
        ("sandbox", "serve", "--error-rate", "2"),
        {},
        "argument --error-rate: expected a ratio",
    ),
    (
        "serve-seed",
        ("sandbox", "serve", "--seed", "x"),
        {},
        "argument --seed: expected a whole number",
    ),
    (
        "thinking",
        (*G, "--thinking", "lots"),
        {},
        "argument --thinking: invalid choice: 'lots'",
    ),
    (
        "service-tier",
        (*G, "--service-tier", "gold"),
        {},
        "argument --service-tier: invalid choice: 'gold'",
    ),
    ("via", (*B, "--via", "carrier-pigeon"), {}, "argument --via: invalid choice"),
    (
        "batch-deadline",
        (*B, "--batch-deadline", "0"),
        {},
        "argument --batch-deadline: expected a number of seconds above 0",
    ),
    ("review-port", ("review", "--port", "70000"), {}, "argument --port"),
    ("voice", (*G, "--voice", "ghost"), {}, "--voice: no voice named 'ghost'"),
    ("batch-voice", (*B, "--voice", "no/such"), {}, "--voice"),
    ("voice-from", ("voice", "create", "me", "--from", "missing.txt"), {}, "--from"),
    ("voice-name", ("voice", "show", "bad name!"), {}, "voice"),
    ("voice-ban", ("voice", "create", "me", "--from", "missing.txt", "--ban", ""), {}, "--from"),
    ("voice-dir", ("voice", "show", "me", "--dir", "a-file/x"), {}, "a-file is a file"),
    (
        "voice-provider",
        ("voice", "create", "me", "--from", "p.txt", "--provider", "nope"),
        {},
        "argument --provider",
    ),
    (
        "lease",
        (*B, "--lease", "0"),
        {},
        "argument --lease: expected a number of seconds above 0",
    ),
    (
        "serve-quota-rpd",
        ("sandbox", "serve", "--quota-rpd", "x"),
        {},
        "argument --quota-rpd: expected a whole number",
    ),
    (
        "serve-quota-rpm",
        ("sandbox", "serve", "--quota-rpm", "-1"),
        {},
        "argument --quota-rpm: expected a number of requests per minute",
    ),
    (
        "serve-quota-rps",
        ("sandbox", "serve", "--quota-rps", "x"),
        {},
        "argument --quota-rps: expected a number",
    ),
    (
        "serve-quota-rps-0",
        ("sandbox", "serve", "--port", "0", "--quota-rps", "0"),
        {},
        "--quota-rps: the quota must be a whole number of requests from 1 to",
    ),
    (
        "serve-quota-rpm-fraction",
        ("sandbox", "serve", "--port", "0", "--quota-rpm", "2.5"),
        {},
        "--quota-rpm: the quota must be a whole number of requests from 1 to",
    ),
    (
        "serve-quota-both",
        ("sandbox", "serve", "--port", "0", "--quota-rpm", "60", "--quota-rps", "1"),
        {},
        "--quota-rpm and --quota-rps: choose one quota, not several",
    ),
    (
        "serve-metrics",
        ("sandbox", "serve", "--metrics-port", "x"),
        {},
        "argument --metrics-port: expected a port",
    ),
    (
        "env-timeout-text",
        G,
        {"TWEETGEN_TIMEOUT": "soon"},
        "the timeout (from environment TWEETGEN_TIMEOUT) must be",
    ),
    (
        "env-timeout-0",
        G,
        {"TWEETGEN_TIMEOUT": "0"},
        "(from environment TWEETGEN_TIMEOUT) must be more than 0 sec",
    ),
    (
        "env-provider",
        G,
        {"TWEETGEN_PROVIDER": "bing"},
        "unknown provider 'bing' (from environment TWEETGEN_PROVIDER)",
    ),
    ("env-provider-no-key", G, {"TWEETGEN_PROVIDER": "gemini"}, "TWEETGEN_PROVIDER=sandbox"),
    (
        "env-log-level",
        G,
        {"TWEETGEN_LOG_LEVEL": "loud"},
        "the log level (from environment TWEETGEN_LOG_LEVEL)",
    ),
    (
        "env-log-file",
        G,
        {"TWEETGEN_LOG_FILE": "a-file/x.log"},
        "a-file is a file, not a directory; choose another",
    ),
    (
        "env-model",
        G,
        {"TWEETGEN_MODEL": "a model"},
        "the model (from environment TWEETGEN_MODEL) must be",
    ),
    (
        "env-base-url",
        G,
        {"GEMINI_BASE_URL": "ftp://x"},
        "the base URL (from environment GEMINI_BASE_URL) must be",
    ),
    (
        "env-google-url",
        G,
        {"GOOGLE_GEMINI_BASE_URL": "x"},
        "(from environment GOOGLE_GEMINI_BASE_URL)",
    ),
    (
        "env-key",
        G,
        {"GEMINI_API_KEY": '"quoted"'},
        "the Gemini API key (from environment GEMINI_API_KEY) contains",
    ),
    (
        "env-google-key",
        G,
        {"GOOGLE_API_KEY": "a b"},
        "the Gemini API key (from environment GOOGLE_API_KEY)",
    ),
    (
        "env-bytes",
        G,
        {"TWEETGEN_MAX_RESPONSE_BYTES": "5"},
        "(from environment TWEETGEN_MAX_RESPONSE_BYTES)",
    ),
    (
        "env-openai-key-missing",
        (*G, "--provider", "openai"),
        {},
        "no OpenAI API key configured: set OPENAI_API_KEY",
    ),
    (
        "env-openai-key",
        (*G, "--provider", "openai"),
        {"OPENAI_API_KEY": "a b"},
        "(from environment OPENAI_API_KEY)",
    ),
    (
        "env-openai-url",
        (*G, "--provider", "openai"),
        {"OPENAI_BASE_URL": "x"},
        "(from environment OPENAI_BASE_URL)",
    ),
    (
        "env-openai-model",
        (*G, "--provider", "openai"),
        {"OPENAI_API_KEY": "test-key-123456", "TWEETGEN_OPENAI_MODEL": "a b"},
        "the OpenAI-compatible model (from environment TWEETGEN_OPENAI_MODEL) must be",
    ),
]

#: flags that take no value a user could get wrong, or whose only bad values are covered by another
#: case
NO_BAD_VALUE = {
    "--no-notes",
    "--no-browser",
    "--help",
    "--version",
    "--quiet",
    "--dry-run",
    "--json",
    "--otel",
    "--emoji",
    "--no-emoji",
    "--retry-rate-limits",
    "--no-retry-rate-limits",
    "--circuit-breaker",
    "--no-circuit-breaker",
    "--no-numbering",
    "--retry-failed",
    "--wait",
    "--output",  # output-under-a-file
    "--metrics-file",  # written after the call; its error names the path (tests/test_metrics.py)
    "--require-key",  # any text is a key
}


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_every_bad_value_is_exit_2_naming_the_flag_or_variable_in_words(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code  # type: ignore[assignment]
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    line = _error_line(stderr)
    assert expected in line
    assert _python_words(stderr) == [], stderr


def test_the_table_has_a_bad_value_for_every_option_of_every_command() -> None:
    parser = cli._parser()
    options = {
        option
        for command in parser.commands.values()
        for action in command._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    tried = {
        word.split("=")[0] for _, args, _, _ in CASES for word in args if word.startswith("--")
    }
    assert options - tried - NO_BAD_VALUE == set()


def test_every_setting_an_error_can_carry_has_a_flag() -> None:
    assert set(SETTING_WORDS) - {"extra"} <= set(FLAGS)  # extra template values have no flag
    assert all(flag.startswith("--") for flag in FLAGS.values())
    parser = cli._parser()
    known = {
        o
        for command in parser.commands.values()
        for a in command._actions
        for o in a.option_strings
    }
    assert set(FLAGS.values()) <= known


# --- the two examples of the issue, as a shell runs them ------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    prefixes = ("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(prefixes)},
        "TWEETGEN_LOG_FILE": "",
        **extra,
    }


def _tweetgen(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tweetgen", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_timeout_0_is_explained_in_words(tmp_path: Path) -> None:
    result = _tweetgen("generate", "--topic", "AI", "--timeout", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tweetgen: error: --timeout: the timeout must be more than 0 seconds and at most 3600 (an "
        "hour), got 0"
    )


def test_a_store_under_a_file_names_the_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file\n", encoding="utf-8")
    result = _tweetgen("generate", "--topic", "AI", "-q", "--db", "notes/tweets.db", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "cannot open the tweetgen database notes/tweets.db: notes is a file, not a directory"
        in result.stderr
    )
    assert "Errno" not in result.stderr


# --- help -----------------------------------------------------------------------------------------


def _help(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_top_level_help_has_commands_examples_environment_and_exit_codes() -> None:
    text = _help()
    for command in ("generate", "thread", "batch", "stats", "demo", "sandbox serve"):
        assert re.search(rf"^  {command}  ", text, re.MULTILINE), command
    assert "examples:\n  tweetgen generate --topic" in text
    for variable in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_BASE_URL",
        "TWEETGEN_PROVIDER",
        "TWEETGEN_MODEL",
    ):
        assert variable in text
    for variable in (
        "TWEETGEN_TIMEOUT",
        "TWEETGEN_LOG_LEVEL",
        "TWEETGEN_LOG_FILE",
        "OPENAI_API_KEY",
        ".env",
    ):
        assert variable in text
    assert re.search(r"exit codes:\n  0 .*\n  1 .*\n  2 .*\n  130 ", text)


@pytest.mark.parametrize(
    "command", ["generate", "thread", "batch", "stats", "demo", "sandbox", "sandbox serve"]
)
def test_every_command_has_a_description_and_examples(command: str) -> None:
    text = _help(*command.split())
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: tweetgen {command}")
    assert "\n" not in usage
    assert len(description) > 40
    assert not description.startswith(("options:", "positional"))
    assert (
        f"examples:\n  tweetgen {command}" in text
        or f"examples:\n  tweetgen {command.split()[0]}" in text
    )


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("generate", "--tone TONE", "professional"),
        ("generate", "--max-words N", "25"),
        ("thread", "--max-words N", "40"),
        ("thread", "--tweets N", "5"),
        ("generate", "--hashtags TAGS", "auto"),
        ("generate", "--template NAME", "tweet"),
        ("generate", "--regenerations N", "2"),
        ("generate", "--variants N", "1"),
        ("generate", "--model NAME", "TWEETGEN_MODEL, else gemini-flash-latest"),
        ("generate", "--timeout SECONDS", "TWEETGEN_TIMEOUT, else 30"),
        ("generate", "--max-retries N", "3"),
        ("generate", "--base-delay SECONDS", "1"),
        ("generate", "--max-delay SECONDS", "10"),
        ("generate", "--jitter", "none"),
        ("batch", "--jitter", "full"),
        ("generate", "--retry-budget RATIO", "0.1"),
        ("batch", "--retry-budget RATIO", "0.2"),
        ("batch", "--concurrency N", "8"),
        ("batch", "--db PATH|URL", "TWEETGEN_DB, else tweetgen.db"),
        ("stats", "--db PATH|URL", "TWEETGEN_DB, else tweetgen.db"),
        ("generate", "--log-file PATH", "TWEETGEN_LOG_FILE, else tweet_generator.log"),
        ("sandbox serve", "--port PORT", "8765"),
        ("sandbox serve", "--latency SECONDS", "0"),
    ],
)
def test_defaults_are_shown(command: str, option: str, default: str) -> None:
    text = " ".join(_help(*command.split()).split())  # unwrapped
    text = text[text.index(" options: ") :]
    entry = text[text.index(f" {option} ") :]
    assert f"(default: {default}" in entry[: entry.index(" --", len(option) + 2)]


def test_every_help_example_parses() -> None:
    parser = cli._parser()
    for examples in EXAMPLES.values():
        for example in examples:
            words = shlex.split(example)
            assert words[0] == "tweetgen"
            parser.parse_args(words[1:])  # a usage error exits 2 and fails the test


def test_the_help_constants_agree_with_the_library() -> None:
    from tweetgen.sandbox.faults import ANSWER_KINDS, SPECIAL_KINDS

    assert cli.DEFAULT_MAX_RETRIES == backoff.DEFAULT_MAX_RETRIES
    assert cli.DEFAULT_BASE_DELAY == backoff.DEFAULT_BASE_DELAY
    assert cli.DEFAULT_MAX_DELAY == backoff.DEFAULT_MAX_DELAY
    assert cli.DEFAULT_MAX_RETRY_AFTER == backoff.DEFAULT_MAX_RETRY_AFTER
    assert set(cli.FAULT_KINDS) == ANSWER_KINDS | SPECIAL_KINDS


# --- usage errors: the short usage, the error, where help is; exit 2 ------------------------------


@pytest.mark.parametrize(
    ("args", "prog", "error"),
    [
        (
            (),
            "tweetgen",
            "choose a command: generate, thread, batch, stats, models, review, voice, demo or "
            "sandbox",
        ),
        (("bogus",), "tweetgen", "argument COMMAND: invalid choice: 'bogus'"),
        (("generate",), "tweetgen generate", "the following arguments are required: --topic"),
        (
            ("generate", "--topic", "AI", "--hastags", "ai"),
            "tweetgen generate",
            "unrecognized arguments: --hastags ai (did you mean --hashtags?)",
        ),
        (
            ("generate", "--topic", "AI", "--max-words", "ten"),
            "tweetgen generate",
            "expected a whole number",
        ),
        (
            ("thread", "--topic", "AI", "--tweets"),
            "tweetgen thread",
            "argument --tweets: expected one argument",
        ),
        (("batch",), "tweetgen batch", "the following arguments are required: INPUT, -o/--output"),
        (("stats", "--since"), "tweetgen stats", "argument --since: expected one argument"),
        (
            ("demo", "--log-level", "x"),
            "tweetgen demo",
            "argument --log-level: invalid choice: 'X'",
        ),
        (("sandbox",), "tweetgen sandbox", "choose a subcommand: serve"),
        (("sandbox", "serve", "--prot", "1"), "tweetgen sandbox serve", "(did you mean --port?)"),
    ],
)
def test_a_usage_error_is_three_short_lines(
    tmp_path: Path, args: tuple[str, ...], prog: str, error: str
) -> None:
    result = _tweetgen(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    usage, message, see = result.stderr.splitlines()
    assert usage.startswith(f"usage: {prog} ")
    assert len(usage) <= 80
    assert message.startswith(f"{prog}: error: ")
    assert error in message
    assert see == f"see '{prog} --help'"


# --- --otel ---------------------------------------------------------------------------------------


def _otel_run(tmp_path: Path, setup: str) -> subprocess.CompletedProcess[str]:
    args = ["generate", "--topic", "AI", "-q", "--provider", "sandbox", "--otel"]
    code = f"{setup}\nfrom tweetgen.cli import main\nraise SystemExit(main({args!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_otel_without_a_tracer_provider_warns_once_and_says_how_to_configure_one(
    tmp_path: Path,
) -> None:
    pytest.importorskip(
        "opentelemetry.sdk", reason="needs the otel extra: pip install -e '.[otel]'"
    )
    result = _otel_run(tmp_path, "")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "tracer provider" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "tweetgen: warning: --otel: no OpenTelemetry tracer provider is configured"
    )
    assert "opentelemetry-instrument" in warnings[0]
    assert "OTEL_" in warnings[0]
    assert "set_tracer_provider" in warnings[0]


def test_otel_with_a_tracer_provider_says_nothing_and_exports_spans(tmp_path: Path) -> None:
    pytest.importorskip(
        "opentelemetry.sdk", reason="needs the otel extra: pip install -e '.[otel]'"
    )
    setup = (
        "import atexit\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "import sys\n"
        "atexit.register(lambda: print('spans:', len(exporter.get_finished_spans()), "
        "file=sys.stderr))"
    )
    result = _otel_run(tmp_path, setup)
    assert result.returncode == 0, result.stderr
    assert "tracer provider" not in result.stderr
    assert "spans: 2" in result.stderr  # the call and its attempt


def test_otel_without_the_extra_gives_the_readme_install_hint(tmp_path: Path) -> None:
    result = _otel_run(tmp_path, "import sys\nsys.modules['opentelemetry'] = None")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"OpenTelemetry tracing needs the otel extra: {OTEL_INSTALL_HINT}"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("pip install -e '.[otel]'", "pip install 'tweetgen[otel]'"):
        assert command in OTEL_INSTALL_HINT
        assert command in readme


# --- the seed's Testing section: the suite runs without the optional test tools -------------------


#: runs pytest with hypothesis and opentelemetry impossible to import, as in the seed's fresh venv
BLOCKED_RUN = """\
import sys

class Missing:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in ("hypothesis", "opentelemetry"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing)
import pytest
raise SystemExit(pytest.main(sys.argv[1:]))
"""


def test_the_suite_skips_what_needs_hypothesis_or_opentelemetry_when_they_are_missing() -> None:
    files = ["tests/test_redaction.py", "tests/test_otel.py", "tests/test_resilience.py"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKED_RUN,
            *files,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "needs hypothesis (pip install -e '.[dev]'" in result.stdout
    assert "needs the otel extra" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d{2,} passed, 3 skipped", summary), summary


def test_parser_types_report_in_words() -> None:
    with pytest.raises(
        argparse.ArgumentTypeError, match="expected a number of seconds, 0 or more, got '-1'"
    ):
        cli._seconds("-1")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number of seconds, got 'nan'"):
        cli._seconds("nan")
