"""One worker of a batch shared through the store (:mod:`tweetgen.batchqueue`): it claims rows in
chunks instead of reading them in input order, runs them as :class:`tweetgen.batch._Runner` does
(the same rules for rows done or failed before, the same counts), marks them done once their outcome
is stored, renews its leases, takes over rows whose lease expired, and ends when every row of the
batch is done (or when it is stopped).

A row is marked done after :meth:`tweetgen.store.Store.write` committed its call: with the next
claim, in the same transaction. A worker killed between the two leaves the row running under an
expiring lease; whoever takes it over finds its call in the store and only marks it done.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import events
from .batch import _Runner, _signals
from .batchqueue import BatchQueue, Claimed, QueueState
from .batchrows import PreparedRow, built, from_payload
from .batchsummary import BatchSummary
from .generator import TweetGenerator
from .store import Store, StoreError
from .throttle import BatchStop

__all__ = ["FleetRunner", "poll_interval", "run_fleet"]

#: how often a worker refreshes the whole batch's progress from the store, in seconds
PROGRESS_EVERY = 1.0
#: ... but never more often than this many times the last refresh took: that read counts every row
#: of the batch (2 ms at 2,000 rows, 105 ms at 100,000 on the 2-core bench machine), so a long
#: batch is refreshed less often rather than spending a tenth of a core on its progress
PROGRESS_COST = 50
#: the most rows one claim takes when every row it took was settled without a call (a rerun)
MAX_CHUNK = 512


def poll_interval(lease: float) -> float:
    """How long a worker with nothing to claim waits before it looks again (a look reads only the
    rows not done): a twentieth of the lease, within 0.05 to 0.2 s, so that the workers of a batch
    end soon after its last row."""
    return min(0.2, max(0.05, lease / 20))


class FleetRunner(_Runner):
    """A batch run over the store's work queue: rows claimed with leases, not read from a file."""

    def __init__(
        self,
        generator: TweetGenerator,
        store: Store,
        stop: BatchStop,
        queue: BatchQueue,
        *,
        concurrency: int,
        retry_failed: bool,
        on_progress: Callable[[BatchSummary], None],
        on_tick: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            generator,
            store,
            stop,
            concurrency=concurrency,
            retry_failed=retry_failed,
            batch_id=queue.batch_id,
            on_progress=on_progress,
        )
        self.queue, self.concurrency, self.on_tick = queue, concurrency, on_tick
        self.ready: collections.deque[Claimed] = collections.deque()
        self.held: set[int] = set()  # claimed, not yet finished
        self.finished: list[int] = []  # settled and stored, not yet marked done
        self.prefetch = max(1, concurrency // 4)
        self.chunk = 0  # extra rows per claim while rows settle without a call
        self.poll = poll_interval(queue.lease)
        self.level = 0  # 1: stopping (no more rows), 2: abandoning calls in flight
        self.checked = 0.0
        self.progress_every = PROGRESS_EVERY
        #: per claimed key: whether a call of it succeeded and its latest error (None: no call)
        self.known: dict[str, tuple[bool, str | None] | None] = {}

    # --- claiming -------------------------------------------------------------------------------

    def _flush(self) -> list[int]:
        numbers, self.finished = self.finished, []
        self.held.difference_update(numbers)
        return numbers

    def _state(self, *, done: bool = False) -> QueueState:
        """The queue's state now (with ``done``: the whole batch's progress too)."""
        started = time.monotonic()
        state = self.queue.state(done=done)
        if done:
            self.checked = time.monotonic()
            took = self.checked - started
            self.progress_every = max(PROGRESS_EVERY, took * PROGRESS_COST)
            self.summary.batch_done = state.done
        self.on_tick()
        return state

    def _refresh(self) -> None:
        """The batch's progress, at most every ``PROGRESS_EVERY`` seconds (less often when reading
        it takes longer than ``1 / PROGRESS_COST`` of that)."""
        if time.monotonic() - self.checked >= self.progress_every:
            self._state(done=True)

    async def _next(self) -> Claimed | None:
        """The next row to run, claimed now or earlier; ``None`` when no row is left for this
        worker (every other row is done or running here) or when the run is stopping."""
        while not self.stopping.is_set():
            if self.ready:
                return self.ready.popleft()
            free = self.concurrency - len(self.tasks)
            claimed = self.queue.claim(max(free, 1) + self.prefetch + self.chunk, self._flush())
            if claimed:
                if taken := sum(c.claims > 1 for c in claimed):
                    events.batch_rows_taken_over(self.batch_id, taken, self.queue.worker)
                keys = [c.key for c in claimed if c.key]
                self.known.update(dict.fromkeys(keys))
                self.known.update(self.queue.known(keys))
                self.ready.extend(claimed)
                self.held.update(c.number for c in claimed)
                continue
            state = self._state()
            if state.pending == 0 and state.others == 0:
                return None
            # other workers hold rows: wait for them to finish, or for their leases to expire
            await self._wait(self.poll)
        return None

    async def _wait(self, seconds: float) -> None:
        """A real sleep (the generator's may be a test's fake clock) that ends when stopping."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _schedule(self, rows: Any = ()) -> None:
        settled_only = True
        while not self.stopping.is_set():
            await self.semaphore.acquire()
            if self.stopping.is_set():
                self.semaphore.release()
                break
            if not self.ready:  # a new claim: grow it while every row settles without a call
                self.chunk = min(self.chunk * 2 or 8, MAX_CHUNK) if settled_only else 0
                settled_only = True
            claimed = await self._next()
            if claimed is None:
                self.semaphore.release()
                break
            prepared = self._prepared(claimed)
            self.summary.total += 1
            self.summary.takeovers += claimed.claims > 1
            if self._settled(prepared):
                self.finished.append(claimed.number)
                self.semaphore.release()
                self._refresh()
                continue
            settled_only = False
            prepared = self._built(prepared)
            if prepared.request is None:  # its request could not be built here
                self._settled(prepared)
                self.finished.append(claimed.number)
                self.semaphore.release()
                continue
            task = asyncio.create_task(self._run_held(prepared))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _earlier(self, key: str) -> str | None:
        """As for one process, from what the claim's one query found (``known``)."""
        if key not in self.known:
            return super()._earlier(key)
        found = self.known.pop(key)
        if found is None:
            return None
        done, error_type = found
        if done:
            return "done"
        if not self.retry_failed and error_type not in ("InputError", "CircuitOpenError"):
            return "failed"
        return None

    def _prepared(self, claimed: Claimed) -> PreparedRow:
        """The claimed row, its request not built yet (a row settled before needs none); a
        payload this version cannot read fails its row only."""
        try:
            return from_payload(claimed.number, claimed.payload, build=False)
        except Exception as error:
            events.row_unprepared(claimed.number, error)
            return from_payload(claimed.number, '{"error": "row cannot be read from the store"}')

    def _built(self, prepared: PreparedRow) -> PreparedRow:
        try:
            return built(prepared)
        except Exception as error:
            events.row_unprepared(prepared.row.number, error)
            message = "row cannot be prepared from the store; the log file has the details"
            return PreparedRow(prepared.row, error=message)

    async def _run_held(self, prepared: PreparedRow) -> None:
        if await self._run_row(prepared):
            self.finished.append(prepared.row.number)
        self._refresh()

    # --- the run --------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Renew this worker's leases every third of the lease (a real clock)."""
        while True:
            await asyncio.sleep(self.queue.lease / 3)
            try:
                self.queue.renew()
            except StoreError as error:
                self._stop_for(error)
                return

    async def run(self, rows: Any = ()) -> BatchSummary:
        beat = asyncio.create_task(self._heartbeat())
        try:
            while True:
                try:
                    await self._schedule()
                except StoreError as error:
                    self._stop_for(error)
                if self.tasks:
                    await asyncio.gather(*self.tasks, return_exceptions=True)
                if self.stopping.is_set():
                    break
                self.queue.finish(self._flush())
                state = self._state()
                if state.complete:
                    self._state(done=True)
                    break
                if state.mine and not self.tasks:  # held here, run by nothing: back to the queue
                    self.ready.clear()
                    self.queue.release(sorted(self.held))
                    self.held.clear()
        finally:
            beat.cancel()
            self._hand_back()
        self.summary.store_error = self.fatal
        return self.summary

    def _hand_back(self) -> None:
        """Mark what was finished done and give every other row still held back to the queue."""
        try:
            self.queue.finish(self._flush())
            self.ready.clear()
            self.queue.release(sorted(self.held))
            self.held.clear()
        except StoreError as error:  # the leases expire: another worker takes the rows over
            self._stop_for(error)

    def escalate(self, level: int) -> None:
        """Stop (1) or abandon calls in flight (2), as the first and second signal do; a level
        already reached changes nothing (a signal and its parent's message may both arrive)."""
        while self.level < level:
            self.level += 1
            self.interrupt()


async def run_fleet(
    runner: FleetRunner,
    on_signal: Callable[[int], None] = lambda level: None,
    then: Callable[[], Awaitable[None]] | None = None,
) -> BatchSummary:
    """Run one worker, then ``then()`` (a command waits for its local workers); SIGINT/SIGTERM
    stop it (the second abandons its calls in flight), and ``on_signal(level)`` passes the same
    on (to the local workers)."""
    started = time.monotonic()

    def interrupted() -> None:
        runner.escalate(runner.level + 1)
        on_signal(runner.level)

    with _signals(interrupted):
        summary = await runner.run()
        if then is not None:
            await then()
    summary.elapsed = time.monotonic() - started
    return summary
