"""Batch progress on stderr: a rich progress bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .batch import BatchSummary

__all__ = ["Reporter"]


class Reporter:
    """Reports done, failed, retries, rate and ETA; ``update`` is the batch's progress callback."""

    def __init__(
        self,
        *,
        total: int | None,
        stream: TextIO | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.interval = interval
        self.clock = clock
        self.started = self.last = clock()
        self._bar: Any = None
        self.first_done: int | None = None  # the whole batch's rows done when first seen
        self._task: Any = None

    def __enter__(self) -> Reporter:
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("batch", total=self.total, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    @staticmethod
    def done(summary: BatchSummary) -> int:
        """Rows done: in the whole batch when the store says (a fleet), else in this run."""
        own = summary.ok + summary.failed + summary.skipped
        return own if summary.batch_done is None else max(own, summary.batch_done)

    def line(self, summary: BatchSummary) -> str:
        """One plain progress line."""
        done = self.done(summary)
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = (summary.ok + summary.failed) / elapsed
        if summary.batch_done is not None and self.first_done is not None:  # a fleet's pace
            rate = max(rate, (summary.batch_done - self.first_done) / elapsed)
        of = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            eta = f", ETA {max(0.0, (self.total - done) / rate):.0f} s"
        return (
            f"batch: {done}{of} rows ({summary.ok} ok, {summary.failed} failed, "
            f"{summary.skipped} skipped), {summary.retries} retries, {rate:.1f} rows/s{eta}"
        )

    def update(self, summary: BatchSummary) -> None:
        """Refresh the bar, or print a line when ``interval`` seconds have passed."""
        if self.first_done is None:
            self.first_done = summary.batch_done
        done = self.done(summary)
        if self._bar is not None:
            detail = f"ok {summary.ok} failed {summary.failed} retries {summary.retries}"
            self._bar.update(self._task, completed=done, detail=detail)
            return
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            print(self.line(summary), file=self.stream, flush=True)
