"""Fault scripts: what the sandbox answers, request by request (``"503*2,ok"``, ``"429:26s"``,
``"drop"``).

Grammar: comma-separated steps, each ``KIND[:ARG][*COUNT]``. Kinds:

- ``ok``: a normal answer; ``ok:SECONDS`` answers after a delay (latency)
- ``400`` ... ``599``: that status with a real Gemini error body; ``429:26s`` adds RetryInfo
  ``retryDelay`` 26s, ``503:retry-after=2`` a ``Retry-After: 2`` header
- ``429day``, ``429tpm``, ``429spend``, ``429prepay``: 429 RESOURCE_EXHAUSTED for a spent daily
  quota (QuotaFailure ``GenerateRequestsPerDayPerProjectPerModel-FreeTier`` and a short RetryInfo,
  ``429day:33s`` by default), the input tokens per minute, a spend cap, depleted prepaid credits
  (:func:`tweetgen.sandbox.quota.gemini_quota_fault`)
- ``invalid-key``: 400 INVALID_ARGUMENT with ErrorInfo ``API_KEY_INVALID``
- ``echo-key``: 400 whose message repeats the key the client sent (for redaction tests)
- ``drop``: send the start of a 200 answer, then close the connection (dropped mid-response)
- ``hang:SECONDS``: wait, then answer normally
- ``html``: 200 with an HTML page; ``blocked``: 200 with ``promptFeedback.blockReason``;
  ``max-tokens``: 200 with a candidate that has no parts (finishReason MAX_TOKENS)
- ``long``, ``quoted``, ``preamble``, ``emoji``: 200 with a tweet that breaks the rules in that way

These are the answers on Gemini's path; on ``/v1/chat/completions`` the same steps answer in
OpenAI's shapes (``429:26s`` as ``retry-after: 26``, ``blocked`` as ``finish_reason``
``content_filter``, ...; see :mod:`tweetgen.sandbox.chat`).
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .quota import QUOTA_FAULTS

__all__ = ["ERROR_BODIES", "Fault", "FaultScript", "parse_faults"]

ANSWER_KINDS = frozenset({"ok", "long", "quoted", "preamble", "emoji"})
SPECIAL_KINDS = frozenset(
    {"invalid-key", "echo-key", "drop", "hang", "html", "blocked", "max-tokens"}
)

#: status -> (Gemini status, message): the bodies Gemini really sends.
ERROR_BODIES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Invalid API key"),
    403: (
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers. "
        "Please use API Key or other form of API consumer identity.",
    ),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version {version}, "
        "or is not supported for generateContent.",
    ),
    408: ("DEADLINE_EXCEEDED", "Request timed out."),
    429: ("RESOURCE_EXHAUSTED", "Rate limit exceeded"),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    502: ("UNAVAILABLE", "Bad gateway"),
    503: ("UNAVAILABLE", "Service temporarily unavailable"),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


@dataclass(frozen=True)
class Fault:
    """One scripted answer."""

    kind: str
    status: int = 200
    retry_delay: str | None = None
    retry_after: str | None = None
    seconds: float = 0.0
    #: a quota fault's kind of quota (``per-day``, ``spend-cap``...; see ``QUOTA_FAULTS``)
    quota: str | None = None


_STEP = re.compile(r"^(?P<kind>[a-z-]+|\d{3}[a-z]*)(?::(?P<arg>[^*]+))?(?:\*(?P<count>\d+))?$")


def _quota_fault(kind: str, arg: str | None, text: str) -> Fault:
    if kind not in QUOTA_FAULTS:
        known = ", ".join(QUOTA_FAULTS)
        raise ValueError(f"unknown fault {text!r}; the quota faults are {known}")
    if arg is not None and (kind != "429day" or not re.fullmatch(r"\d+(\.\d+)?s", arg)):
        raise ValueError(f"fault {text!r}: only 429day takes an argument, a delay like 33s")
    return Fault("status", 429, retry_delay=arg, quota=QUOTA_FAULTS[kind])


def _fault(kind: str, arg: str | None, text: str) -> Fault:
    if kind[:3].isdigit() and not kind.isdigit():
        return _quota_fault(kind, arg, text)
    if kind.isdigit():
        status = int(kind)
        if not 400 <= status <= 599:
            raise ValueError(f"fault {text!r}: status must be 400-599")
        if arg is None:
            return Fault("status", status)
        if arg.startswith("retry-after="):
            return Fault("status", status, retry_after=arg.split("=", 1)[1])
        if re.fullmatch(r"\d+(\.\d+)?s", arg):
            return Fault("status", status, retry_delay=arg)
        raise ValueError(f"fault {text!r}: expected a delay like 26s or retry-after=N")
    if kind not in ANSWER_KINDS | SPECIAL_KINDS:
        known = ", ".join(sorted(ANSWER_KINDS | SPECIAL_KINDS))
        raise ValueError(f"unknown fault {text!r}; use a status 400-599 or one of: {known}")
    if arg is not None and kind not in ("ok", "hang"):
        raise ValueError(f"fault {text!r}: {kind} takes no argument")
    try:
        seconds = float(arg) if arg is not None else (30.0 if kind == "hang" else 0.0)
    except ValueError:
        raise ValueError(f"fault {text!r}: {arg!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"fault {text!r}: seconds must be a finite number >= 0")
    return Fault(kind, seconds=seconds)


def parse_faults(spec: str | Iterable[str]) -> list[Fault]:
    """Parse a fault script; raises ``ValueError`` with the offending step."""
    steps = (
        [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [s.strip() for s in spec]
    )
    faults: list[Fault] = []
    for step in filter(None, steps):
        match = _STEP.match(step.lower())
        if match is None:
            raise ValueError(
                f"cannot read fault step {step!r} (examples: 503, 503*2, 429:26s, drop, ok:0.5)"
            )
        count = int(match.group("count") or 1)
        faults.extend([_fault(match.group("kind"), match.group("arg"), step)] * count)
    return faults


class FaultScript:
    """A thread-safe queue of faults; when empty, ``ok`` (or a 503 with probability
    ``error_rate``)."""

    def __init__(
        self, faults: Iterable[Fault] = (), *, error_rate: float = 0.0, seed: int | None = None
    ) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {error_rate}")
        self._queue: deque[Fault] = deque(faults)
        self._lock = threading.Lock()
        self.error_rate = error_rate
        self._rng = random.Random(seed)

    def extend(self, faults: Iterable[Fault]) -> None:
        """Append faults to the script."""
        with self._lock:
            self._queue.extend(faults)

    def clear(self) -> None:
        """Forget the remaining faults."""
        with self._lock:
            self._queue.clear()

    def next(self) -> Fault:
        """The answer for the next request."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.error_rate and self._rng.random() < self.error_rate:
                return Fault("status", 503)
            return Fault("ok")

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)
