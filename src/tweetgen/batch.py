"""Batch generation: bounded concurrency, a shared rate limit and 429 pause, a store to resume from.

Every row ends in the store (its call, or its input error), keyed by an idempotency key over the row's
inputs and the settings that change the output. A rerun skips rows whose key already succeeded (and,
unless ``retry_failed``, rows that already failed), and the output file is rewritten atomically from the
store in input order: one line per row, none twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import re
import signal
import sqlite3
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backoff import DEFAULT_MAX_RETRY_AFTER
from .batchio import FIELDS, Row, read_rows, write_records
from .errors import (
    CircuitOpenError,
    InputError,
    InvalidResponseError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    TweetGenError,
    TweetValidationError,
)
from .generator import TweetGenerator
from .logs import get_logger
from .providers.base import GenerationRequest, GenerationResult, Provider
from .request import TweetRequest, brief
from .results import Tweet
from .retry import call_deadline
from .stats import percentile
from .store import CallRow, Store, StoreError, idempotency_key
from .trace import CallTrace, call_tags

_log = get_logger()

__all__ = [
    "BatchSummary",
    "PreparedRow",
    "ThrottledProvider",
    "output_records",
    "prepare",
    "run_batch",
]

_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
#: The input columns that shape a request (README: other columns are ignored; ``id`` names the row).
_COLUMNS = frozenset(FIELDS) - {"id"}
_TEXT_FIELDS = ("topic", "tone", "audience", "call_to_action", "language", "link")
_INT_FIELDS = ("max_words", "seed")
#: A whole number as CSV writes it: digits, and a ``.0`` as spreadsheets and pandas add (18 digits fit 64 bits).
_WHOLE = re.compile(r"\s*[+-]?\d{1,18}(?:\.0*)?\s*")
#: Longest topic or tone an error record repeats (the output and the store keep them to find the row by).
MAX_SHOWN_CHARS = 1_000
#: how many times a row waits for an open circuit to half-open before it counts as failed
MAX_REQUEUES = 3


async def _unless_stopping(work: Awaitable[Any], stopping: asyncio.Event | None) -> Any:
    """Await ``work`` unless the batch starts stopping first; then end the wait at once with ``CancelledError``
    (the row is abandoned, not failed: a rerun calls it again). Without a ``stopping`` event, just await it."""
    if stopping is None:
        return await work
    if stopping.is_set():
        with contextlib.suppress(Exception):
            work.close()  # type: ignore[attr-defined]  # a coroutine never awaited
        raise asyncio.CancelledError
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise asyncio.CancelledError
    return task.result()


def _deadline_left() -> float | None:
    """Seconds the retried call in progress has left by its deadline (``None``: no deadline)."""
    until = call_deadline()
    return None if until is None else until - time.monotonic()


class ThrottledProvider:
    """Wraps a provider: every attempt waits for the rate limiter and for a batch-wide 429 pause.

    A 429's hint pauses every task, but only hints the retry policy would honour (``max_pause``, the policy's
    ``max_retry_after``): one absurd ``Retry-After`` must not freeze a batch. A pause that would outlast the
    call's deadline ends the attempt at once with :class:`RateLimitError`, and every wait here ends at once when
    the batch is stopping (``stopping``, set by :func:`run_batch`).
    """

    def __init__(
        self,
        inner: Provider,
        *,
        rpm: float | None = None,
        max_pause: float = DEFAULT_MAX_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        from aiolimiter import AsyncLimiter

        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self._limiter = AsyncLimiter(rpm, 60) if rpm else None
        self._clock, self._sleep = clock, sleep
        self.max_pause = max_pause
        self.pause_until = 0.0
        self.pauses = 0
        self.stopping: asyncio.Event | None = None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Sync calls are not throttled (batch runs async)."""
        return self.inner.generate(request)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Wait for the shared pause and the limiter, then make the attempt; a 429 hint pauses everyone."""
        while (wait := self.pause_until - self._clock()) > 0:
            left = _deadline_left()
            if left is not None and wait > left:
                raise RateLimitError(
                    f"the batch is paused for {wait:.0f}s after a rate limit, longer than this call's deadline allows",
                    status_code=429,
                    retry_after=wait,
                )
            await _unless_stopping(self._sleep(wait), self.stopping)
        if self._limiter is not None:
            await _unless_stopping(self._limiter.acquire(), self.stopping)
        try:
            return await self.inner.agenerate(request)
        except RateLimitError as error:
            if error.retry_after and 0 < error.retry_after <= self.max_pause:
                self.pause_until = max(self.pause_until, self._clock() + error.retry_after)
                self.pauses += 1
            raise

    def close(self) -> None:
        """Close the wrapped provider."""
        self.inner.close()

    async def aclose(self) -> None:
        """Close the wrapped provider's async client."""
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()


