"""``tweetgen batch --via gemini-batch``: the rows not yet done go into one Gemini batch job; its
answers are checked like synchronous ones and stored as calls at the batch tier; the rest (rows the
job did not answer, answers the checks rejected, a job that failed, expired or passed its deadline)
is left to the synchronous batch, which then skips every row already done.

The steps, each a method of :class:`GeminiBatchRun`:

1. *submit*: the rows a synchronous run would call (not done; failed earlier only with
   ``--retry-failed``), each as ``{"key": idempotency key, "request": the generateContent body the
   synchronous path would send}`` (the generator's prompt, the provider's ``build_body``), inline
   below ``inline_limit`` (20 MB), else as an uploaded JSONL file;
2. *keep*: the job in the store (``gemini_batch_jobs``) before the create is sent (as
   ``SUBMITTING``, under its unique display name) and under its name once the create answers, so a
   rerun of the same batch (same rows: same batch id) polls it again instead of submitting twice,
   even after a kill between the create and its answer (the job is then found by display name);
3. *wait*: poll with a growing interval (``TWEETGEN_BATCH_POLL_SECONDS``, 5 s by default, growing
   1.5x to 12 times that); at the deadline (``--batch-deadline``, from the job's creation, kept in
   the store) the job is cancelled;
4. *collect*: a finished job's answers (inline, or its responses file downloaded line by line),
   matched to rows by key, parsed and checked as ``generateContent`` answers are.

A create whose answer is lost (network, timeout, 5xx) is looked for by its display name before the
error is believed, so an answer lost on the way back does not leave a job nobody polls; a create
refused removes the job from the store (a rerun submits).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import (
    ConfigurationError,
    NetworkError,
    RequestTimeoutError,
    ServerError,
    TweetGenError,
)
from .gbatch import BatchClient, JobState, is_transient
from .gbatchanswers import judge
from .gbatchjobs import (
    POLL_ENV,
    SUBMITTING,
    GeminiBatchOutcome,
    JobRecord,
    JobTable,
    PollSchedule,
    state_word,
)
from .providers.gemini import GeminiProvider
from .trace import CallContext

__all__ = [
    "INLINE_LIMIT",
    "POLL_ENV",
    "GeminiBatchOutcome",
    "GeminiBatchRun",
    "PollSchedule",
    "gemini_provider",
]

#: the largest inline job request (Google's batch guide: inline below 20 MB, else a file)
INLINE_LIMIT = 20 * 1024 * 1024
_SUCCEEDED = "BATCH_STATE_SUCCEEDED"


def gemini_provider(generator: Any) -> GeminiProvider:
    """The generator's one Gemini provider (the sandbox speaks Gemini too), or a usage error."""
    providers = list(generator.providers)
    if len(providers) > 1:
        names = ",".join(p.name for p in providers)
        raise ConfigurationError(
            f"--via gemini-batch sends every row to one Gemini batch job and cannot fall back "
            f"along the provider chain {names}; choose the gemini provider alone, or --via sync"
        )
    provider = providers[0]
    while not isinstance(provider, GeminiProvider) and hasattr(provider, "inner"):
        provider = provider.inner
    if not isinstance(provider, GeminiProvider):
        raise ConfigurationError(
            f"--via gemini-batch needs the gemini provider (or the sandbox); this run uses "
            f"{provider.name}: set TWEETGEN_PROVIDER=gemini, or use --via sync"
        )
    return provider


def _say(line: str) -> None:
    print(f"tweetgen: {line}", file=sys.stderr, flush=True)


