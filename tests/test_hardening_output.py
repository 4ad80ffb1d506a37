"""Issue 11, findings 8 and 9: the output behaves like a Unix tool's, and a store serves one run at
a time.

Every process test waits for a condition with a deadline (a lock file naming a pid, a temporary file
reaching a size, a line on stderr), never for a fixed time. The sandbox is held at a gate where a
test needs a run to be "still going", so that the order of events never depends on the machine's
speed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tweetgen.batchio import write_records
from tweetgen.sandbox import FaultScript, SandboxServer

DEADLINE = 60.0  # seconds a condition may take on a loaded machine before the test fails


def _env(server: SandboxServer) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "output-test-key"}


def _command(tmp_path: Path, output: str | Path, *extra: str, source: str = "in.csv") -> list[str]:
    return [
        sys.executable, "-m", "tweetgen", "batch", str(tmp_path / source), "-o", str(output),
        "--db", str(tmp_path / "t.db"), "--log-file", "", "-q", "--base-delay", "0", *extra,
    ]  # fmt: skip


def _batch(
    tmp_path: Path, server: SandboxServer, output: str | Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = _command(tmp_path, output, *extra)
    return subprocess.run(command, env=_env(server), capture_output=True, text=True, timeout=120)


def _topics(tmp_path: Path, count: int) -> None:
    lines = ["topic,tone,max_words"] + [
        f"Topic number {i},casual,{10 + i % 20}" for i in range(count)
    ]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")


def _wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"waited {deadline:g} s for {what}")
        time.sleep(0.02)


def _temporaries(directory: Path, name: str) -> list[Path]:
    return sorted(directory.glob(f".{name}.*.tmp"))


class GatedFaults(FaultScript):
    """Normal answers, but every request waits at a gate the test opens (bounded, so nothing hangs
    for good)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def next(self) -> Any:
        self.gate.wait(DEADLINE * 2)
        return super().next()


@pytest.fixture
def gated() -> Iterator[tuple[SandboxServer, GatedFaults]]:
    faults = GatedFaults()
    with SandboxServer() as server:
        server.faults = faults
        try:
            yield server, faults
        finally:
            faults.gate.set()


# --- finding 9: output like a Unix tool's ---------------------------------------------------------


