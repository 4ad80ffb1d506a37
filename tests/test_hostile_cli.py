"""Issue 11 through the command line: one ``tweetgen generate`` run against a hostile server
(tests/hostile.py) per main finding, with the child's wall time and peak RSS.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import wait_until
from hostile import (
    Exchange,
    Handler,
    HostileServer,
    answer,
    echo,
    gemini_ok,
    gzip_bomb,
    huge,
    silent,
    trickle,
)
from hostile_calls import KEY

# --- the command line, one run per main finding ---------------------------------------------------


def _env(server: HostileServer, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    return {**env, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": KEY, **extra}


# runs tweetgen's CLI as ``python -m tweetgen`` does, then writes the process's peak RSS (VmHWM, in
# KiB) to the file HWM_FILE names: the peak of this process alone (the child's ru_maxrss would
# include the parent's, pytest's, RSS)
_RUN_AND_REPORT_PEAK = """
import atexit, os, runpy

def report_peak():
    try:
        with open("/proc/self/status") as status:
            peak = next(line for line in status if line.startswith("VmHWM")).split()[1]
    except OSError:  # not Linux
        peak = "0"
    with open(os.environ["HWM_FILE"], "w") as out:
        out.write(peak)

atexit.register(report_peak)
runpy.run_module("tweetgen", run_name="__main__", alter_sys=True)
"""


def _cli(
    tmp_path: Path, handler: Handler, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run ``tweetgen generate`` against ``handler``: the result, the wall time and the child's peak
    RSS in KiB."""
    command = [
        sys.executable,
        "-c",
        _RUN_AND_REPORT_PEAK,
        "generate",
        "--provider",
        "gemini",
        "--topic",
        "testing",
    ]
    peak = tmp_path / "peak"
    with HostileServer(handler) as server:
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--quiet", "--log-file", str(tmp_path / "log.jsonl"), *args],
            env=_env(server, HWM_FILE=str(peak), **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    return result, elapsed, int(peak.read_text())


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("tweetgen: failed (after 1 attempt): ")
    return result.stderr.strip()


def test_cli_trickle_fails_within_the_timeout(tmp_path: Path) -> None:
    # one byte a second: the whole answer would take minutes (the old code waited for all of it)
    result, elapsed, _ = _cli(tmp_path, trickle(1.0), "--timeout", "0.5", "--max-retries", "0")
    assert result.returncode == 1
    assert _one_line(result).endswith(
        "request timed out: no complete answer within the 0.5s timeout (ReadTimeout)"
    )
    # the interpreter's start-up on a busy machine counts here; the old code ran > 250 s
    assert elapsed < 60


def test_cli_deadline_cuts_a_silent_server(tmp_path: Path) -> None:
    result, elapsed, _ = _cli(tmp_path, silent, "--deadline", "1", "--timeout", "300")
    assert result.returncode == 1
    line = _one_line(result)
    assert "the call's deadline ran out during the attempt" in line
    assert "asked to wait" not in line
    # start-up on a busy machine counts; without the deadline: the 300 s timeout
    assert elapsed < 60


def test_cli_deadline_stop_names_the_deadline(tmp_path: Path) -> None:
    overloaded = answer(503, json={"error": {"code": 503, "message": "overloaded"}})
    result, _, _ = _cli(
        tmp_path, overloaded, "--deadline", "2", "--base-delay", "3", "--max-delay", "3"
    )
    assert result.returncode == 1
    assert _one_line(result) == (
        "tweetgen: failed (after 1 attempt): HTTP 503: overloaded "
        "(stopped: waiting 3s would pass the 2s deadline)"
    )


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)"
)
@pytest.mark.parametrize("handler", [huge(50_000_000), gzip_bomb(1024)], ids=["50MB", "gzip-bomb"])
def test_cli_refuses_a_huge_answer_in_bounded_memory(tmp_path: Path, handler: Handler) -> None:
    baseline, _, normal_rss = _cli(tmp_path, gemini_ok())
    assert baseline.returncode == 0, baseline.stderr
    result, _, rss = _cli(tmp_path, handler, "--max-retries", "0")
    assert result.returncode == 1
    assert "the answer is larger than 8,388,608 bytes" in _one_line(result)
    assert rss - normal_rss < 64 * 1024  # KiB: the old code needed 474 MB and 2.1 GB


