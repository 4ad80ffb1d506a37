"""The Gemini batch jobs a store remembers (table ``gemini_batch_jobs``, schema 3): a job's name is
kept before anything waits for it, so a rerun of the same batch polls that job again instead of
submitting its rows twice; how often a job is polled; and what a job did for one run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ConfigurationError
from .storeschema import utc_iso

__all__ = [
    "POLL_ENV",
    "SUBMITTING",
    "GeminiBatchOutcome",
    "JobRecord",
    "JobTable",
    "PollSchedule",
    "state_word",
]

#: the environment variable with the first poll interval in seconds (tests use a tiny one)
POLL_ENV = "TWEETGEN_BATCH_POLL_SECONDS"
#: the state of a job being submitted: its ``job_name`` is still its display name until the
#: create's answer names it (a run killed in between finds it by that name)
SUBMITTING = "SUBMITTING"
_WORDS = {
    "BATCH_STATE_PENDING": "pending",
    "BATCH_STATE_RUNNING": "running",
    "BATCH_STATE_SUCCEEDED": "succeeded",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "was cancelled",
    "BATCH_STATE_EXPIRED": "expired",
}


def state_word(state: str | None) -> str:
    """A job's state as the summary says it (``BATCH_STATE_EXPIRED``: ``expired``)."""
    return _WORDS.get(state or "", state or "unknown")


@dataclass(frozen=True)
class PollSchedule:
    """How long to wait before each poll: ``first``, growing by ``factor`` up to ``most``."""

    first: float = 5.0
    factor: float = 1.5
    most: float = 60.0

    def delay(self, polls: int) -> float:
        return float(min(self.most, self.first * self.factor ** min(polls, 64)))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PollSchedule:
        """The default schedule, or one starting at ``TWEETGEN_BATCH_POLL_SECONDS`` (up to 12x)."""
        text = (env if env is not None else os.environ).get(POLL_ENV, "").strip()
        if not text:
            return cls()
        try:
            first = float(text)
        except ValueError:
            first = -1.0
        if not 0 < first <= 3600:
            raise ConfigurationError(
                f"{POLL_ENV} must be a number of seconds above 0 and at most 3600, got {text!r}"
            )
        return cls(first=first, most=first * 12)


@dataclass
class GeminiBatchOutcome:
    """What the batch job did for this run."""

    job_name: str | None = None
    state: str | None = None
    #: rows the job answered with a tweet that passed the checks (stored)
    answered: int = 0
    #: answers that failed the tweet checks (left to the synchronous run)
    rejected: int = 0
    #: rows the job answered with an error, or not at all (left to the synchronous run)
    errors: int = 0
    cost_usd: float | None = 0.0
    interrupted: bool = False

    def lines(self) -> list[str]:
        """The summary's lines about the job."""
        if self.job_name is None:
            return ["gemini batch: no row needed a call"]
        cost = "unknown" if self.cost_usd is None else f"${self.cost_usd:.6f}"
        lines = [
            f"gemini batch job {self.job_name} {state_word(self.state)}: "
            f"{self.answered} rows answered at the batch tier (cost {cost})"
        ]
        if self.rejected or self.errors:
            lines.append(
                f"gemini batch: {self.rejected} answers failed the tweet checks and {self.errors} "
                "rows came back without an answer; they go to one call at a time"
            )
        return lines


@dataclass
class JobRecord:
    """One job of one batch: its name, last known state, deadline and details (``collected``:
    its answers are in the store; ``rows``; ``source``: inline or file; counts)."""

    batch_id: str
    job_name: str
    state: str
    created_at: float
    deadline_at: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def collected(self) -> bool:
        return bool(self.details.get("collected"))


def _epoch(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class JobTable:
    """Reads and writes ``gemini_batch_jobs`` through a store (SQLite or PostgreSQL)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def open_job(self, batch_id: str) -> JobRecord | None:
        """The batch's newest job whose answers are not yet collected, if any."""
        rows = self.store.query(
            "SELECT job_name, state, created_at, deadline_at, details FROM gemini_batch_jobs "
            "WHERE batch_id = ? ORDER BY created_at DESC, job_name DESC",
            (batch_id,),
        )
        for name, state, created, deadline, details in rows:
            record = JobRecord(
                batch_id,
                name,
                state,
                _epoch(created),
                _epoch(deadline),
                json.loads(details or "{}"),
            )
            if not record.collected:
                return record
        return None

    def add(self, record: JobRecord) -> None:
        """Keep a job just submitted."""
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO gemini_batch_jobs (batch_id, job_name, state, created_at, updated_at, "
                "deadline_at, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.batch_id,
                    record.job_name,
                    record.state,
                    utc_iso(record.created_at),
                    utc_iso(record.created_at),
                    utc_iso(record.deadline_at),
                    json.dumps(record.details, sort_keys=True),
                ),
            )

    def rename(self, record: JobRecord, name: str, state: str, at: float) -> None:
        """Give a job being submitted the name and state the create answered."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE gemini_batch_jobs SET job_name = ?, state = ?, updated_at = ? "
                "WHERE batch_id = ? AND job_name = ?",
                (name, state, utc_iso(at), record.batch_id, record.job_name),
            )
        record.job_name, record.state = name, state

    def remove(self, record: JobRecord) -> None:
        """Forget a job that was never made."""
        with self.store.transaction() as tx:
            tx.execute(
                "DELETE FROM gemini_batch_jobs WHERE batch_id = ? AND job_name = ?",
                (record.batch_id, record.job_name),
            )

    def update(self, record: JobRecord, at: float) -> None:
        """Keep a job's new state and details."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE gemini_batch_jobs SET state = ?, updated_at = ?, details = ? "
                "WHERE batch_id = ? AND job_name = ?",
                (
                    record.state,
                    utc_iso(at),
                    json.dumps(record.details, sort_keys=True),
                    record.batch_id,
                    record.job_name,
                ),
            )