def test_dash_writes_the_records_to_stdout_and_nothing_else(
    tmp_path: Path, sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _topics(tmp_path, 3)
    monkeypatch.chdir(tmp_path)  # the runs inherit it: a file named "-" would land here
    result = _batch(tmp_path, sandbox_server, "-")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    assert "wrote 3 records to stdout" in result.stderr
    assert not (tmp_path / "-").exists()
    as_csv = _batch(tmp_path, sandbox_server, "-", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    lines = as_csv.stdout.splitlines()
    assert (
        lines[0] == "id,topic,tone,max_words,text,status,attempts,latency_ms,error,provider,model"
    )
    assert len(lines) == 4
    assert len(sandbox_server.requests) == 3  # the second run found every row done


def test_dash_with_stdout_closed_is_refused_before_any_call(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    _topics(tmp_path, 1)
    command = _command(tmp_path, "-")
    result = subprocess.run(
        command,
        env=_env(sandbox_server),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),  # the child starts with stdout closed, as after `>&-`
    )
    assert result.returncode == 2
    assert "standard output is closed" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_server.requests == []


def test_a_new_file_follows_the_umask(tmp_path: Path) -> None:
    for mask, expected in ((0o022, 0o644), (0o027, 0o640), (0o002, 0o664)):
        output = tmp_path / f"new-{mask:o}.jsonl"
        previous = os.umask(mask)
        try:
            write_records(output, [{"id": "1"}])
        finally:
            os.umask(previous)
        assert stat.S_IMODE(output.stat().st_mode) == expected, f"umask {mask:o}"


def test_an_existing_file_keeps_its_mode_and_owner(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text("old\n")
    output.chmod(0o640)
    root = os.geteuid() == 0
    if root:  # only root can give a file away; others keep at least the mode
        os.chown(output, 4242, 4343)
    write_records(output, [{"id": "1"}, {"id": "2"}])
    status = output.stat()
    assert stat.S_IMODE(status.st_mode) == 0o640
    if root:
        assert (status.st_uid, status.st_gid) == (4242, 4343)
    assert output.read_text().splitlines() == ['{"id": "1"}', '{"id": "2"}']


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.jsonl"
    target.write_text("old\n")
    target.chmod(0o604)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    write_records(link, [{"id": "1"}])
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert target.read_text() == '{"id": "1"}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o604
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "real" / "created.jsonl")
    write_records(dangling, [{"id": "2"}])  # as a shell's > does: the target is created
    assert dangling.is_symlink()
    assert (tmp_path / "real" / "created.jsonl").read_text() == '{"id": "2"}\n'
    assert (
        _temporaries(tmp_path, "link.jsonl") == _temporaries(tmp_path / "real", "out.jsonl") == []
    )


def test_a_fifo_is_written_in_place(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    _topics(tmp_path, 2)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()  # blocks in open() until the batch opens the FIFO for writing
    result = _batch(tmp_path, sandbox_server, fifo)
    assert result.returncode == 0, result.stderr
    reader.join(DEADLINE)
    assert not reader.is_alive(), "the batch never opened the FIFO"
    assert [json.loads(line)["id"] for line in received[0].decode().splitlines()] == ["1", "2"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_socket_is_refused_before_any_call(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    _topics(tmp_path, 2)
    path = tmp_path / "out.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        result = _batch(tmp_path, sandbox_server, path)
    assert result.returncode == 2
    assert "is a socket" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_server.requests == []
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


@pytest.mark.parametrize("how", ["same-name", "symlink", "hard-link", "store"])
def test_output_naming_the_input_or_the_store_is_refused(
    tmp_path: Path, sandbox_server: SandboxServer, how: str
) -> None:
    _topics(tmp_path, 2)
    before = (tmp_path / "in.csv").read_bytes()
    output = (
        tmp_path
        / {"same-name": "in.csv", "symlink": "link.csv", "hard-link": "hard.csv", "store": "t.db"}[
            how
        ]
    )
    if how == "symlink":
        output.symlink_to(tmp_path / "in.csv")
    elif how == "hard-link":
        os.link(tmp_path / "in.csv", output)
    elif how == "store":
        assert _batch(tmp_path, sandbox_server, tmp_path / "first.jsonl").returncode == 0
        sandbox_server.requests.clear()
    result = _batch(tmp_path, sandbox_server, output)
    assert result.returncode == 2
    assert ("is the store" if how == "store" else "is the input file") in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox_server.requests == []
    assert (tmp_path / "in.csv").read_bytes() == before
    if how == "store":
        assert (tmp_path / "t.db").read_bytes().startswith(b"SQLite format 3")


def test_a_failed_write_leaves_no_temporary_and_the_old_output(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text("kept\n")

    def records() -> Iterator[dict[str, Any]]:
        for i in range(1000):
            yield {"id": str(i), "text": "x" * 100}
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        write_records(output, records())
    assert output.read_text() == "kept\n"
    assert _temporaries(tmp_path, "out.jsonl") == []


_ENDLESS_WRITE = """
import itertools, sys
from pathlib import Path
from tweetgen.batchio import write_records
records = ({"id": str(i), "topic": "t", "text": "x" * 1000} for i in itertools.count())
write_records(Path(sys.argv[1]), records)
"""


def _start_endless_write(output: Path, size: int) -> tuple[subprocess.Popen[bytes], Path]:
    """A child writing records to ``output`` forever; returns it once its temporary file has
    ``size`` bytes."""
    child = subprocess.Popen([sys.executable, "-c", _ENDLESS_WRITE, str(output)])

    def big_temporary() -> Path | None:
        assert child.poll() is None, "the writer ended early"
        found = [p for p in _temporaries(output.parent, output.name) if p.stat().st_size >= size]
        return found[0] if found else None

    try:
        return child, _wait_for(big_temporary, f"a temporary file of {size} bytes")
    except BaseException:
        child.kill()
        child.wait()
        raise


def test_a_killed_writer_leaves_no_temporary_file_after_the_next_run(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    _topics(tmp_path, 3)
    output = tmp_path / "out.jsonl"
    child, temporary = _start_endless_write(output, 2_000_000)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=DEADLINE)
    assert temporary.exists()  # what the kill left behind
    result = _batch(tmp_path, sandbox_server, output)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["1", "2", "3"]
    assert _temporaries(tmp_path, "out.jsonl") == []


def test_the_temporary_file_of_a_live_writer_is_not_stale(tmp_path: Path) -> None:
    from tweetgen.batchio import remove_stale_temporaries

    output = tmp_path / "out.jsonl"
    child, temporary = _start_endless_write(output, 100_000)
    try:
        assert remove_stale_temporaries(output) == []  # its writer is alive
        assert temporary.exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=DEADLINE)
    assert remove_stale_temporaries(output) == [temporary]  # now it is


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_write_removes_the_temporary(tmp_path: Path, signum: int) -> None:
    output = tmp_path / "out.jsonl"
    # the CLI turns SIGTERM into the same stop as Ctrl-C; the child does what tweetgen.cli.main does
    script = (
        "import signal\nfrom tweetgen.cli import _terminate\n"
        "signal.signal(signal.SIGTERM, _terminate)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script + _ENDLESS_WRITE, str(output)], stderr=subprocess.PIPE
    )

    def big_temporary() -> bool:
        assert child.poll() is None, "the writer ended early"
        return any(p.stat().st_size >= 1_000_000 for p in _temporaries(tmp_path, "out.jsonl"))

    with child:
        try:
            _wait_for(big_temporary, "a temporary file of 1 MB")
            child.send_signal(signum)
            _, stderr = child.communicate(timeout=DEADLINE)
        finally:
            if child.poll() is None:
                child.kill()
    assert b"KeyboardInterrupt" in stderr
    assert _temporaries(tmp_path, "out.jsonl") == []
    assert not output.exists()


# --- finding 8: one store, one run at a time ------------------------------------------------------


def _lock_names(lock: Path, pid: int) -> bool:
    try:
        return json.loads(lock.read_text().splitlines()[0]).get("pid") == pid
    except (OSError, ValueError, IndexError):
        return False


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The lines of a child's stream, read in a thread, so the test can wait for one with a
    deadline."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue[str], text: str) -> str:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            break
        if text in line:
            return line
    pytest.fail(f"no line with {text!r} within {DEADLINE:g} s")


def test_a_second_run_on_the_store_is_refused_then_waits_with_wait(
    tmp_path: Path, gated: tuple[SandboxServer, GatedFaults]
) -> None:
    server, faults = gated
    _topics(tmp_path, 20)
    lock = tmp_path / "t.db.lock"
    first = subprocess.Popen(
        _command(tmp_path, tmp_path / "a.jsonl", "--concurrency", "2"),
        env=_env(server),
        stderr=subprocess.DEVNULL,
    )
    waiting: subprocess.Popen[str] | None = None
    try:
        _wait_for(
            lambda: server.requests and _lock_names(lock, first.pid),
            "the first run to hold the store",
        )
        second = _batch(
            tmp_path, server, tmp_path / "b.jsonl"
        )  # started while the first is mid-call
        assert second.returncode == 2
        assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert "another tweetgen run is using the store" in second.stderr
        assert "--wait" in second.stderr
        assert "Traceback" not in second.stderr
        waiting = subprocess.Popen(
            _command(tmp_path, tmp_path / "c.jsonl", "--wait"),
            env=_env(server),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        line = _wait_for_line(_lines(waiting.stderr), "waiting for it to end")
        assert f"pid {first.pid}" in line
        faults.gate.set()
        assert first.wait(timeout=DEADLINE) == 0
        assert waiting.wait(timeout=DEADLINE) == 0
    finally:
        faults.gate.set()
        for child in (first, waiting):
            if child is not None:
                if child.poll() is None:
                    child.kill()
                child.wait()
                if child.stderr is not None:
                    child.stderr.close()
    assert len(server.requests) == 20  # one request per row, across three runs
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 20
    assert lock.read_text() == ""  # a run that ended normally leaves no holder behind


def test_the_lock_of_a_killed_run_is_taken_over(
    tmp_path: Path, gated: tuple[SandboxServer, GatedFaults]
) -> None:
    server, faults = gated
    _topics(tmp_path, 5)
    lock = tmp_path / "t.db.lock"
    first = subprocess.Popen(
        _command(tmp_path, tmp_path / "a.jsonl", "--concurrency", "1"),
        env=_env(server),
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(
            lambda: server.requests and _lock_names(lock, first.pid),
            "the first run to hold the store",
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=DEADLINE)
    assert _lock_names(lock, first.pid)  # the dead run's details stay in the file...
    faults.gate.set()
    result = _batch(tmp_path, server, tmp_path / "a.jsonl")  # ...but do not block anyone
    assert result.returncode == 0, result.stderr
    assert f"pid {first.pid}" in result.stderr
    assert "did not end normally" in result.stderr
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 5


def test_sigterm_stops_a_waiting_run(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    from tweetgen.runlock import RunLock

    _topics(tmp_path, 2)
    with RunLock(tmp_path / "t.db", details={"command": "a test holding the store"}):
        waiting = subprocess.Popen(
            _command(tmp_path, tmp_path / "out.jsonl", "--wait"),
            env=_env(sandbox_server),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiting.stderr is not None
            lines = _lines(waiting.stderr)
            assert f"pid {os.getpid()}" in _wait_for_line(lines, "a test holding the store")
            waiting.send_signal(signal.SIGTERM)
            assert waiting.wait(timeout=DEADLINE) == 130
            assert "interrupted" in _wait_for_line(lines, "tweetgen: interrupted")
        finally:
            if waiting.poll() is None:
                waiting.kill()
            waiting.wait()
            assert waiting.stderr is not None
            waiting.stderr.close()
    assert sandbox_server.requests == []
    assert not (tmp_path / "out.jsonl").exists()


def test_runlock_in_process(tmp_path: Path) -> None:
    from tweetgen.runlock import RunLock, StoreBusyError

    store = tmp_path / "sub" / "s.db"
    with RunLock(store, details={"command": "first"}) as first:
        assert first.held
        assert first.previous is None
        assert (
            tmp_path / "sub" / "s.db.lock"
        ).exists()  # the directory is created, as the store does
        with pytest.raises(StoreBusyError) as busy:
            RunLock(store).acquire()
        assert busy.value.holder is not None
        assert (busy.value.holder.pid, busy.value.holder.details) == (
            os.getpid(),
            {"command": "first"},
        )
        link = tmp_path / "link.db"
        link.symlink_to(store)
        with pytest.raises(StoreBusyError):  # another name of the same store shares its lock
            RunLock(link).acquire()
    assert not first.held
    with RunLock(store) as again:
        assert again.previous is None  # the first run ended normally
    with RunLock(":memory:") as memory, RunLock(":memory:") as other:
        assert memory.path is None
        assert other.path is None
