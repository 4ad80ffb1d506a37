"""Benchmark 0's results: one side's per-call rounds and batch runs, and the tables and targets
the report shows for them (``bench/baseline.py`` measures)."""

from __future__ import annotations

from dataclasses import dataclass

from _common import Sample, Table, Target

__all__ = ["Batch", "PerCall", "batch_table", "per_call_table", "targets"]

#: the issue's per-call targets: at most this much added to a raw post, and this ratio to it
TARGET_ADDED_MS, TARGET_RATIO = 0.35, 1.6
BATCH_LATENCY, BATCH_CONCURRENCY = 0.05, 50
#: the rows of the batch whose CPU stands for a batch's start-up and end
SMALL_BATCH = 20


@dataclass(frozen=True)
class PerCall:
    """One side's rounds: seconds per raw post and per ``generate_tweet``, wall and CPU."""

    raw: Sample
    tweetgen: Sample
    raw_cpu: Sample
    tweetgen_cpu: Sample

    @property
    def added_ms(self) -> float:
        return (self.tweetgen.median - self.raw.median) * 1e3

    @property
    def added_cpu_ms(self) -> float:
        return (self.tweetgen_cpu.median - self.raw_cpu.median) * 1e3

    @property
    def ratio(self) -> float:
        return self.tweetgen.median / self.raw.median

    @property
    def paired(self) -> Sample:
        """Round-by-round ratios ``generate_tweet / raw`` (their spread)."""
        pairs = zip(self.tweetgen.values, self.raw.values, strict=True)
        return Sample(tuple(t / r for t, r in pairs))


@dataclass(frozen=True)
class Batch:
    """One side's batch runs: CPU seconds per row, start-up excluded (the runs of a small batch
    subtracted), wall seconds, rows done."""

    cpu_per_row: Sample
    marginal_cpu: Sample
    wall: Sample
    ok: tuple[int, ...]
    rows: int


def per_call_table(found: dict[str, PerCall]) -> Table:
    rows = []
    for name, side in found.items():
        low, high = side.paired.quartiles
        rows.append(
            (
                name,
                side.raw.show(scale=1e3, unit=" ms", digits=3),
                side.tweetgen.show(scale=1e3, unit=" ms", digits=3),
                f"{side.added_ms:+.3f} ms",
                f"{side.ratio:.2f}x (paired IQR {low:.2f}-{high:.2f})",
                f"{side.added_cpu_ms:+.3f} ms",
            )
        )
    before, after = found.values()
    rows.append(
        (
            "after / before",
            f"{after.raw.median / before.raw.median:.2f}x",
            f"{after.tweetgen.median / before.tweetgen.median:.2f}x",
            f"{after.added_ms / before.added_ms:.2f}x",
            "",
            f"{after.added_cpu_ms / before.added_cpu_ms:.2f}x",
        )
    )
    headers = (
        "source",
        "raw httpx post: median (IQR, n)",
        "generate_tweet: median (IQR, n)",
        "added per call",
        "generate_tweet / raw",
        "client CPU added per call",
    )
    return Table("Per call, instant sandbox, INFO logging to a file", headers, rows)


def batch_table(found: dict[str, Batch]) -> Table:
    rows = [
        (
            name,
            side.cpu_per_row.show(scale=1e3, unit=" ms", digits=2),
            side.marginal_cpu.show(scale=1e3, unit=" ms", digits=2),
            side.wall.show(unit=" s"),
            " / ".join(f"{ok}/{side.rows}" for ok in side.ok),
        )
        for name, side in found.items()
    ]
    before, after = found.values()
    cpu = after.cpu_per_row.median / before.cpu_per_row.median
    marginal = after.marginal_cpu.median / before.marginal_cpu.median
    wall = after.wall.median / before.wall.median
    rows.append(("after / before", f"{cpu:.2f}x", f"{marginal:.2f}x", f"{wall:.2f}x", ""))
    title = (
        f"tweetgen batch: {before.rows:,} rows, sandbox answering after "
        f"{BATCH_LATENCY * 1e3:.0f} ms, concurrency {BATCH_CONCURRENCY}"
    )
    headers = (
        "source",
        "client CPU per row: median (IQR, n)",
        f"without start-up (minus a {SMALL_BATCH}-row run)",
        "wall",
        "ok",
    )
    return Table(title, headers, rows)


def targets(calls: dict[str, PerCall], batches: dict[str, Batch]) -> list[Target]:
    before, after = calls.values()
    measured = (
        f"after {after.added_ms:+.3f} ms ({after.ratio:.2f}x a raw post); "
        f"before {before.added_ms:+.3f} ms ({before.ratio:.2f}x)"
    )
    limits = (
        f"after the change tweetgen adds {after.added_ms:.3f} ms of wall time and "
        f"{after.added_cpu_ms:.3f} ms of CPU to a {after.raw.median * 1e3:.3f} ms raw post"
    )
    met = after.added_ms <= TARGET_ADDED_MS and after.ratio <= TARGET_RATIO
    cpu_before, cpu_after = (side.cpu_per_row.median * 1e3 for side in batches.values())
    net_before, net_after = (side.marginal_cpu.median * 1e3 for side in batches.values())
    return [
        Target(
            "0a. per-call cost, before and after",
            f"at most {TARGET_ADDED_MS} ms added to a raw httpx post, generate_tweet / raw <= "
            f"{TARGET_RATIO} (instant sandbox, INFO to a file)",
            measured,
            met,
            "" if met else limits,
        ),
        Target(
            "0b. batch CPU per row, before and after",
            "stated side by side",
            f"after {cpu_after:.2f} ms, before {cpu_before:.2f} ms "
            f"({cpu_after / cpu_before:.2f}x); without start-up {net_after:.2f} ms vs "
            f"{net_before:.2f} ms ({net_after / net_before:.2f}x)",
            None,
        ),
    ]