def test_cli_limit_from_the_environment(tmp_path: Path) -> None:
    result, _, _ = _cli(
        tmp_path, gemini_ok(), "--max-retries", "0", TWEETGEN_MAX_RESPONSE_BYTES="1024"
    )
    assert result.returncode == 0, result.stderr  # the answer is smaller
    result, _, _ = _cli(
        tmp_path, huge(4096), "--max-retries", "0", TWEETGEN_MAX_RESPONSE_BYTES="1024"
    )
    assert "larger than 1,024 bytes" in _one_line(result)
    result, _, _ = _cli(tmp_path, gemini_ok(), TWEETGEN_MAX_RESPONSE_BYTES="a lot")
    assert result.returncode == 2
    assert "TWEETGEN_MAX_RESPONSE_BYTES" in result.stderr


def test_cli_huge_error_message_is_cut_in_stderr_and_log(tmp_path: Path) -> None:
    body = {"error": {"code": 503, "message": "m" * 5_000_000, "status": "UNAVAILABLE"}}
    result, _, _ = _cli(tmp_path, answer(503, json=body), "--max-retries", "0")
    assert result.returncode == 1
    assert len(_one_line(result)) < 1200
    assert (
        tmp_path / "log.jsonl"
    ).stat().st_size < 50_000  # the old code wrote 105 MB of log for 50 MB


def test_cli_redirect(tmp_path: Path) -> None:
    result, _, _ = _cli(tmp_path, answer(302, headers=[("Location", "https://elsewhere.example/")]))
    assert result.returncode == 1
    assert _one_line(result).endswith(
        "the server answered with a redirect (HTTP 302 to https://elsewhere.example/); "
        "set GEMINI_BASE_URL to the final address"
    )


def test_cli_absurd_retry_after_stops_at_once(tmp_path: Path) -> None:
    limited = answer(
        429, json={"error": {"code": 429, "message": "slow down"}}, headers=[("Retry-After", "1e9")]
    )
    result, elapsed, _ = _cli(tmp_path, limited, "--retry-rate-limits")
    assert result.returncode == 1
    assert _one_line(result) == (
        "tweetgen: failed (after 1 attempt): HTTP 429: slow down; the server asked to wait 86400s"
    )
    assert elapsed < 10


def test_cli_overflowing_token_count_is_kept_as_zero(tmp_path: Path) -> None:
    # the old code crashed storing 10**30 in SQLite (the store's observer logged it and the call was
    # lost)
    db = tmp_path / "calls.db"
    overflowing = gemini_ok(usageMetadata={"promptTokenCount": 10**30, "candidatesTokenCount": 9})
    result, _, _ = _cli(tmp_path, overflowing, "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "Tests keep code honest and teams calm."
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute(
            "SELECT status, input_tokens, output_tokens FROM calls"
        ).fetchall() == [("ok", 0, 9)]


@pytest.mark.parametrize("where", ["message", "reason", "body", "header"])
def test_hostile_server_echoes_a_request_header(where: str) -> None:
    with HostileServer(echo(where=where)) as server, httpx.Client() as client:
        response = client.post(server.url, headers={"x-goog-api-key": "echo-me-123"}, content=b"{}")
    said = {
        "message": response.text,
        "reason": response.reason_phrase,
        "body": response.text,
        "header": response.headers.get("x-echo", ""),
    }[where]
    assert response.status_code == 400
    assert "echo-me-123" in said
    assert server.requests[0].body == b"{}"


def test_hostile_server_stops_when_the_client_hangs_up() -> None:
    # the server's own promise: a handler that waits ends when the client goes, so tests never wait
    # on it
    def slow(exchange: Exchange) -> None:
        exchange.head(200, [("Content-Length", "1000")])
        exchange.trickle(b"x" * 1000, 0.5)

    with HostileServer(slow) as server:
        with httpx.Client() as client, client.stream("GET", server.url) as response:
            assert response.status_code == 200
        hung_up = time.monotonic()
        wait_until(lambda: server.connections == 0, what="the handler to notice the client left")
        assert time.monotonic() - hung_up < 0.5 * 1000  # not the 500 s the trickle would take
        assert not server.errors
        assert server.count == 1
