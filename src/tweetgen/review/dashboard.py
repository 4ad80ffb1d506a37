"""The dashboard's figures: ``tweetgen stats`` (:func:`tweetgen.stats.compute_stats`, spend
included) and what it does not hold, the latency percentiles of the ok calls per UTC day (per
hour when the calls span less than two days), drawn as charts by :mod:`.charts`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..stats import Stats, compute_stats, percentile
from ..store import Store
from .charts import Series, bars, lines

__all__ = ["Dashboard", "LatencyPoint", "dashboard", "latency_over_time"]

#: the most time buckets drawn (the latest ones)
MAX_BUCKETS = 60
_LATENCIES = (
    "SELECT id, created_at, latency_ms FROM calls WHERE status = 'ok' AND latency_ms IS NOT NULL "
    "AND id > ? ORDER BY id LIMIT ?"
)
_PAGE = 5000


@dataclass(frozen=True)
class LatencyPoint:
    """The latency percentiles (ms) of the ok calls started in one day or hour."""

    bucket: str
    calls: int
    p50: float
    p95: float
    p99: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(vars(self))


def latency_over_time(store: Store) -> list[LatencyPoint]:
    """Percentiles per UTC day, or per hour when the calls span less than two days; the latest
    :data:`MAX_BUCKETS`."""
    rows: list[tuple[str, float]] = []
    last = 0
    while True:
        page = store.query(_LATENCIES, (last, _PAGE))
        rows += [(r["created_at"], float(r["latency_ms"])) for r in page]
        if len(page) < _PAGE:
            break
        last = int(page[-1]["id"])
    if not rows:
        return []
    days = {at[:10] for at, _ in rows}
    width = 13 if len(days) < 2 else 10  # 2026-12-03T08 or 2026-12-03
    groups: defaultdict[str, list[float]] = defaultdict(list)
    for at, ms in rows:
        groups[at[:width]].append(ms)
    return [
        LatencyPoint(
            key.replace("T", " ") + (":00" if width == 13 else ""),
            len(v), percentile(v, 50), percentile(v, 95), percentile(v, 99),
        )
        for key, v in sorted(groups.items())[-MAX_BUCKETS:]
    ]  # fmt: skip


@dataclass(frozen=True)
class Dashboard:
    """The figures and their charts."""

    stats: Stats
    latency: list[LatencyPoint]

    def charts(self) -> dict[str, str]:
        """Each chart's SVG (or a sentence when there is nothing to draw), by name."""
        spend = self.stats.spend
        return {
            "attempts": bars(
                "Calls by number of attempts",
                {str(k): v for k, v in self.stats.attempts_histogram.items()},
            ),
            "latency": lines(
                "Latency of ok calls (ms) over time",
                [p.bucket for p in self.latency],
                [
                    Series("p50", [p.p50 for p in self.latency]),
                    Series("p95", [p.p95 for p in self.latency]),
                    Series("p99", [p.p99 for p in self.latency]),
                ],
            ),
            "errors": bars("Failed attempts by error type", dict(self.stats.errors_by_type)),
            "status": bars("Failed attempts by status code", dict(self.stats.errors_by_status)),
            "spend": bars(
                "Spend per UTC day (priced calls)",
                {r.key: r.cost_usd or 0.0 for r in spend.by_day},
                unit="$",
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """What ``tweetgen stats --json`` prints, and the latency per day or hour."""
        return {**self.stats.to_dict(), "latency_over_time": [p.to_dict() for p in self.latency]}


def dashboard(store: Store) -> Dashboard:
    """The dashboard of every call in ``store``."""
    return Dashboard(compute_stats(store), latency_over_time(store))
