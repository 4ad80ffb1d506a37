"""Benchmark 4: ``tweetgen batch`` as a subprocess against the sandbox: throughput against the
ideal, and peak RSS.

Throughput: N topics, the sandbox answering after 50 ms, concurrency 50, so the ideal wall time is
``N x latency / concurrency``; a bare httpx.AsyncClient on the same bodies (``raw_batch.py``) runs
interleaved with it as the measured ceiling. Memory: the same command against an instant sandbox at
two sizes, each child's peak RSS (VmHWM) sampled from ``/proc``.
"""

from __future__ import annotations

import compileall
import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import Config, Sample, Section, Table, Target, paired_ratios, ratio
from _proc import ChildRun, bench_env, run_child, sandbox_process, shown, tweetgen_command

__all__ = ["BatchRun", "run"]

KEY = "bench-key"
LATENCY = 0.05
CONCURRENCY = 50
TARGET_EFFICIENCY = 0.8
#: issue 14: the default workers (one per usable core) against the same ideal
WORKERS_TARGET = 0.6
#: a client busier than this share of a core is CPU-bound
CPU_BOUND = 0.75
FLAT = 1.10
#: what a one-off look inside the process found; ``make bench`` does not repeat it
MEMORY_DIAGNOSIS = (
    "Diagnosed once at commit 6ffcba6 (8,000 rows in process; make bench does not repeat it): from "
    "row 2,000 to 8,000 Python's allocated blocks and the gc's object count fell slightly, "
    "SQLite's memory stayed near 2 MB and glibc malloc's bytes in use stayed within 9.6-10.1 MB, "
    "while malloc's main heap grew 1.1 MB, 0.8 MB of it free space: fragmentation of the C heap, "
    "not rows kept alive."
)
#: slack on the predicted duration of the large memory run before the suite's time budget forbids it
SLACK = 1.15
_SUMMARY = re.compile(r"tweetgen: \d+ rows: .*; ([\d.]+) s\s*$", re.MULTILINE)
RAW_SCRIPT = Path(__file__).with_name("raw_batch.py")


@dataclass(frozen=True)
class BatchRun:
    """One batch process: rows asked and done, the child's figures, the server's CPU, the CLI's own
    run time."""

    rows: int
    ok: int
    child: ChildRun
    server_cpu: float
    loop_seconds: float | None = None


@functools.cache
def byte_compiled() -> None:
    """Byte-compile tweetgen once, as ``pip install`` does (with PYTHONDONTWRITEBYTECODE set every
    process of a checkout compiles every module again: 0.15-0.3 s of CPU no installed one pays)."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "src" / "tweetgen", quiet=1)


def _topics(path: Path, rows: int) -> Path:
    path.write_text("".join(f"Benchmark topic {i}\n" for i in range(rows)), encoding="utf-8")
    return path


def _ok_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if json.loads(line).get("status") == "ok")


def _check(child: ChildRun, stderr: str, command: list[str]) -> None:
    """A batch that failed outright measures nothing: stop the suite with what it said."""
    if child.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(command)} exited with {child.returncode}:\n{tail}")


def tweetgen_batch_command(
    topics: Path, out: Path, db: Path, concurrency: int, extra: Sequence[str] = ()
) -> list[str]:
    """The CLI command under test (``extra``: more options, such as ``--workers 1``)."""
    files = [str(topics), "-o", str(out), "--db", str(db)]
    return [tweetgen_command(), "batch", *files, "--concurrency", str(concurrency), "-q", *extra]


def tweetgen_batch(
    rows: int, latency: float, concurrency: int, parent: Path, extra: Sequence[str] = ()
) -> BatchRun:
    """Run ``tweetgen batch`` on ``rows`` fresh topics in a fresh directory (new store, default log
    file); its CPU includes its local workers' (it waits for them)."""
    byte_compiled()
    with tempfile.TemporaryDirectory(dir=parent) as name:
        work = Path(name)
        command = tweetgen_batch_command(
            _topics(work / "topics.txt", rows),
            work / "out.jsonl",
            work / "store.db",
            concurrency,
            extra,
        )
        with sandbox_process(latency) as server, (work / "stderr.txt").open("wb") as stderr:
            env = bench_env(GEMINI_BASE_URL=server.url, GEMINI_API_KEY=KEY)
            child = run_child(command, cwd=work, env=env, stderr=stderr, sample_rss=True)
        stderr_text = (work / "stderr.txt").read_text(encoding="utf-8", errors="replace")
        _check(child, stderr_text, command)
        found = _SUMMARY.search(stderr_text)
        loop = float(found.group(1)) if found else None
        return BatchRun(rows, _ok_rows(work / "out.jsonl"), child, server.cpu, loop)


