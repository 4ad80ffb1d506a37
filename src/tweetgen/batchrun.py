"""``tweetgen batch`` over the store's work queue: the command's own worker with its local workers
(``--workers N``), alone on a PostgreSQL store shared with other commands, or as a local worker
of another command.

The command loads its prepared rows into the store once (idempotent), begins a round unless other
workers are running one, starts its N-1 local workers, runs its own share, waits for the batch to
be complete and for its workers to end, and merges their summaries into its own. Its caller writes
the output from the store, as for one process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from .batchfleet import FleetRunner, run_fleet
from .batchqueue import BatchQueue
from .batchsummary import BatchSummary
from .batchworkers import (
    LocalWorkers,
    WorkerSpec,
    parent_lines,
    shares,
    watch_parent,
    worker_name,
)
from .exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

__all__ = ["run_command", "run_worker", "spawn"]


def _queue(store: Any, batch_id: str, worker: str, args: argparse.Namespace) -> BatchQueue:
    return BatchQueue(store, batch_id, worker=worker, lease=float(args.lease))


def spawn(args: argparse.Namespace, parent: str, planned: int) -> LocalWorkers:
    """Start ``planned - 1`` local workers, each with its share of the concurrency and 1/planned
    of the rate limits; they wait to be told the batch (:meth:`LocalWorkers.begin`)."""
    split = shares(args.concurrency, planned)
    argv = list(getattr(args, "argv", []))
    return LocalWorkers(argv, parent, split[1:], 1 / planned).start()


def run_command(
    args: argparse.Namespace,
    generator: Any,
    store: Any,
    ledger: Any,
    stop: Any,
    workers: int,
    on_progress: Any,
    early: tuple[str, LocalWorkers] | None = None,
) -> tuple[BatchSummary, list[str], bool]:
    """Run the batch with ``workers`` processes (this one and ``workers - 1`` children, started
    ``early`` or now): the summary of this command (its workers' included), lines about workers
    that ended badly, and whether one failed (not counting one killed by a signal: its rows were
    taken over)."""
    name, local = early or (worker_name(), None)
    queue = _queue(store, ledger.batch_id, name, args)
    provider = generator.provider
    details = {"rows": ledger.count, "provider": provider.name, "model": provider.model}
    queue.load(ledger.payloads(), ledger.count, details)
    queue.begin_round(fresh=store.backend == "sqlite")  # the run lock: no other worker is alive
    local = local or spawn(args, name, workers)
    try:
        others = local.begin(ledger.batch_id, keep=workers - 1)
        runner = FleetRunner(
            generator,
            store,
            stop,
            queue,
            concurrency=max(1, args.concurrency - others),
            retry_failed=args.retry_failed,
            on_progress=on_progress,
            on_tick=lambda: local.reap(queue.expire),
        )

        async def then() -> None:
            if runner.stopping.is_set() and runner.level == 0:  # the store failed here
                local.tell(1)
            await local.wait(lambda: runner.level == 0)

        async def main() -> BatchSummary:
            try:
                return await run_fleet(runner, on_signal=local.tell, then=then)
            finally:
                await generator.aclose()

        summary = asyncio.run(main())
        lines, failed = local.results(summary.merge)
    finally:
        local.close()
    if not summary.interrupted and summary.store_error is None:
        summary.others = max(0, ledger.count - summary.total)
        summary.total = max(summary.total, ledger.count)
    return summary, lines, failed


def run_worker(args: argparse.Namespace, spec: WorkerSpec) -> int:
    """A local worker of another command: claim and run rows until the batch is complete, then
    write this process's summary where the parent reads it."""
    from .batchcommand import _generator, _observers
    from .store import Store
    from .throttle import BatchStop

    # --concurrency stays the command's: the connection pools are sized from it, as the command's
    # own are, so that this worker's share (spec.concurrency) keeps them half busy; a pool kept
    # full cost 1.2 ms more CPU per row (bench/fleet_batch.py, 2 workers).
    args.metrics_port = None
    with Store(args.db) as store, contextlib.ExitStack() as stack:
        stop = BatchStop()
        generator = _generator(args, _observers(args, store, stack), stop, spec.share)
        lines = parent_lines()
        first = next(lines, b"").split()
        if len(first) != 2 or first[0] != b"start":  # dismissed, or the parent is gone
            asyncio.run(generator.aclose())
            return EXIT_OK
        runner = FleetRunner(
            generator,
            store,
            stop,
            _queue(store, first[1].decode(), spec.worker, args),
            concurrency=spec.concurrency,
            retry_failed=args.retry_failed,
            on_progress=lambda summary: None,
        )

        async def main() -> BatchSummary:
            watch_parent(asyncio.get_running_loop(), runner.escalate, lines=lines)
            try:
                return await run_fleet(runner)
            finally:
                await generator.aclose()

        summary = asyncio.run(main())
    Path(spec.summary).write_text(json.dumps(summary.to_json()), encoding="utf-8")
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.store_error or summary.failed else EXIT_OK
