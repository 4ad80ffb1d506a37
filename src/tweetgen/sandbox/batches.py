"""The sandbox's Gemini Batch API: jobs created inline or from an uploaded JSONL file, polled,
cancelled, listed and deleted, with the REST shapes of python-genai's ``batches.py``.

- ``POST {base}/v1beta/models/MODEL:batchGenerateContent`` with ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": GenerateContentRequest, "metadata":
  {"key": ...}}]}}}}`` or ``{"inputConfig": {"fileName": "files/ID"}}`` (each line of that file
  ``{"key": ..., "request": {...}}``) answers a long-running operation: ``{"name": "batches/ID",
  "metadata": GenerateContentBatch}``;
- ``GET {base}/v1beta/batches/ID`` the same operation, ``metadata.state`` one of
  ``BATCH_STATE_PENDING``, ``_RUNNING``, ``_SUCCEEDED``, ``_FAILED``, ``_CANCELLED``, ``_EXPIRED``;
  once done, ``done: true`` and ``metadata.output`` (also ``response``) holds
  ``inlinedResponses.inlinedResponses[]`` (``response`` or ``error``, and the request's
  ``metadata``) in request order, or ``responsesFile`` (a JSONL file: ``{"key", "response"}`` or
  ``{"key", "error"}`` per line);
- ``POST {base}/v1beta/batches/ID:cancel``, ``GET {base}/v1beta/batches`` (``operations``,
  ``nextPageToken``), ``DELETE {base}/v1beta/batches/ID``.

How a job moves is the test's to choose (:class:`BatchOptions`): PENDING when created, RUNNING at
its first poll, finished at its ``polls``-th poll (or ``seconds`` after creation on ``clock``);
``outcome`` ``pending`` keeps it PENDING forever, ``failed`` and ``expired`` end it so. Its answers
are made when it finishes, each by the server's ``answer`` (the code that answers
``generateContent``, fault script included), so they are the same tweets with usage metadata.

Not confirmed against the real service: where the output sits once done (the SDK reads
``metadata.output``; ``response`` is given too), the shape of a per-request ``error`` (a
``google.rpc.Status`` with the gRPC code here), the answer to cancel and delete (``{}``), the
error of a failed job, and the exact messages.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .files import FileStore, rfc3339

__all__ = ["INLINE_LIMIT", "BatchJob", "BatchOptions", "Batches"]

#: the size of an inline ``batchGenerateContent`` request the API accepts (20 MB, Google's docs)
INLINE_LIMIT = 20 * 1024 * 1024
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_CREATE = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchGenerateContent$")
_JOB = re.compile(r"^/v1beta/batches/(?P<id>[A-Za-z0-9_-]+)(?P<cancel>:cancel)?$")
_ENDS = {
    "failed": "BATCH_STATE_FAILED",
    "expired": "BATCH_STATE_EXPIRED",
    "succeeded": "BATCH_STATE_SUCCEEDED",
}
_DONE = frozenset({*_ENDS.values(), "BATCH_STATE_CANCELLED"})

#: answers one request of a job: ``{"response": ...}`` or ``{"error": ...}``
Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class BatchOptions:
    """How the sandbox's jobs move (tests change these between polls)."""

    #: the poll at which a job ends (the first poll makes it RUNNING)
    polls: int = 2
    #: or: the seconds after its creation, on ``clock``, at which it ends (None: by polls only)
    seconds: float | None = None
    #: ``succeeded``, ``failed``, ``expired``, or ``pending`` (never leaves PENDING)
    outcome: str = "succeeded"
    clock: Callable[[], float] = time.monotonic


@dataclass
class BatchJob:
    """One job: its requests (key, body) and how far it got."""

    name: str
    model: str
    display_name: str
    requests: list[tuple[Any, dict[str, Any]]]
    from_file: bool
    created: float
    started: float = field(default_factory=time.time)
    state: str = "BATCH_STATE_PENDING"
    polls: int = 0
    updated: float = field(default_factory=time.time)
    output: dict[str, Any] | None = None
    succeeded: int = 0
    failed: int = 0

    def resource(self) -> dict[str, Any]:
        """The job as a long-running operation (its ``metadata`` the GenerateContentBatch)."""
        total = len(self.requests)
        done = self.state in _DONE
        metadata: dict[str, Any] = {
            "@type": _TYPE + "GenerateContentBatch",
            "name": self.name,
            "model": f"models/{self.model}",
            "displayName": self.display_name,
            "createTime": rfc3339(self.started),
            "updateTime": rfc3339(self.updated),
            "state": self.state,
            "batchStats": {  # int64 fields: strings in JSON
                "requestCount": str(total),
                "successfulRequestCount": str(self.succeeded),
                "failedRequestCount": str(self.failed),
                "pendingRequestCount": str(0 if done else total),
            },
        }
        operation: dict[str, Any] = {"name": self.name, "metadata": metadata}
        if done:
            metadata["endTime"] = rfc3339(self.updated)
            operation["done"] = True
        if self.output is not None:
            metadata["output"] = self.output
            operation["response"] = {"@type": _TYPE + "GenerateContentBatchOutput", **self.output}
        if self.state == "BATCH_STATE_FAILED":
            operation["error"] = {"code": 13, "message": "The batch job failed."}
        return operation


