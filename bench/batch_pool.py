"""The batch's connection pool, measured: ``tweetgen batch`` against the sandbox (in its own
process) with each pool option, interleaved, each run a fresh child process.

Options: ``default`` is httpx's own pool (100 connections, 20 kept alive), what a batch used before
issue 13; ``keepalive`` keeps as many alive as the concurrency (up to 100 open); ``capped`` opens
and keeps at most as many as the concurrency, in one pool; ``batch`` is what a batch now gets
(``tweetgen.throttle.pooled_transport``: several small pools of at most 16, each capped, a request
going to the least busy one: ``tweetgen.pool.PooledTransport``). ``--shards`` adds this script's own
sharded transport (four pools, freed when the answer's headers arrive) for comparison. HTTP/2 is
measured only when the ``h2`` package is installed and is otherwise reported as not measured (the
sandbox speaks HTTP/1.1 only, so it would fall back to HTTP/1.1 anyway). New connections are counted
in the child, at httpcore's network backend (every TCP connect the client makes).

Run alone: ``python bench/batch_pool.py [--rows 2000] [--concurrency 50] [--latency 0.05]
[--repeats 3]``; nothing leaves the machine (the sandbox listens on loopback).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

from _proc import bench_env, run_child, sandbox_process

__all__ = ["OPTIONS", "main"]

KEY = "bench-key"
OPTIONS = ("default", "keepalive", "capped", "batch")
SHARDS = 4

#: The child: count the client's TCP connects, give the batch the option's pool, run the CLI.
_CHILD = """
import asyncio, itertools, math, sys, types
import httpx
from httpcore._backends.auto import AutoBackend

option, concurrency, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opened = 0
_connect = AutoBackend.connect_tcp

async def counting(self, *args, **kwargs):
    global opened
    opened += 1
    return await _connect(self, *args, **kwargs)

AutoBackend.connect_tcp = counting

class Shards(httpx.AsyncBaseTransport):
    '''Several small pools; each request goes to the one with the fewest requests in flight.'''

    def __init__(self, count, concurrency):
        from tweetgen.providers._deadline import install_deadline_backend

        size = max(1, math.ceil(concurrency / count))
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(count)]
        self.busy = [0] * count
        for pool in self.pools:
            install_deadline_backend(types.SimpleNamespace(_transport=pool))

    async def handle_async_request(self, request):
        index = min(range(len(self.pools)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            return await self.pools[index].handle_async_request(request)
        finally:
            self.busy[index] -= 1

    async def aclose(self):
        for pool in self.pools:
            await pool.aclose()

import tweetgen.throttle as throttle

throttle.pooled_transport = {
    "default": lambda n: httpx.AsyncHTTPTransport(),
    "keepalive": lambda n: httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=max(n, 100), max_keepalive_connections=n)
    ),
    "capped": lambda n: httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=n, max_keepalive_connections=n)
    ),
    "batch": throttle.pooled_transport,
    "shards": lambda n: Shards(shards, n),
    "http2": lambda n: httpx.AsyncHTTPTransport(
        http2=True, limits=httpx.Limits(max_connections=max(n, 100), max_keepalive_connections=n)
    ),
}[option]
from tweetgen.cli import main

code = main(sys.argv[4:])
print(f"OPENED {opened}", file=sys.stderr)
sys.exit(code)
"""


def _run(option: str, args: argparse.Namespace, work: Path, url: str) -> tuple[float, float, int]:
    """One batch with ``option``'s pool: wall seconds, CPU seconds, TCP connections opened."""
    topics, out, db = work / "topics.txt", work / "out.jsonl", work / f"{option}.db"
    db.unlink(missing_ok=True)
    cli = [str(topics), "-o", str(out), "--db", str(db), "--concurrency", str(args.concurrency)]
    command = [sys.executable, "-c", _CHILD, option, str(args.concurrency), str(SHARDS)]
    env = bench_env(GEMINI_BASE_URL=url, GEMINI_API_KEY=KEY, TWEETGEN_LOG_FILE="")
    stderr = work / "stderr.txt"
    with stderr.open("wb") as sink:
        child = run_child([*command, "batch", *cli, "-q"], cwd=work, env=env, stderr=sink)
    said = stderr.read_text(encoding="utf-8", errors="replace")
    if child.returncode != 0 or "OPENED" not in said:
        raise RuntimeError(f"{option}: exit {child.returncode}\n{said[-800:]}")
    opened = int(said.rsplit("OPENED", 1)[1].split()[0])
    return child.wall, child.cpu, opened


def main(argv: list[str] | None = None) -> int:
    """Measure every option; print a table of medians and ratios against ``default``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="the sandbox's answer delay")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shards", action="store_true", help="also run this script's shards")
    args = parser.parse_args(argv)
    options = [*OPTIONS, "shards"] if args.shards else list(OPTIONS)
    options += ["http2"] if importlib.util.find_spec("h2") else []
    runs: dict[str, list[tuple[float, float, int]]] = {option: [] for option in options}
    with tempfile.TemporaryDirectory() as name, sandbox_process(args.latency) as server:
        work = Path(name)
        lines = "".join(f"Pool benchmark topic {i}\n" for i in range(args.rows))
        (work / "topics.txt").write_text(lines, encoding="utf-8")
        for repeat in range(args.repeats):  # interleaved, the order turned each round
            order = options if repeat % 2 == 0 else options[::-1]
            for option in order:
                runs[option].append(_run(option, args, work, server.url))
    print(
        f"tweetgen batch, {args.rows} rows, concurrency {args.concurrency}, sandbox latency "
        f"{args.latency * 1e3:.0f} ms in its own process, median of {args.repeats}"
    )
    base_wall = statistics.median(r[0] for r in runs["default"])
    base_cpu = statistics.median(r[1] for r in runs["default"])
    print(
        f"{'pool':10} {'wall s':>8} {'x default':>10} {'CPU ms/row':>11} {'x default':>10} "
        f"{'connections':>12}"
    )
    for option in options:
        wall = statistics.median(r[0] for r in runs[option])
        cpu = statistics.median(r[1] for r in runs[option])
        opened = statistics.median(r[2] for r in runs[option])
        print(
            f"{option:10} {wall:8.2f} {wall / base_wall:10.2f} {cpu / args.rows * 1e3:11.2f} "
            f"{cpu / base_cpu:10.2f} {opened:12.0f}"
        )
    if "http2" not in options:
        print("http2: not measured (the h2 package is not installed; the sandbox is HTTP/1.1 only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
