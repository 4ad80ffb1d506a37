"""Batch generation through the real CLI and the sandbox: resumable, crash-safe, honest about bad
rows."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PROGRESS_TIMEOUT, Children, FakeTime, store_count, wait_until

from tweetgen.batch import ThrottledProvider
from tweetgen.batchio import read_rows
from tweetgen.errors import RateLimitError
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.sandbox import FaultScript, SandboxServer
from tweetgen.store import Store
from tweetgen.tweets import count_words

TONE_NAMES = "casual, informative, inspirational, professional, witty"
OK_ROWS = "SELECT COUNT(*) FROM calls WHERE status = 'ok'"


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "batch-test-key"}


def _command(tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / "in.csv"), "-o",
        str(tmp_path / "out.jsonl"),
        "--db", str(tmp_path / "t.db"), "--log-file", str(tmp_path / "t.log"), "-q",
        "--base-delay", "0", *extra,
    ]  # fmt: skip


def _batch(tmp_path: Path, server: SandboxServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(tmp_path, *extra), env=_env(server), capture_output=True, text=True, timeout=120
    )


def _topics(tmp_path: Path, count: int) -> None:
    lines = ["topic,tone,max_words"] + [
        f"Topic number {i},casual,{10 + i % 20}" for i in range(count)
    ]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")


def _output(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def _db(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(tmp_path / "t.db")) as connection:
        return connection.execute(sql).fetchall()


def test_300_topics_with_random_503s(tmp_path: Path) -> None:
    _topics(tmp_path, 300)
    with SandboxServer(latency=0.002) as server:
        server.faults = FaultScript(error_rate=0.1, seed=3)
        result = _batch(tmp_path, server, "--concurrency", "16", "--max-retries", "6")
        requests = len(server.requests)
    assert result.returncode == 0, result.stderr
    records = _output(tmp_path)
    assert [r["id"] for r in records] == [str(i) for i in range(1, 301)]
    assert all(r["status"] == "ok" and count_words(r["text"]) <= r["max_words"] for r in records)
    attempts = sum(r["attempts"] for r in records)
    assert attempts == requests
    assert attempts > 300  # some 503s were retried
    summary = next(line for line in result.stderr.splitlines() if " rows: " in line)
    retries = attempts - 300
    assert summary.startswith(
        f"tweetgen: 300 rows: 300 ok, 0 failed, 0 already done; {retries} retries;"
    )
    assert _db(tmp_path, "SELECT COUNT(*), SUM(attempts) FROM calls WHERE status = 'ok'") == [
        (300, attempts)
    ]
    assert _db(tmp_path, "SELECT COUNT(*) FROM attempts") == [(attempts,)]
    stats = subprocess.run(
        [sys.executable, "-m", "tweetgen", "stats", "--db", str(tmp_path / "t.db"), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    figures = json.loads(stats.stdout)
    assert (figures["calls"], figures["ok"], figures["attempts"]) == (300, 300, attempts)
    assert figures["errors_by_status"] == {"503": retries}


def _workers_of(pid: int) -> list[int]:
    """The processes ``pid`` started (its local workers), where Linux tells."""
    with contextlib.suppress(OSError, ValueError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an orphan that exited may stay a zombie of init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def test_sigkill_then_rerun_completes_without_paying_twice(
    tmp_path: Path, children: Children
) -> None:
    _topics(tmp_path, 300)
    # 50 answers, then the server holds every request: the kill lands mid-run however slow the
    # machine is
    with SandboxServer(faults="ok*50,hang:600*250") as server:
        process = children.start(
            _command(tmp_path, "--concurrency", "4"),
            env=_env(server),
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(
            lambda: store_count(tmp_path / "t.db", OK_ROWS) >= 40,
            what="40 ok rows in t.db",
            process=process,
        )
        workers = _workers_of(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=PROGRESS_TIMEOUT)
        # its local workers learn that it is gone and end; one may still store an answer it had
        # (paid for, so kept): count what is done once they have ended
        wait_until(
            lambda: not any(_running(pid) for pid in workers), what="the killed command's workers"
        )
    assert process.returncode == -signal.SIGKILL
    before = {
        key for (key,) in _db(tmp_path, "SELECT idempotency_key FROM calls WHERE status = 'ok'")
    }
    assert 40 <= len(before) <= 50
    with SandboxServer() as server:
        result = _batch(tmp_path, server, "--concurrency", "8")
        assert len(server.requests) == 300 - len(
            before
        )  # only the rows that were not done are paid for
    assert result.returncode == 0, result.stderr
    records = _output(tmp_path)
    assert len(records) == 300
    assert len({r["id"] for r in records}) == 300
    assert all(r["status"] == "ok" for r in records)
    per_key = collections.Counter(
        k for (k,) in _db(tmp_path, "SELECT idempotency_key FROM calls WHERE status = 'ok'")
    )
    assert set(per_key.values()) == {1}  # no row was called again after it was done
    assert before <= set(per_key)
    assert f"{len(before)} already done" in result.stderr


def test_sigint_stops_cleanly_and_says_how_to_resume(tmp_path: Path, children: Children) -> None:
    _topics(tmp_path, 200)
    # 10 quick answers, then one every 0.5 s per connection: the signal lands mid-run on any
    # machine, and the calls in flight when it comes still end soon
    with SandboxServer(faults="ok*10,ok:0.5*190") as server:
        process = children.start(
            _command(tmp_path, "--concurrency", "2"),
            env=_env(server),
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(
            lambda: store_count(tmp_path / "t.db", "SELECT COUNT(*) FROM calls") >= 5,
            what="5 rows in t.db",
            process=process,
        )
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=PROGRESS_TIMEOUT)
    assert process.returncode == 130
    assert "interrupted: finished rows are saved; run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    records = _output(tmp_path)
    stored = _db(tmp_path, "SELECT COUNT(*) FROM calls")[0][0]
    assert len(records) == stored < 200
    assert [r["id"] for r in records] == [str(i) for i in range(1, stored + 1)]
    with SandboxServer() as server:  # resume: only the rows that never ran are called
        result = _batch(tmp_path, server, "--concurrency", "8")
        assert len(server.requests) == 200 - stored
    assert result.returncode == 0, result.stderr
    assert f"{stored} already done" in result.stderr
    assert len(_output(tmp_path)) == 200


def test_bad_rows_are_reported_per_row(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    content = (
        b"topic,tone,max_words\nGood,casual,12\n,casual,12\nBad tone,grumpy,12\n"
        b"Good,casual,12\n\xff\xfe bad,casual,3\nToo,casual,99\n"
    )
    (tmp_path / "in.csv").write_bytes(content)
    result = _batch(tmp_path, sandbox_server)
    assert result.returncode == 1
    errors = [(r["id"], r["status"], r["error"]) for r in _output(tmp_path)]
    assert errors[0] == ("1", "ok", None)
    assert errors[1:] == [
        ("2", "failed", "topic is empty"),
        ("3", "failed", f"unknown tone 'grumpy'; choose one of {TONE_NAMES}"),
        ("4", "failed", "duplicate of row 1"),
        ("5", "failed", "row is not valid UTF-8"),
        ("6", "failed", "the word limit must be a whole number from 1 to 60, got 99"),
    ]  # fmt: skip
    assert len(sandbox_server.requests) == 1
    assert _db(tmp_path, "SELECT COUNT(*) FROM calls WHERE error_type = 'InputError'") == [(5,)]
    again = _batch(tmp_path, sandbox_server)
    assert "0 ok, 5 failed, 1 already done" in again.stderr
    assert _db(tmp_path, "SELECT COUNT(*) FROM calls WHERE error_type = 'InputError'") == [(5,)]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing-input", "input file"),
        ("no-topic-column", "must have a 'topic' column"),
        ("output-dir-missing", "does not exist"),
    ],
)
def test_unusable_files_exit_2_before_any_call(
    tmp_path: Path, sandbox_server: SandboxServer, setup: str, message: str
) -> None:
    output = tmp_path / "out.jsonl"
    if setup != "missing-input":
        (tmp_path / "in.csv").write_text(
            "topic\nAI\n" if setup != "no-topic-column" else "subject\nAI\n"
        )
    if setup == "output-dir-missing":
        output = tmp_path / "nope" / "out.jsonl"
    command = _command(tmp_path)
    command[command.index("-o") + 1] = str(output)
    result = subprocess.run(
        command, env=_env(sandbox_server), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_server.requests == []


def test_text_and_jsonl_inputs_and_csv_output(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    (tmp_path / "topics.txt").write_text("Rust\n\nGo\n")
    (tmp_path / "rows.jsonl").write_text(
        '{"topic": "Zig", "tone": "witty", "id": "z1"}\n"Nim"\n[1]\n{bad\n'
    )
    for name in ("topics.txt", "rows.jsonl"):
        command = _command(tmp_path)
        command[command.index(str(tmp_path / "in.csv"))] = str(tmp_path / name)
        command[command.index("-o") + 1] = str(tmp_path / f"{name}.csv")
        subprocess.run(
            command, env=_env(sandbox_server), capture_output=True, text=True, timeout=60
        )
    text_rows = (tmp_path / "topics.txt.csv").read_text().splitlines()
    assert (
        text_rows[0]
        == "id,topic,tone,max_words,text,status,attempts,latency_ms,error,provider,model"
    )
    assert [line.split(",")[:2] for line in text_rows[1:]] == [["1", "Rust"], ["2", "Go"]]
    json_rows = [
        line.split(",")[0] for line in (tmp_path / "rows.jsonl.csv").read_text().splitlines()[1:]
    ]
    assert json_rows == ["z1", "2", "3", "4"]
    assert "line is not a JSON object" in (tmp_path / "rows.jsonl.csv").read_text()


def test_read_rows_streams_lazily(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("topic\n" * 10)
    rows = read_rows(path)
    assert next(rows).values == {"topic": "topic"}


class _RateLimited:
    name, model = "fake", "m"

    def __init__(self, hints: list[float | None]) -> None:
        self.hints = hints

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        hint = self.hints.pop(0) if self.hints else None
        if hint is not None:
            raise RateLimitError("slow down", status_code=429, retry_after=hint)
        return GenerationResult(texts=("ok",), provider="fake", model="m")

    def close(self) -> None:
        pass


def test_a_429_hint_pauses_the_whole_batch() -> None:
    fake = FakeTime()
    throttled = ThrottledProvider(_RateLimited([5.0]), clock=fake.clock, sleep=fake.asleep)
    request = GenerationRequest(prompt="p")

    async def go() -> list[Any]:
        first = await asyncio.gather(throttled.agenerate(request), return_exceptions=True)
        second = await throttled.agenerate(request)
        return [*first, second]

    outcome = asyncio.run(go())
    assert isinstance(outcome[0], RateLimitError)
    assert outcome[1].text == "ok"
    assert fake.sleeps == [5.0]
    assert throttled.pauses == 1


def test_store_records_single_generate_with_db(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    db = tmp_path / "single.db"
    command = [
        sys.executable,
        "-m",
        "tweetgen",
        "generate",
        "--topic",
        "AI",
        "--db",
        str(db),
        "-q",
        "--log-file",
        "",
    ]
    result = subprocess.run(
        command, env=_env(sandbox_server), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    with Store(db) as store:
        calls = list(store.calls())
    assert [(c.topic, c.status, c.attempts, c.text) for c in calls] == [
        ("AI", "ok", 1, result.stdout.strip())
    ]
