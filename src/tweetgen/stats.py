"""What the store says about reliability: outcomes, attempts, waiting, errors and latency
percentiles.

:func:`compute_stats` reads a :class:`~tweetgen.store.Store` through :func:`summarize`, the pure
aggregation; :func:`render_text` (80 columns, bar histograms) and :func:`render_json` (stable keys)
print the result for ``tweetgen stats``; :func:`parse_since` reads its ``--since`` option.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import InputError
from .spend import Spend, render_lines, summarize_spend
from .store import AttemptRow, CallRow, Store, utc_iso

__all__ = [
    "LATENCY_BUCKETS_MS",
    "LatencyRow",
    "Stats",
    "compute_stats",
    "parse_since",
    "percentile",
    "render_json",
    "render_text",
    "summarize",
]

#: Latency histogram buckets: a label and the exclusive upper bound in milliseconds.
LATENCY_BUCKETS_MS: tuple[tuple[str, float], ...] = (
    ("<100ms", 100),
    ("100-250ms", 250),
    ("250-500ms", 500),
    ("500ms-1s", 1_000),
    ("1-2.5s", 2_500),
    ("2.5-5s", 5_000),
    ("5-10s", 10_000),
    (">=10s", math.inf),
)
WIDTH = 80
BAR_WIDTH = 50
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")


@dataclass(frozen=True)
class LatencyRow:
    """Latency percentiles (ms) of the successful calls of one provider and model."""

    provider: str
    model: str
    count: int
    p50: float
    p95: float
    p99: float
    slowest: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``slowest`` is called ``max`` there)."""
        figures = {"p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.slowest}
        return {"provider": self.provider, "model": self.model, "count": self.count, **figures}


@dataclass(frozen=True)
class Stats:
    """Reliability figures over the stored calls (all of them, or those started since a moment)."""

    since: str | None = None
    first_call: str | None = None
    last_call: str | None = None
    calls: int = 0
    ok: int = 0
    failed: int = 0
    first_attempt_ok: int = 0
    retried_ok: int = 0
    attempts: int = 0
    attempts_histogram: Mapping[int, int] = field(default_factory=dict)
    waited_seconds: float = 0.0
    regenerations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors_by_status: Mapping[str, int] = field(default_factory=dict)
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    failures_by_type: Mapping[str, int] = field(default_factory=dict)
    latency: tuple[LatencyRow, ...] = ()
    latency_histogram: Mapping[str, int] = field(default_factory=dict)
    thought_tokens: int = 0
    #: what the calls cost in US dollars (:mod:`tweetgen.spend`)
    spend: Spend = field(default_factory=Spend)

    @property
    def success_rate(self) -> float | None:
        """Share of calls that succeeded in the end (after any retries)."""
        return _ratio(self.ok, self.calls)

    @property
    def first_attempt_rate(self) -> float | None:
        """Share of calls that succeeded with a single attempt."""
        return _ratio(self.first_attempt_ok, self.calls)

    @property
    def retried_rate(self) -> float | None:
        """Share of calls that succeeded only after more than one attempt (retries or
        regenerations)."""
        return _ratio(self.retried_ok, self.calls)

    @property
    def waited_per_call(self) -> float | None:
        """Average seconds a call spent waiting between attempts."""
        return _ratio(self.waited_seconds, self.calls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict whose keys do not depend on the data (what ``--json`` prints)."""
        return {
            "since": self.since,
            "first_call": self.first_call,
            "last_call": self.last_call,
            "calls": self.calls,
            "ok": self.ok,
            "failed": self.failed,
            "success_rate": _round(self.success_rate, 4),
            "first_attempt_ok": self.first_attempt_ok,
            "first_attempt_rate": _round(self.first_attempt_rate, 4),
            "retried_ok": self.retried_ok,
            "retried_rate": _round(self.retried_rate, 4),
            "attempts": self.attempts,
            "attempts_histogram": {str(k): v for k, v in self.attempts_histogram.items()},
            "waited_seconds": round(self.waited_seconds, 3),
            "waited_per_call": _round(self.waited_per_call, 3),
            "regenerations": self.regenerations,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "thought_tokens": self.thought_tokens,
            "errors_by_status": dict(self.errors_by_status),
            "errors_by_type": dict(self.errors_by_type),
            "failures_by_type": dict(self.failures_by_type),
            "latency_ms": [r.to_dict() for r in self.latency],
            "latency_histogram_ms": dict(self.latency_histogram),
            "spend": self.spend.to_dict(),
        }


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 <= q <= 100) of ``values``: a value that occurred."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q!r}")
    rank = max(1, math.ceil(q * len(ordered) / 100))
    return ordered[rank - 1]


def _bucket(latency_ms: float) -> str:
    return next(label for label, upper in LATENCY_BUCKETS_MS if latency_ms < upper)


def _by_count(counter: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name, so the order is stable."""
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _histogram(counter: Counter[int]) -> dict[int, int]:
    """Counts by attempts, gaps between the smallest and largest filled with zeros."""
    if not counter:
        return {}
    return {n: counter.get(n, 0) for n in range(min(counter), max(counter) + 1)}


def _latency_rows(groups: Mapping[tuple[str, str], list[float]]) -> tuple[LatencyRow, ...]:
    return tuple(
        LatencyRow(
            provider, model, len(v), percentile(v, 50), percentile(v, 95), percentile(v, 99), max(v)
        )
        for (provider, model), v in sorted(groups.items())
    )


def _attempt_errors(attempts: Iterable[AttemptRow]) -> tuple[dict[str, int], dict[str, int]]:
    """Failed attempts by HTTP status (``none`` when there was no response) and by error type."""
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for attempt in attempts:
        if attempt.error_type is not None:
            by_status["none" if attempt.status_code is None else str(attempt.status_code)] += 1
            by_type[attempt.error_type] += 1
    return _by_count(by_status), _by_count(by_type)


def summarize(
    calls: Iterable[CallRow], attempts: Iterable[AttemptRow], *, since: datetime | None = None
) -> Stats:
    """The figures of some stored calls and their attempts (a pure function of the rows)."""
    rows, attempt_rows = list(calls), list(attempts)
    latencies: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    buckets = dict.fromkeys((label for label, _ in LATENCY_BUCKETS_MS), 0)
    for row in rows:
        if row.ok and row.latency_ms is not None:
            latencies[(row.provider, row.model)].append(row.latency_ms)
            buckets[_bucket(row.latency_ms)] += 1
    ok = [r for r in rows if r.ok]
    by_status, by_type = _attempt_errors(attempt_rows)
    return Stats(
        since=utc_iso(since) if since else None,
        first_call=min((r.created_at for r in rows), default=None),
        last_call=max((r.created_at for r in rows), default=None),
        calls=len(rows),
        ok=len(ok),
        failed=len(rows) - len(ok),
        first_attempt_ok=sum(1 for r in ok if r.attempts == 1),
        retried_ok=sum(1 for r in ok if r.attempts > 1),
        attempts=sum(r.attempts for r in rows),
        attempts_histogram=_histogram(Counter(r.attempts for r in rows)),
        waited_seconds=sum(r.waited_seconds for r in rows),
        regenerations=sum(r.regenerations for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        thought_tokens=sum(r.thought_tokens for r in rows),
        errors_by_status=by_status,
        errors_by_type=by_type,
        failures_by_type=_by_count(Counter(r.error_type or "unknown" for r in rows if not r.ok)),
        latency=_latency_rows(latencies),
        latency_histogram=buckets,
        spend=summarize_spend(rows, attempt_rows),
    )


def compute_stats(store: Store, since: datetime | None = None) -> Stats:
    """The figures of every call in ``store``, or of those started at or after ``since``."""
    return summarize(store.calls(since), store.attempts(since=since), since=since)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC moment from an ISO date or datetime (naive means UTC) or an age such as ``30m``,
    ``1h``, ``7d``."""
    cleaned = text.strip()
    moment: datetime | None = None
    relative = _RELATIVE.fullmatch(cleaned.lower())
    try:
        if relative:
            now = now or datetime.now(timezone.utc)
            now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
            return now.astimezone(timezone.utc) - timedelta(
                seconds=int(relative[1]) * _UNITS[relative[2]]
            )
        moment = datetime.fromisoformat(
            cleaned[:-1] + "+00:00" if cleaned[-1:] in ("Z", "z") else cleaned
        )
    except (ValueError, OverflowError):
        pass
    if moment is None:
        raise InputError(
            f"invalid --since value {text!r}: use an ISO date or datetime "
            "(2024-05-01, 2024-05-01T12:00, 2024-05-01T12:00:00Z; no zone means UTC) "
            "or an age in s, m, h, d or w (30m, 1h, 7d)"
        )
    return (
        moment.replace(tzinfo=timezone.utc)
        if moment.tzinfo is None
        else moment.astimezone(timezone.utc)
    )


# --- rendering ------------------------------------------------------------------------------------


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _second(moment: str | None) -> str:
    """A stored timestamp to the second, ``2024-05-01 12:00:00Z``."""
    return f"{moment[:19].replace('T', ' ')}Z" if moment else "-"


def _percent(rate: float | None) -> str:
    return "     -" if rate is None else f"{rate:>6.1%}"


def _line(label: str, value: object, note: str = "") -> str:
    return _clip(f"  {_clip(label, 24):<24}{value!s:>10}  {note}".rstrip(), WIDTH)


def _bars(counts: Mapping[str, int]) -> list[str]:
    """A horizontal bar per entry, ``label | ████ n``, scaled so the longest fits in 80 columns."""
    if not counts:
        return []
    label_width = min(max(len(k) for k in counts), 24)
    peak = max(counts.values())
    room = min(max(WIDTH - 2 - label_width - 3 - 1 - len(str(peak)), 1), BAR_WIDTH)
    lines = []
    for label, count in counts.items():
        bar = "█" * max(1, round(count * room / peak)) + " " if count else ""
        lines.append(f"  {_clip(label, label_width):>{label_width}} | {bar}{count}")
    return lines


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> list[str]:
    """Columns left-aligned (the first ``text_columns``) or right-aligned, clipped to 80 columns."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    while 2 + sum(widths) + 2 * (len(widths) - 1) > WIDTH and max(widths[:text_columns]) > 8:
        widest = max(range(text_columns), key=lambda i: widths[i])
        widths[widest] -= 1
    lines = []
    for row in cells:
        parts = [
            _clip(c, w).ljust(w) if i < text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append(("  " + "  ".join(parts)).rstrip())
    return lines


def _counts(title: str, counts: Mapping[str, int]) -> list[str]:
    return [title, *(_line(k, v) for k, v in counts.items())] if counts else []


def _summary(stats: Stats) -> list[str]:
    per_call = "" if stats.waited_per_call is None else f"{stats.waited_per_call:.2f} s per call"
    return [
        "Calls",
        _line("total", stats.calls),
        _line("ok", stats.ok, _percent(stats.success_rate)),
        _line("failed", stats.failed, _percent(_ratio(stats.failed, stats.calls))),
        _line("ok on first attempt", stats.first_attempt_ok, _percent(stats.first_attempt_rate)),
        _line("ok after more attempts", stats.retried_ok, _percent(stats.retried_rate)),
        _line("attempts", stats.attempts),
        _line("regenerations", stats.regenerations),
        _line("tokens in / out", f"{stats.input_tokens} / {stats.output_tokens}"),
        _line("thinking tokens", stats.thought_tokens),
        _line("retry overhead (waiting)", f"{stats.waited_seconds:.2f} s", per_call),
    ]


def _latency(stats: Stats) -> list[str]:
    if not stats.latency:
        return []
    header = ("provider", "model", "calls", "p50", "p95", "p99", "max")
    rows = [
        (r.provider, r.model, str(r.count), *(f"{v:.1f}" for v in (r.p50, r.p95, r.p99, r.slowest)))
        for r in stats.latency
    ]
    filled = [k for k, v in stats.latency_histogram.items() if v]
    keys = list(stats.latency_histogram)
    shown = keys[keys.index(filled[0]) : keys.index(filled[-1]) + 1] if filled else []
    return [
        "Latency of ok calls (ms)",
        *_table(header, rows, text_columns=2),
        "",
        "Latency histogram of ok calls",
        *_bars({k: stats.latency_histogram[k] for k in shown}),
    ]


def render_text(stats: Stats) -> str:
    """A plain-text report for a terminal, no line wider than 80 columns."""
    span = f"since {_second(stats.since)}" if stats.since else "all time"
    if not stats.calls:
        return f"tweetgen stats ({span}): no calls recorded\n"
    sections = [
        [
            f"tweetgen stats ({span})",
            f"  calls from {_second(stats.first_call)} to {_second(stats.last_call)}",
        ],
        _summary(stats),
        ["Attempts per call", *_bars({str(k): v for k, v in stats.attempts_histogram.items()})],
        _counts("Failed attempts by status code", stats.errors_by_status),
        _counts("Failed attempts by error type", stats.errors_by_type),
        _counts("Failed calls by error type", stats.failures_by_type),
        _latency(stats),
        render_lines(stats.spend),
    ]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def render_json(stats: Stats) -> str:
    """The figures as indented JSON with the same keys in the same order whatever the data."""
    return json.dumps(stats.to_dict(), indent=2, ensure_ascii=False) + "\n"
