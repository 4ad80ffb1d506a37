"""One batch, many workers (issue 14, item 2), with real processes, a real sandbox server, a real
SQLite file and a real PostgreSQL server: every row generated once, workers killed with SIGKILL
taken over, every surviving command ending with the complete output."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PROGRESS_TIMEOUT, Children, store_count, wait_until

from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store

RUNNING = "SELECT COUNT(*) FROM batch_rows WHERE state = 'running' AND worker LIKE ?"


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "fleet-test-key"}


def _topics(path: Path, count: int) -> Path:
    path.write_text("".join(f"Fleet topic {i}\n" for i in range(count)))
    return path


def _command(source: Path, out: Path, db: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tweetgen", "batch", str(source), "-o", str(out), "--db", db,
        "--log-file", "", "-q", "--base-delay", "0", *extra,
    ]  # fmt: skip


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same(record: dict[str, Any]) -> tuple[Any, ...]:
    """What two runs of one batch agree on (the latency is each call's own)."""
    return tuple(record[k] for k in ("id", "topic", "text", "status", "attempts", "error"))


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pg_count(url: str, sql: str, *params: object) -> int:
    with Store(url) as store:
        return int(store.query(sql, params)[0][0])


def test_three_commands_on_postgresql_one_killed_every_row_once_outputs_identical(
    tmp_path: Path, postgres_url: str, children: Children
) -> None:
    source = _topics(tmp_path / "in.txt", 1000)
    concurrency = 8
    with SandboxServer(latency=0.01) as server:
        options = ("--workers", "1", "--concurrency", str(concurrency), "--lease", "2")
        processes = [
            children.start(
                _command(source, tmp_path / f"out{n}.jsonl", postgres_url, *options),
                env=_env(server),
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        victim = processes[1]
        pattern = f"%:{victim.pid}:%"
        wait_until(
            lambda: len(server.requests) >= 100 and _pg_count(postgres_url, RUNNING, pattern) > 0,
            what="the second command holding rows after 100 requests",
            process=victim,
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=PROGRESS_TIMEOUT)
        results = [(p, p.communicate(timeout=180)[1]) for p in (processes[0], processes[2])]
        requests = len(server.requests)
    for process, stderr in results:
        assert process.returncode == 0, stderr
    assert victim.returncode == -signal.SIGKILL
    outputs = [(tmp_path / f"out{n}.jsonl").read_text() for n in (0, 2)]
    records = [json.loads(line) for line in outputs[0].splitlines()]
    assert [r["id"] for r in records] == [str(i) for i in range(1, 1001)]
    assert all(r["status"] == "ok" for r in records)
    assert outputs[0] == outputs[1]  # identical, byte for byte
    with Store(postgres_url) as store:
        per_key = collections.Counter(
            row[0] for row in store.query("SELECT idempotency_key FROM calls WHERE status = 'ok'")
        )
        taken = store.query("SELECT COUNT(*) FROM batch_rows WHERE claims > 1")[0][0]
    assert len(per_key) == 1000
    # every row generated once: at most the killed command's calls in flight were paid twice
    assert requests <= 1000 + concurrency
    assert sum(per_key.values()) <= 1000 + concurrency
    assert taken >= 1  # the killed command's rows were taken over when their leases expired


def _run(command: list[str], server: SandboxServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=_env(server), capture_output=True, text=True, timeout=180)


def test_two_local_workers_on_sqlite_write_what_one_writes_and_a_rerun_calls_nothing(
    tmp_path: Path,
) -> None:
    source = _topics(tmp_path / "in.txt", 300)
    outputs = {}
    for workers in ("1", "2"):
        out, db = tmp_path / f"out{workers}.jsonl", str(tmp_path / f"t{workers}.db")
        with SandboxServer() as server:
            result = _run(_command(source, out, db, "--workers", workers), server)
            assert result.returncode == 0, result.stderr
            assert len(server.requests) == 300
        outputs[workers] = [_same(r) for r in _records(out)]
        with Store(db) as store:
            assert sum(1 for call in store.calls()) == 300  # each row called once
    assert outputs["1"] == outputs["2"]
    with SandboxServer() as server:
        again = _run(_command(source, tmp_path / "again.jsonl", str(tmp_path / "t2.db")), server)
        assert server.requests == []
    assert again.returncode == 0, again.stderr
    assert "300 rows: 0 ok, 0 failed, 300 already done" in again.stderr
    assert [_same(r) for r in _records(tmp_path / "again.jsonl")] == outputs["2"]


def test_retry_failed_calls_each_failed_row_once_across_workers(tmp_path: Path) -> None:
    source, out, db = _topics(tmp_path / "in.txt", 200), tmp_path / "out.jsonl", tmp_path / "t.db"
    command = _command(source, out, str(db), "--workers", "2", "--concurrency", "8")
    with SandboxServer(faults="400*200") as server:  # every call fails (a 400: no retry)
        first = _run(command, server)
        assert len(server.requests) == 200
    assert first.returncode == 1
    assert "200 rows: 0 ok, 200 failed" in first.stderr
    with SandboxServer() as server:
        kept = _run(command, server)
        assert server.requests == []  # failed rows are not called again without --retry-failed
        assert "200 still failed from an earlier run" in kept.stderr
        retried = _run([*command, "--retry-failed"], server)
        assert len(server.requests) == 200  # each failed row once, whichever worker took it
    assert retried.returncode == 0, retried.stderr
    assert all(r["status"] == "ok" for r in _records(out))


def test_a_local_worker_killed_with_sigkill_has_its_rows_taken_over(
    tmp_path: Path, children: Children
) -> None:
    source, out, db = _topics(tmp_path / "in.txt", 400), tmp_path / "out.jsonl", tmp_path / "t.db"
    with SandboxServer(latency=0.02) as server:
        parent = children.start(
            _command(source, out, str(db), "--workers", "2", "--concurrency", "8"),
            env=_env(server), stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        child = wait_until(lambda: _children_of(parent.pid), what="a local worker", process=parent)
        wait_until(
            lambda: (
                store_count(db, RUNNING.replace("?", "'%/2'")) > 0 and len(server.requests) >= 40
            ),
            what="the local worker holding rows",
            process=parent,
        )
        os.kill(child[0], signal.SIGKILL)
        _, stderr = parent.communicate(timeout=180)
        requests = len(server.requests)
    assert parent.returncode == 0, stderr
    assert f"worker 2 (pid {child[0]}) was killed by SIGKILL; its rows were taken over" in stderr
    records = _records(out)
    assert len(records) == 400
    assert all(r["status"] == "ok" for r in records)
    assert requests <= 400 + 4  # at most the killed worker's calls in flight (its share: 4)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_local_workers_end_with_their_command(tmp_path: Path, children: Children, how: str) -> None:
    source, out, db = _topics(tmp_path / "in.txt", 300), tmp_path / "out.jsonl", tmp_path / "t.db"
    with SandboxServer(faults="ok*20,ok:0.3*280") as server:
        parent = children.start(
            _command(source, out, str(db), "--workers", "3", "--concurrency", "6"),
            env=_env(server), stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        workers = wait_until(
            lambda: len(found := _children_of(parent.pid)) == 2 and found,
            what="two local workers",
            process=parent,
        )
        wait_until(lambda: len(server.requests) >= 20, what="20 requests", process=parent)
        parent.send_signal(getattr(signal, how))
        parent.wait(timeout=PROGRESS_TIMEOUT)
        wait_until(lambda: not any(_alive(pid) for pid in workers), what="the local workers to end")
    if how == "SIGTERM":  # a clean stop: the rows finished are written, the rerun resumes
        assert parent.returncode == 130
        done = len(_records(out))
        with SandboxServer() as server:
            result = _run(_command(source, out, str(db), "--workers", "3"), server)
            assert len(server.requests) == 300 - done
        assert result.returncode == 0, result.stderr
        assert len(_records(out)) == 300


def test_a_local_worker_started_early_and_not_needed_is_dismissed(tmp_path: Path) -> None:
    """A long input starts the workers before it is read; 30 rows need one process after all."""
    source, out, db = tmp_path / "in.txt", tmp_path / "out.jsonl", tmp_path / "t.db"
    source.write_text("".join(f"Topic {i} " + "long words " * 15 + "\n" for i in range(30)))
    assert source.stat().st_size > 4096
    with SandboxServer() as server:
        result = _run(_command(source, out, str(db)), server)
        assert len(server.requests) == 30
    assert result.returncode == 0, result.stderr
    assert "tweetgen: worker" not in result.stderr
    assert len(_records(out)) == 30
    assert store_count(db, "SELECT COUNT(*) FROM batch_rows") == 0  # the one-process path ran