def raw_batch(rows: int, latency: float, concurrency: int, parent: Path) -> BatchRun:
    """Run the bare-httpx baseline on the same kind of input."""
    byte_compiled()
    with tempfile.TemporaryDirectory(dir=parent) as name:
        work = Path(name)
        topics, out = _topics(work / "topics.txt", rows), work / "out.jsonl"
        with sandbox_process(latency) as server:
            command = [sys.executable, str(RAW_SCRIPT), str(topics), server.url, "-o", str(out)]
            child = run_child(
                [*command, "--concurrency", str(concurrency)],
                cwd=work,
                env=bench_env(),
                sample_rss=True,
            )
        _check(child, "", command)
        return BatchRun(rows, _ok_rows(out), child, server.cpu)


def _throughput(
    config: Config, workdir: Path
) -> tuple[list[BatchRun], list[BatchRun], list[BatchRun]]:
    """Alternate tweetgen (its default workers: one per usable core), tweetgen --workers 1 and
    the baseline (ABC, CBA, ...) so that drift hits all alike."""
    ours: list[BatchRun] = []
    singles: list[BatchRun] = []
    raws: list[BatchRun] = []

    def single(rows: int, latency: float, concurrency: int, parent: Path) -> BatchRun:
        return tweetgen_batch(rows, latency, concurrency, parent, ("--workers", "1"))

    for repeat in range(config.batch_repeats):
        steps = [(ours, tweetgen_batch), (singles, single), (raws, raw_batch)]
        for runs, runner in steps if repeat % 2 == 0 else steps[::-1]:
            runs.append(runner(config.batch_rows, LATENCY, CONCURRENCY, workdir))
    return ours, singles, raws


def _walls(runs: list[BatchRun]) -> Sample:
    return Sample(tuple(r.child.wall for r in runs))


def _sample(values: list[float]) -> Sample:
    return Sample(tuple(values))


def _run_row(name: str, runs: list[BatchRun], ideal: float) -> tuple[str, ...]:
    walls = _walls(runs)
    cpu = _sample([r.child.cpu / r.rows * 1e3 for r in runs])
    server = _sample([r.server_cpu / r.rows * 1e3 for r in runs])
    return (
        name,
        walls.show(unit=" s", digits=2),
        f"{ideal / walls.median:.2f}",
        f"{runs[0].rows / walls.median:.0f}",
        f"{min(r.ok for r in runs)}/{runs[0].rows}",
        f"{cpu.median:.2f} ms",
        f"{server.median:.2f} ms",
        _sample([r.child.max_rss_mb for r in runs]).show(unit=" MB", digits=1),
    )


def _throughput_table(
    ours: list[BatchRun], singles: list[BatchRun], raws: list[BatchRun], ideal: float
) -> Table:
    rows = [
        _run_row(f"tweetgen batch (default: {os.cpu_count()} workers)", ours, ideal),
        _run_row("tweetgen batch --workers 1", singles, ideal),
        _run_row("bare httpx.AsyncClient (raw_batch.py)", raws, ideal),
    ]
    loops = [r.loop_seconds for r in ours if r.loop_seconds is not None]
    if loops:
        loop = _sample(loops)
        speed = f"{ours[0].rows / loop.median:.0f}"
        rows.append(
            (
                "tweetgen's run loop (its summary line)",
                loop.show(unit=" s"),
                f"{ideal / loop.median:.2f}",
                speed,
            )
        )
    rows.append(
        (
            "ideal: N x latency / concurrency",
            f"{ideal:.2f} s",
            "1.00",
            f"{ours[0].rows / ideal:.0f}",
        )
    )
    headers = (
        "run",
        "wall: median (IQR, n)",
        "of ideal",
        "rows/s",
        "ok",
        "client CPU/row",
        "sandbox CPU/row",
        "peak RSS",
    )
    return Table(
        "Batch throughput", headers, [row + ("",) * (len(headers) - len(row)) for row in rows]
    )


def _cpu_per_row_ms(runs: list[BatchRun]) -> float:
    return _sample([r.child.cpu / r.rows * 1e3 for r in runs]).median


