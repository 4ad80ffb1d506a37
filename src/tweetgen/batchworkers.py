"""A command's local workers (``tweetgen batch --workers N``): N-1 child processes of the same
command that share its batch through the store, each with a share of ``--concurrency``, ``--rpm``
and ``--tpm`` so that the command as a whole keeps to both.

A child is ``python -m tweetgen batch`` with the command's own arguments and the environment
variable ``TWEETGEN_BATCH_WORKER`` (JSON: the batch, the child's worker name, its shares, where to
write its summary). A child neither reads the input (it claims rows and their payloads from the
store) nor takes the SQLite store's run lock (its parent holds it) nor writes the output.

The parent talks to a child through the child's stdin: first ``start BATCH_ID`` (or ``exit``: not
needed after all; a parent starts its workers while it still reads its input, so that they start
Python meanwhile), then ``stop`` (as a first signal) and ``abandon`` (as a second). End of file
means the parent is gone (however it died, even by SIGKILL): the child abandons its calls in flight
and exits, so no child outlives its command. A child that exits early has its leases ended at once
by its parent, which takes its rows over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import events

__all__ = [
    "ENV",
    "LocalWorkers",
    "WorkerSpec",
    "default_workers",
    "parent_lines",
    "shares",
    "watch_parent",
]

ENV = "TWEETGEN_BATCH_WORKER"
#: the default number of workers is the usable cores, but at most one per this many rows (a worker
#: process costs about half a second of CPU to start)
ROWS_PER_WORKER = 100
#: how long a child whose parent is gone may take to end its calls before it exits anyway
ORPHAN_GRACE = 10.0
#: an input at least this long starts its command's local workers before it is read (a guess at
#: ``ROWS_PER_WORKER`` rows and more; a worker not needed after all is dismissed)
EARLY_BYTES = 4096
#: how long a command waits for its workers to end once the batch is complete
END_GRACE = 30.0
_LEVELS = {b"stop": 1, b"abandon": 2}


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def shares(concurrency: int, workers: int) -> list[int]:
    """Each worker's ``--concurrency``, split as evenly as whole numbers allow (the first workers
    take the remainder); the rate limits are split evenly (each worker takes ``1 / workers``)."""
    base, extra = divmod(concurrency, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def worker_name() -> str:
    """A name no other worker of any batch has: host, process id, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerSpec:
    """What a local worker is told by its parent."""

    worker: str
    concurrency: int
    share: float  # its part of --rpm and --tpm (unless they are shared)
    summary: str  # the file it writes its summary to (JSON), in its parent's temporary directory

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkerSpec | None:
        """The spec this process was started with, or ``None`` for a command of its own."""
        text = environ.get(ENV)
        if not text:
            return None
        body = json.loads(text)
        return cls(
            str(body["worker"]),
            int(body["concurrency"]),
            float(body["share"]),
            str(body["summary"]),
        )


@dataclass
class _Child:
    spec: WorkerSpec
    process: subprocess.Popen[bytes]
    stderr: Path
    reaped: bool = False
    dismissed: bool = False