class GeminiBatchRun:
    """One batch's pass through a Gemini batch job (see the module's docstring)."""

    def __init__(
        self,
        generator: Any,
        store: Any,
        ledger: Any,
        *,
        deadline: float,
        retry_failed: bool = False,
        inline_limit: int = INLINE_LIMIT,
        poll: PollSchedule | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.generator, self.store, self.ledger = generator, store, ledger
        self.provider = gemini_provider(generator)
        self.deadline, self.retry_failed = deadline, retry_failed
        self.inline_limit = inline_limit
        self.poll = poll or PollSchedule.from_env()
        self.sleep, self.clock, self.say = sleep, clock, say
        self.table = JobTable(store)
        self.outcome = GeminiBatchOutcome()
        self._seen: tuple[str, int] | None = None

    def run(self) -> GeminiBatchOutcome:
        """Submit (or resume) the job, wait for it, collect its answers."""
        with BatchClient(self.provider) as client:
            record = self._resumed(client, self.table.open_job(self.ledger.batch_id))
            if record is None:
                record = self._submit(client)
                if record is None:
                    return self.outcome
            else:
                self.say(f"gemini batch: resuming job {record.job_name} (submitted before)")
            self.outcome.job_name = record.job_name
            try:
                job = self._wait(client, record)
            except KeyboardInterrupt:
                self.outcome.interrupted = True
                self.say(
                    f"gemini batch: stopped waiting; the job {record.job_name} goes on at Google "
                    "and a rerun of the same command collects it"
                )
                return self.outcome
            self._collect(client, record, job)
        return self.outcome

    # --- submit ---------------------------------------------------------------------------------

    def _needs_call(self, key: str) -> bool:
        """Whether the synchronous batch would call this row (its rule in tweetgen.batch)."""
        if self.store.done(key) is not None:
            return False
        latest = None if self.retry_failed else self.store.latest(key)
        return latest is None or latest.error_type in ("InputError", "CircuitOpenError")

    def _body(self, request: Any) -> dict[str, Any]:
        """The ``generateContent`` body the synchronous path would send for this request."""
        asked = self.generator._ask(request, ())
        if getattr(asked, "service_tier", None):  # the batch tier is the job's, not the request's
            asked = dataclasses.replace(asked, service_tier=None)
        body: dict[str, Any] = self.provider.build_body(asked)
        return body

    def _requests(self, path: Path) -> tuple[int, int]:
        """Write the rows to call as JSON lines; how many, and the file's size."""
        count = 0
        with path.open("w", encoding="utf-8") as out:
            for prepared in self.ledger.rows():
                if prepared.error is None and self._needs_call(prepared.key):
                    line = {"key": prepared.key, "request": self._body(prepared.request)}
                    out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                    count += 1
        return count, path.stat().st_size

    def _submit(self, client: BatchClient) -> JobRecord | None:
        with tempfile.TemporaryDirectory(prefix="tweetgen-batch-") as folder:
            path = Path(folder) / "requests.jsonl"
            count, size = self._requests(path)
            if count == 0:
                return None
            display = f"tweetgen-{self.ledger.batch_id}-{uuid.uuid4().hex[:8]}"
            details: dict[str, Any] = {"rows": count, "model": self.provider.model}
            if size + 40 * count < self.inline_limit:  # the inline body: the lines, rewrapped
                source: dict[str, Any] = {"requests": {"requests": list(_inline(path))}}
                details["source"] = "inline"
            else:
                self.say(f"gemini batch: uploading {count} requests ({size:,} bytes)")
                details["source"] = "file"
                details["file"] = client.upload(path, display)
                source = {"fileName": details["file"]}
            created = self.clock()
            details["display_name"] = display
            record = JobRecord(
                self.ledger.batch_id, display, SUBMITTING, created, created + self.deadline, details
            )
            self.table.add(record)  # before the create: a kill after it finds the job by name
            try:
                job = self._create(client, display, source)
            except TweetGenError:
                self.table.remove(record)  # not submitted: a rerun submits
                raise
        self.table.rename(record, job.name, job.state, created)
        self.say(
            f"gemini batch: submitted {count} rows as job {job.name} ({details['source']}); "
            f"waiting for it, at most {self.deadline:g} s"
        )
        return record

    def _resumed(self, client: BatchClient, record: JobRecord | None) -> JobRecord | None:
        """The job to resume; one whose create a killed run sent without keeping its answer is
        looked for by its display name (not found: it was never made, and is submitted again)."""
        if record is None or record.state != SUBMITTING:
            return record
        found = client.find(record.job_name)
        if found is None:
            self.table.remove(record)
            return None
        self.table.rename(record, found.name, found.state, self.clock())
        return record

    def _create(self, client: BatchClient, display: str, source: dict[str, Any]) -> JobState:
        """Submit the job; a create whose answer was lost is looked for by its display name before
        the error is believed (a job submitted but never polled would run, and bill, unseen)."""
        try:
            try:
                return client.create(display, source)
            except (NetworkError, RequestTimeoutError, ServerError):
                found = client.find(display)
                if found is None:
                    raise
                return found
        except TweetGenError as error:
            error.add_to_message(
                "; the Gemini batch job was not submitted (no row was called): rerun the same "
                "command, or use --via sync"
            )
            raise

    # --- wait -----------------------------------------------------------------------------------

    def _wait(self, client: BatchClient, record: JobRecord) -> JobState | None:
        """Poll until the job is done (its state), or cancel it at the deadline (its last state,
        ``None`` when unknown)."""
        polls = 0
        while True:
            now = self.clock()
            job = self._poll(client, record, now)
            if job is not None and job.done:
                return job
            if now >= record.deadline_at:
                return self._cancel(client, record)
            delay = min(self.poll.delay(polls), max(record.deadline_at - now, 0.0))
            if job is not None:
                self._progress(job, delay, polls)
            polls += 1
            self.sleep(delay)

    def _poll(self, client: BatchClient, record: JobRecord, now: float) -> JobState | None:
        try:
            job = client.get(record.job_name)
        except TweetGenError as error:
            if not is_transient(error):
                raise
            self.say(f"gemini batch: reading job {record.job_name} failed ({error}); trying again")
            return None
        if job.state != record.state:
            record.state = job.state
            self.table.update(record, now)
        return job

    def _progress(self, job: JobState, delay: float, polls: int) -> None:
        """Say how the job is doing when that changed, and every tenth poll (a day of polls at
        60 s would be 1,440 lines)."""
        total = job.stats.get("requestCount", 0)
        done = job.stats.get("successfulRequestCount", 0) + job.stats.get("failedRequestCount", 0)
        seen = (job.state, done)
        if seen == self._seen and polls % 10:
            return
        self._seen = seen
        counts = f", {done} of {total} answered" if total else ""
        word = state_word(job.state)
        self.say(f"gemini batch job {job.name}: {word}{counts}; next check in {delay:.3g} s")

    def _cancel(self, client: BatchClient, record: JobRecord) -> JobState | None:
        self.say(
            f"gemini batch: job {record.job_name} passed its deadline (--batch-deadline); "
            "cancelling it and generating the rows still missing one call at a time"
        )
        record.details["cancelled_at_deadline"] = True
        job: JobState | None = None
        try:
            client.cancel(record.job_name)
            job = client.get(record.job_name)
        except TweetGenError as error:
            self.say(f"gemini batch: cancelling job {record.job_name} failed ({error})")
        record.state = job.state if job is not None else "BATCH_STATE_CANCELLED"
        self.table.update(record, self.clock())
        return job

    # --- collect --------------------------------------------------------------------------------

    def _answers(self, client: BatchClient, job: JobState) -> dict[str, dict[str, Any]]:
        """The job's answers by row key (``response`` or ``error``)."""
        if job.inline is not None:
            entries: Iterator[dict[str, Any]] = (
                {**entry, "key": (entry.get("metadata") or {}).get("key")} for entry in job.inline
            )
        elif job.responses_file:
            entries = client.download_lines(job.responses_file)
        else:
            return {}
        return {str(e["key"]): e for e in entries if isinstance(e.get("key"), str)}

    def _collect(self, client: BatchClient, record: JobRecord, job: JobState | None) -> None:
        self.outcome.state = record.state
        answers: dict[str, dict[str, Any]] = {}
        if job is not None and job.done:
            answers = self._answers(client, job)
        if record.state != _SUCCEEDED:
            why = f" ({job.error})" if job is not None and job.error else ""
            self.say(
                f"gemini batch: job {record.job_name} {state_word(record.state)}{why}; "
                "the rows it did not answer are generated one call at a time"
            )
        started = self.clock()
        for prepared in self.ledger.rows():
            if prepared.error is not None:
                continue
            if prepared.key in answers:
                if self.store.done(prepared.key) is None:
                    self._settle(prepared, answers[prepared.key], record)
            elif record.state == _SUCCEEDED and self._needs_call(prepared.key):
                self.outcome.errors += 1  # a submitted row the job left out
        record.details.update(
            collected=True,
            answered=self.outcome.answered,
            rejected=self.outcome.rejected,
            errors=self.outcome.errors,
        )
        self.table.update(record, started)

    def _settle(self, prepared: Any, entry: dict[str, Any], record: JobRecord) -> None:
        """Store one answer that passes the checks; count the others (the sync run calls them)."""
        verdict = judge(self.provider, prepared, entry)
        if isinstance(verdict, str):
            setattr(self.outcome, verdict, getattr(self.outcome, verdict) + 1)
            return
        latency_ms = round(max(self.clock() - record.created_at, 0.0) * 1000, 2)
        context = CallContext(prepared.key, self.ledger.batch_id, prepared.row.number)
        self.store.write(verdict.record(context, record.created_at, latency_ms))
        self.outcome.answered += 1
        spent, cost = self.outcome.cost_usd, verdict.result.cost_usd
        self.outcome.cost_usd = None if spent is None or cost is None else spent + cost


def _inline(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines as inline requests: ``{"request", "metadata": {"key"}}``."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            yield {"request": item["request"], "metadata": {"key": item["key"]}}