def _throughput_target(
    ours: list[BatchRun], raws: list[BatchRun], ideal: float, known_ms: dict[str, float]
) -> Target:
    walls, raw_walls = _walls(ours), _walls(raws)
    efficiency = ideal / walls.median
    low, high = paired_ratios(walls, raw_walls).quartiles
    busy = _sample([r.child.cpu / r.child.wall for r in ours]).median
    need = LATENCY / CONCURRENCY * 1e3
    known = (
        "".join(f"{name}: {ms:.2f} ms, " for name, ms in known_ms.items())
        or "validation, two INFO log events, "
    )
    lead = "CPU, not latency." if busy >= CPU_BOUND else "Partly CPU."
    limits = (
        f"{lead} To keep {CONCURRENCY} calls of {LATENCY * 1e3:.0f} ms in flight a client may "
        f"spend at most {need:.2f} ms of CPU per row; the CLI process spent "
        f"{_cpu_per_row_ms(ours):.2f} ms per row (start-up and output included) and kept "
        f"{busy:.0%} of a core busy. Per row that covers {known}a SQLite record, an async httpx "
        "request and the pipeline around them. The bare httpx client, at "
        f"{_cpu_per_row_ms(raws):.2f} ms of CPU per row, reaches {ideal / raw_walls.median:.2f} of "
        f"ideal on the same server and {os.cpu_count()} cores; tweetgen takes "
        f"{ratio(walls, raw_walls):.2f}x its wall time (paired IQR {low:.2f}-{high:.2f})."
    )
    met = efficiency >= TARGET_EFFICIENCY
    return Target(
        "4a. batch throughput",
        f">= {TARGET_EFFICIENCY} of ideal ({ours[0].rows:,} topics, {LATENCY * 1e3:.0f} ms, "
        f"concurrency {CONCURRENCY})",
        f"{efficiency:.2f} of ideal (wall {walls.show(unit=' s')} vs ideal {ideal:.2f} s)",
        met,
        "" if met else limits,
    )


def _workers_target(ours: list[BatchRun], singles: list[BatchRun], ideal: float) -> Target:
    """Issue 14: every core in a batch, the default workers against one process."""
    walls, single = _walls(ours), _walls(singles)
    low, high = paired_ratios(single, walls).quartiles
    server = _sample([r.server_cpu / r.rows * 1e3 for r in ours]).median
    limits = (
        f"The sandbox shares the {os.cpu_count()} cores: it spent {server:.2f} ms of CPU per row, "
        f"the command and its workers {_cpu_per_row_ms(ours):.2f} ms (--workers 1: "
        f"{_cpu_per_row_ms(singles):.2f} ms); at {LATENCY / CONCURRENCY * 1e3:.2f} ms of wall "
        "per row the ideal needs less CPU per row than both spend together on these cores."
    )
    efficiency = ideal / walls.median
    return Target(
        "4c. batch on every core (issue 14)",
        f">= {WORKERS_TARGET} of ideal with the default workers",
        f"{efficiency:.2f} of ideal (--workers 1: {ideal / single.median:.2f}; speed-up "
        f"{ratio(single, walls):.2f}x, paired IQR {low:.2f}-{high:.2f})",
        efficiency >= WORKERS_TARGET,
        "" if efficiency >= WORKERS_TARGET else limits,
    )


