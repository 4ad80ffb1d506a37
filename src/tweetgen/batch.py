"""Batch generation: bounded concurrency, a shared rate limit and 429 pause, a store to resume from.

Every row ends in the store (its call, or its input error), keyed by an idempotency key over the
row's inputs and the settings that change the output. A rerun skips rows whose key already succeeded
(and, unless ``retry_failed``, rows that already failed), and the output file is rewritten
atomically from the store in input order: one line per row, none twice.

Rows are prepared in :mod:`tweetgen.batchrows` (kept on disk by a :class:`RowLedger`); the waits a
batch puts around its calls are in :mod:`tweetgen.throttle`; this module runs the rows and writes
the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import events
from .batchio import write_records
from .batchrows import (
    MAX_SHOWN_CHARS,
    PreparedRow,
    RowLedger,
    prepare,
    prepared_rows,
    shown_inputs,
)
from .batchsummary import BatchSummary, failure_kind, quota_stop, stops_batch
from .errors import (
    CircuitOpenError,
    TweetGenError,
)
from .generator import TweetGenerator
from .quotas import FINAL_KINDS
from .results import Tweet
from .store import CallRecord, CallRow, Store, StoreError, idempotency_key
from .throttle import BatchStop, ThrottledProvider, unless_stopping
from .trace import CallContext, CallTrace, Observer

__all__ = [
    "MAX_SHOWN_CHARS",
    "BatchStop",
    "BatchSummary",
    "PreparedRow",
    "RowLedger",
    "ThrottledProvider",
    "output_records",
    "prepare",
    "prepared_rows",
    "run_batch",
    "write_output",
]

#: how many times a row waits for an open circuit to half-open before it counts as failed
MAX_REQUEUES = 3


def _record(
    row_id: str, shown: dict[str, Any], call: CallRow | None, error: str | None
) -> dict[str, Any]:
    """One output record: a row's id and inputs, and its call's outcome (or its input error)."""
    if call is not None and error is None:
        error = f"{call.error_type}: {call.error_message}" if call.error_type else None
    return {
        "id": row_id,
        **shown,
        "text": call.text if call else None,
        "status": call.status if call else "failed",
        "attempts": call.attempts if call else 0,
        "latency_ms": call.latency_ms if call else None,
        "error": error,
        "provider": call.provider if call else None,
        "model": call.model if call else None,
    }


def _records(
    outcomes: Iterable[tuple[str, dict[str, Any], str | None, str | None]], store: Store
) -> Iterator[dict[str, Any]]:
    for row_id, shown, key, error in outcomes:
        if error is not None or key is None:
            yield _record(row_id, shown, None, error)
        elif (call := store.done(key) or store.latest(key)) is not None:
            yield _record(row_id, shown, call, None)


def _outcome(
    prepared: PreparedRow,
) -> tuple[str, dict[str, Any], str | None, str | None]:
    request = prepared.request
    if prepared.error is not None or request is None:
        return prepared.row.id, shown_inputs(prepared.row.values), None, prepared.error
    shown = {"topic": request.topic, "tone": request.tone, "max_words": request.max_words}
    return prepared.row.id, shown, prepared.key, None


def output_records(rows: Iterable[PreparedRow], store: Store) -> Iterator[dict[str, Any]]:
    """One record per row that has an outcome, in input order (rows never run are left out)."""
    return _records(map(_outcome, rows), store)


def write_output(
    path: Path, fmt: str, rows: Iterable[PreparedRow] | RowLedger, store: Store
) -> int:
    """Rewrite the output from the store (atomic), in input order; returns the number of records.
    ``rows``: the run's :class:`RowLedger` (nothing is read or prepared again), or prepared rows."""
    if isinstance(rows, RowLedger):
        return write_records(path, _records(rows.outcomes(), store), fmt=fmt)
    return write_records(path, output_records(rows, store), fmt=fmt)


class _Spend(Observer):
    """Counts every finished call of a run and its cost into the run's summary: the sum of its
    attempts' ``cost_usd`` (a failed attempt costs 0), unknown when one attempt's price is."""

    def __init__(self, summary: BatchSummary) -> None:
        self.summary = summary

    def call_finished(self, call: CallTrace) -> None:
        if not call.attempts:
            return
        costs = [attempt.cost_usd for attempt in call.attempts]
        known = [c for c in costs if c is not None]
        self.summary.spend(sum(known) if len(known) == len(costs) else None)


