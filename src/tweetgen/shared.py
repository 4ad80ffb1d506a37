"""Fleet-wide limits: the rate limit, the 429 pause, the circuit breaker and the retry budget shared
by every process that names the same ``postgresql://`` URL (``TWEETGEN_SHARED``, ``--shared``,
``shared=``).

A :class:`Fleet` is one process's handle on that state (one per URL per process, from
:func:`fleet`). Its promise: **never block generation.** Every round trip is bounded
(:mod:`tweetgen.sharedpg`); when one fails the fleet counts as unavailable, says so once (the
``Shared state unavailable`` event, the ``tweetgen_shared_state_available`` gauge), and every
caller uses its own process's limits at once, without a round trip, while a background probe
reconnects with backoff (0.5 s doubling to 30 s) and says ``Shared state restored`` when it is back.

What is shared, and how (the statements are in :mod:`tweetgen.sharedpg`):

- **Rate limit** (``rpm``, ``tpm``): GCRA, one row per provider/model updated in one statement:
  ``slot = greatest(tat_requests, tat_tokens, pause_until, clock_timestamp())``, each theoretical
  arrival time moves past the slot by its emission interval. Each caller waits locally until its
  slot: one round trip per attempt, the database's clock only, an exact fleet rate.
- **429 pause**: a hint (capped by ``max_retry_after``) moves ``pause_until`` of the same row, so
  every later slot in the fleet starts after it.
- **Circuit breaker** and **retry budget**: :mod:`tweetgen.sharedguards`.
"""

from __future__ import annotations

import atexit
import functools
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "SCHEMES",
    "Fleet",
    "SharedUnavailableError",
    "check_url",
    "close_fleets",
    "fleet",
    "fleets",
    "safe_url",
]

T = TypeVar("T")
SCHEMES = ("postgresql", "postgres")
RECONNECT_FIRST = 0.5
RECONNECT_MOST = 30.0


class SharedUnavailableError(Exception):
    """The shared state cannot be reached now; the caller uses its local limits."""


def check_url(url: str) -> str | None:
    """Why ``url`` cannot name the shared state (``None``: it can)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a bad port raises here
    except ValueError as error:
        return f"it cannot be read ({error})"
    if parts.scheme not in SCHEMES:
        return "only PostgreSQL is supported"
    return None


def safe_url(url: str) -> str:
    """``url`` without its password (and without any query: it may carry one)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "postgresql://(unreadable URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def _fetch(conn: Any, sql: str, params: Any) -> Any:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def _execute(conn: Any, sql: str, params: Any) -> None:
    await conn.execute(sql, params)


