"""The store's two backends, measured (issue 14): ``Store.write`` on a SQLite file against a
PostgreSQL database on loopback, in one process run.

Three ways of writing, each on both backends, interleaved round by round with a rotating order:
``1 thread`` writes calls back to back through one Store; ``4 threads`` share one Store (its lock
serialises them, as a batch's workers do); ``4 processes`` each open their own Store on the same
file or database and write at once (SQLite serialises writers with its file lock, PostgreSQL does
not). A call is one attempt, as most are. The PostgreSQL server's ``fsync`` and
``synchronous_commit`` are printed: they decide most of its cost per commit (SQLite runs WAL with
``synchronous=NORMAL``, which does not sync on every commit).

Run alone: ``python bench/store_backends.py [--writes 300] [--rounds 5]``, with
``TWEETGEN_BENCH_POSTGRES`` (else ``TWEETGEN_TEST_POSTGRES``) naming a server whose user may create
databases: a fresh database is made and dropped. Without one, PostgreSQL is reported as not
measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import Config, Sample, Section, Table, Target, interleave, paired_ratios, ratio
from _proc import bench_env

from tweetgen.store import CallRecord, Store
from tweetgen.trace import AttemptTrace, CallTrace

__all__ = ["main", "measure", "run"]

ENV = ("TWEETGEN_BENCH_POSTGRES", "TWEETGEN_TEST_POSTGRES")
WAYS = ("1 thread", "4 threads", "4 processes")
PARALLEL = 4

#: a child: open the store, say ready, wait for "go", write N calls, print the seconds it took
_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from store_backends import _call
from tweetgen.store import Store

with Store(sys.argv[1]) as store:
    store.write(_call(-1))
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for n in range(int(sys.argv[2])):
        store.write(_call(n))
    print(time.perf_counter() - started, flush=True)
"""


def _call(n: int) -> CallRecord:
    """The record of one successful single-attempt call."""
    attempt = AttemptTrace(number=1, started_at=time.time(), latency_ms=412.0, status_code=200)
    attempt.input_tokens, attempt.output_tokens, attempt.finish_reason = 38, 41, "STOP"
    trace = CallTrace(
        request_id=f"bench-{n}",
        provider="gemini",
        model="gemini-flash-latest",
        inputs={"topic": f"Store benchmark topic {n}", "tone": "casual", "max_words": 40},
        started_at=time.time(),
        attempts=[attempt],
        status="ok",
        text="Benchmarks keep us honest: measure before you move the data. #Databases",
        latency_ms=415.0,
    )
    return CallRecord.of(trace)


@contextmanager
def _database(server: str | None) -> Iterator[str | None]:
    """A fresh database on ``server``, dropped afterwards (None without a server)."""
    if server is None:
        yield None
        return
    from fleet_limits import fresh_database

    with fresh_database(server) as url:
        yield url


def _threads(store: Store, writes: int, count: int) -> float:
    """Seconds per write of ``count`` threads writing ``writes`` calls in all through one store."""
    share = writes // count
    records = [[_call(n) for n in range(share)] for _ in range(count)]
    threads = [
        threading.Thread(target=lambda own=own: [store.write(r) for r in own]) for own in records
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) / (share * count)


def _processes(target: str, writes: int, count: int) -> float:
    """Seconds per write of ``count`` processes, each with its own store, writing at once."""
    share = writes // count
    here = str(Path(__file__).resolve().parent)
    children = [
        subprocess.Popen(  # noqa: S603 - this interpreter, our own script
            [sys.executable, "-c", _CHILD, target, str(share), here],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=bench_env(),
        )
        for _ in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a writer process did not start")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        took = [float(child.communicate(timeout=600)[0]) for child in children]
        return max(took) / (share * count)  # all started at "go": the slowest ends the work
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=60)


def _ways(target: str, store: Store, writes: int) -> dict[str, Callable[[], float]]:
    def one() -> float:
        records = [_call(n) for n in range(writes)]
        started = time.perf_counter()
        for record in records:
            store.write(record)
        return (time.perf_counter() - started) / writes

    return {
        "1 thread": one,
        "4 threads": lambda: _threads(store, writes, PARALLEL),
        "4 processes": lambda: _processes(target, writes, PARALLEL),
    }


def server_settings(url: str) -> str:
    """The server's version and the settings that decide the cost of a commit."""
    with Store(url) as store:
        (row,) = store.query(
            "SELECT current_setting('server_version') AS v, current_setting('fsync') AS f, "
            "current_setting('synchronous_commit') AS s"
        )
    return f"PostgreSQL {row['v']}, fsync={row['f']}, synchronous_commit={row['s']}"


def measure(writes: int, rounds: int, workdir: Path) -> tuple[dict[str, Sample], str | None]:
    """Seconds per write by ``backend / way``, interleaved; and the server's settings (None: no
    server)."""
    server = next((os.environ[name] for name in ENV if os.environ.get(name)), None)
    sqlite_path = str(workdir / "bench.db")
    with Store(sqlite_path) as lite, _database(server) as url:
        variants = {f"SQLite / {k}": v for k, v in _ways(sqlite_path, lite, writes).items()}
        if url is None:
            return interleave(variants, rounds), None
        with Store(url) as pg:
            variants |= {f"PostgreSQL / {k}": v for k, v in _ways(url, pg, writes).items()}
            return interleave(variants, rounds), server_settings(url)


def _rows(samples: dict[str, Sample]) -> list[tuple[str, ...]]:
    rows = []
    for way in WAYS:
        lite = samples[f"SQLite / {way}"]
        pg = samples.get(f"PostgreSQL / {way}")
        shown = (
            ("not measured (no server)", "-", "-")
            if pg is None
            else (
                f"{1 / pg.median:,.0f}",
                f"{ratio(lite, pg):.2f}x",
                paired_ratios(lite, pg).show(digits=2),
            )
        )
        rows.append((way, f"{1 / lite.median:,.0f}", *shown))
    return rows


HEADERS = (
    "writers",
    "SQLite writes/s",
    "PostgreSQL writes/s",
    "PostgreSQL/SQLite",
    "paired ratios",
)


def run(config: Config, workdir: Path) -> Section:
    """The measurements as a report section (to register in bench/run.py as a stage)."""
    writes, rounds = (120, 3) if config.quick else (300, 5)
    samples, settings = measure(writes, rounds, workdir)
    one = _rows(samples)[0]
    return Section(
        title="Store backends: Store.write on SQLite and PostgreSQL",
        method=(
            f"{writes} single-attempt calls per measurement, {rounds} interleaved rounds; "
            f"{settings or 'no PostgreSQL server'}; SQLite in WAL, synchronous=NORMAL."
        ),
        tables=[Table("Store.write throughput (median)", HEADERS, _rows(samples))],
        targets=[
            Target(
                "store backends",
                "writes per second on both backends, stated",
                f"1 thread: SQLite {one[1]}/s, PostgreSQL {one[2]}/s",
                None,
            )
        ],
        commands=["python bench/store_backends.py"],
    )


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="calls written per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        samples, settings = measure(args.writes, args.rounds, Path(name))
    print(
        f"Store.write, {args.writes} single-attempt calls per measurement, median of "
        f"{args.rounds} interleaved rounds; SQLite WAL synchronous=NORMAL; "
        f"{settings or 'no PostgreSQL server'} on loopback"
    )
    widths = [max(len(h), 24) for h in HEADERS]
    print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)))
    for row in _rows(samples):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
