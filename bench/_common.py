"""What every benchmark shares: robust summaries, interleaved timing, and the result types the
report renders."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Config",
    "Sample",
    "Section",
    "Table",
    "Target",
    "interleave",
    "paired_ratios",
    "per_call",
    "ratio",
]


@dataclass(frozen=True)
class Config:
    """How many repetitions each benchmark makes (``full`` for the report, ``quick`` for a smoke
    run)."""

    quick: bool
    call_rounds: int
    call_inner: int
    slow_rounds: int
    slow_inner: int
    startup_rounds: int
    batch_rows: int
    batch_repeats: int
    memory_rows: tuple[int, int]
    log_rounds: int
    log_events: int
    storm_seeds: int
    outage_seeds: int
    budget_seconds: float
    baseline_rows: int = 500
    baseline_repeats: int = 3

    @classmethod
    def full(cls) -> Config:
        return cls(
            quick=False,
            call_rounds=41,
            call_inner=25,
            slow_rounds=11,
            slow_inner=4,
            startup_rounds=21,
            batch_rows=2000,
            batch_repeats=3,
            memory_rows=(10_000, 100_000),
            log_rounds=21,
            log_events=1000,
            storm_seeds=100,
            outage_seeds=20,
            budget_seconds=540.0,
        )

    @classmethod
    def smoke(cls) -> Config:
        return cls(
            quick=True,
            call_rounds=5,
            call_inner=10,
            slow_rounds=3,
            slow_inner=2,
            startup_rounds=3,
            batch_rows=200,
            batch_repeats=1,
            memory_rows=(500, 2000),
            log_rounds=5,
            log_events=200,
            storm_seeds=10,
            outage_seeds=3,
            budget_seconds=120.0,
            baseline_rows=80,
            baseline_repeats=1,
        )


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one quantity (seconds, megabytes, calls...)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def quartiles(self) -> tuple[float, float]:
        if self.n < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3

    def show(self, *, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
        """``median unit (IQR q1-q3, n=N)``, each value multiplied by ``scale``."""
        q1, q3 = self.quartiles
        median = f"{self.median * scale:.{digits}f}{unit}"
        return f"{median} (IQR {q1 * scale:.{digits}f}-{q3 * scale:.{digits}f}, n={self.n})"


def ratio(candidate: Sample, baseline: Sample) -> float:
    """The ratio of the medians."""
    return candidate.median / baseline.median


def paired_ratios(candidate: Sample, baseline: Sample) -> Sample:
    """Round-by-round ratios of two interleaved samples: their spread shows how steady the ratio
    is."""
    return Sample(tuple(c / b for c, b in zip(candidate.values, baseline.values, strict=True)))


def per_call(func: Callable[[], object], inner: int) -> Callable[[], float]:
    """A measurement: the mean seconds of ``inner`` back-to-back calls of ``func``."""

    def measure() -> float:
        started = time.perf_counter()
        for _ in range(inner):
            func()
        return (time.perf_counter() - started) / inner

    return measure


def interleave(variants: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, Sample]:
    """Measure every variant once per round, rotating the order each round so drift hits all
    alike."""
    names = list(variants)
    values: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(variants[name]())
    return {name: Sample(tuple(found)) for name, found in values.items()}


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells."""

    title: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True)
class Target:
    """One target of the issue: what it asks, what was measured, whether it was met, and what
    limits it."""

    name: str
    goal: str
    measured: str
    met: bool | None
    limits: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "reported (no threshold)"}[self.met]


@dataclass
class Section:
    """The outcome of one benchmark, ready for the console and ``docs/performance.md``."""

    title: str
    method: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    seconds: float = 0.0
