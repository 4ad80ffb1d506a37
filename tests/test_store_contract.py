"""The store's contract with the batch work queue (issue 14), on each backend: ``backend``,
``where``, ``transaction()``, ``query``, ``now`` and schema version 2 (``batches``,
``batch_rows``)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from store_backends import any_store as any_store
from store_backends import any_target as any_target

from tweetgen.store import SCHEMA_VERSION, Store, StoreError

ROW = "INSERT INTO batch_rows (batch_id, row_number, idempotency_key, payload) VALUES (?, ?, ?, ?)"


def test_the_store_names_its_backend_and_where_it_is(any_store: Store, any_target: str) -> None:
    assert any_store.backend == ("postgresql" if "://" in any_target else "sqlite")
    assert any_store.where == str(any_store) == any_target  # no password in these targets
    assert repr(any_store) == f"Store({any_target!r})"
    assert any_store.schema_version == SCHEMA_VERSION == 4


def test_a_transaction_commits_its_rows_and_returns_rows_by_name_and_index(
    any_store: Store,
) -> None:
    with any_store.transaction() as tx:
        assert (
            tx.execute(
                "INSERT INTO batches (batch_id, total, created_at) VALUES (?, ?, ?)", ("b", 3, "t")
            )
            == []
        )
        tx.executemany(ROW, [("b", n, f"k{n}", "{}") for n in (1, 2, 3)])
        claimed = tx.execute(
            "UPDATE batch_rows SET state = 'running', worker = ?, lease_until = ?, "
            "claims = claims + 1 WHERE batch_id = ? AND row_number <= ? RETURNING row_number",
            ("w1", 12.5, "b", 2),
        )
        assert sorted(r["row_number"] for r in claimed) == [1, 2]
        assert sorted(r[0] for r in claimed) == [1, 2]
    rows = any_store.query(
        "SELECT row_number, state, worker, lease_until, claims, details FROM batch_rows "
        "JOIN batches USING (batch_id) WHERE batch_id = ? ORDER BY row_number",
        ("b",),
    )
    assert [(r["row_number"], r["state"], r["worker"], r["claims"]) for r in rows] == [
        (1, "running", "w1", 1),
        (2, "running", "w1", 1),
        (3, "pending", None, 0),
    ]
    assert rows[0]["lease_until"] == 12.5
    assert rows[2]["details"] == "{}"


def test_on_conflict_do_nothing_makes_loading_rows_idempotent(any_store: Store) -> None:
    sql = ROW + " ON CONFLICT DO NOTHING"
    for _ in range(2):
        with any_store.transaction() as tx:
            tx.executemany(sql, [("b", n, None, f'{{"n": {n}}}') for n in range(5)])
    assert any_store.query("SELECT count(*) AS n FROM batch_rows")[0]["n"] == 5


def _insert_then(store: Store, then: str, params: tuple[object, ...] = ()) -> None:
    """Insert a row, then run ``then`` (``raise`` raises RuntimeError), in one transaction."""
    with store.transaction() as tx:
        tx.execute(ROW, ("b", 1, None, "{}"))
        if then == "raise":
            raise RuntimeError("mid-transaction")
        tx.execute(then, params)


def test_an_exception_rolls_the_transaction_back(any_store: Store) -> None:
    with pytest.raises(RuntimeError, match="mid-transaction"):
        _insert_then(any_store, "raise")
    assert any_store.query("SELECT count(*) FROM batch_rows")[0][0] == 0


def test_a_failed_statement_is_a_store_error_and_rolls_back(any_store: Store) -> None:
    with pytest.raises(StoreError, match="cannot write to the tweetgen database"):
        _insert_then(any_store, "UPDATE batch_rows SET state = ? WHERE batch_id = ?", ("lost", "b"))
    assert any_store.query("SELECT count(*) FROM batch_rows")[0][0] == 0
    _insert_then(any_store, "SELECT 1")  # the store is still usable
    assert any_store.query("SELECT state FROM batch_rows")[0]["state"] == "pending"


def test_a_percent_sign_in_a_literal_is_kept(any_store: Store) -> None:
    with any_store.transaction() as tx:
        tx.execute(ROW, ("b", 1, None, '{"done": "50%"}'))
    rows = any_store.query("SELECT payload FROM batch_rows WHERE payload LIKE '%50%%'")
    assert [r["payload"] for r in rows] == ['{"done": "50%"}']


def test_now_is_the_database_clock_in_epoch_seconds(any_store: Store) -> None:
    before = time.time()
    now = any_store.now()
    assert isinstance(now, float)
    assert before - 5 <= now <= time.time() + 5  # the server runs on this machine here


def test_transactions_from_threads_are_serialised(any_store: Store) -> None:
    with any_store.transaction() as tx:
        tx.execute(ROW, ("b", 1, None, "{}"))

    def bump() -> None:
        for _ in range(20):
            with any_store.transaction() as tx:
                (row,) = tx.execute("SELECT claims FROM batch_rows WHERE batch_id = ?", ("b",))
                tx.execute("UPDATE batch_rows SET claims = ?", (row["claims"] + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert any_store.query("SELECT claims FROM batch_rows")[0]["claims"] == 80


def test_the_state_check_refuses_an_unknown_state(any_store: Store) -> None:
    with pytest.raises(StoreError), any_store.transaction() as tx:
        tx.execute(
            "INSERT INTO batch_rows (batch_id, row_number, state, payload) VALUES (?, ?, ?, ?)",
            ("b", 1, "lost", "{}"),
        )


def test_sqlite_users_never_import_psycopg() -> None:
    script = (
        "import sys, tweetgen, tweetgen.cli, tweetgen.store, tweetgen.stats\n"
        "from tweetgen.store import Store\n"
        "Store(':memory:').close()\n"
        "print('psycopg' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_mixed_case_scheme_is_a_url(postgres_url: str) -> None:
    rest = postgres_url.partition("://")[2]
    with Store(f"PostgreSQL://{rest}") as store:
        assert store.backend == "postgresql"
        assert store.where == f"postgresql://{rest}"


def test_the_transaction_s_thread_may_read_and_ask_the_clock_inside_it(any_store: Store) -> None:
    with any_store.transaction() as tx:
        tx.execute(ROW, ("b", 1, None, "{}"))
        now = any_store.now()  # the batch queue asks for the lease clock mid-transaction
        seen = any_store.query("SELECT count(*) AS n FROM batch_rows")
        tx.execute("UPDATE batch_rows SET lease_until = ?", (now + 30,))
    assert seen[0]["n"] == 1  # the transaction's own connection: it sees its own row
    assert any_store.query("SELECT lease_until FROM batch_rows")[0][0] == pytest.approx(now + 30)


def test_a_transaction_inside_a_transaction_is_refused_and_the_outer_one_rolls_back(
    any_store: Store,
) -> None:
    def nested() -> None:
        with any_store.transaction() as tx:
            tx.execute(ROW, ("b", 1, None, "{}"))
            with any_store.transaction():
                pass

    with pytest.raises(RuntimeError, match="cannot be opened inside another"):
        nested()
    assert any_store.query("SELECT count(*) FROM batch_rows")[0][0] == 0
    _insert_then(any_store, "SELECT 1")  # and the store goes on
    assert any_store.query("SELECT count(*) FROM batch_rows")[0][0] == 1