def _planned_rows(small: BatchRun, wanted: int, deadline: float) -> int:
    """``wanted`` rows, or as many (in steps of the small run) as the suite's remaining time budget
    allows."""
    per_row = small.child.wall / small.rows
    affordable = (deadline - time.perf_counter()) / (per_row * SLACK)
    if affordable >= wanted:
        return wanted
    return int(affordable // small.rows) * small.rows


def _memory(config: Config, workdir: Path, deadline: float) -> tuple[list[BatchRun], int]:
    small_rows, wanted = config.memory_rows
    small = tweetgen_batch(small_rows, 0.0, CONCURRENCY, workdir)
    rows = _planned_rows(small, wanted, deadline)
    if rows < 2 * small_rows:
        return [small], wanted
    return [small, tweetgen_batch(rows, 0.0, CONCURRENCY, workdir)], wanted


def _memory_table(runs: list[BatchRun]) -> Table:
    base = runs[0].child.max_rss_mb
    rows = [
        (
            f"{r.rows:,}",
            f"{r.ok:,}",
            f"{r.child.wall:.1f} s",
            f"{r.rows / r.child.wall:.0f}",
            f"{r.child.max_rss_mb:.1f} MB",
            f"{r.child.max_rss_mb / base:.2f}x",
        )
        for r in runs
    ]
    headers = ("rows", "ok", "wall (n=1)", "rows/s", "peak RSS (n=1)", f"vs {runs[0].rows:,} rows")
    return Table(
        f"Peak RSS of tweetgen batch, instant sandbox, concurrency {CONCURRENCY}", headers, rows
    )


def _memory_target(runs: list[BatchRun], wanted: int) -> Target:
    goal = (
        f"peak RSS for {wanted:,} rows stated and flat "
        f"(<= {FLAT:.2f}x the {runs[0].rows:,}-row run)"
    )
    if len(runs) < 2:
        why = "the suite's time budget left no room for a larger run"
        return Target(
            "4b. batch memory",
            goal,
            f"{runs[0].child.max_rss_mb:.1f} MB at {runs[0].rows:,} rows",
            None,
            why,
        )
    small, big = runs
    growth = big.child.max_rss_mb / small.child.max_rss_mb
    per_k = (
        (big.child.max_rss_mb - small.child.max_rss_mb) * 1024 / ((big.rows - small.rows) / 1000)
    )
    measured = (
        f"{big.child.max_rss_mb:.1f} MB at {big.rows:,} rows vs {small.child.max_rss_mb:.1f} MB at "
        f"{small.rows:,}: {growth:.2f}x ({per_k:+.1f} KB per 1,000 rows)"
    )
    limits = []
    if big.rows < wanted:
        limits.append(
            f"{wanted:,} rows were not run: at {small.rows / small.child.wall:.0f} rows/s they "
            "would not fit in the suite's time budget, so the largest run that fits "
            f"({big.rows:,}) was measured instead"
        )
    if growth > FLAT:
        limits.append(f"RSS grows about {per_k * 1.024:.0f} bytes per row. {MEMORY_DIAGNOSIS}")
    return Target(
        "4b. batch memory", goal, measured, growth <= FLAT and big.rows >= wanted, "; ".join(limits)
    )


def run(
    config: Config, workdir: Path, deadline: float, known_ms: dict[str, float] | None = None
) -> Section:
    """Benchmark 4 as a report section; the large memory run shrinks to fit ``deadline``."""
    ours, singles, raws = _throughput(config, workdir)
    ideal = config.batch_rows * LATENCY / CONCURRENCY
    memory, wanted = _memory(config, workdir, deadline)
    example = tweetgen_batch_command(
        Path("topics.txt"), Path("out.jsonl"), Path("store.db"), CONCURRENCY
    )
    example[0] = shown(example[0])
    return Section(
        title="4. Batch throughput and memory",
        method=(
            "The tweetgen package is byte-compiled first, as an installed one is. "
            "`tweetgen batch` runs as a subprocess in a fresh temporary directory (input file, "
            "--db store and its default log file there; -q) with GEMINI_BASE_URL pointing at a "
            f"sandbox in its own process and GEMINI_API_KEY set. Throughput: {config.batch_rows:,} "
            f"topics, the sandbox answering after {LATENCY * 1e3:.0f} ms, concurrency "
            f"{CONCURRENCY}, {config.batch_repeats} run(s) of its default workers (one per "
            "usable core) alternating with --workers 1 and the bare-httpx baseline (ABC, CBA, "
            "...); wall time from spawn to exit. CPU (the command's and its local workers') and "
            "peak RSS are each child's own (CPU from os.wait4; peak RSS is VmHWM read from /proc "
            "every 20 ms, because on Linux a child's ru_maxrss includes its parent's RSS at "
            "spawn); the sandbox's CPU is its own process's. Memory: one run at each size against "
            f"an instant sandbox, concurrency {CONCURRENCY}."
        ),
        tables=[_throughput_table(ours, singles, raws, ideal), _memory_table(memory)],
        targets=[
            _throughput_target(ours, raws, ideal, known_ms or {}),
            _workers_target(ours, singles, ideal),
            _memory_target(memory, wanted),
        ],
        commands=[
            f"GEMINI_BASE_URL=SANDBOX GEMINI_API_KEY={KEY} {' '.join(example)}",
            f"{shown(sys.executable)} {shown(RAW_SCRIPT)} topics.txt SANDBOX -o out.jsonl "
            f"--concurrency {CONCURRENCY}",
        ],
    )
