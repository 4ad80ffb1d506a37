"""What the store writes for one call: a :class:`CallRecord`, built from a finished trace or a row's
input error; values made safe (secrets redacted, numbers in SQLite's range) before they are written.

:meth:`tweetgen.store.Store.write` is the one way a call enters the store.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .logs import redact_text
from .storeschema import AttemptRow, CallRow, utc_iso
from .trace import AttemptTrace, CallContext, CallTrace

__all__ = ["ATTEMPT_COLUMNS", "CALL_COLUMNS", "INPUT_ERROR_REQUEST_ID", "CallRecord"]

#: SQLite's INTEGER range; counts from a server are clamped into it before they are written
_MAX_INT = 2**63 - 1
#: the ``request_id`` of a row whose input could not be made into a request (no call was made)
INPUT_ERROR_REQUEST_ID = "input-error"
_COPIED_FROM_CALL = (
    "request_id",
    "provider",
    "model",
    "status",
    "text",
    "error_type",
    "error_message",
)
_COPIED_FROM_ATTEMPT = tuple(
    f.name for f in fields(AttemptRow) if f.name not in ("id", "call_id", "seq", "started_at")
)


def _safe(value: object) -> object:
    """A value SQLite can store that holds no secret: text redacted, integers clamped, non-finite
    floats null."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return max(-_MAX_INT, min(_MAX_INT, value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _safe_row(values: Mapping[str, object]) -> dict[str, object]:
    return {name: _safe(value) for name, value in values.items()}


def _inputs_columns(inputs: Mapping[str, Any]) -> dict[str, object]:
    return {
        **{name: inputs.get(name) for name in ("topic", "tone", "max_words")},
        "inputs_json": json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str),
    }


def _attempt_values(attempt: AttemptTrace) -> dict[str, object]:
    """The ``attempts`` row of one attempt, by column (its call and order are set when written)."""
    copied = {name: getattr(attempt, name) for name in _COPIED_FROM_ATTEMPT}
    return _safe_row({**copied, "started_at": utc_iso(attempt.started_at)})


def _spend(attempts: Sequence[AttemptTrace]) -> dict[str, object]:
    """A call's thinking tokens, cost (None when an attempt's cost is unknown), service tier (the
    last one that answered) and quota kind (the last one a 429 named)."""
    costs = [a.cost_usd for a in attempts]
    tiers = [a.service_tier for a in attempts if a.service_tier]
    kinds = [a.quota_kind for a in attempts if a.quota_kind]
    return {
        "thought_tokens": sum(a.thought_tokens for a in attempts),
        "cost_usd": None if None in costs else sum(c for c in costs if c is not None),
        "service_tier": tiers[-1] if tiers else None,
        "quota_kind": kinds[-1] if kinds else None,
    }


@dataclass(frozen=True)
class CallRecord:
    """One call as the store writes it: its ``calls`` row and its ``attempts`` rows, by column, safe
    to write (``id``, ``call_id`` and ``seq`` are given when written)."""

    call: Mapping[str, object]
    attempts: tuple[Mapping[str, object], ...] = ()

    def call_values(self) -> tuple[object, ...]:
        """The ``calls`` row's values in the order of :data:`INSERT_CALL`."""
        return tuple(self.call[name] for name in CALL_COLUMNS)

    def attempt_values(self, call_id: int) -> list[tuple[object, ...]]:
        """The ``attempts`` rows' values in the order of :data:`INSERT_ATTEMPT`, numbered from 1."""
        rows = [{**a, "call_id": call_id, "seq": seq} for seq, a in enumerate(self.attempts, 1)]
        return [tuple(row[name] for name in ATTEMPT_COLUMNS) for row in rows]

    @classmethod
    def of(cls, trace: CallTrace, context: CallContext | None = None) -> CallRecord:
        """The record of a finished trace, with ``context`` (else the trace's own)."""
        if trace.status not in ("ok", "failed"):
            raise ValueError(f"only finished calls can be stored; this one is {trace.status!r}")
        call = {
            **{name: getattr(trace, name) for name in _COPIED_FROM_CALL},
            **vars(context or trace.context),
            "created_at": utc_iso(trace.started_at),
            **_inputs_columns(trace.inputs),
            "attempts": len(trace.attempts),
            "regenerations": trace.regenerations,
            "latency_ms": trace.latency_ms,
            "waited_seconds": trace.waited_seconds,
            "input_tokens": sum(a.input_tokens for a in trace.attempts),
            "output_tokens": sum(a.output_tokens for a in trace.attempts),
            **_spend(trace.attempts),
        }
        return cls(_safe_row(call), tuple(_attempt_values(a) for a in trace.attempts))

    @classmethod
    def input_error(
        cls,
        message: str,
        *,
        context: CallContext,
        provider: str,
        model: str,
        inputs: Mapping[str, Any],
        at: float | None = None,
    ) -> CallRecord:
        """The record of a batch row whose input is bad: failed with ``InputError``, no attempt."""
        call = {
            "request_id": INPUT_ERROR_REQUEST_ID,
            "provider": provider,
            "model": model,
            "status": "failed",
            "text": None,
            "error_type": "InputError",
            "error_message": message,
            **vars(context),
            "created_at": utc_iso(time.time() if at is None else at),
            **_inputs_columns(inputs),
            "attempts": 0,
            "regenerations": 0,
            "latency_ms": None,
            "waited_seconds": 0.0,
            "input_tokens": 0,
            "output_tokens": 0,
            **_spend(()),
        }
        return cls(_safe_row(call))


def _columns(kind: type[CallRow | AttemptRow]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind) if f.name != "id")


def _insert(table: str, columns: tuple[str, ...], returning: str = "") -> str:
    """An INSERT of ``columns`` with ``?`` placeholders (both backends), in their order."""
    values = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}){returning}"  # noqa: S608


#: the columns an INSERT_CALL / INSERT_ATTEMPT takes, in order
CALL_COLUMNS = _columns(CallRow)
ATTEMPT_COLUMNS = _columns(AttemptRow)
INSERT_CALL = _insert("calls", CALL_COLUMNS, " RETURNING id")
INSERT_ATTEMPT = _insert("attempts", ATTEMPT_COLUMNS)
