"""A command's local workers (issue 14, item 2): their shares of the limits, what they are told,
and how they learn that their command is gone."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from conftest import PROGRESS_TIMEOUT, await_until

from tweetgen.batchcommand import _part
from tweetgen.batchworkers import ENV, WorkerSpec, shares, watch_parent


def test_concurrency_is_split_in_whole_numbers_and_the_limits_evenly() -> None:
    assert shares(50, 2) == [25, 25]
    assert shares(8, 3) == [3, 3, 2]
    assert sum(shares(7, 4)) == 7
    assert _part(600.0, 1 / 3) == pytest.approx(200.0)  # --rpm 600 over 3 workers
    assert _part(None, 0.5) is None  # no limit stays no limit


def test_a_worker_reads_its_spec_from_the_environment() -> None:
    spec = WorkerSpec("host:1:ab/2", 25, 0.5, "summary.json")
    assert WorkerSpec.from_env({ENV: spec.to_env()}) == spec
    assert WorkerSpec.from_env({}) is None  # a command of its own


@pytest.mark.parametrize(
    ("words", "close", "levels"),
    [
        (b"stop\n", False, [1]),
        (b"stop\nabandon\n", False, [1, 2]),
        (b"", True, [2]),  # end of file: the command is gone, abandon
    ],
)
def test_a_worker_acts_on_its_commands_words_and_on_its_end(
    words: bytes, close: bool, levels: list[int]
) -> None:
    read, write = os.pipe()
    seen: list[int] = []
    ended: list[int] = []

    async def go() -> threading.Thread:
        watcher = watch_parent(asyncio.get_running_loop(), seen.append, read, ended.append)
        os.write(write, words)
        if close:
            os.close(write)
        await await_until(lambda: len(seen) >= len(levels), what=f"levels {levels}")
        return watcher

    watcher = asyncio.run(go())
    if not close:
        os.close(write)
    watcher.join(timeout=PROGRESS_TIMEOUT)
    os.close(read)
    assert seen[: len(levels)] == levels
    assert not watcher.is_alive()  # the timer it started ends the process (here: records it)
