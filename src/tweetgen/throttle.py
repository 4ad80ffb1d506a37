"""What a batch puts around its calls: a :class:`BatchStop` that ends every wait at once when the
batch stops, and the :class:`ThrottledProvider` that holds every attempt to a shared rate limit and
429 pause.

Both are made before the generator and given to it at construction (the generator's ``async_sleep``
is ``stop.wait``, its providers are throttled): nothing is swapped into a generator afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .backoff import DEFAULT_MAX_RETRY_AFTER
from .errors import RateLimitError
from .providers.base import GenerationRequest, GenerationResult, Provider
from .retry import call_deadline
from .shared import Fleet, SharedUnavailableError

__all__ = ["BatchStop", "ThrottledProvider", "estimate_tokens", "unless_stopping"]


def estimate_tokens(request: GenerationRequest) -> int:
    """The tokens a request is counted for before it is sent: its text's characters / 4 (rounded
    up) plus the output cap of every candidate; the answer's usage corrects it."""
    text = len(request.prompt) + len(request.system_instruction or "")
    return -(-text // 4) + request.max_output_tokens * request.candidate_count


async def unless_stopping(work: Awaitable[Any], stopping: asyncio.Event | None) -> Any:
    """Await ``work`` unless the batch starts stopping first; then end the wait at once with
    ``CancelledError`` (the row is abandoned, not failed: a rerun calls it again). Without a
    ``stopping`` event, just await it."""
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


class BatchStop:
    """The stop signal of one batch run and the sleep that honours it (the generator's waits between
    attempts, the rate limiter's and the 429 pause end at once when the batch stops)."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.sleep = sleep
        self._event: asyncio.Event | None = None

    @property
    def event(self) -> asyncio.Event:
        """The event set when the batch stops (made in the running loop on first use)."""
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, unless the batch stops first (then ``CancelledError`` at once)."""
        await unless_stopping(self.sleep(seconds), self.event)


def _deadline_left() -> float | None:
    """Seconds the retried call in progress has left by its deadline (``None``: no deadline)."""
    until = call_deadline()
    return None if until is None else until - time.monotonic()


class ThrottledProvider:
    """Wraps a provider: every attempt waits for the rate limits and for a batch-wide 429 pause.

    ``rpm`` limits requests per minute, ``tpm`` tokens per minute: a request counts
    :func:`estimate_tokens` before it is sent (the prompt's characters / 4 plus the output cap, as
    OpenAI counts ``max_tokens`` against its limit), corrected by the usage the answer reports. With
    ``shared`` (a ``postgresql://`` URL or a :class:`~tweetgen.shared.Fleet`) both limits and the
    pause are the fleet's (:mod:`tweetgen.shared`): one round trip per attempt, sync and async;
    while the fleet is unavailable, this process's own limits (aiolimiter) apply.

    A 429's hint pauses every task, but only hints the retry policy would honour (``max_pause``, the
    policy's ``max_retry_after``): one absurd ``Retry-After`` must not freeze a batch. A pause that
    would outlast the call's deadline ends the attempt at once with :class:`RateLimitError`, and
    every wait here ends at once when the batch is stopping (``stop``, or ``stopping`` set by
    :func:`tweetgen.batch.run_batch`). Without ``shared``, sync calls are not throttled.
    """

    def __init__(
        self,
        inner: Provider,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        shared: str | Fleet | None = None,
        max_pause: float = DEFAULT_MAX_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stop: BatchStop | None = None,
    ) -> None:
        from aiolimiter import AsyncLimiter

        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.key = f"{inner.name}/{inner.model}"
        self.rpm, self.tpm = rpm or None, tpm or None
        # no burst: one request per emission interval, as the fleet's GCRA (a sliding-window
        # quota refuses a burst that a per-minute average would allow)
        self._limiter = AsyncLimiter(1, 60.0 / rpm) if rpm else None
        self._token_limiter = AsyncLimiter(tpm, 60) if tpm else None
        self._step = 60.0 / rpm if rpm else 0.0
        self._token_step = 60.0 / tpm if tpm else 0.0
        if isinstance(shared, str) and shared:
            from .shared import fleet

            shared = fleet(shared)
        self.fleet: Fleet | None = shared or None
        self._clock, self._sleep = clock, sleep
        self.max_pause = max_pause
        self.pause_until = 0.0
        self.pauses = 0
        self.stop = stop
        self.stopping: asyncio.Event | None = None

    def _stopping(self) -> asyncio.Event | None:
        return self.stop.event if self.stop is not None else self.stopping

    def _pause_left(self, wait: float) -> float:
        """``wait`` (a pause), unless it outlasts the call's deadline: then RateLimitError."""
        left = _deadline_left()
        if left is not None and wait > left:
            raise RateLimitError(
                f"the batch is paused for {wait:.0f}s after a rate limit, longer than this "
                "call's deadline allows",
                status_code=429,
                retry_after=wait,
            )
        return wait

    def _slot(self, granted: tuple[float, float]) -> float:
        wait, paused = granted
        self._pause_left(paused)
        return wait

    def _paused_by(self, error: RateLimitError) -> None:
        if error.retry_after and 0 < error.retry_after <= self.max_pause:
            self.pause_until = max(self.pause_until, self._clock() + error.retry_after)
            self.pauses += 1
            if self.fleet is not None:
                self.fleet.pause(self.key, error.retry_after)

    def _used(self, estimate: int, result: GenerationResult, shared: bool) -> GenerationResult:
        used = result.usage.total_tokens or result.usage.input_tokens + result.usage.output_tokens
        if shared and self.fleet is not None and self.tpm and used:
            self.fleet.correct(self.key, (estimate - used) * self._token_step)
        return result

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """A sync attempt: throttled by the fleet when shared (else not throttled)."""
        if self.fleet is None:
            return self.inner.generate(request)
        while (wait := self.pause_until - self._clock()) > 0:
            time.sleep(self._pause_left(wait))
        estimate = estimate_tokens(request) if self.tpm else 0
        shared = self.fleet.available()
        if shared:
            try:
                granted = self.fleet.acquire(self.key, self._step, estimate * self._token_step)
            except SharedUnavailableError:
                shared = False
            else:
                if (wait := self._slot(granted)) > 0:
                    time.sleep(wait)
        try:
            result = self.inner.generate(request)
        except RateLimitError as error:
            self._paused_by(error)
            raise
        return self._used(estimate, result, shared)

    async def _local(self, estimate: int) -> None:
        if self._limiter is not None:
            await unless_stopping(self._limiter.acquire(), self._stopping())
        if self._token_limiter is not None and self.tpm:
            amount = min(float(estimate), self.tpm)
            await unless_stopping(self._token_limiter.acquire(amount), self._stopping())

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Wait for the pause and the limits (the fleet's, or this process's), then make the
        attempt; a 429 hint pauses everyone."""
        while (wait := self.pause_until - self._clock()) > 0:
            await unless_stopping(self._sleep(self._pause_left(wait)), self._stopping())
        estimate = estimate_tokens(request) if self.tpm else 0
        shared = self.fleet is not None and self.fleet.available()
        if shared and self.fleet is not None:
            try:
                granted = await self.fleet.aacquire(
                    self.key, self._step, estimate * self._token_step
                )
            except SharedUnavailableError:
                shared = False
            else:
                if (wait := self._slot(granted)) > 0:
                    await unless_stopping(self._sleep(wait), self._stopping())
        if not shared:
            await self._local(estimate)
        try:
            result = await self.inner.agenerate(request)
        except RateLimitError as error:
            self._paused_by(error)
            raise
        return self._used(estimate, result, shared)

    def close(self) -> None:
        """Close the wrapped provider."""
        self.inner.close()

    async def aclose(self) -> None:
        """Close the wrapped provider's async client."""
        closer = getattr(self.inner, "aclose", None)
        if closer is not None:
            await closer()


def pooled_transport(concurrency: int) -> Any:
    """The async HTTP transport of one provider of a batch: its connections fit ``concurrency``
    calls in flight, in several small pools (:class:`tweetgen.pool.PooledTransport`)."""
    from .pool import PooledTransport

    return PooledTransport(concurrency)
