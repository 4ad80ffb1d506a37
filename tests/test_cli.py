"""The command line, parsed as a user's shell would see it: stdout, stderr and exit codes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PROGRESS_TIMEOUT, Children, FakeTime, wait_until

from tweetgen.cli import main
from tweetgen.demo import run_demo
from tweetgen.sandbox import SandboxServer
from tweetgen.tweets import count_words

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any tweetgen or Gemini settings, plus ``extra``."""
    prefixes = ("GEMINI_", "GOOGLE_", "TWEETGEN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, **extra}


def _tweetgen(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tweetgen", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_key_uses_the_sandbox_and_prints_json(tmp_path: Path) -> None:
    result = _tweetgen("generate", "--topic", "Python Programming", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["provider"] == "sandbox"
    assert count_words(record["text"]) <= 25
    assert record["attempts"] == 1
    assert record["model"] == "gemini-flash-latest"
    assert record["latency_ms"] > 0
    assert result.stderr.count("uses the offline sandbox") == 1
    notice = next(line for line in result.stderr.splitlines() if "offline sandbox" in line)
    assert "placeholder" in notice
    assert "GEMINI_API_KEY" in notice
    assert ".env" in notice
    log_lines = (tmp_path / "tweet_generator.log").read_text().splitlines()
    assert [json.loads(line)["event"] for line in log_lines] == [
        "Making API request",
        "API request successful",
    ]


def test_gemini_compatible_server_under_a_path_prefix(tmp_path: Path) -> None:
    with SandboxServer(prefix="/some/prefix") as server:
        result = _tweetgen(
            "generate",
            "--topic",
            "Python Programming",
            cwd=tmp_path,
            GEMINI_BASE_URL=server.url,
            GEMINI_API_KEY="dummy-key-1",
        )
        request = server.requests[0]
    assert result.returncode == 0, result.stderr
    assert request.path == "/some/prefix/v1beta/models/gemini-flash-latest:generateContent"
    assert request.headers["x-goog-api-key"] == "dummy-key-1"
    assert "dummy-key-1" not in request.path
    assert "Python Programming" in result.stdout
    assert "sandbox" not in result.stderr
    assert "dummy-key-1" not in result.stderr + (tmp_path / "tweet_generator.log").read_text()


def test_api_failure_exits_1_without_a_traceback(tmp_path: Path) -> None:
    with SandboxServer(faults="401") as server:
        result = _tweetgen(
            "generate",
            "--topic",
            "AI",
            "-q",
            cwd=tmp_path,
            GEMINI_BASE_URL=server.url,
            GEMINI_API_KEY="k1234",
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == "tweetgen: failed (after 1 attempt): HTTP 401: Invalid API key\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topic", "  "], "topic must be a non-empty text"),
        (["--topic", "x" * 201], "the limit is 200"),
        (
            ["--topic", "AI", "--max-words", "61"],
            "--max-words: the word limit must be a whole number from 1 to 60",
        ),
        (["--topic", "AI", "--tone", "grumpy"], "unknown tone 'grumpy'"),
        (["--topic", "AI", "--template", "nope"], "unknown template 'nope'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    clean_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["generate", *args, "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["generate"],
        ["generate", "--topic", "AI", "--max-retries", "-1"],
        ["generate", "--topic", "AI", "--jitter", "x"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(clean_env: Path, args: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2


def test_bad_environment_exits_2(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWEETGEN_TIMEOUT", "soon")
    assert main(["generate", "--topic", "AI", "-q"]) == 2
    assert "the timeout (from environment TWEETGEN_TIMEOUT)" in capsys.readouterr().err


def test_unwritable_log_file_exits_2(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "file").write_text("x")
    assert (
        main(["generate", "--topic", "AI", "--log-file", str(clean_env / "file" / "log.jsonl")])
        == 2
    )
    assert "cannot write log file" in capsys.readouterr().err


def test_dry_run_prints_the_prompt_and_calls_nothing(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["generate", "--topic", "Rust", "--tone", "witty", "--max-words", "12", "--dry-run"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("Generate a witty tweet about Rust.\n")
    assert "at most 12 words" in out
    assert not (clean_env / "tweet_generator.log").exists()


def test_templates_file_adds_a_template(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / "t.json").write_text(
        json.dumps({"short": "Generate a {tone} tweet about {topic}. At most {max_words} words."})
    )
    args = [
        "generate",
        "--topic",
        "Go",
        "--template",
        "short",
        "--templates-file",
        "t.json",
        "--provider",
        "sandbox",
        "-q",
    ]
    assert main([*args, "--json"]) == 0
    record: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert record["provider"] == "sandbox"
    assert "Go" in record["text"]


def test_retry_options_reach_the_engine(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTime()
    monkeypatch.setattr("time.sleep", fake.sleep)
    with SandboxServer(faults="503*2,429:3s") as server:
        monkeypatch.setenv("GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("GEMINI_API_KEY", "k-cli-test")
        code = main(
            [
                "generate",
                "--topic",
                "AI",
                "-q",
                "--base-delay",
                "0.5",
                "--retry-rate-limits",
                "--engine",
                "tenacity",
                "--json",
            ]
        )
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["attempts"] == 4
    assert fake.sleeps == [0.5, 1.0, 3.0]


def test_demo_runs_the_four_scenarios(clean_env: Path) -> None:
    out = io.StringIO()
    fake = FakeTime()
    assert run_demo(out=out, sleep=fake.sleep) == 0
    text = out.getvalue()
    assert "4 of 4 scenarios behaved as expected" in text
    assert "HTTP 401: Invalid API key (attempts: 1)" in text
    assert "HTTP 429: Rate limit exceeded (attempts: 1)" in text
    assert fake.sleeps == [1.0]


def test_help_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for command in ("generate", "demo", "sandbox"):
        assert command in result.stdout


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_sandbox_serve_rejects_bad_ports(port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", "sandbox", "serve", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_sigterm_stops_generate_with_130(tmp_path: Path, children: Children) -> None:
    with SandboxServer(faults="hang:600") as server:
        env = _env(GEMINI_BASE_URL=server.url, GEMINI_API_KEY="k-term")
        command = [
            sys.executable,
            "-m",
            "tweetgen",
            "generate",
            "--topic",
            "AI",
            "-q",
            "--log-file",
            "",
        ]
        process = children.start(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: server.requests, what="the request to reach the server", process=process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=PROGRESS_TIMEOUT)
    assert process.returncode == 130
    assert stderr.strip() == "tweetgen: interrupted"


def test_unwritable_batch_output_is_exit_2_before_any_call(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("AI\n")
    with SandboxServer() as server:
        result = _tweetgen(
            "batch", "in.txt", "-o", "/proc/out.jsonl", "--db", "t.db", "-q", cwd=tmp_path,
            GEMINI_BASE_URL=server.url, GEMINI_API_KEY="k-unwritable",
        )  # fmt: skip
        assert server.requests == []
    assert result.returncode == 2
    assert "cannot write output /proc/out.jsonl" in result.stderr