class Batches:
    """Every job of one sandbox, and the counts tests assert on."""

    def __init__(
        self, files: FileStore, options: BatchOptions | None = None, *, limit: int = INLINE_LIMIT
    ) -> None:
        self.files = files
        self.options = options or BatchOptions()
        self.limit = limit
        self.jobs: dict[str, BatchJob] = {}
        #: the names of the jobs created, in order (one per accepted submission)
        self.submissions: list[str] = []
        #: the names of the jobs a cancel request named
        self.cancels: list[str] = []
        self.gets = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- create ---------------------------------------------------------------------------------

    def create(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]] | None:
        """Answer a ``batchGenerateContent`` POST; ``None`` when the path is not one."""
        match = _CREATE.match(path)
        if match is None:
            return None
        if len(raw) > self.limit:
            return 400, _error(400, f"Request payload size exceeds the limit: {self.limit} bytes.")
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error(400, "Invalid JSON payload received.")
        batch = body.get("batch") if isinstance(body, dict) else None
        batch = batch if isinstance(batch, dict) else {}
        config = batch.get("inputConfig")
        if not isinstance(config, dict):
            return 400, _error(
                400, "Invalid JSON payload received. 'batch.inputConfig' is required."
            )
        requests, problem = self._requests(config)
        if problem is not None:
            return 400, _error(400, problem)
        with self._lock:
            name = f"batches/sandbox{next(self._ids):06d}"
            job = BatchJob(
                name,
                match.group("model"),
                str(batch.get("displayName") or ""),
                requests,
                "fileName" in config,
                self.options.clock(),
            )
            self.jobs[name] = job
            self.submissions.append(name)
            return 200, job.resource()

    def _requests(
        self, config: dict[str, Any]
    ) -> tuple[list[tuple[Any, dict[str, Any]]], str | None]:
        if "fileName" in config:
            data = self.files.read(str(config["fileName"]))
            if data is None:
                return [], f"File {config['fileName']} not found."
            try:
                lines = [json.loads(line) for line in data.splitlines() if line.strip()]
            except ValueError:
                return [], "The input file is not valid JSON Lines."
            pairs = [
                (line.get("key"), line.get("request")) for line in lines if isinstance(line, dict)
            ]
        else:
            inline = (config.get("requests") or {}).get("requests")
            if not isinstance(inline, list):
                return [], "'batch.inputConfig' needs 'requests.requests' or 'fileName'."
            pairs = [
                (item.get("metadata"), item.get("request"))
                for item in inline
                if isinstance(item, dict)
            ]
        if not pairs or any(not isinstance(request, dict) for _, request in pairs):
            return [], "Every batch request needs a 'request' object."
        return [(key, request) for key, request in pairs if isinstance(request, dict)], None

    # --- read, move, cancel -----------------------------------------------------------------------

    def get(self, path: str, answer: Answer) -> tuple[int, dict[str, Any]] | None:
        """Answer a GET of one job (it moves on) or of the list; ``None``: not ours."""
        bare = path.split("?", 1)[0]
        if bare == "/v1beta/batches":
            return 200, self._list(path)
        match = _JOB.match(bare)
        if match is None or match.group("cancel"):
            return None
        with self._lock:
            self.gets += 1
            job = self.jobs.get(f"batches/{match.group('id')}")
            if job is None:
                return 404, _error(404, f"Batch batches/{match.group('id')} not found.")
            self._move(job, answer)
            return 200, job.resource()

    def _move(self, job: BatchJob, answer: Answer) -> None:
        if job.state in _DONE:
            return
        job.polls += 1
        options = self.options
        if options.outcome == "pending":
            return
        waited = options.clock() - job.created
        due = job.polls >= options.polls if options.seconds is None else waited >= options.seconds
        job.updated = time.time()
        if not due:
            job.state = "BATCH_STATE_RUNNING"
            return
        job.state = _ENDS.get(options.outcome, "BATCH_STATE_FAILED")
        if job.state == "BATCH_STATE_SUCCEEDED":
            self._finish(job, answer)

    def _finish(self, job: BatchJob, answer: Answer) -> None:
        """Answer every request of the job (in order) and keep the output."""
        answers = [(key, answer(job.model, request)) for key, request in job.requests]
        job.failed = sum(1 for _, one in answers if "error" in one)
        job.succeeded = len(answers) - job.failed
        if job.from_file:
            lines = (json.dumps({"key": key, **one}) for key, one in answers)
            data = ("\n".join(lines) + "\n").encode()
            job.output = {"responsesFile": self.files.generated(f"{job.name} responses", data)}
        else:
            responses = [{**one, "metadata": key} if key else one for key, one in answers]
            job.output = {"inlinedResponses": {"inlinedResponses": responses}}

    def cancel(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """Answer ``batches/ID:cancel``; ``None``: not ours."""
        match = _JOB.match(path.split("?", 1)[0])
        if match is None or not match.group("cancel"):
            return None
        name = f"batches/{match.group('id')}"
        with self._lock:
            self.cancels.append(name)
            job = self.jobs.get(name)
            if job is None:
                return 404, _error(404, f"Batch {name} not found.")
            if job.state not in _DONE:
                job.state, job.updated = "BATCH_STATE_CANCELLED", time.time()
        return 200, {}

    def delete(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """Answer a DELETE of ``batches/ID``; ``None``: not ours."""
        match = _JOB.match(path.split("?", 1)[0])
        if match is None or match.group("cancel"):
            return None
        with self._lock:
            job = self.jobs.pop(f"batches/{match.group('id')}", None)
        return (200, {}) if job is not None else (404, _error(404, "Batch not found."))

    def _list(self, path: str) -> dict[str, Any]:
        query = dict(
            part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part
        )
        size = int(query.get("pageSize", "50") or 50)
        start = int(query.get("pageToken", "0") or 0)
        with self._lock:
            names = list(self.jobs)[start : start + size]
            page: dict[str, Any] = {"operations": [self.jobs[n].resource() for n in names]}
            if start + size < len(self.jobs):
                page["nextPageToken"] = str(start + size)
        return page


def _error(status: int, message: str) -> dict[str, Any]:
    from .gemini import error_body

    return error_body(status, message)