class Fleet:
    """One process's handle on the shared state at ``url`` (see the module's docstring)."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        from . import sharedpg

        self._pg = sharedpg
        self.url = url
        self.safe = safe_url(url)
        self._conn = sharedpg.Connection(url)
        self._clock = clock
        self._lock = threading.Lock()
        self._up: bool | None = None  # None: not tried yet (the first call connects)
        self._retry_at = 0.0
        self._backoff = RECONNECT_FIRST
        self._down_since = 0.0
        self._probing = False
        #: how many times this process fell back to local limits
        self.fallbacks = 0

    def __repr__(self) -> str:
        return f"Fleet({self.safe!r}, available={self._up is not False})"

    # --- availability -------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether the shared state answered last time (no probe, no round trip)."""
        return self._up is not False

    def available(self) -> bool:
        """Whether calls should use the shared state now (no round trip: a flag and a clock)."""
        if self._up is not False:
            return True
        if not self._probing and self._clock() >= self._retry_at:
            self._probe()
        return False

    def _failed(self, reason: str) -> None:
        with self._lock:
            was, self._up = self._up, False
            wait = self._backoff * random.uniform(0.5, 1.0)  # jitter, not crypto
            self._retry_at = self._clock() + wait
            self._backoff = min(self._backoff * 2, RECONNECT_MOST)
            if was is not False:
                self._down_since = self._clock()
                self.fallbacks += 1
        if was is not False:
            from . import events

            events.shared_unavailable(self.safe, reason, wait)

    def _succeeded(self) -> None:
        if self._up is True:
            return
        with self._lock:
            was, self._up = self._up, True
            self._backoff = RECONNECT_FIRST
        if was is False:
            from . import events

            events.shared_restored(self.safe, self._clock() - self._down_since)

    def _probe(self) -> None:
        with self._lock:
            if self._probing:
                return
            self._probing = True

        async def ping(conn: Any) -> None:
            await conn.execute("SELECT 1")

        def done(future: Future[None]) -> None:
            self._probing = False
            error = (
                future.exception()
                if not future.cancelled()
                else SharedUnavailableError("cancelled")
            )
            if error is None:
                self._succeeded()
            else:
                self._failed(str(error))

        self._conn.submit(ping).add_done_callback(done)

    # --- round trips --------------------------------------------------------------------------

    def call(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``op`` and wait for it (bounded); :class:`SharedUnavailableError` when it cannot."""
        if not self.available():
            raise SharedUnavailableError("the shared state is unavailable")
        try:
            result = self._conn.call(op)
        except self._pg.SharedUnavailableError as error:
            self._failed(str(error))
            raise SharedUnavailableError(str(error)) from None
        self._succeeded()
        return result

    async def acall(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """The async twin of :meth:`call`: the caller's loop awaits a future, never a socket."""
        if not self.available():
            raise SharedUnavailableError("the shared state is unavailable")
        try:
            result = await self._conn.acall(op)
        except self._pg.SharedUnavailableError as error:
            self._failed(str(error))
            raise SharedUnavailableError(str(error)) from None
        self._succeeded()
        return result

    def send(
        self, op: Callable[[Any], Awaitable[T]], then: Callable[[T], object] | None = None
    ) -> None:
        """Run ``op`` without waiting for it; ``then(result)`` runs on the private loop's thread
        when it succeeds. Dropped while the shared state is unavailable."""
        if not self.available():
            return

        def done(future: Future[T]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                self._failed(str(error))
                return
            self._succeeded()
            if then is not None:
                then(future.result())

        self._conn.submit(op).add_done_callback(done)

    def fetch(self, sql: str, params: Any) -> Callable[[Any], Awaitable[Any]]:
        """The operation that runs ``sql`` and returns its first row."""
        return functools.partial(_fetch, sql=sql, params=params)

    def execute(self, sql: str, params: Any) -> Callable[[Any], Awaitable[None]]:
        """The operation that runs ``sql``."""
        return functools.partial(_execute, sql=sql, params=params)

    # --- the rate limit and the pause ---------------------------------------------------------

    def _acquire_op(self, key: str, step: float, tokens: float) -> Callable[[Any], Awaitable[Any]]:
        return self.fetch(self._pg.ACQUIRE, {"key": key, "step": step, "tokens": tokens})

    def acquire(self, key: str, step: float, tokens: float) -> tuple[float, float]:
        """Take the next slot of ``key``'s limit: ``step`` seconds per request, ``tokens`` seconds
        of token budget. Returns the seconds to wait for the slot and the fleet's pause left."""
        wait, paused = self.call(self._acquire_op(key, step, tokens))
        return float(wait), float(paused)

    async def aacquire(self, key: str, step: float, tokens: float) -> tuple[float, float]:
        """The async twin of :meth:`acquire`."""
        wait, paused = await self.acall(self._acquire_op(key, step, tokens))
        return float(wait), float(paused)

    def correct(self, key: str, tokens: float) -> None:
        """Give back ``tokens`` seconds of token budget (negative: take more), without waiting."""
        self.send(self.execute(self._pg.CORRECT, {"key": key, "tokens": tokens}))

    def pause(self, key: str, seconds: float) -> None:
        """Pause every process's slots of ``key`` for ``seconds`` (a 429's hint), without
        waiting."""
        self.send(self.fetch(self._pg.PAUSE, {"key": key, "seconds": seconds}))

    def close(self) -> None:
        """Close the connection (the next call reconnects)."""
        self._conn.close()


_fleets: dict[tuple[int, str], Fleet] = {}
_fleets_lock = threading.Lock()


def fleet(url: str) -> Fleet:
    """This process's :class:`Fleet` for ``url`` (made on first use; psycopg imported then)."""
    problem = check_url(url)
    if problem is not None:
        raise ConfigurationError(f"the shared state URL must be a postgresql:// URL: {problem}")
    key = (os.getpid(), url)
    with _fleets_lock:
        found = _fleets.get(key)
        if found is None:
            if not _fleets:
                atexit.register(close_fleets)
            found = _fleets[key] = Fleet(url)
        return found


def close_fleets() -> None:
    """Close this process's fleets (run at exit)."""
    with _fleets_lock:
        handles = [f for (pid, _), f in _fleets.items() if pid == os.getpid()]
        _fleets.clear()
    for handle in handles:
        handle.close()


def fleets() -> list[Fleet]:
    """This process's fleets (for the metrics)."""
    with _fleets_lock:
        return [f for (pid, _), f in _fleets.items() if pid == os.getpid()]
