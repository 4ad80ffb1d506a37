"""Benchmark 4c: ``tweetgen batch`` with its default local workers (one per usable core) against
``--workers 1``, run alternately in one command, with the bare-httpx baseline as the ceiling.

``python bench/fleet_batch.py [--rows 2000] [--repeats 3]``: the sandbox (its own process) answers
after 50 ms, concurrency 50, so the ideal wall time is ``rows x 0.05 / 50`` s. Prints, per mode, the
wall time (median of the repeats), its fraction of ideal, the client's CPU per row (the command and
its local workers) and the sandbox's CPU per row (it shares the cores), and each mode's wall time
and client CPU as ratios to the bare-httpx baseline's in the same command (other work on the same
cores moves the absolute figures more than the ratios).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from batch_throughput import CONCURRENCY, LATENCY, BatchRun, raw_batch, tweetgen_batch

__all__ = ["main"]

Runner = Callable[[int, Path], BatchRun]
BARE = "bare httpx.AsyncClient, one process"


def _modes(latency: float) -> dict[str, Runner]:
    def tweetgen(extra: Sequence[str]) -> Runner:
        return lambda rows, work: tweetgen_batch(rows, latency, CONCURRENCY, work, extra)

    return {
        "tweetgen batch (default workers)": tweetgen(()),
        "tweetgen batch --workers 1": tweetgen(("--workers", "1")),
        BARE: lambda rows, work: raw_batch(rows, latency, CONCURRENCY, work),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--latency", type=float, default=LATENCY, help="the sandbox's answer time (0: CPU only)"
    )
    args = parser.parse_args(argv)
    modes = _modes(args.latency)
    runs: dict[str, list[BatchRun]] = {name: [] for name in modes}
    with tempfile.TemporaryDirectory() as name:
        for repeat in range(args.repeats):
            order = list(modes) if repeat % 2 == 0 else list(modes)[::-1]
            for mode in order:
                runs[mode].append(modes[mode](args.rows, Path(name)))
    ideal = args.rows * args.latency / CONCURRENCY
    cores = len(os.sched_getaffinity(0))
    print(f"{args.rows} rows, {args.latency * 1e3:.0f} ms answers, concurrency {CONCURRENCY}, "
          f"{cores} cores; ideal {ideal:.2f} s; {args.repeats} runs each, alternating")  # fmt: skip
    header = f"{'run':40} {'wall (median)':>14} {'of ideal':>9} {'client CPU/row':>15}"
    print(header + f" {'sandbox CPU/row':>16} {'ok':>6}  {'vs bare: wall':>13} {'CPU':>5}")
    bare = runs[BARE]
    bare_wall = statistics.median(r.child.wall for r in bare)
    bare_cpu = statistics.median(r.child.cpu / r.rows * 1e3 for r in bare)
    for mode, done in runs.items():
        wall = statistics.median(r.child.wall for r in done)
        cpu = statistics.median(r.child.cpu / r.rows * 1e3 for r in done)
        server = statistics.median(r.server_cpu / r.rows * 1e3 for r in done)
        walls = ", ".join(f"{r.child.wall:.2f}" for r in done)
        print(
            f"{mode:40} {wall:>12.2f} s {ideal / wall:>9.2f} {cpu:>12.2f} ms "
            f"{server:>13.2f} ms {min(r.ok for r in done):>6}  {wall / bare_wall:>12.2f}x "
            f"{cpu / bare_cpu:>4.2f}x  ({walls})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
