"""Regenerating one tweet from the review page: the same engine, the call's stored inputs,
provider and model, in a background thread whose attempts the page shows as they end.

A job records each attempt as the engine finishes it (:class:`JobObserver`), writes the new call
to the store when it ends (the same batch, row and idempotency key as the old one) and links the
two (:func:`~tweetgen.review.actions.link_regeneration`): the new call replaces the old one in the
list. A failed regeneration is stored as a failed call and the old tweet stays.

Bounded: at most :data:`MAX_RUNNING` jobs at once (more are refused), the latest
:data:`MAX_KEPT` kept to be polled; one job per call at a time.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import TweetGenError
from ..request import TweetRequest
from ..store import CallRow, Store
from ..trace import AttemptTrace, CallContext, CallTrace, Observer
from .actions import ReviewError, link_regeneration
from .checks import THREAD_SEPARATOR

__all__ = ["MAX_KEPT", "MAX_RUNNING", "Engine", "Job", "JobObserver", "Jobs", "default_engine"]

MAX_RUNNING = 4
MAX_KEPT = 200


class Engine(Protocol):
    """What regenerates: ``generate_request(request, context=...)`` and ``close()``."""

    def generate_request(self, request: TweetRequest, *, context: CallContext | None = None) -> Any:
        """One tweet for ``request``."""

    def close(self) -> None:
        """Release the engine's connections."""


#: builds the engine for a stored call; its observers must include the one given
EngineFactory = Callable[[CallRow, Observer], Engine]


def default_engine(row: CallRow, observer: Observer) -> Engine:
    """A :class:`~tweetgen.generator.TweetGenerator` for the call's provider and model, with the
    settings of the environment (keys, base URLs, timeouts)."""
    from ..config import load_settings
    from ..generator import TweetGenerator

    settings = (
        load_settings(openai_model=row.model)
        if row.provider == "openai"
        else load_settings(model=row.model)
    )
    return TweetGenerator(provider=row.provider, settings=settings, observers=[observer])


@dataclass
class Job:
    """One regeneration: its attempts so far and how it ended."""

    id: str
    call_id: int
    state: str = "running"  # running, done, failed
    attempts: list[dict[str, Any]] = field(default_factory=list)
    new_call: int | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "job": self.id,
            "call_id": self.call_id,
            "state": self.state,
            "attempts": list(self.attempts),
            "new_call": self.new_call,
            "message": self.message,
        }


class JobObserver(Observer):
    """Shows a job each attempt as it ends, and stores the finished call."""

    def __init__(self, job: Job, store: Store, lock: threading.Lock, context: CallContext) -> None:
        self.job = job
        self.store = store
        self.lock = lock
        self.context = context
        self.recorded: int | None = None

    def attempt_finished(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """Add the attempt to the job's history."""
        with self.lock:
            self.job.attempts.append(
                {
                    "number": len(self.job.attempts) + 1,
                    "status_code": attempt.status_code,
                    "error_type": attempt.error_type,
                    "latency_ms": attempt.latency_ms,
                    "delay_before": attempt.delay_before,
                }
            )

    def call_finished(self, call: CallTrace) -> None:
        """Write the call with the old one's batch, row and key."""
        if call.status in ("ok", "failed"):
            self.recorded = self.store.record(
                call,
                idempotency_key=self.context.idempotency_key,
                batch_id=self.context.batch_id,
                row_number=self.context.row_number,
            )


class Jobs:
    """The regenerations started from the page."""

    def __init__(self, store: Store, engine: EngineFactory = default_engine) -> None:
        self.store = store
        self.engine = engine
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._threads: list[threading.Thread] = []

    def get(self, job_id: str) -> dict[str, Any] | None:
        """A snapshot of a job, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_dict()

    def start(self, call_id: int) -> str:
        """Start regenerating call ``call_id``; return the job's id."""
        rows = self.store.query("SELECT * FROM calls WHERE id = ?", (call_id,))
        if not rows or rows[0]["status"] != "ok":
            raise ReviewError(f"there is no generated tweet {call_id}", 404)
        replaced = self.store.query("SELECT state FROM reviews WHERE call_id = ?", (call_id,))
        if replaced and replaced[0]["state"] == "replaced":
            raise ReviewError(f"tweet {call_id} was replaced already; review the new one", 409)
        row = CallRow(**{k: rows[0][k] for k in CallRow.__dataclass_fields__})
        if THREAD_SEPARATOR in (row.text or ""):
            raise ReviewError(
                f"call {call_id} is a thread; the page regenerates single tweets (run "
                "tweetgen thread again for a new thread)",
                422,
            )
        with self._lock:
            running = [j for j in self._jobs.values() if j.state == "running"]
            if any(j.call_id == call_id for j in running):
                raise ReviewError(f"tweet {call_id} is being regenerated already", 409)
            if len(running) >= MAX_RUNNING:
                raise ReviewError(
                    f"{MAX_RUNNING} regenerations are running; wait for one to end", 429
                )
            job = Job(secrets.token_hex(8), call_id)
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_KEPT:
                self._jobs.popitem(last=False)
        thread = threading.Thread(
            target=self._run, args=(job, row), name=f"regenerate-{call_id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return job.id

    def _run(self, job: Job, row: CallRow) -> None:
        context = CallContext(row.idempotency_key, row.batch_id, row.row_number)
        observer = JobObserver(job, self.store, self._lock, context)
        try:
            request = TweetRequest(row.topic or "", row.tone or "professional", row.max_words or 25)
            engine = self.engine(row, observer)
            try:
                engine.generate_request(request, context=context)
            finally:
                engine.close()
            assert observer.recorded is not None, "the engine did not report the call's end"
            link_regeneration(self.store, row.id, observer.recorded, {"job": job.id})
        except (TweetGenError, ReviewError, ValueError) as error:
            self._end(job, "failed", f"the regeneration failed: {error}", observer.recorded)
        except Exception as error:
            self._end(job, "failed", f"the regeneration failed: {type(error).__name__}", None)
        else:
            self._end(job, "done", "regenerated", observer.recorded)

    def _end(self, job: Job, state: str, message: str, new_call: int | None) -> None:
        with self._lock:
            job.state, job.message, job.new_call = state, message, new_call

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for the running jobs (when the server stops)."""
        for thread in list(self._threads):
            thread.join(timeout)