class LocalWorkers:
    """The child processes of one command: started (early: while the command still reads its
    input, they start Python and build their generator), told which batch to run or dismissed,
    told to stop, reaped, their summaries merged."""

    def __init__(self, argv: list[str], parent: str, concurrencies: list[int], share: float):
        self.argv = argv
        self._directory = tempfile.TemporaryDirectory(prefix="tweetgen-workers-")
        self.directory = Path(self._directory.name)
        self.specs = [
            WorkerSpec(f"{parent}/{n}", c, share, str(self.directory / f"{n}.json"))
            for n, c in enumerate(concurrencies, 2)
        ]
        self.children: list[_Child] = []

    def start(self) -> LocalWorkers:
        """Start every child (stdin a pipe from this process; stdout unused; stderr kept in a
        file, shown when a child fails); each waits to be told its batch."""
        command = [sys.executable, "-m", "tweetgen", *self.argv]
        for number, spec in enumerate(self.specs, 1):
            stderr = self.directory / f"worker-{number}.err"
            env = {**os.environ, ENV: spec.to_env()}
            with stderr.open("wb") as err:
                process = subprocess.Popen(  # noqa: S603 - this interpreter, this command's argv
                    command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env
                )
            self.children.append(_Child(spec, process, stderr))
        return self

    def begin(self, batch_id: str | None, keep: int) -> int:
        """Tell the first ``keep`` children to run the batch and dismiss the others (they exit at
        once); the concurrency the kept children take."""
        for number, child in enumerate(self.children):
            if number < keep and batch_id is not None:
                self._say(child, f"start {batch_id}\n".encode())
            else:
                child.dismissed = True
                self._say(child, b"exit\n")
        return sum(child.spec.concurrency for child in self.children if not child.dismissed)

    @staticmethod
    def _say(child: _Child, word: bytes) -> None:
        stdin = child.process.stdin
        if child.process.poll() is None and stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                stdin.write(word)
                stdin.flush()

    def tell(self, level: int) -> None:
        """Pass a signal's level on to every child still running (1: stop, 2: abandon)."""
        word = b"stop\n" if level <= 1 else b"abandon\n"
        for child in self.children:
            self._say(child, word)

    def reap(self, expire: Callable[[str], None]) -> None:
        """End the leases of every child that exited since the last look (its rows are then taken
        over at once)."""
        for child in self.children:
            if not child.reaped and (code := child.process.poll()) is not None:
                child.reaped = True
                if code != 0:
                    events.batch_worker_ended(child.spec.worker, child.process.pid, code)
                expire(child.spec.worker)

    async def wait(self, complete: Callable[[], bool]) -> None:
        """Wait for every child to end (without bound while the batch is not complete: a signal
        still stops them; then at most ``END_GRACE`` seconds before they are killed)."""
        deadline: float | None = None
        while any(child.process.poll() is None for child in self.children):
            if deadline is None and complete():
                deadline = time.monotonic() + END_GRACE
            if deadline is not None and time.monotonic() > deadline:
                self.kill()
                break
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.kill()

    def results(self, merge: Callable[[Mapping[str, Any]], None]) -> tuple[list[str], bool]:
        """Merge each child's summary; the lines to tell about children that ended badly, and
        whether one of them failed (not counting one killed by a signal: its rows were taken
        over)."""
        lines, failed = [], False
        for number, child in enumerate(self.children, 1):
            code = child.process.wait()
            if child.dismissed:
                continue
            path = Path(child.spec.summary)
            with contextlib.suppress(OSError, ValueError):
                merge(json.loads(path.read_text(encoding="utf-8")))
            if code in (0, 1, 130) and path.exists():
                continue
            who = f"worker {number + 1} (pid {child.process.pid})"
            if code < 0:
                name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
                lines.append(f"{who} was killed by {name}; its rows were taken over")
                continue
            failed = True
            tail = _tail(child.stderr)
            lines.append(f"{who} ended with exit code {code}" + (f": {tail}" if tail else ""))
        return lines, failed

    def close(self) -> None:
        """Abandon, kill after a short wait, reap every child and close its pipe."""
        self.tell(2)
        for child in self.children:
            with contextlib.suppress(OSError, ValueError):
                if child.process.stdin is not None:
                    child.process.stdin.close()
        for child in self.children:
            try:
                child.process.wait(timeout=ORPHAN_GRACE)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self._directory.cleanup()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def parent_lines(fd: int = 0) -> Iterator[bytes]:
    """The lines a worker's parent writes on its stdin."""
    return _lines(fd)


def _lines(fd: int) -> Iterator[bytes]:
    """The lines read from a file descriptor until end of file (raw reads: no buffered stream
    whose lock a daemon thread could hold when the interpreter exits)."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines


def watch_parent(
    loop: asyncio.AbstractEventLoop,
    escalate: Callable[[int], None],
    fd: int = 0,
    end: Callable[[int], object] = os._exit,
    lines: Iterator[bytes] | None = None,
) -> threading.Thread:
    """In a child: read the parent's words on stdin in a thread and act on them in ``loop``; at
    end of file (the parent is gone) abandon, and ``end`` the process within ``ORPHAN_GRACE``
    seconds whatever happens."""

    def watch() -> None:
        for line in lines if lines is not None else _lines(fd):
            level = _LEVELS.get(line.strip())
            if level:
                with contextlib.suppress(RuntimeError):  # the loop has ended
                    loop.call_soon_threadsafe(escalate, level)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(escalate, 2)
        timer = threading.Timer(ORPHAN_GRACE, end, (130,))
        timer.daemon = True
        timer.start()

    thread = threading.Thread(target=watch, name="tweetgen-parent", daemon=True)
    thread.start()
    return thread
