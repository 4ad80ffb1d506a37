"""The CPU a batch spends per row (issue 14's last target): a local worker's connections, the
batch's progress read from the rows not done, and the other cuts keep every guarantee of the
work queue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tweetgen import batchcommand, batchrun
from tweetgen.batchworkers import WorkerSpec
from tweetgen.exitcodes import EXIT_OK


class _Idle:
    """A generator that is only closed (the worker is dismissed before it runs a row)."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True


def test_a_local_worker_sizes_its_connections_from_the_commands_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}
    idle = _Idle()

    def generator(args: argparse.Namespace, observers: Any, stop: Any, share: float) -> _Idle:
        built.update(pool=args.concurrency, metrics=args.metrics_port, share=share)
        return idle

    monkeypatch.setattr(batchcommand, "_generator", generator)
    monkeypatch.setattr(batchcommand, "_observers", lambda args, store, stack: [])
    monkeypatch.setattr(batchrun, "parent_lines", lambda: iter([b"exit"]))
    args = argparse.Namespace(db=str(tmp_path / "store.db"), concurrency=50, metrics_port=9100)
    spec = WorkerSpec("host:1:ab/2", 25, 0.5, str(tmp_path / "2.json"))

    assert batchrun.run_worker(args, spec) == EXIT_OK
    # the pools hold the command's 50 connections while this worker runs its 25 calls: pools kept
    # full cost more CPU per row; no second metrics server; half of --rpm and --tpm
    assert built == {"pool": 50, "metrics": None, "share": 0.5}
    assert idle.closed
