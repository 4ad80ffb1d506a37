"""The helpers that keep the suite steady on a busy machine: waiting for a condition, polling a
store, reaping."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Children, await_until, store_count, store_rows, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    values = iter([0, None, [], 7, 8])
    assert wait_until(lambda: next(values), what="a number", interval=0) == 7


def test_wait_until_names_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(
        pytest.fail.Exception,
        match=r"gave up after 0.05 s waiting for the moon \(last value: \[\]\)",
    ):
        wait_until(list, what="the moon", timeout=0.05, interval=0.01)


def test_wait_until_stops_at_once_when_the_child_has_exited(children: Children) -> None:
    process = children.start(
        [sys.executable, "-c", "import sys; sys.exit('boom')"], stderr=subprocess.PIPE, text=True
    )
    with pytest.raises(pytest.fail.Exception) as caught:
        wait_until(lambda: False, what="progress", timeout=600, process=process)
    assert "exited with code 1 before progress (last value: False)" in str(caught.value)
    assert "boom" in str(caught.value)


def test_await_until_lets_the_event_loop_run() -> None:
    async def go() -> int:
        box: list[int] = []
        asyncio.get_running_loop().call_soon(box.append, 3)
        return await await_until(lambda: sum(box), what="the callback")

    assert asyncio.run(go()) == 3


def test_store_rows_is_none_until_the_store_can_answer(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    assert store_rows(path, "SELECT COUNT(*) FROM calls") is None
    assert not path.exists()  # polling never creates the store
    connection = sqlite3.connect(path)
    try:
        assert store_rows(path, "SELECT COUNT(*) FROM calls") is None  # the schema is not there yet
        assert store_count(path, "SELECT COUNT(*) FROM calls") == 0
        connection.executescript(
            "CREATE TABLE calls (status TEXT); INSERT INTO calls VALUES ('ok'), ('ok');"
        )
        assert store_count(path, "SELECT COUNT(*) FROM calls WHERE status = 'ok'") == 2
        connection.execute("BEGIN EXCLUSIVE")  # a writer holds the lock: "not yet", not an error
        assert store_rows(path, "SELECT COUNT(*) FROM calls") is None
    finally:
        connection.close()


def test_children_are_killed_reaped_and_closed(tmp_path: Path) -> None:
    spawned = Children()
    process = spawned.start(
        [sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.PIPE
    )
    spawned.close()
    assert process.returncode == -signal.SIGKILL  # killed, and waited for
    assert process.stdout is not None
    assert process.stdout.closed
