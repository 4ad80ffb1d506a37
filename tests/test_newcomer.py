"""What a new user meets in a batch: a rerun never hides failures, failures say why, records say who
wrote them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tweetgen.sandbox import SandboxServer


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "newcomer-test-key"}


def _batch(tmp_path: Path, server: SandboxServer, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "tweetgen", "batch", "in.txt", "-o", "out.jsonl", "--db", "t.db",
        "--log-file", "",
        "--concurrency", "1", "--base-delay", "0", *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, env=_env(server), capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def test_a_rerun_reports_rows_still_failed_and_how_to_call_them_again(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("alpha\nbeta\ngamma\n")
    with SandboxServer(faults="ok,400,ok") as server:
        first = _batch(tmp_path, server)
        again = _batch(tmp_path, server)
        requests_before_retry = len(server.requests)
        retried = _batch(tmp_path, server, "--retry-failed")
    assert first.returncode == 1
    assert "3 rows: 2 ok, 1 failed" in first.stderr
    assert "failed: 1 HTTP 400" in first.stderr
    hint = "to call the failed rows again: tweetgen batch in.txt -o out.jsonl --db t.db"
    assert hint in first.stderr
    assert first.stderr.rstrip().endswith("--retry-failed")
    assert again.returncode == 1  # the failure is not hidden by "already done"
    assert "2 already done, 1 still failed from an earlier run" in again.stderr
    assert hint in again.stderr
    assert requests_before_retry == 3  # the rerun called nothing
    assert retried.returncode == 0, retried.stderr
    assert [r["status"] for r in _records(tmp_path)] == ["ok", "ok", "ok"]


def test_rows_refused_a_retry_by_the_budget_say_so_in_the_summary_and_the_output(
    tmp_path: Path,
) -> None:
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(12)))
    with SandboxServer(faults="503*1000") as server:
        result = _batch(tmp_path, server, "--no-circuit-breaker")
    assert result.returncode == 1
    summary = next(
        line for line in result.stderr.splitlines() if line.startswith("tweetgen: failed: ")
    )
    assert "HTTP 503" in summary
    assert "retry budget (HTTP 503)" in summary
    records = _records(tmp_path)
    denied = [r for r in records if "retry budget" in (r["error"] or "")]
    assert denied
    prefix = (
        "ServerError: HTTP 503: Service temporarily unavailable (stopped: retry budget exhausted"
    )
    assert all(r["error"].startswith(prefix) for r in denied), [r["error"] for r in denied]


def test_records_name_the_provider_and_model_that_wrote_them(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("alpha\nbeta\n")
    with SandboxServer() as server:
        result = _batch(tmp_path, server, "--model", "gemini-test-model")
    assert result.returncode == 0, result.stderr
    assert {(r["provider"], r["model"]) for r in _records(tmp_path)} == {
        ("gemini", "gemini-test-model")
    }
