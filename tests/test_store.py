"""The store on real SQLite files and PostgreSQL databases: round trips, idempotency keys,
migrations, threads, and crashes (the SQLite-only tests use ``tmp_path``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from store_backends import any_target as any_target

from tweetgen.errors import ConfigurationError
from tweetgen.store import (
    DEFAULT_DB_PATH,
    MIGRATIONS,
    SCHEMA_VERSION,
    CallRow,
    Store,
    StoreObserver,
    _migrate,
    idempotency_key,
    utc_iso,
)
from tweetgen.trace import AttemptTrace, CallContext, CallTrace, Observer

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def attempt(
    number: int, status: int | None = 200, *, delay: float = 0.0, error: str | None = None
) -> AttemptTrace:
    """A finished attempt: ok with tokens when ``error`` is None, else failed with ``status``."""
    trace = AttemptTrace(
        number=number, delay_before=delay, started_at=T0 + number, latency_ms=40.0 * number
    )
    trace.status_code = status
    if error:
        trace.error_type, trace.error_message = error, f"{error} on attempt {number}"
    else:
        trace.input_tokens, trace.output_tokens, trace.finish_reason = 10, 5, "STOP"
    return trace


def call(
    request_id: str = "r1",
    attempts: list[AttemptTrace] | None = None,
    *,
    status: str = "ok",
    started_at: float = T0,
    context: CallContext | None = None,
    **fields: Any,
) -> CallTrace:
    """A finished call as the generator leaves it."""
    trace = CallTrace(
        request_id=request_id,
        provider=fields.pop("provider", "sandbox"),
        model=fields.pop("model", "gemini-flash-latest"),
        inputs={"topic": "Python", "tone": "casual", "max_words": 20},
        started_at=started_at,
        attempts=attempts if attempts is not None else [attempt(1)],
        status=status,
        context=context or CallContext(),
        latency_ms=123.4,
        **fields,
    )
    if status == "ok":
        trace.text = trace.text or "A tweet. #Python"
    else:
        trace.error_type = trace.error_type or "ServerError"
        trace.error_message = trace.error_message or "HTTP 503: unavailable"
    return trace


@pytest.fixture
def store(any_target: str) -> Any:
    with Store(any_target) as opened:
        yield opened


def retried_call() -> CallTrace:
    return call(
        "retried",
        [
            attempt(1, 503, error="ServerError"),
            attempt(2, None, delay=1.0, error="NetworkError"),
            attempt(3, delay=2.0),
        ],
        regenerations=1,
        context=CallContext(idempotency_key="k1", batch_id="b1", row_number=7),
    )


# --- round trip ------------------------------------------------------------------------------


def test_a_recorded_call_reads_back_with_every_attempt(store: Store) -> None:
    call_id = store.record(retried_call())
    (row,) = store.calls()
    assert row.id == call_id
    assert (row.request_id, row.idempotency_key, row.batch_id, row.row_number) == (
        "retried",
        "k1",
        "b1",
        7,
    )
    assert (row.provider, row.model, row.topic, row.tone, row.max_words) == (
        "sandbox",
        "gemini-flash-latest",
        "Python",
        "casual",
        20,
    )
    assert row.inputs == {"topic": "Python", "tone": "casual", "max_words": 20}
    assert (row.status, row.ok, row.text, row.error_type) == ("ok", True, "A tweet. #Python", None)
    assert (row.attempts, row.regenerations, row.latency_ms, row.waited_seconds) == (
        3,
        1,
        123.4,
        3.0,
    )
    assert (row.input_tokens, row.output_tokens) == (10, 5)
    assert row.created_at == "2024-05-01T12:00:00.000000Z"

    attempts = list(store.attempts(call_id))
    assert [(a.seq, a.number, a.status_code, a.error_type) for a in attempts] == [
        (1, 1, 503, "ServerError"),
        (2, 2, None, "NetworkError"),
        (3, 3, 200, None),
    ]
    assert [a.delay_before for a in attempts] == [0.0, 1.0, 2.0]
    assert attempts[0].error_message == "ServerError on attempt 1"
    assert attempts[2].started_at == "2024-05-01T12:00:03.000000Z"
    assert (attempts[2].finish_reason, attempts[2].input_tokens, attempts[2].output_tokens) == (
        "STOP",
        10,
        5,
    )


def test_attempt_numbers_may_restart_after_a_regeneration(store: Store) -> None:
    call_id = store.record(
        call("regen", [attempt(1), attempt(2, 503, error="ServerError"), attempt(1)])
    )
    assert [(a.seq, a.number) for a in store.attempts(call_id)] == [(1, 1), (2, 2), (3, 1)]


def test_a_failed_call_keeps_its_error(store: Store) -> None:
    store.record(call("f", [attempt(1, 401, error="AuthenticationError")], status="failed"))
    (row,) = store.calls()
    assert (row.status, row.ok, row.text, row.error_type) == ("failed", False, None, "ServerError")
    assert row.error_message == "HTTP 503: unavailable"


def test_explicit_metadata_wins_over_the_context(store: Store) -> None:
    store.record(retried_call(), idempotency_key="k2", batch_id="b2", row_number=1)
    (row,) = store.calls()
    assert (row.idempotency_key, row.batch_id, row.row_number) == ("k2", "b2", 1)


def test_an_unfinished_call_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="running"):
        store.record(call(status="running"))
    assert list(store.calls()) == []


def test_many_calls_are_read_across_pages(store: Store) -> None:
    for n in range(1203):
        store.record(call(f"r{n}", [attempt(1)]))
    assert [r.request_id for r in store.calls()] == [f"r{n}" for n in range(1203)]
    assert sum(1 for _ in store.attempts()) == 1203


# --- the observer --------------------------------------------------------------------------


def test_the_observer_records_finished_calls_with_their_context(store: Store) -> None:
    observer = store.observer(batch_id="default-batch")
    assert isinstance(observer, Observer)
    assert isinstance(observer, StoreObserver)
    plain = call("plain", observers=[observer])
    tagged = call(
        "tagged",
        context=CallContext(batch_id="own", row_number=3, idempotency_key="k"),
        observers=[observer],
    )
    for trace in (plain, tagged):
        trace.notify("call_finished")
    rows = {r.request_id: r for r in store.calls()}
    assert (rows["plain"].batch_id, rows["plain"].row_number, rows["plain"].idempotency_key) == (
        "default-batch",
        None,
        None,
    )
    assert (rows["tagged"].batch_id, rows["tagged"].row_number, rows["tagged"].idempotency_key) == (
        "own",
        3,
        "k",
    )


def test_the_observer_skips_interrupted_calls(store: Store) -> None:
    observer = store.observer()
    observer.call_finished(call("ctrl-c", status="failed", error_type="KeyboardInterrupt"))
    observer.call_finished(call("cancelled", status="failed", error_type="CancelledError"))
    assert list(store.calls()) == []


def test_a_failing_store_never_breaks_the_call(
    any_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tweetgen")
    closed = Store(any_target)
    closed.close()
    trace = call(observers=[closed.observer()])
    trace.notify("call_finished")
    assert [r.getMessage() for r in caplog.records] == [
        f"observer {closed.observer()!r} failed in call_finished"
    ]


# --- idempotency ---------------------------------------------------------------------------

INPUTS = {"topic": "Python", "tone": "casual", "max_words": 20}
SETTINGS = {"provider": "gemini", "model": "gemini-flash-latest", "template": "default"}


def test_the_idempotency_key_is_a_stable_sha256_of_canonical_json() -> None:
    canonical = (
        '{"inputs":{"max_words":20,"tone":"casual","topic":"Python"},'
        '"settings":{"model":"gemini-flash-latest","provider":"gemini","template":"default"}}'
    )
    key = idempotency_key(INPUTS, SETTINGS)
    assert key == hashlib.sha256(canonical.encode()).hexdigest()
    # pinned: stored keys must keep matching across releases, or every resumed batch would start
    # over
    assert key == "b41244dc74dd91521f9b861c89424bfbc61e72dc67b2b4e0d4be44083848a7a8"
    assert key == idempotency_key(dict(reversed(INPUTS.items())), dict(reversed(SETTINGS.items())))


@pytest.mark.parametrize(
    ("inputs", "settings"),
    [
        ({**INPUTS, "topic": "Rust"}, SETTINGS),
        ({**INPUTS, "max_words": 21}, SETTINGS),
        (INPUTS, {**SETTINGS, "model": "gemini-pro"}),
        (INPUTS, {**SETTINGS, "template": "thread"}),
        (
            {**INPUTS, "model": "gemini-flash-latest"},
            {k: v for k, v in SETTINGS.items() if k != "model"},
        ),
    ],
)
def test_anything_that_changes_the_output_changes_the_key(
    inputs: dict[str, Any], settings: dict[str, Any]
) -> None:
    assert idempotency_key(inputs, settings) != idempotency_key(INPUTS, SETTINGS)


def test_the_key_accepts_paths_and_refuses_opaque_objects() -> None:
    assert idempotency_key({"file": Path("a.csv")}, {}) == idempotency_key({"file": "a.csv"}, {})
    with pytest.raises(TypeError, match="object values cannot be part"):
        idempotency_key({"x": object()}, {})


def test_done_is_the_latest_ok_call_and_latest_is_the_latest_of_any_status(store: Store) -> None:
    assert store.done("k") is None
    assert store.latest("k") is None
    store.record(call("first-fail", status="failed"), idempotency_key="k")
    assert store.done("k") is None
    assert _request_id(store.latest("k")) == "first-fail"
    store.record(call("ok-1"), idempotency_key="k")
    store.record(call("ok-2"), idempotency_key="k")
    store.record(call("late-fail", status="failed"), idempotency_key="k")
    store.record(call("other"), idempotency_key="other")
    assert _request_id(store.done("k")) == "ok-2"
    assert _request_id(store.latest("k")) == "late-fail"


def _request_id(row: CallRow | None) -> str | None:
    return row.request_id if row else None


def test_rows_for_batch_picks_one_call_per_row_preferring_success(store: Store) -> None:
    for request_id, row_number, status in [
        ("r2-fail", 2, "failed"),
        ("r1-ok", 1, "ok"),
        ("r2-ok", 2, "ok"),
        ("r3-fail", 3, "failed"),
        ("r3-fail-again", 3, "failed"),
        ("r1-late-fail", 1, "failed"),
        ("unnumbered", None, "ok"),
    ]:
        store.record(call(request_id, status=status), batch_id="b", row_number=row_number)
    store.record(call("elsewhere"), batch_id="other", row_number=1)
    rows = store.rows_for_batch("b")
    assert [(r.row_number, r.request_id) for r in rows] == [
        (1, "r1-ok"),
        (2, "r2-ok"),
        (3, "r3-fail-again"),
    ]
    assert store.rows_for_batch("missing") == []


# --- since ---------------------------------------------------------------------------------


def test_since_filters_calls_and_their_attempts(store: Store) -> None:
    day = 86_400
    for n, age_days in enumerate([10, 3, 1, 0]):
        store.record(call(f"r{n}", [attempt(1), attempt(2)], started_at=T0 - age_days * day))
    since = datetime.fromtimestamp(T0 - 3 * day, timezone.utc)
    assert [r.request_id for r in store.calls(since)] == ["r1", "r2", "r3"]
    assert len(list(store.attempts(since=since))) == 6
    naive = since.replace(tzinfo=None)
    assert [r.request_id for r in store.calls(naive)] == ["r1", "r2", "r3"]
    in_paris = since.astimezone(timezone(timedelta(hours=2)))
    assert [r.request_id for r in store.calls(in_paris + timedelta(seconds=1))] == ["r2", "r3"]


def test_utc_iso_is_fixed_width_utc() -> None:
    assert utc_iso(T0) == "2024-05-01T12:00:00.000000Z"
    assert utc_iso(datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T12:00:00.000005Z"
    )
    assert utc_iso(datetime(2024, 5, 1, 12)) == "2024-05-01T12:00:00.000000Z"


# --- opening and migrations ---------------------------------------------------------------


def test_a_new_file_is_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "t.db"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    assert {"calls", "attempts"} <= tables
    assert {"calls_idempotency_key", "calls_created_at", "calls_provider_model"} <= indexes


def test_reopening_keeps_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Store(path) as store:
        store.record(retried_call())
    for _ in range(2):
        with Store(path) as store:
            assert store.schema_version == SCHEMA_VERSION
            assert [r.request_id for r in store.calls()] == ["retried"]
            assert len(list(store.attempts())) == 3


def test_a_file_from_a_newer_tweetgen_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    Store(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(
        ConfigurationError, match=rf"schema version {SCHEMA_VERSION + 1}.*newer tweetgen.*upgrade"
    ) as caught:
        Store(path)
    assert not caught.value.retryable  # exit 2 comes from its type (cli.py)


def _v2(connection: sqlite3.Connection) -> None:
    connection.execute("ALTER TABLE calls ADD COLUMN campaign TEXT")
    connection.execute("UPDATE calls SET campaign = 'launch'")


def test_a_later_migration_is_one_more_function(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Store(path) as store:
        store.record(retried_call())
    raw = sqlite3.connect(path, isolation_level=None)
    assert _migrate(raw, (*MIGRATIONS, _v2), path) == SCHEMA_VERSION + 1
    assert raw.execute("SELECT campaign FROM calls").fetchall() == [("launch",)]
    assert (
        _migrate(raw, (*MIGRATIONS, _v2), path) == SCHEMA_VERSION + 1
    )  # already there: nothing to do
    raw.close()


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    Store(path).close()

    def broken(connection: sqlite3.Connection) -> None:
        connection.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    raw = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError, match="migration bug"):
        _migrate(raw, (*MIGRATIONS, broken), path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert (
        raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0]
        == 0
    )
    raw.close()


@pytest.mark.parametrize("make", ["directory", "under_a_file", "not_a_database"])
def test_an_unopenable_path_is_a_configuration_error(tmp_path: Path, make: str) -> None:
    if make == "directory":
        path = tmp_path
    elif make == "under_a_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "t.db"
    else:
        path = tmp_path / "t.db"
        path.write_bytes(b"this is not sqlite, just some bytes " * 40)
    with pytest.raises(ConfigurationError, match=r"cannot open the tweetgen database .*--db PATH"):
        Store(path)


def test_create_false_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no tweetgen database at"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_the_default_path_is_tweetgen_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store() as store:
        assert store.path == DEFAULT_DB_PATH
    assert (tmp_path / "tweetgen.db").is_file()


# --- concurrency and crashes ----------------------------------------------------------------


def _half_calls(target: str | Store) -> int:
    """How many calls have a different number of attempt rows than they claim."""
    query = (
        "SELECT count(*) FROM calls c "
        "WHERE c.attempts != (SELECT count(*) FROM attempts a WHERE a.call_id = c.id)"
    )
    if isinstance(target, Store):
        return int(target.query(query)[0][0])
    with Store(target) as store:
        return int(store.query(query)[0][0])


def _integrity(target: str) -> str:
    if "://" in target:
        return "ok"  # PostgreSQL keeps its own integrity; whole calls are checked by _half_calls
    raw = sqlite3.connect(target)
    try:
        return str(raw.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        raw.close()


def test_threads_write_while_another_connection_reads(any_target: str) -> None:
    path = any_target
    writer, reader = Store(path), Store(path)
    observer = writer.observer(batch_id="threads")
    seen: list[int] = []

    def work(worker: int) -> None:
        for n in range(25):
            attempts = [attempt(k, 503, error="ServerError") for k in range(1, n % 3 + 1)] + [
                attempt(n % 3 + 1)
            ]
            observer.call_finished(call(f"w{worker}-{n}", attempts))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        seen.append(sum(1 for _ in reader.calls()))
        assert _half_calls(reader) == 0
    for thread in threads:
        thread.join()
    assert sum(1 for _ in reader.calls()) == 200
    assert seen == sorted(seen)
    assert _half_calls(reader) == 0
    assert len({r.request_id for r in reader.calls()}) == 200
    writer.close()
    reader.close()


_WRITER = """
import os, sys
from tweetgen.store import Store
from tweetgen.trace import AttemptTrace, CallTrace