@dataclass(frozen=True)
class PreparedRow:
    """A row ready to run (``request`` and ``key``) or its input error."""

    row: Row
    key: str | None = None
    request: TweetRequest | None = None
    error: str | None = None


def _whole(name: str, value: object) -> int:
    """A whole number from JSON (``12``, or ``12.0``) or CSV text (``"12"``); anything else is the row's error."""
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value.strip().split(".")[0])
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(f"{name} must be a whole number, got {brief(value)}")


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """The request options of a row: its known columns, types checked, CSV text read as numbers and yes/no."""
    options = {k: v for k, v in values.items() if k in _COLUMNS and v is not None}
    topic = options.get("topic")
    if topic is None or (isinstance(topic, str) and not topic.strip()):
        raise InputError("topic is empty")
    for name in _TEXT_FIELDS:
        if name in options and not isinstance(options[name], str):
            raise InputError(f"{name} must be a text, got {brief(options[name])}")
    for name in _INT_FIELDS:
        if name in options:
            options[name] = _whole(name, options[name])
    emoji = options.get("emoji")
    if isinstance(emoji, str):
        if emoji.strip().lower() not in _BOOL:
            raise InputError(f"emoji must be yes or no (true/false, 1/0), got {brief(emoji)}")
        options["emoji"] = _BOOL[emoji.strip().lower()]
    elif emoji is not None and not isinstance(emoji, bool):
        raise InputError(f"emoji must be yes or no, got {brief(emoji)}")
    return options


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The values an error record repeats (id, topic, tone, max_words), made safe to write to the output and the
    store: texts cut to ``MAX_SHOWN_CHARS``, numbers within 64 bits (18 digits), anything else as short text."""
    shown: dict[str, Any] = {}
    for name in ("id", "topic", "tone", "max_words"):
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
            shown[name] = value
        elif isinstance(value, str) and (len(value) <= 18 or name != "max_words"):
            shown[name] = (
                value if len(value) <= MAX_SHOWN_CHARS else value[:MAX_SHOWN_CHARS] + "..."
            )
        else:
            shown[name] = brief(value)
    return shown


def _failed(row: Row, message: str) -> PreparedRow:
    return PreparedRow(Row(row.number, _shown(row.values), message), error=message)


def prepare(
    row: Row, settings: dict[str, Any], defaults: dict[str, Any] | None = None
) -> PreparedRow:
    """Validate a row into a request and its idempotency key, or say why it cannot run.

    Whatever goes wrong is that row's error, and the batch goes on: input problems have their own sentences;
    anything else (a bug, a library's surprise) is logged with its traceback and named by its type.
    """
    if row.error:
        return _failed(row, row.error)
    try:
        request = TweetRequest(**{**(defaults or {}), **_coerce(row.values)})
        inputs = {k: v for k, v in vars(request).items() if k != "extra"}
        return PreparedRow(row, key=idempotency_key(inputs, settings), request=request)
    except InputError as error:
        return _failed(row, str(error))
    except Exception as error:  # the last line of defence: this row fails, not the batch
        _log.error(
            "Row cannot be prepared", row=row.number, error_type=type(error).__name__, exc_info=True
        )
        return _failed(
            row, f"row cannot be prepared ({type(error).__name__}); the log file has the details"
        )


def _duplicates(rows: Iterator[PreparedRow]) -> Iterator[PreparedRow]:
    """Mark a row whose key an earlier row of the same input already has.

    The keys seen so far live in a private temporary SQLite database (on disk, a bounded page cache),
    so memory stays flat however long the input is.
    """
    seen = sqlite3.connect("")
    try:
        seen.execute("CREATE TABLE seen (key BLOB PRIMARY KEY, row INTEGER) WITHOUT ROWID")
        for prepared in rows:
            if prepared.key is not None:
                digest = hashlib.blake2b(prepared.key.encode(), digest_size=16).digest()
                seen.execute(
                    "INSERT OR IGNORE INTO seen VALUES (?, ?)", (digest, prepared.row.number)
                )
                (earlier,) = seen.execute(
                    "SELECT row FROM seen WHERE key = ?", (digest,)
                ).fetchone()
                if earlier != prepared.row.number:
                    prepared = PreparedRow(prepared.row, error=f"duplicate of row {earlier}")
            yield prepared
    finally:
        seen.close()


def prepared_rows(
    path: Path,
    input_format: str | None,
    settings: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> Iterator[PreparedRow]:
    """Stream the input as prepared rows (errors and duplicates marked)."""
    return _duplicates(prepare(row, settings, defaults) for row in read_rows(path, input_format))


@dataclass
class BatchSummary:
    """Counts and timings of one run."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    abandoned: int = 0
    unsaved: int = 0
    #: rows whose last call, in an earlier run, failed (not called again without ``retry_failed``)
    still_failed: int = 0
    retries: int = 0
    #: why this run's rows failed, counted by kind (see :func:`failure_kind`)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))  # 8 bytes a row
    elapsed: float = 0.0
    interrupted: bool = False
    #: why the run stopped early because results could not be stored (the CLI then exits 1 with it)
    store_error: StoreError | None = None

    def percentile(self, q: float) -> float | None:
        """Latency percentile of this run's successful calls, in ms."""
        return percentile(self.latencies, q) if self.latencies else None

    def lines(self) -> list[str]:
        """A human summary."""
        p50, p95 = self.percentile(50), self.percentile(95)
        timing = (
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms"
            if p50 is not None and p95 is not None
            else "no calls"
        )
        earlier = (
            f", {self.still_failed} still failed from an earlier run" if self.still_failed else ""
        )
        lines = [
            f"{self.total} rows: {self.ok} ok, {self.failed} failed, {self.skipped} already done{earlier}; "
            f"{self.retries} retries; {timing}; {self.elapsed:.1f} s"
        ]
        if self.reasons:
            lines.append(
                "failed: " + ", ".join(f"{n} {kind}" for kind, n in self.reasons.most_common())
            )
        if self.abandoned:
            lines.append(f"{self.abandoned} calls in flight were abandoned")
        if self.unsaved:
            lines.append(
                f"{self.unsaved} rows were generated but could not be stored; they run again next time"
            )
        if self.interrupted:
            lines.append(
                "interrupted: finished rows are saved; run the same command again to resume"
            )
        return lines


def failure_kind(error: BaseException) -> str:
    """Why a call failed, in the words a summary counts: ``HTTP 503``, ``timeout``, ``tweet rules``, ``bad input``,
    and what stopped the retries when it was not the error itself (``retry budget (HTTP 503)``)."""
    if isinstance(error, InputError):
        return "bad input"
    if isinstance(error, TweetValidationError):
        return "tweet rules"
    if isinstance(error, CircuitOpenError):
        return "circuit breaker"
    status = getattr(error, "status_code", None)
    if status is not None:
        kind = f"HTTP {status}"
    elif isinstance(error, RequestTimeoutError):
        kind = "timeout"
    elif isinstance(error, NetworkError):
        kind = "network error"
    elif isinstance(error, InvalidResponseError):
        kind = "invalid answer"
    else:
        kind = type(error).__name__
    stopped = getattr(error, "stopped_by", None)
    return (
        f"{stopped} ({kind})"
        if stopped in ("retry budget", "circuit breaker", "deadline")
        else kind
    )


def _error_record(row: Row, message: str) -> dict[str, Any]:
    return {
        "id": row.id,
        **_inputs(row.values),
        "text": None,
        "status": "failed",
        "attempts": 0,
        "latency_ms": None,
        "error": message,
        "provider": None,
        "model": None,
    }


def _inputs(values: dict[str, Any]) -> dict[str, Any]:
    """The row's own topic, tone and max_words (a number when it reads as one), as given."""
    max_words = values.get("max_words")
    with contextlib.suppress(TypeError, ValueError):
        max_words = int(max_words) if max_words is not None else None
    return {"topic": values.get("topic"), "tone": values.get("tone"), "max_words": max_words}


def _call_record(row: Row, request: TweetRequest, call: CallRow) -> dict[str, Any]:
    error = f"{call.error_type}: {call.error_message}" if call.error_type else None
    return {
        "id": row.id,
        "topic": request.topic,
        "tone": request.tone,
        "max_words": request.max_words,
        "text": call.text,
        "status": call.status,
        "attempts": call.attempts,
        "latency_ms": call.latency_ms,
        "error": error,
        "provider": call.provider,
        "model": call.model,
    }


def output_records(rows: Iterator[PreparedRow], store: Store) -> Iterator[dict[str, Any]]:
    """One record per row that has an outcome, in input order (rows never run are left out)."""
    for prepared in rows:
        if prepared.error is not None:
            yield _error_record(prepared.row, prepared.error)
            continue
        assert prepared.key is not None
        assert prepared.request is not None
        call = store.done(prepared.key) or store.latest(prepared.key)
        if call is not None:
            yield _call_record(prepared.row, prepared.request, call)


class _Runner:
    """One batch run: schedules rows under a semaphore, counts outcomes, stops cleanly on a signal."""

    def __init__(
        self,
        generator: TweetGenerator,
        store: Store,
        *,
        concurrency: int,
        retry_failed: bool,
        batch_id: str,
        on_progress: Callable[[BatchSummary], None],
    ) -> None:
        self.generator, self.store = generator, store
        self.retry_failed, self.batch_id = retry_failed, batch_id
        self.semaphore = asyncio.Semaphore(concurrency)
        self.sleep = generator.async_sleep
        self.summary = BatchSummary()
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_progress = on_progress
        self.fatal: StoreError | None = None

    def _record_error(self, prepared: PreparedRow) -> None:
        """Store a row's input error once per batch and row (a rerun does not count it again)."""
        key = idempotency_key(
            {"row": prepared.row.number, "error": prepared.error}, {"batch": self.batch_id}
        )
        if self.store.latest(key) is not None:
            return
        provider = self.generator.provider
        trace = CallTrace(request_id="input-error", provider=provider.name, model=provider.model)
        trace.inputs = _inputs(prepared.row.values)
        trace.status, trace.error_type, trace.error_message = "failed", "InputError", prepared.error
        try:
            self.store.record(
                trace, idempotency_key=key, batch_id=self.batch_id, row_number=prepared.row.number
            )
        except StoreError as error:
            self._stop_for(error)

    def _stop_for(self, error: StoreError) -> None:
        """The store cannot keep results: stop scheduling (calls in flight end; their results may be lost too)."""
        if self.fatal is None:
            self.fatal = error
            _log.error("Batch stopped", reason="the store cannot write", exception=str(error))
        self.stopping.set()

    def _earlier(self, key: str) -> str | None:
        """``done`` or ``failed`` when an earlier run settled this row (a failed one runs again only with
        ``retry_failed``; a row that only waited for an open circuit always runs again); ``None`` otherwise."""
        if self.store.done(key) is not None:
            return "done"
        latest = None if self.retry_failed else self.store.latest(key)
        if latest is not None and latest.error_type not in ("InputError", "CircuitOpenError"):
            return "failed"
        return None

    async def _run_row(self, prepared: PreparedRow) -> None:
        assert prepared.request is not None
        options = {
            k: v
            for k, v in vars(prepared.request).items()
            if k not in ("topic", "tone", "max_words", "variants", "thread", "extra")
        }
        tags = {
            "idempotency_key": prepared.key,
            "batch_id": self.batch_id,
            "row_number": prepared.row.number,
        }
        try:
            with call_tags(**tags):
                tweet = await self._call(prepared.request, options)
        except (
            StoreError
        ) as error:  # generated (and paid for) but not kept: not ok, and nothing more is called
            self._stop_for(error)
            self.summary.unsaved += 1
        except TweetGenError as error:
            self.summary.failed += 1
            self.summary.reasons[failure_kind(error)] += 1
            self.summary.retries += max(0, (error.attempts or 1) - 1)
        except asyncio.CancelledError:
            self.summary.abandoned += 1
            raise
        except (
            Exception
        ) as error:  # a bug or an unforeseen library error fails the row, not the batch
            self.summary.failed += 1
            self.summary.reasons[failure_kind(error)] += 1
            _log.error(
                "Row failed unexpectedly",
                row=prepared.row.number,
                error_type=type(error).__name__,
                exc_info=True,
            )
        else:
            self.summary.ok += 1
            self.summary.retries += tweet.attempts - 1
            self.summary.latencies.append(tweet.latency_ms)
        self.on_progress(self.summary)

    async def _call(self, request: TweetRequest, options: dict[str, Any]) -> Tweet:
        """Generate a row's tweet; while the circuit is open, wait for it (a few times) instead of failing."""
        for _ in range(MAX_REQUEUES):
            try:
                return await self.generator.agenerate(
                    request.topic, request.tone, request.max_words, **options
                )
            except CircuitOpenError as error:
                await self._pause(max(error.retry_after or 1.0, 0.1))
                if self.stopping.is_set():
                    raise
        return await self.generator.agenerate(
            request.topic, request.tone, request.max_words, **options
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep (with the generator's injectable sleep) until ``seconds`` pass or the run is stopping."""
        with contextlib.suppress(asyncio.CancelledError):
            await _unless_stopping(self.sleep(seconds), self.stopping)

    async def wait(self, seconds: float) -> None:
        """The generator's waits between attempts during the run: they end at once when the batch stops."""
        await _unless_stopping(self.sleep(seconds), self.stopping)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.semaphore.release()

    async def run(self, rows: Iterator[PreparedRow]) -> BatchSummary:
        try:
            await self._schedule(rows)
        except (
            StoreError
        ) as error:  # the store cannot even be read: stop calling, let calls in flight end
            self._stop_for(error)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.summary.store_error = self.fatal
        return self.summary

    async def _schedule(self, rows: Iterator[PreparedRow]) -> None:
        for prepared in rows:
            if self.stopping.is_set():
                break
            self.summary.total += 1
            earlier = (
                self._earlier(prepared.key)
                if prepared.error is None and prepared.key is not None
                else None
            )
            if prepared.error is not None:
                self._record_error(prepared)
                self.summary.failed += 1
                self.summary.reasons["bad input"] += 1
                self.on_progress(self.summary)
            elif earlier == "done":
                self.summary.skipped += 1
                self.on_progress(self.summary)
            elif earlier == "failed":
                self.summary.still_failed += 1
                self.on_progress(self.summary)
            else:
                await self.semaphore.acquire()
                if self.stopping.is_set():  # the signal came while this row waited for a slot
                    self.semaphore.release()
                    self.summary.total -= 1
                    break
                task = asyncio.create_task(self._run_row(prepared))
                self.tasks.add(task)
                task.add_done_callback(self._done)

    def interrupt(self) -> None:
        """First signal: stop scheduling, end every wait, let in-flight calls finish; second: abandon them."""
        if self.stopping.is_set():
            _log.warning("Batch abandoning calls", in_flight=len(self.tasks))
            for task in list(self.tasks):
                task.cancel()
        else:
            _log.warning("Batch stopping", in_flight=len(self.tasks), reason="signal")
        self.stopping.set()
        self.summary.interrupted = True


async def run_batch(
    rows: Iterator[PreparedRow],
    generator: TweetGenerator,
    store: Store,
    *,
    concurrency: int = 8,
    retry_failed: bool = False,
    batch_id: str = "",
    on_progress: Callable[[BatchSummary], None] = lambda summary: None,
) -> BatchSummary:
    """Run every row; SIGINT/SIGTERM stop scheduling (a second one abandons in-flight calls)."""
    runner = _Runner(
        generator,
        store,
        concurrency=concurrency,
        retry_failed=retry_failed,
        batch_id=batch_id,
        on_progress=on_progress,
    )
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, runner.interrupt)
            handled.append(sig)
    throttled = [p for p in generator.providers if isinstance(p, ThrottledProvider)]
    for provider in throttled:
        provider.stopping = runner.stopping
    generator.async_sleep = (
        runner.wait
    )  # backoff waits end at once on a signal, like every other wait
    try:
        summary = await runner.run(rows)
    finally:
        generator.async_sleep = runner.sleep
        for provider in throttled:
            provider.stopping = None
        for sig in handled:
            loop.remove_signal_handler(sig)
    summary.elapsed = time.monotonic() - started
    return summary


def write_output(path: Path, fmt: str, rows: Iterator[PreparedRow], store: Store) -> int:
    """Rewrite the output from the store (atomic); returns the number of records."""
    return write_records(path, output_records(rows, store), fmt=fmt)