def _watch_spend(generator: TweetGenerator, summary: BatchSummary) -> None:
    """Count the generator's calls into ``summary`` (one spend observer per generator: a later run
    on the same generator replaces an earlier run's)."""
    kept = tuple(o for o in generator.observers if not isinstance(o, _Spend))
    generator.observers = (*kept, _Spend(summary))


class _Runner:
    """One batch run: schedules rows under a semaphore, counts outcomes, stops cleanly on a
    signal."""

    def __init__(
        self,
        generator: TweetGenerator,
        store: Store,
        stop: BatchStop,
        *,
        concurrency: int,
        retry_failed: bool,
        batch_id: str,
        on_progress: Callable[[BatchSummary], None],
    ) -> None:
        self.generator, self.store = generator, store
        self.retry_failed, self.batch_id = retry_failed, batch_id
        self.semaphore = asyncio.Semaphore(concurrency)
        self.stop = stop
        self.stopping = stop.event
        self.summary = BatchSummary()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.on_progress = on_progress
        self.fatal: StoreError | None = None
        _watch_spend(generator, self.summary)

    def _context(self, prepared: PreparedRow, key: str | None = None) -> CallContext:
        return CallContext(key or prepared.key, self.batch_id, prepared.row.number)

    def _record_error(self, prepared: PreparedRow) -> None:
        """Store a row's input error once per batch and row (a rerun does not count it again)."""
        assert prepared.error is not None
        row = {"row": prepared.row.number, "error": prepared.error}
        key = idempotency_key(row, {"batch": self.batch_id})
        provider = self.generator.provider
        record = CallRecord.input_error(
            prepared.error,
            context=self._context(prepared, key),
            provider=provider.name,
            model=provider.model,
            inputs=shown_inputs(prepared.row.values),
        )
        if self.store.latest(key) is not None:
            return
        try:
            self.store.write(record)
        except StoreError as error:
            self._stop_for(error)

    def _stop_for(self, error: StoreError) -> None:
        """The store cannot keep results: stop scheduling (calls in flight end; their results may be
        lost too)."""
        if self.fatal is None:
            self.fatal = error
            events.batch_stopped("the store cannot write", str(error))
        self.stopping.set()

    def _stop_for_quota(self, error: TweetGenError) -> None:
        """A quota no wait clears (a daily one, a spend cap, no credits): stop scheduling at once;
        calls in flight end (their waits end now), rows not attempted stay pending."""
        if self.summary.quota_stop is None:
            self.summary.quota_stop = quota_stop(error, self.generator.provider.model)
            events.batch_stopped(f"quota: {getattr(error, 'quota_kind', None)}", str(error))
        self.stopping.set()

    def _earlier(self, key: str) -> str | None:
        """``done`` or ``failed`` when an earlier run settled this row (a failed one runs again only
        with ``retry_failed``; a row that only waited for an open circuit, or failed on a spent
        daily quota, a spend cap or depleted credits, always runs again); ``None`` otherwise."""
        if self.store.done(key) is not None:
            return "done"
        latest = None if self.retry_failed else self.store.latest(key)
        if (
            latest is not None
            and latest.error_type not in ("InputError", "CircuitOpenError")
            and latest.quota_kind not in FINAL_KINDS
        ):
            return "failed"
        return None

    async def _run_row(self, prepared: PreparedRow) -> bool:
        """Call a row and count its outcome; whether that outcome is in the store."""
        assert prepared.request is not None
        kept = True
        try:
            tweet = await self._call(prepared.request, self._context(prepared))
        except StoreError as error:  # generated (and paid for) but not kept: nothing more is called
            self._stop_for(error)
            self.summary.unsaved += 1
            kept = False
        except TweetGenError as error:
            self._failed(error)
            self.summary.retries += max(0, (error.attempts or 1) - 1)
            if stops_batch(error):
                self._stop_for_quota(error)
        except asyncio.CancelledError:
            self.summary.abandoned += 1
            raise
        except Exception as error:  # a bug or an unforeseen library error fails the row only
            self._failed(error)
            events.row_failed(prepared.row.number, error)
        else:
            self.summary.ok += 1
            self.summary.retries += tweet.attempts - 1
            self.summary.latencies.append(tweet.latency_ms)
        self.on_progress(self.summary)
        return kept

    def _failed(self, error: BaseException) -> None:
        self.summary.failed += 1
        self.summary.reasons[failure_kind(error)] += 1

    async def _call(self, request: Any, context: CallContext) -> Tweet:
        """Generate a row's tweet; while the circuit is open, wait for it (a few times) instead of
        failing."""
        for _ in range(MAX_REQUEUES):
            try:
                return await self.generator.agenerate_request(request, context=context)
            except CircuitOpenError as error:
                await self._pause(max(error.retry_after or 1.0, 0.1))
                if self.stopping.is_set():
                    raise
        return await self.generator.agenerate_request(request, context=context)

    async def _pause(self, seconds: float) -> None:
        """Sleep until ``seconds`` pass or the run is stopping."""
        with contextlib.suppress(asyncio.CancelledError):
            await unless_stopping(self.stop.sleep(seconds), self.stopping)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.semaphore.release()

    async def run(self, rows: Iterable[PreparedRow]) -> BatchSummary:
        try:
            await self._schedule(rows)
        except StoreError as error:  # the store cannot even be read: let calls in flight end
            self._stop_for(error)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.summary.store_error = self.fatal
        return self.summary

    def _settled(self, prepared: PreparedRow) -> bool:
        """Count a row that needs no call (its input error, or settled by an earlier run)."""
        if prepared.error is not None:
            self._record_error(prepared)
            self.summary.failed += 1
            self.summary.reasons["bad input"] += 1
        elif (earlier := self._earlier(prepared.key or "")) == "done":
            self.summary.skipped += 1
        elif earlier == "failed":
            self.summary.still_failed += 1
        else:
            return False
        self.on_progress(self.summary)
        return True

    async def _schedule(self, rows: Iterable[PreparedRow]) -> None:
        for prepared in rows:
            if self.stopping.is_set():
                break
            self.summary.total += 1
            if self._settled(prepared):
                continue
            await self.semaphore.acquire()
            if self.stopping.is_set():  # the signal came while this row waited for a slot
                self.semaphore.release()
                self.summary.total -= 1
                break
            task = asyncio.create_task(self._run_row(prepared))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def interrupt(self) -> None:
        """First signal: stop scheduling, end every wait, let in-flight calls finish; second:
        abandon them."""
        if self.stopping.is_set():
            events.batch_abandoning(len(self.tasks))
            for task in list(self.tasks):
                task.cancel()
        else:
            events.batch_stopping(len(self.tasks), "signal")
        self.stopping.set()
        self.summary.interrupted = True


