"""The batch runner in-process: resume rules, requeue on an open circuit, progress lines, output
records."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from array import array
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeTime, await_until

from tweetgen import TweetGenerator
from tweetgen.batch import BatchSummary, prepared_rows, run_batch, write_output
from tweetgen.batchio import check_writable, detect_format, read_rows
from tweetgen.config import load_settings
from tweetgen.errors import ConfigurationError
from tweetgen.progress import Reporter
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import BreakerSettings
from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store

SETTINGS = load_settings(env={}, dotenv_path=None)
KEY_SETTINGS = {"provider": "sandbox", "model": "m"}


def _generator(
    server: SandboxServer, store: Store, fake: FakeTime, **kwargs: Any
) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
    )
    return TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        observers=[store.observer()],
        async_sleep=fake.asleep,
        clock=fake.clock,
        **kwargs,
    )


def _run(generator: TweetGenerator, path: Path, store: Store, **kwargs: Any) -> BatchSummary:
    async def go() -> BatchSummary:
        try:
            rows = prepared_rows(path, None, KEY_SETTINGS)
            return await run_batch(rows, generator, store, batch_id="b", **kwargs)
        finally:
            await generator.aclose()

    return asyncio.run(go())


def test_failed_rows_are_skipped_unless_retry_failed(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("alpha\nbeta\n")
    with Store(tmp_path / "t.db") as store, SandboxServer(faults="400") as server:
        first = _run(_generator(server, store, FakeTime()), tmp_path / "in.txt", store)
        again = _run(_generator(server, store, FakeTime()), tmp_path / "in.txt", store)
        retried = _run(
            _generator(server, store, FakeTime()), tmp_path / "in.txt", store, retry_failed=True
        )
        written = write_output(
            tmp_path / "out.jsonl",
            "jsonl",
            prepared_rows(tmp_path / "in.txt", None, KEY_SETTINGS),
            store,
        )
    assert (first.ok, first.failed, first.skipped) == (1, 1, 0)
    assert (again.ok, again.failed, again.skipped, again.still_failed) == (
        0,
        0,
        1,
        1,
    )  # the failure is not hidden
    assert (retried.ok, retried.failed, retried.skipped) == (1, 0, 1)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written == 2
    assert [r["status"] for r in records] == ["ok", "ok"]


def test_rows_wait_for_an_open_circuit_instead_of_failing(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(4)))
    fake = FakeTime()
    breaker = BreakerSettings(consecutive_failures=2, open_seconds=5.0, half_open_calls=1)
    with Store(tmp_path / "t.db") as store, SandboxServer(faults="503*2") as server:
        generator = _generator(server, store, fake, circuit_breaker=breaker, retry_budget=False)
        summary = _run(generator, tmp_path / "in.txt", store, concurrency=1)
    assert (summary.ok, summary.failed) == (
        3,
        1,
    )  # the first row spent its attempts and opened the circuit
    assert fake.sleeps == [
        1.0,
        5.0,
    ]  # one retry of row 1, then row 2 waited for the half-open circuit


def test_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    fake = FakeTime()
    reporter = Reporter(total=10, stream=stream, interval=1.0, clock=fake.clock)
    summary = BatchSummary(total=10, ok=3, failed=1, retries=2)
    with reporter:
        reporter.update(summary)
        fake.now += 2.0
        reporter.update(summary)
    assert (
        stream.getvalue()
        == "batch: 4/10 rows (3 ok, 1 failed, 0 skipped), 2 retries, 2.0 rows/s, ETA 3 s\n"
    )


def test_progress_of_a_fleet_counts_the_whole_batch() -> None:
    stream = io.StringIO()
    fake = FakeTime()
    reporter = Reporter(total=100, stream=stream, interval=1.0, clock=fake.clock)
    with reporter:
        reporter.update(BatchSummary(total=5, ok=5, batch_done=10))
        fake.now += 2.0
        reporter.update(BatchSummary(total=10, ok=10, batch_done=50))  # others did 30 more
    assert stream.getvalue() == (
        "batch: 50/100 rows (10 ok, 0 failed, 0 skipped), 0 retries, 20.0 rows/s, ETA 2 s\n"
    )
    summary = BatchSummary(total=100, ok=40, skipped=10, others=50, takeovers=3)
    assert summary.lines()[0].startswith(
        "100 rows: 40 ok, 0 failed, 10 already done, 50 by other workers; 0 retries"
    )
    assert "3 rows were taken over from workers that stopped holding them" in summary.lines()
    merged = BatchSummary(ok=1, latencies=array("d", [5.0]))
    merged.merge(BatchSummary(ok=2, failed=1, latencies=array("d", [7.0])).to_json())
    assert (merged.ok, merged.failed, list(merged.latencies)) == (3, 1, [5.0, 7.0])


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Reporter(total=4, stream=stream) as reporter:
        reporter.update(BatchSummary(total=4, ok=4))
    assert "4/4" in stream.getvalue()


def test_summary_lines() -> None:
    summary = BatchSummary(
        total=3,
        ok=2,
        failed=1,
        retries=4,
        latencies=array("d", [10.0, 30.0]),
        elapsed=1.25,
        interrupted=True,
    )
    assert summary.lines() == [
        "3 rows: 2 ok, 1 failed, 0 already done; 4 retries; p50 10 ms, p95 30 ms; 1.2 s",
        "interrupted: finished rows are saved; run the same command again to resume",
    ]
    assert BatchSummary().lines()[0].endswith("no calls; 0.0 s")


@pytest.mark.parametrize(
    ("name", "given", "fmt"),
    [
        ("a.csv", None, "csv"),
        ("a.ndjson", None, "jsonl"),
        ("a.txt", None, "txt"),
        ("a", "csv", "csv"),
    ],
)
def test_detect_format(name: str, given: str | None, fmt: str) -> None:
    assert detect_format(Path(name), given) == fmt


def test_bad_format_and_unwritable_outputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="input format"):
        detect_format(Path("x"), "xml")
    with pytest.raises(ConfigurationError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(ConfigurationError, match="cannot read input file"):
        read_rows(tmp_path / "missing.txt")


def test_csv_row_with_too_many_fields_and_bom(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b"\xef\xbb\xbftopic,tone\nAI,casual,extra\nGo,witty\n")
    rows = list(read_rows(tmp_path / "in.csv"))
    assert [(r.number, r.error) for r in rows] == [
        (1, "row has more fields than the header"),
        (2, None),
    ]
    assert rows[1].values == {"topic": "Go", "tone": "witty"}


def test_an_unexpected_error_fails_the_row_not_the_batch(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("alpha\nbeta\n")
    with Store(tmp_path / "t.db") as store, SandboxServer() as server:
        generator = _generator(server, store, FakeTime())
        original = generator.provider.agenerate
        calls = {"n": 0}

        async def flaky(request: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise UnicodeEncodeError("ascii", "“", 0, 1, "ordinal not in range(128)")
            return await original(request)

        generator.provider.agenerate = flaky  # type: ignore[method-assign]
        summary = _run(generator, tmp_path / "in.txt", store, concurrency=1)
        rows = [(c.status, c.error_type) for c in store.calls()]
    assert (summary.ok, summary.failed) == (1, 1)
    assert rows == [("failed", "UnicodeEncodeError"), ("ok", None)]


def test_a_stop_while_waiting_for_a_slot_schedules_nothing_more(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(6)))
    # the first two answers take 2 s: the signal is surely handled while the third row still waits
    # for a slot
    with Store(tmp_path / "t.db") as store, SandboxServer(faults="ok:2*2") as server:
        generator = _generator(server, store, FakeTime())

        async def go() -> BatchSummary:
            rows = prepared_rows(tmp_path / "in.txt", None, KEY_SETTINGS)
            task = asyncio.create_task(
                run_batch(rows, generator, store, batch_id="b", concurrency=2)
            )
            await await_until(lambda: len(server.requests) >= 2, what="the first two requests")
            os.kill(os.getpid(), signal.SIGINT)
            try:
                return await task
            finally:
                await generator.aclose()

        summary = asyncio.run(go())
    assert summary.interrupted
    assert summary.ok == summary.total == len(server.requests) == 2


# --- one path for a row: read once, prepared once, one write into the store (issue 13) ----------


def test_the_batch_command_reads_the_input_once_and_prepares_each_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tweetgen import batchinput, batchrows
    from tweetgen.cli import main

    source = tmp_path / "in.jsonl"
    rows = ['{"topic": "alpha"}', '{"topic": ""}', '{"topic": "beta", "id": "b"}', '"alpha"']
    source.write_text("\n".join(rows) + "\n")
    opened: list[Any] = []
    prepared: list[int] = []
    written: list[str] = []
    read, prepare, write = batchinput.read_rows, batchrows.prepare, Store.write

    def reading(*args: Any) -> Any:
        opened.append(args)
        return read(*args)

    def preparing(row: Any, *args: Any) -> Any:
        prepared.append(row.number)
        return prepare(row, *args)

    def writing(self: Store, record: Any) -> int:
        written.append(str(record.call["request_id"]))
        return write(self, record)

    monkeypatch.setattr(batchinput, "read_rows", reading)
    monkeypatch.setattr(batchrows, "prepare", preparing)
    monkeypatch.setattr(Store, "write", writing)
    monkeypatch.chdir(tmp_path)
    with SandboxServer() as server:
        monkeypatch.setenv("GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("GEMINI_API_KEY", "test-key")
        out, db = tmp_path / "out.jsonl", tmp_path / "t.db"
        code = main(["batch", str(source), "-o", str(out), "--db", str(db), "--log-file", "", "-q"])
    assert code == 1  # the empty topic and the duplicate failed
    assert len(opened) == 1
    assert prepared == [1, 2, 3, 4]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [
        ("1", "ok"),
        ("2", "failed"),
        ("b", "ok"),
        ("4", "failed"),
    ]
    assert (records[1]["error"], records[3]["error"]) == ("topic is empty", "duplicate of row 1")
    # the two calls and the two input errors went into the store by the same method
    assert sorted(written).count("input-error") == 2
    assert len(written) == 4
    with Store(db) as store:
        stored = sorted((c.row_number, c.error_type) for c in store.calls())
    assert stored == [(1, None), (2, "InputError"), (3, None), (4, "InputError")]


def test_a_batch_pool_keeps_as_many_connections_alive_as_calls_may_be_in_flight() -> None:
    from tweetgen.pool import PooledTransport
    from tweetgen.throttle import pooled_transport

    async def limits(concurrency: int) -> list[tuple[int, int]]:
        transport = pooled_transport(concurrency)
        try:
            assert isinstance(transport, PooledTransport)
            pools = [pool._transport._pool for pool in transport.pools]  # type: ignore[attr-defined]
            return [(p._max_connections, p._max_keepalive_connections) for p in pools]
        finally:
            await transport.aclose()

    assert asyncio.run(limits(50)) == [(4, 4)] * 13
    assert asyncio.run(limits(8)) == [(4, 4)] * 2
    assert asyncio.run(limits(256)) == [(4, 4)] * 64


def test_a_batch_pool_frees_a_connection_when_its_answer_is_read() -> None:
    from tweetgen.pool import PooledTransport

    async def go(url: str) -> list[list[int]]:
        transport = PooledTransport(40, shard_size=10)
        seen = []
        async with httpx.AsyncClient(transport=transport) as client:
            async with client.stream("GET", url) as first, client.stream("GET", url) as second:
                seen.append(list(transport.busy))
                await first.aread()
                await second.aread()
            seen.append(list(transport.busy))
        return seen

    with SandboxServer() as server:
        assert asyncio.run(go(server.url + "/")) == [[1, 1, 0, 0], [0, 0, 0, 0]]