store = Store(sys.argv[1])
poison_at = int(sys.argv[2])


class Poisoned(AttemptTrace):
    @property
    def error_message(self):
        os._exit(1)  # dies while the call's transaction is open

    @error_message.setter
    def error_message(self, value):
        pass


n = 0
while True:
    kind = Poisoned if n == poison_at else AttemptTrace
    attempts = [
        kind(number=k, latency_ms=1.0, status_code=503, error_type="ServerError") for k in (1, 2, 3)
    ]
    attempts.append(AttemptTrace(number=4, delay_before=1.0, latency_ms=2.0, status_code=200))
    trace = CallTrace(
        "c%d" % n, "sandbox", "m", {"topic": "t"}, attempts=attempts, status="ok", text="x"
    )
    store.record(trace)
    print("committed", n, flush=True)
    n += 1
"""


def _run_writer(path: str, poison_at: int, kill_after: int | None) -> list[str]:
    """Run a writer process; SIGKILL it after ``kill_after`` commits, or let it die at the poisoned
    call."""
    script = textwrap.dedent(_WRITER)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path), str(poison_at)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    committed: list[str] = []
    try:
        for line in process.stdout:
            committed.append(f"c{line.split()[1]}")
            if kill_after is not None and len(committed) == kill_after:
                os.kill(process.pid, signal.SIGKILL)
                break
        process.wait(timeout=60)
    finally:  # never leave the writer running or its pipe open, even when the test fails
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
        process.stdout.close()
    return committed


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_mid_stream_leaves_whole_calls_only(any_target: str) -> None:
    path = any_target
    committed = _run_writer(path, poison_at=-1, kill_after=40)
    assert _integrity(path) == "ok"
    assert _half_calls(path) == 0
    with Store(path) as store:
        stored = [r.request_id for r in store.calls()]
        assert stored[: len(committed)] == committed  # every reported commit survived the kill
        assert all(len(list(store.attempts(r.id))) == 4 for r in store.calls())


def test_a_process_dying_inside_a_transaction_leaves_no_half_call(any_target: str) -> None:
    path = any_target
    committed = _run_writer(path, poison_at=5, kill_after=None)
    assert committed == [f"c{n}" for n in range(5)]
    assert _integrity(path) == "ok"
    assert _half_calls(path) == 0
    with Store(path) as store:
        assert [r.request_id for r in store.calls()] == committed
        assert sum(1 for _ in store.attempts()) == 20
        assert json.loads(next(store.calls()).inputs_json) == {"topic": "t"}


def test_an_input_error_is_written_by_the_same_method_as_a_call(any_target: str) -> None:
    from tweetgen.store import CallRecord

    with Store(any_target) as store:
        record = CallRecord.input_error(
            "topic is empty",
            context=CallContext(idempotency_key="k", batch_id="b", row_number=2),
            provider="sandbox",
            model="m",
            inputs={"topic": "", "tone": None, "max_words": 20},
            at=T0,
        )
        call_id = store.write(record)
        traced = store.write(CallRecord.of(retried_call()))
        (error, call) = store.calls()
    assert (error.id, call.id) == (call_id, traced)
    assert (error.request_id, error.status, error.error_type, error.error_message) == (
        "input-error",
        "failed",
        "InputError",
        "topic is empty",
    )
    assert (error.idempotency_key, error.batch_id, error.row_number, error.attempts) == (
        "k",
        "b",
        2,
        0,
    )
    assert (error.topic, error.max_words, error.created_at) == (
        "",
        20,
        "2024-05-01T12:00:00.000000Z",
    )
    assert (call.idempotency_key, call.attempts) == ("k1", 3)
