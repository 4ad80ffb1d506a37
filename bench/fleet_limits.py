"""Fleet-wide limits (issue 14): several processes sharing one rate limit and one circuit breaker on
PostgreSQL, against the same processes each with its own, side by side.

    python bench/fleet_limits.py [postgresql://user@host:port/db] [--seconds 30] [--quota-rps 20]

Needs a PostgreSQL server: the URL argument or ``TWEETGEN_TEST_POSTGRES`` (a throwaway database is
created on it and dropped after); without one it says so and exits 0.

1. **Rate**: 3 processes (4 tasks each) call a sandbox that enforces a project quota of
   ``--quota-rps`` requests per second (sliding window, 429 above it), each process with
   ``--rpm`` set ``--margin`` (5 %) under the quota (arrival jitter at exactly the quota makes a
   sliding window refuse the requests that arrive early). Shared: the server-observed rate against
   the limit, and the 429s. Not shared: each process sends its own full rate (it pauses only
   after its own 429s): 2-3x the quota.
2. **Outage**: 4 processes make 5, then ``--calls`` calls each (2 tasks) against a sandbox
   answering 503 to everything, with the default breaker (10 consecutive failures) and retry
   budget. Shared: the breaker opens once for the fleet; requests per logical call. Not shared:
   each process learns the outage on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

CHILD = Path(__file__).resolve().parent / "fleet_limits_child.py"
ENV = "TWEETGEN_TEST_POSTGRES"


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on ``server`` (its URL), dropped after."""
    import psycopg

    name = f"tweetgen_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fleet(
    count: int, arguments: list[str], timeout: float, before_start: Any = None
) -> list[dict[str, Any]]:
    """Start ``count`` children, wait until each says ``ready``, start them together, and return
    their JSON reports."""
    children = [
        subprocess.Popen(  # noqa: S603  # this interpreter, our own child script
            [sys.executable, str(CHILD), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a fleet process did not start: {child.communicate()[1]}")
        if before_start is not None:
            before_start()
        start = time.time() + 0.3
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"{start}\n")
            child.stdin.flush()
        reports = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            if child.returncode != 0:
                raise RuntimeError(f"a fleet process failed: {err[-2000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def run_rate(
    url: str,
    *,
    shared: bool,
    quota_rps: int,
    rpm: float,
    seconds: float,
    processes: int = 3,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Processes sharing (or not) ``rpm`` against a sandbox quota of ``quota_rps``: the
    server-observed admitted rate in the middle of the run, requests offered and refused."""
    from tweetgen.sandbox import Quota, SandboxServer

    with SandboxServer() as server:
        marks: dict[str, float] = {}

        def quota_on() -> None:  # after each process's warm-up call
            marks["warm"] = len(server.requests)
            server.quota = Quota.per_second(quota_rps)
            marks["start"] = time.monotonic() + 0.3

        arguments = ["rate", "--base-url", server.url, "--rpm", str(rpm)]
        arguments += ["--seconds", str(seconds), "--concurrency", str(concurrency)]
        arguments += ["--shared", url if shared else ""]
        reports = _fleet(processes, arguments, timeout=seconds + 120, before_start=quota_on)
        assert server.quota is not None
        stats, history = server.quota.stats(), server.quota.history()
        requests = len(server.requests) - int(marks["warm"])
    low = marks["start"] + 1.0  # whole seconds of the run's middle: a 1 s window's count
    high = low + max(1, int(seconds - 1.5))
    admitted = sum(1 for t in history if low <= t < high)
    span = history[-1] - history[0] if len(history) > 1 else seconds
    return {
        "shared": shared,
        "limit_per_s": rpm / 60,
        "quota_per_s": quota_rps,
        "rate_per_s": admitted / (high - low),
        "requests": requests,
        "offered_per_s": requests / span,
        "accepted": stats.accepted,
        "refused": stats.refused,
        "refused_share": stats.refused / max(1, requests),
        "calls": sum(r["calls"] for r in reports),
        "fallbacks": sum(r["events"].get("Shared state unavailable", 0) for r in reports),
    }


def run_outage(
    url: str, *, shared: bool, calls: int, processes: int = 4, concurrency: int = 2
) -> dict[str, Any]:
    """Processes sharing (or not) their breaker and budget through a total outage: requests per
    logical call, and how many processes logged ``Circuit opened``."""
    from tweetgen.sandbox import SandboxServer

    with SandboxServer(faults="503*1000000") as server:
        arguments = ["outage", "--base-url", server.url, "--calls", str(calls)]
        arguments += ["--concurrency", str(concurrency), "--shared", url if shared else ""]
        reports = _fleet(processes, arguments, timeout=180)
        requests = len(server.requests)
    total = sum(r["calls"] for r in reports)
    return {
        "shared": shared,
        "requests": requests,
        "calls": total,
        "amplification": requests / max(1, total),
        "opened": sum(r["events"].get("Circuit opened", 0) for r in reports),
        "failed_fast": sum(r["outcomes"].get("CircuitOpenError", 0) for r in reports),
        "fallbacks": sum(r["events"].get("Shared state unavailable", 0) for r in reports),
    }


def measure(
    server: str, *, seconds: float, quota_rps: int, calls: int, margin: float
) -> tuple[float, list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """Both experiments, shared and not, each on a fresh database of ``server``: the limit (rpm),
    the rate runs and the outage runs by calls per process."""
    rpm = quota_rps * 60 * (1 - margin)
    rates: list[dict[str, Any]] = []
    outages: dict[int, list[dict[str, Any]]] = {}
    for shared in (True, False):  # a fresh fleet (database) for each run: nothing carried over
        with fresh_database(server) as url:
            rates.append(
                run_rate(url, shared=shared, quota_rps=quota_rps, rpm=rpm, seconds=seconds)
            )
    for count in (5, calls):
        for shared in (True, False):
            with fresh_database(server) as url:
                outages.setdefault(count, []).append(run_outage(url, shared=shared, calls=count))
    return rpm, rates, outages


RATE_ROWS = [
    ("admitted rate (server) /s", "rate_per_s", "{:.2f}"),
    ("  vs the limit", None, ""),
    ("requests offered /s", "offered_per_s", "{:.2f}"),
    ("  vs the quota", None, ""),
    ("429s / requests", "refused_share", "{:.1%}"),
    ("fallbacks to local limits", "fallbacks", "{}"),
]
OUTAGE_ROWS = [
    ("requests / logical calls", "amplification", "{:.2f}x"),
    ("requests", "requests", "{}"),
    ("'Circuit opened' logged", "opened", "{}"),
    ("calls failed fast", "failed_fast", "{}"),
    ("fallbacks to local limits", "fallbacks", "{}"),
]


def rate_cells(rates: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The rate table's rows: label, shared, not shared."""
    rows = []
    for label, key, fmt in RATE_ROWS:
        if key is None:
            base, field = (
                ("limit_per_s", "rate_per_s")
                if "limit" in label
                else ("quota_per_s", "offered_per_s")
            )
            cells = [f"{r[field] / r[base]:.2f}x" for r in rates]
        else:
            cells = [fmt.format(r[key]) for r in rates]
        rows.append((label.strip(), cells[0], cells[1]))
    return rows


def outage_cells(runs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The outage table's rows: label, shared, not shared."""
    return [
        (label, *(fmt.format(r[key]) for r in runs))  # type: ignore[misc]
        for label, key, fmt in OUTAGE_ROWS
    ]


def run(config: Any, workdir: Path) -> Any:
    """The measurements as a ``make bench`` section (stage ``fleet``)."""
    from _common import Section, Table, Target

    server = os.environ.get(ENV)
    seconds, calls = (8.0, 20) if config.quick else (30.0, 50)
    command = "python bench/fleet_limits.py [URL] --seconds 30 --quota-rps 20 --calls 50"
    if not server:
        return Section(
            title="Fleet-wide limits on PostgreSQL (3 and 4 processes)",
            method="skipped: no PostgreSQL server (TWEETGEN_TEST_POSTGRES, or initdb to start one)",
            commands=[command],
        )
    rpm, rates, outages = measure(server, seconds=seconds, quota_rps=20, calls=calls, margin=0.05)
    shared, alone = rates
    rate_ok = abs(shared["rate_per_s"] / shared["limit_per_s"] - 1) <= 0.05
    headers = ("", "shared", "not shared")
    tables = [Table(f"3 processes, --rpm {rpm:g} each, quota 20/s", headers, rate_cells(rates))]
    targets = [
        Target(
            "fleet rate",
            "server-observed rate within 5 % of the limit, 429s <= 1 %",
            f"{shared['rate_per_s'] / shared['limit_per_s']:.2f}x the limit, "
            f"{shared['refused_share']:.1%} 429s",
            rate_ok and shared["refused_share"] <= 0.01,
        ),
        Target(
            "unshared rate",
            "the same processes without sharing: about 3x the quota",
            f"{alone['offered_per_s'] / alone['quota_per_s']:.2f}x the quota offered, "
            f"{alone['refused_share']:.0%} refused",
            None,
            "each process pauses after its own 429s, so it offers less than its full rate",
        ),
    ]
    for count, runs in outages.items():
        tables.append(Table(f"outage, 4 processes x {count} calls", headers, outage_cells(runs)))
        targets.append(
            Target(
                f"outage x {count}",
                "the breaker opens once for the fleet; amplification <= 1.2x",
                f"opened {runs[0]['opened']} time(s), {runs[0]['amplification']:.2f}x "
                f"(not shared: opened {runs[1]['opened']}, {runs[1]['amplification']:.2f}x)",
                runs[0]["opened"] == 1 and runs[0]["amplification"] <= 1.2,
            )
        )
    return Section(
        title="Fleet-wide limits on PostgreSQL (3 and 4 processes)",
        method=(
            f"A sandbox enforcing 20 requests/s (sliding window); 3 processes x 4 tasks for "
            f"{seconds:g} s with --rpm 5 % under it, shared on PostgreSQL or not; then 4 processes "
            "x 2 tasks through a total outage (every answer 503), default breaker and budget. "
            "A fresh database per run."
        ),
        tables=tables,
        targets=targets,
        commands=[command],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=os.environ.get(ENV), help=f"(default: {ENV})")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quota-rps", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50, help="outage: calls per process")
    parser.add_argument(
        "--margin", type=float, default=0.05, help="the limit under the quota (default 0.05: 5 %%)"
    )
    args = parser.parse_args(argv)
    if not args.url:
        print(f"fleet_limits: skipped: no PostgreSQL server (give a URL or set {ENV})")
        return 0
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("fleet_limits: skipped: psycopg is not installed (pip install 'tweetgen[postgres]')")
        return 0
    rpm, rates, outages = measure(
        args.url,
        seconds=args.seconds,
        quota_rps=args.quota_rps,
        calls=args.calls,
        margin=args.margin,
    )
    print(
        f"1. rate: 3 processes, --rpm {rpm:g} each ({rpm / 60:g}/s), quota {args.quota_rps}/s "
        f"(sliding 1 s window), {args.seconds:g} s"
    )
    print(f"   {'':28}{'shared':>12}{'not shared':>14}")
    for label, first, second in rate_cells(rates):
        print(f"   {label:28}{first:>12}{second:>14}")
    for count, runs in outages.items():
        print(
            f"2. outage: 4 processes x {count} calls (2 at a time), every answer 503, the default "
            "breaker (10 in a row) and retry budget"
        )
        print(f"   {'':28}{'shared':>12}{'not shared':>14}")
        for label, first, second in outage_cells(runs):
            print(f"   {label:28}{first:>12}{second:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