@contextlib.contextmanager
def _signals(interrupt: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``interrupt`` within the block (where the loop can handle them)."""
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, interrupt)
            handled.append(sig)
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _stoppable(generator: TweetGenerator, stop: BatchStop) -> Iterator[None]:
    """For a generator not built with ``stop``: its waits and its throttled providers' end at once
    when the batch stops, within the block (put back afterwards)."""
    throttled = [p for p in generator.providers if isinstance(p, ThrottledProvider)]
    for provider in throttled:
        provider.stopping = stop.event
    generator.async_sleep = stop.wait
    try:
        yield
    finally:
        generator.async_sleep = stop.sleep
        for provider in throttled:
            provider.stopping = None


async def run_batch(
    rows: Iterable[PreparedRow],
    generator: TweetGenerator,
    store: Store,
    *,
    concurrency: int = 8,
    retry_failed: bool = False,
    batch_id: str = "",
    on_progress: Callable[[BatchSummary], None] = lambda summary: None,
    stop: BatchStop | None = None,
) -> BatchSummary:
    """Run every row; SIGINT/SIGTERM stop scheduling (a second one abandons in-flight calls).

    ``stop``: the :class:`BatchStop` the generator was built with (its ``async_sleep`` is
    ``stop.wait``, its throttled providers have ``stop``); without it, the generator's waits are
    made stoppable for the run and put back afterwards."""
    given = stop is not None
    stop = stop or BatchStop(generator.async_sleep)
    runner = _Runner(
        generator,
        store,
        stop,
        concurrency=concurrency,
        retry_failed=retry_failed,
        batch_id=batch_id,
        on_progress=on_progress,
    )
    started = time.monotonic()
    stoppable = contextlib.nullcontext() if given else _stoppable(generator, stop)
    with _signals(runner.interrupt), stoppable:
        summary = await runner.run(rows)
    summary.elapsed = time.monotonic() - started
    return summary
