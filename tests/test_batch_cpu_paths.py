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


class _Clock:
    """``time`` for the fleet runner: ``monotonic`` moves only when told (or by a slow read)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _runner(store: Any, queue: Any) -> Any:
    from tweetgen import TweetGenerator
    from tweetgen.batchfleet import FleetRunner
    from tweetgen.config import load_settings
    from tweetgen.providers.gemini import GeminiProvider
    from tweetgen.throttle import BatchStop

    provider = GeminiProvider(api_key="test-key-123", model="m", base_url="http://127.0.0.1:9")
    generator = TweetGenerator(provider=provider, settings=load_settings(env={}, dotenv_path=None))
    return FleetRunner(
        generator,
        store,
        BatchStop(),
        queue,
        concurrency=2,
        retry_failed=False,
        on_progress=lambda summary: None,
    )


@pytest.mark.parametrize(("read_seconds", "next_after"), [(0.002, 1.0), (0.1, 5.0)])
def test_the_batchs_progress_is_read_less_often_when_reading_it_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_seconds: float, next_after: float
) -> None:
    from tweetgen import batchfleet
    from tweetgen.batchqueue import BatchQueue
    from tweetgen.store import Store

    clock = _Clock()
    monkeypatch.setattr(batchfleet, "time", clock)
    with Store(tmp_path / "t.db") as store:
        queue = BatchQueue(store, "b1", worker="w", lease=30.0)
        queue.load([(n, f"key-{n}", "{}") for n in range(1, 4)], 3, {})
        queue.finish([c.number for c in queue.claim(2)])
        reads: list[int] = []
        real_state = queue.state

        def state(*, done: bool = True) -> Any:
            found = real_state(done=done)
            if done:
                reads.append(found.done)
                clock.now += read_seconds  # the read of the whole batch took this long
            return found

        monkeypatch.setattr(queue, "state", state)
        runner = _runner(store, queue)
        runner._refresh()
        assert reads == [2]
        assert runner.summary.batch_done == 2
        clock.now += next_after - 0.01
        runner._refresh()
        assert len(reads) == 1  # not yet: 1 s, or 50 times as long as the last read took
        clock.now += 0.02
        runner._refresh()
        assert len(reads) == 2
