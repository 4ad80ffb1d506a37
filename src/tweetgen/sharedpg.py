"""The PostgreSQL side of the fleet-wide limits (:mod:`tweetgen.shared`): tables, statements, and
one connection per process driven by its own event loop thread.

Every round trip is bounded on the client: an operation that does not finish within
:data:`ROUND_TRIP_BOUND` (connecting: :data:`CONNECT_BOUND`) raises :class:`SharedUnavailableError`,
its connection is dropped, and the caller falls back to its local limits. The server-side
``statement_timeout`` bounds a statement stuck on a lock; the client-side bound also covers a server
that hangs or a network that drops packets. The connection lives in a private event loop thread, so
sync callers (``generate_tweet``) and async callers (a batch, on any event loop) share it, and an
async caller only ever awaits a future: the caller's loop is never blocked by a round trip.

The state is computed with the database's clock (``clock_timestamp()``) and handed back as durations
(seconds to wait, seconds left open), so no two machines' clocks are ever compared. psycopg is
imported only here, only when a ``postgresql://`` URL is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .shared import safe_url

__all__ = ["CONNECT_BOUND", "ROUND_TRIP_BOUND", "Connection", "SharedUnavailableError"]

T = TypeVar("T")
#: the longest one round trip may take before the shared state counts as unavailable (seconds)
ROUND_TRIP_BOUND = 1.0
#: the longest connecting may take (seconds; libpq's connect_timeout is whole seconds, at least 2)
CONNECT_BOUND = 2.0
INSTALL_HINT = "pip install 'tweetgen[postgres]'"

SCHEMA = """
CREATE TABLE IF NOT EXISTS tweetgen_shared_limit (
    key text PRIMARY KEY,
    slot timestamptz NOT NULL DEFAULT '-infinity',
    tat_requests timestamptz NOT NULL DEFAULT '-infinity',
    tat_tokens timestamptz NOT NULL DEFAULT '-infinity',
    pause_until timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE TABLE IF NOT EXISTS tweetgen_shared_breaker (
    key text PRIMARY KEY,
    state text NOT NULL DEFAULT 'closed',
    consecutive integer NOT NULL DEFAULT 0,
    open_until timestamptz NOT NULL DEFAULT '-infinity',
    trials integer NOT NULL DEFAULT 0,
    trial_successes integer NOT NULL DEFAULT 0,
    opened integer NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS tweetgen_shared_budget (
    key text NOT NULL,
    bucket bigint NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    retries bigint NOT NULL DEFAULT 0,
    attempts bigint NOT NULL DEFAULT 0,
    accepts bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key, bucket)
);
CREATE OR REPLACE FUNCTION tweetgen_shared_budget_step(
    p_key text, p_width float8, p_requests bigint, p_attempts bigint, p_accepts bigint,
    p_spend boolean, p_ratio float8, p_reserve bigint, p_k float8,
    OUT o_spent boolean, OUT o_requests bigint, OUT o_retries bigint, OUT o_attempts bigint,
    OUT o_accepts bigint) LANGUAGE plpgsql AS $$
DECLARE b bigint := floor(extract(epoch FROM clock_timestamp()) / p_width);
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('tweetgen_shared_budget:' || p_key, 0));
    DELETE FROM tweetgen_shared_budget s WHERE s.key = p_key AND s.bucket <= b - 10;
    INSERT INTO tweetgen_shared_budget AS s (key, bucket, requests, attempts, accepts)
    VALUES (p_key, b, p_requests, p_attempts, p_accepts)
    ON CONFLICT (key, bucket) DO UPDATE SET requests = s.requests + p_requests,
        attempts = s.attempts + p_attempts, accepts = s.accepts + p_accepts;
    SELECT sum(s.requests), sum(s.retries), sum(s.attempts), sum(s.accepts)
    INTO o_requests, o_retries, o_attempts, o_accepts
    FROM tweetgen_shared_budget s WHERE s.key = p_key AND s.bucket > b - 10;
    o_spent := p_spend AND ((p_k > 0 AND o_accepts > 0 AND o_accepts * p_k >= o_attempts)
        OR o_retries < p_reserve + p_ratio * o_requests);
    IF o_spent THEN
        UPDATE tweetgen_shared_budget s SET retries = s.retries + 1
        WHERE s.key = p_key AND s.bucket = b;
        o_retries := o_retries + 1;
    END IF;
