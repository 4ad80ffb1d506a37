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

__all__ = ["BatchStop", "ThrottledProvider", "unless_stopping"]


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
    """Wraps a provider: every attempt waits for the rate limiter and for a batch-wide 429 pause.

    A 429's hint pauses every task, but only hints the retry policy would honour (``max_pause``, the
    policy's ``max_retry_after``): one absurd ``Retry-After`` must not freeze a batch. A pause that
    would outlast the call's deadline ends the attempt at once with :class:`RateLimitError`, and
    every wait here ends at once when the batch is stopping (``stop``, or ``stopping`` set by
    :func:`tweetgen.batch.run_batch`).
    """

    def __init__(
        self,
        inner: Provider,
        *,
        rpm: float | None = None,
        max_pause: float = DEFAULT_MAX_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stop: BatchStop | None = None,
    ) -> None:
        from aiolimiter import AsyncLimiter

        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self._limiter = AsyncLimiter(rpm, 60) if rpm else None
        self._clock, self._sleep = clock, sleep
        self.max_pause = max_pause
        self.pause_until = 0.0
        self.pauses = 0
        self.stop = stop
        self.stopping: asyncio.Event | None = None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Sync calls are not throttled (batch runs async)."""
        return self.inner.generate(request)

    def _stopping(self) -> asyncio.Event | None:
        return self.stop.event if self.stop is not None else self.stopping

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Wait for the shared pause and the limiter, then make the attempt; a 429 hint pauses
        everyone."""
        while (wait := self.pause_until - self._clock()) > 0:
            left = _deadline_left()
            if left is not None and wait > left:
                raise RateLimitError(
                    f"the batch is paused for {wait:.0f}s after a rate limit, longer than this "
                    "call's deadline allows",
                    status_code=429,
                    retry_after=wait,
                )
            await unless_stopping(self._sleep(wait), self._stopping())
        if self._limiter is not None:
            await unless_stopping(self._limiter.acquire(), self._stopping())
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


def pooled_transport(concurrency: int) -> Any:
    """The async HTTP transport of one provider of a batch: its connections fit ``concurrency``
    calls in flight, in several small pools (:class:`tweetgen.pool.PooledTransport`)."""
    from .pool import PooledTransport

    return PooledTransport(concurrency)
