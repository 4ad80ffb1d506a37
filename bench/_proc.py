"""Child processes: timed runs with their CPU (``os.wait4``) and peak RSS (``/proc``), and a sandbox
process.

Peak RSS is the child's ``VmHWM`` read from ``/proc/PID/status`` every 20 ms while it runs, not
``ru_maxrss``: on Linux a child's ``ru_maxrss`` (``os.wait4``, ``RUSAGE_CHILDREN``) starts from its
parent's RSS at spawn, so a 300 MB parent reports 300 MB for ``python -c pass``. The sandbox runs in
its own process so that the client under test never shares a GIL with the server, as with a real
API; its CPU time is read when it stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "ChildRun",
    "ServerProcess",
    "bench_env",
    "peak_rss_kb",
    "python_peak_rss_mb",
    "run_child",
    "sandbox_process",
    "shown",
    "tweetgen_command",
]

_SERVE = """
import sys
from tweetgen.sandbox import SandboxServer

server = SandboxServer(latency=float(sys.argv[1])).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""
REPO = Path(__file__).resolve().parent.parent
RSS_POLL_SECONDS = 0.02
#: settings a developer may have exported that would change what the benchmarks measure
_DROPPED_ENV = ("GEMINI_", "GOOGLE_", "TWEETGEN_")

Output = int | IO[bytes] | None


@dataclass(frozen=True)
class ChildRun:
    """How one child process went: wall seconds, exit code, CPU seconds, and peak RSS when
    sampled."""

    wall: float
    returncode: int
    cpu: float
    max_rss_mb: float = 0.0


def peak_rss_kb(pid: int | str = "self") -> int | None:
    """The process's peak resident set (``VmHWM``) in KB, or ``None`` when ``/proc`` cannot tell."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    found = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(found[0]) if found else None


class _RssSampler(threading.Thread):
    """Reads a child's VmHWM until stopped; the high-water mark only grows, so the last read is the
    peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_kb = max(self.peak_kb, peak_rss_kb(self.pid) or 0)
            self.done.wait(RSS_POLL_SECONDS)


def run_child(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: Output = subprocess.DEVNULL,
    stderr: Output = subprocess.DEVNULL,
    sample_rss: bool = False,
) -> ChildRun:
    """Run ``command`` to completion; wall time from spawn to exit, CPU from ``os.wait4``, RSS if
    asked."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)  # noqa: S603 - our own interpreter and CLI
    sampler = _RssSampler(process.pid) if sample_rss else None
    if sampler is not None:
        sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    peak = 0.0
    if sampler is not None:
        sampler.done.set()
        sampler.join()
        peak = sampler.peak_kb / 1024
    return ChildRun(wall, process.returncode, usage.ru_utime + usage.ru_stime, peak)


_PRINT_PEAK = """
import sys
_peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(_peak[0], file=sys.stderr)
"""


def python_peak_rss_mb(code: str) -> float:
    """Peak RSS (MB) of a fresh ``python -c CODE``, as the process itself reads it from ``/proc`` at
    the end."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code + _PRINT_PEAK],
        env=bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return int(done.stderr.split()[-1]) / 1024


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for children: ours without Gemini/tweetgen settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV)}
    env.update(extra)
    return env


def shown(path: str | Path) -> str:
    """A path as the report shows it: relative to the checkout when inside it."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def tweetgen_command() -> str:
    """The ``tweetgen`` console script next to this interpreter (the one ``pip install -e .``
    made)."""
    beside = Path(sys.executable).with_name("tweetgen")
    found = str(beside) if beside.exists() else shutil.which("tweetgen")
    if found is None:
        raise RuntimeError(
            "no tweetgen command found: install the package (make test or pip install -e .)"
        )
    return found


class ServerProcess:
    """A running sandbox process: its ``url``, and its CPU seconds once stopped."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.cpu = 0.0
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", _SERVE, str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=bench_env(),
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the sandbox process did not start")

    def stop(self) -> None:
        """Close its stdin (it stops serving and exits) and collect its CPU time."""
        process = self._process
        if process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def sandbox_process(latency: float = 0.0) -> Iterator[ServerProcess]:
    """A sandbox in its own process for the duration of the block."""
    server = ServerProcess(latency)
    try:
        yield server
    finally:
        server.stop()