END $$;
CREATE OR REPLACE FUNCTION tweetgen_shared_breaker_step(
    p_key text, p_event text, p_trial boolean, p_streak integer, p_open float8,
    p_trials integer, OUT o_old text, OUT o_new text, OUT o_left float8, OUT o_streak integer,
    OUT o_permit boolean) LANGUAGE plpgsql AS $$
DECLARE r tweetgen_shared_breaker; now_ timestamptz := clock_timestamp();
BEGIN
    INSERT INTO tweetgen_shared_breaker (key) VALUES (p_key) ON CONFLICT DO NOTHING;
    SELECT * INTO r FROM tweetgen_shared_breaker s WHERE s.key = p_key FOR UPDATE;
    o_old := r.state; o_new := r.state; o_permit := false;
    IF p_event = 'failure' THEN
        IF r.state = 'closed' THEN
            r.consecutive := r.consecutive + 1;
            IF r.consecutive >= p_streak THEN o_new := 'open'; END IF;
        ELSIF r.state = 'half_open' AND p_trial THEN o_new := 'open';
        END IF;
    ELSIF p_event = 'trip' THEN
        IF r.state = 'closed' THEN o_new := 'open'; END IF;
    ELSIF p_event = 'success' THEN
        IF r.state = 'closed' THEN r.consecutive := 0;
        ELSIF r.state = 'half_open' AND p_trial THEN
            r.trials := greatest(r.trials - 1, 0);
            r.trial_successes := r.trial_successes + 1;
            IF r.trial_successes >= p_trials THEN o_new := 'closed'; END IF;
        END IF;
    ELSIF p_event = 'release' THEN
        IF r.state = 'half_open' AND p_trial THEN r.trials := greatest(r.trials - 1, 0); END IF;
    ELSIF p_event = 'acquire' THEN
        IF r.state = 'open' AND r.open_until <= now_ THEN
            o_new := 'half_open'; r.trials := 0; r.trial_successes := 0;
        ELSIF r.state = 'half_open' AND r.changed_at + p_open * interval '1 second' <= now_ THEN
            -- a round of trials that never ended (a process died holding a permit): a new one
            r.trials := 0; r.trial_successes := 0; r.changed_at := now_;
        END IF;
        IF o_new = 'half_open' AND r.trials + r.trial_successes < p_trials THEN
            r.trials := r.trials + 1; o_permit := true;
        END IF;
        o_permit := o_permit OR o_new = 'closed';
    END IF;
    IF o_new <> o_old THEN
        r.changed_at := now_; r.consecutive := 0;
        IF o_new = 'open' THEN
            r.open_until := now_ + p_open * interval '1 second';
            r.opened := r.opened + 1; r.trials := 0; r.trial_successes := 0;
        ELSIF o_new = 'closed' THEN r.trials := 0; r.trial_successes := 0;
        END IF;
    END IF;
    IF p_event <> 'read' THEN
        UPDATE tweetgen_shared_breaker s SET state = o_new, consecutive = r.consecutive,
            open_until = r.open_until, trials = r.trials, trial_successes = r.trial_successes,
            opened = r.opened, changed_at = r.changed_at WHERE s.key = p_key;
    END IF;
    o_streak := r.consecutive;
    o_left := CASE WHEN o_new = 'open'
        THEN greatest(0, extract(epoch FROM r.open_until - clock_timestamp())) ELSE 0 END;
END $$;
"""

#: GCRA over one row: the slot is the latest of the two theoretical arrival times, the pause and
#: now; each TAT moves one emission interval (requests) or the tokens' worth past the slot
ACQUIRE = """
INSERT INTO tweetgen_shared_limit AS l (key, slot, tat_requests, tat_tokens)
VALUES (%(key)s, clock_timestamp(), clock_timestamp() + %(step)s * interval '1 second',
        clock_timestamp() + %(tokens)s * interval '1 second')
ON CONFLICT (key) DO UPDATE SET
    slot = greatest(l.tat_requests, l.tat_tokens, l.pause_until, clock_timestamp()),
    tat_requests = greatest(l.tat_requests, l.tat_tokens, l.pause_until, clock_timestamp())
        + %(step)s * interval '1 second',
    tat_tokens = greatest(l.tat_requests, l.tat_tokens, l.pause_until, clock_timestamp())
        + %(tokens)s * interval '1 second'
