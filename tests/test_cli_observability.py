"""Metrics and traces from the command line: a textfile for one call, /metrics during a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import PROGRESS_TIMEOUT, Children, wait_until
from prometheus_client.parser import text_string_to_metric_families

from tweetgen.sandbox import SandboxServer

LABELS = {"provider": "gemini", "model": "gemini-flash-latest"}


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "obs-test-key"}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset({**LABELS, **labels}.items()))]


def test_generate_writes_a_metrics_textfile(tmp_path: Path) -> None:
    target = tmp_path / "tweetgen.prom"
    with SandboxServer(faults="503") as server:
        result = subprocess.run(
            [sys.executable, "-m", "tweetgen", "generate", "--topic", "AI", "-q", "--log-file", "",
             "--base-delay", "0", "--metrics-file", str(target)],
            env=_env(server), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = _samples(target.read_text())
    assert _value(samples, "tweetgen_requests_total", outcome="ok") == 1
    assert _value(samples, "tweetgen_retries_total") == 1
    assert (
        _value(samples, "tweetgen_attempts_total", status_code="503", error_type="ServerError") == 1
    )
    assert _value(samples, "tweetgen_attempts_total", status_code="200", error_type="none") == 1


def _ok_requests(text: str) -> float:
    return _samples(text).get(
        ("tweetgen_requests_total", frozenset({**LABELS, "outcome": "ok"}.items())), 0
    )


def test_batch_serves_metrics_while_it_runs(tmp_path: Path, children: Children) -> None:
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(40)))
    command = [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / "in.txt"), "-o",
        str(tmp_path / "out.jsonl"),
        "--db", str(tmp_path / "t.db"), "-q", "--log-file", "", "--concurrency", "2",
        "--metrics-port", "0",
    ]  # fmt: skip
    # four answers, then the server holds the next two requests until the test has scraped: mid-run
    # for sure
    with SandboxServer(faults="ok*4,hang:600*2") as server:
        process = children.start(command, env=_env(server), stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        line = ""
        while "metrics at" not in line:
            line = process.stderr.readline()
            assert line, "the batch ended before it announced its metrics endpoint"
        url = line.split("metrics at ", 1)[1].strip()

        def scrape() -> str | None:
            text = httpx.get(url, timeout=10).text
            return text if _ok_requests(text) == 4 else None

        scraped = wait_until(scrape, what="4 ok requests in /metrics", process=process)
        assert process.poll() is None
        # releases the held requests (the server keeps serving; the rest answer at once)
        server.stopping.set()
        process.communicate(timeout=PROGRESS_TIMEOUT)
    assert process.returncode == 0
    families = {family.name for family in text_string_to_metric_families(scraped)}
    assert {"tweetgen_requests", "tweetgen_attempts", "tweetgen_call_duration_seconds"} <= families
    assert len(server.requests) == 40


def test_sandbox_serve_with_random_errors_and_metrics(children: Children) -> None:
    command = [sys.executable, "-m", "tweetgen", "sandbox", "serve", "--port", "0",
               "--metrics-port", "0",
               "--error-rate", "0.5", "--seed", "1"]  # fmt: skip
    process = children.start(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        lines = [process.stderr.readline() for _ in range(3)]
        base = lines[0].rsplit(" at ", 1)[1].strip()
        metrics_url = (
            next(line for line in lines if "metrics at" in line).rsplit(" at ", 1)[1].strip()
        )
        body = {
            "contents": [
                {"role": "user", "parts": [{"text": "Generate a witty tweet about cats."}]}
            ]
        }
        statuses = [
            httpx.post(f"{base}/v1beta/models/m:generateContent", json=body, timeout=10).status_code
            for _ in range(20)
        ]
        samples = _samples(httpx.get(metrics_url, timeout=10).text)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=PROGRESS_TIMEOUT)
    assert set(statuses) == {200, 503}
    for status in (200, 503):
        assert samples[
            ("tweetgen_sandbox_answers_total", frozenset({("status_code", str(status))}))
        ] == statuses.count(status)
    assert samples[("tweetgen_sandbox_requests", frozenset())] == 20
    assert process.returncode == 0