RETURNING greatest(0, extract(epoch FROM slot - clock_timestamp()))::float8,
    extract(epoch FROM greatest(pause_until, clock_timestamp()) - clock_timestamp())::float8
"""
#: the real usage corrects the estimate: ``tokens`` seconds of token budget given back (or taken)
CORRECT = """
UPDATE tweetgen_shared_limit SET tat_tokens = tat_tokens - %(tokens)s * interval '1 second'
WHERE key = %(key)s
"""
PAUSE = """
INSERT INTO tweetgen_shared_limit AS l (key, pause_until)
VALUES (%(key)s, clock_timestamp() + %(seconds)s * interval '1 second')
ON CONFLICT (key) DO UPDATE SET pause_until =
    greatest(l.pause_until, clock_timestamp() + %(seconds)s * interval '1 second')
RETURNING greatest(0, extract(epoch FROM pause_until - clock_timestamp()))::float8
"""
BREAKER = "SELECT * FROM tweetgen_shared_breaker_step(%s, %s, %s, %s, %s, %s)"
BUDGET = "SELECT * FROM tweetgen_shared_budget_step(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


class SharedUnavailableError(Exception):
    """The shared state cannot be reached now (refused, timed out, dropped); use local limits."""


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The private loop's thread: run until stopped, then close the loop."""
    try:
        loop.run_forever()
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.close()


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(
            f"the shared state needs PostgreSQL's driver, psycopg: {INSTALL_HINT}"
        ) from None
    return psycopg


class Connection:
    """One connection to the shared state, driven by a private event loop thread."""

    def __init__(self, url: str) -> None:
        self._psycopg = _psycopg()
        self.url = url
        self.safe = safe_url(url)
        self._secret = urlsplit(url).password or None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Any = None
        self._connecting: asyncio.Future[Any] | None = None
        self._turn: asyncio.Lock | None = None  # made in the private loop
        self._failed_at = float("-inf")

    # --- the private loop ---------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve, args=(loop,), name="tweetgen-shared", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, op: Callable[[Any], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run ``op(connection)`` on the private loop, bounded; the future raises
        :class:`SharedUnavailableError` when the round trip fails or takes too long."""
        return asyncio.run_coroutine_threadsafe(self._run(op), self._running_loop())

    def call(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op`` from sync code, waiting at most the bounds."""
        future = self.submit(op)
        try:
            return future.result(timeout=CONNECT_BOUND + ROUND_TRIP_BOUND + 0.5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SharedUnavailableError("no answer in time") from None

    async def acall(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op`` from async code, on any event loop, without blocking it."""
        future = self.submit(op)
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(future), CONNECT_BOUND + ROUND_TRIP_BOUND + 0.5
            )
        except (TimeoutError, asyncio.TimeoutError):  # two classes before Python 3.11
            future.cancel()
            raise SharedUnavailableError("no answer in time") from None

    def close(self) -> None:
        """Close the connection and stop the private loop."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def stop() -> None:
            self._drop()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=1.0)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    # --- inside the private loop --------------------------------------------------------------

    def _reason(self, error: BaseException) -> str:
        text = " ".join(str(error).split()) or type(error).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return f"{type(error).__name__}: {text[:300]}"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> Any:
        psycopg = self._psycopg
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, int(CONNECT_BOUND)),
                options=f"-c statement_timeout={int(ROUND_TRIP_BOUND * 1000)}",
                application_name="tweetgen-shared",
            ),
            CONNECT_BOUND,
        )
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tweetgen_shared'))")
                await conn.execute(SCHEMA)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    async def _run(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """One operation at a time on the connection: the bound covers the round trip, not the
        wait in line; operations that were waiting when one failed fail at once."""
        queued = time.monotonic()
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            if self._failed_at >= queued:
                raise SharedUnavailableError("the connection failed while this waited")
            try:
                conn = await self._connection()
                return await asyncio.wait_for(op(conn), ROUND_TRIP_BOUND)
            except (TimeoutError, asyncio.TimeoutError, OSError, self._psycopg.Error) as error:
                self._failed_at = time.monotonic()
                self._drop()
                raise SharedUnavailableError(self._reason(error)) from None
