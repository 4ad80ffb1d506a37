"""The store on a real PostgreSQL server (issue 14): migrations several processes start at once, a
newer schema refused, the password kept out of every message, bounded connection waits, and a
connection that dies under the store. The tests shared with SQLite are in test_store.py,
test_store_contract.py and test_stats.py."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from test_store import call, retried_call

from tweetgen.errors import ConfigurationError
from tweetgen.sandbox import SandboxServer
from tweetgen.store import SCHEMA_VERSION, Store, StoreError
from tweetgen.storepg import CONNECT_TIMEOUT, STATEMENT_TIMEOUT_MS

SECRET = "pw-Sup3r-s3cret/with:odd@chars"


def _with(url: str, *, password: str | None = None, query: str = "", **parts: object) -> str:
    """``url`` with a password in its user-info (percent-encoded), a query, or other parts."""
    split = urlsplit(url)
    if password is not None:
        user, _, host = split.netloc.rpartition("@")
        parts["netloc"] = f"{user}:{quote(password, safe='')}@{host}"
    if query:
        parts["query"] = query
    return urlunsplit(split._replace(**parts))  # type: ignore[arg-type]


def _admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def _assert_hidden(text: str) -> None:
    """The password appears in ``text`` neither as written nor percent-encoded."""
    assert SECRET not in text
    assert quote(SECRET, safe="") not in text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nowhere(url: str) -> str:
    """``url`` with the password and a port nothing listens on."""
    netloc = f"tweetgen:{quote(SECRET, safe='')}@127.0.0.1:{_free_port()}"
    return urlunsplit(urlsplit(url)._replace(netloc=netloc))


def _terminate(url: str, application: str = "tweetgen") -> int:
    """Kill the server processes of this database's tweetgen connections (a restart, as they see
    it); how many."""
    with _admin(url) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s AND pid <> "
            "pg_backend_pid()",
            (application,),
        ).fetchall()
    return len(rows)


# --- migrations -------------------------------------------------------------------------------


def test_processes_opening_a_new_database_at_once_migrate_it_once(postgres_url: str) -> None:
    script = (
        "import sys; from tweetgen.store import Store\n"
        "with Store(sys.argv[1]) as s: print(s.schema_version)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [
        (p.returncode, out.strip()) for p, (out, _) in zip(processes, results, strict=True)
    ] == [(0, str(SCHEMA_VERSION))] * 6, [err for _, err in results]
    with _admin(postgres_url) as admin:
        assert admin.execute("SELECT version FROM tweetgen_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]


def test_threads_opening_a_new_database_at_once_all_succeed(postgres_url: str) -> None:
    barrier = threading.Barrier(8)
    outcomes: list[object] = []

    def open_it() -> None:
        barrier.wait(timeout=60)
        try:
            with Store(postgres_url) as store:
                outcomes.append(store.schema_version)
        except Exception as error:  # the assertion shows it
            outcomes.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes == [SCHEMA_VERSION] * 8


def test_the_schema_is_identity_ids_and_c_ordered_times(postgres_url: str) -> None:
    Store(postgres_url).close()
    with _admin(postgres_url) as admin:
        columns = dict(
            admin.execute(
                "SELECT table_name || '.' || column_name, data_type || coalesce(' ' || "
                "collation_name, '') || coalesce(' ' || identity_generation, '') "
                "FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
        )
    assert columns["calls.id"] == "bigint BY DEFAULT"
    assert columns["attempts.id"] == "bigint BY DEFAULT"
    assert columns["calls.created_at"] == "text C"
    assert columns["calls.latency_ms"] == "double precision"
    assert columns["batch_rows.lease_until"] == "double precision"
    assert columns["batch_rows.claims"] == "bigint"
    assert columns["batches.details"] == "text"


def test_a_database_from_a_newer_tweetgen_is_refused(postgres_url: str) -> None:
    Store(postgres_url).close()
    with _admin(postgres_url) as admin:
        admin.execute("UPDATE tweetgen_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(
        ConfigurationError, match=rf"schema version {SCHEMA_VERSION + 1}.*newer tweetgen.*upgrade"
    ) as caught:
        Store(postgres_url)
    assert not caught.value.retryable


def test_the_search_path_of_the_url_chooses_the_schema(postgres_url: str) -> None:
    with _admin(postgres_url) as admin:
        admin.execute("CREATE SCHEMA fleet")
    with Store(_with(postgres_url, query="options=-csearch_path%3Dfleet")) as store:
        store.record(retried_call())
    with _admin(postgres_url) as admin:
        tables = admin.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables "
            "WHERE table_name IN ('calls', 'attempts', 'batches', 'batch_rows', 'tweetgen_schema') "
            "GROUP BY table_schema"
        ).fetchall()
        assert tables == [("fleet", 5)]
        assert admin.execute("SELECT count(*) FROM fleet.calls").fetchone() == (1,)


# --- bounded waits and clear messages ---------------------------------------------------------


def test_every_wait_on_the_server_is_bounded(postgres_url: str) -> None:
    with Store(postgres_url) as store:
        (row,) = store.query(
            "SELECT current_setting('statement_timeout') AS s, "
            "current_setting('idle_in_transaction_session_timeout') AS i"
        )
    assert (row["s"], row["i"]) == (f"{STATEMENT_TIMEOUT_MS // 1000}s", "1min")
    assert CONNECT_TIMEOUT == 10


def test_the_url_may_choose_its_own_statement_timeout(postgres_url: str) -> None:
    with Store(_with(postgres_url, query="options=-cstatement_timeout%3D5s")) as store:
        assert store.query("SHOW statement_timeout")[0][0] == "5s"


def test_nothing_listening_is_a_clear_configuration_error_at_once(postgres_url: str) -> None:
    url = _nowhere(postgres_url)
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        Store(url)
    assert time.monotonic() - started < CONNECT_TIMEOUT
    message = str(caught.value)
    shown = f"postgresql://tweetgen:***@127.0.0.1:{urlsplit(url).port}/"
    assert message.startswith(f"cannot connect to the tweetgen database {shown}")
    assert "refused" in message.lower()
    assert "right host, port, user, password and database" in message
    _assert_hidden(message)
    assert caught.value.__cause__ is None  # the driver's unscrubbed text is not chained


def test_a_server_that_never_answers_gives_up_after_the_connect_timeout(postgres_url: str) -> None:
    with socket.socket() as silent:  # accepts TCP connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = urlunsplit(urlsplit(postgres_url)._replace(netloc=f"tweetgen@127.0.0.1:{port}"))
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match=r"cannot connect.*timeout"):
            Store(url + "?connect_timeout=2")
        assert time.monotonic() - started < 2 * 2 + 5  # libpq tries each address once


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"path": "/no_such_database"}, 'database "no_such_database" does not exist'),
        ({"user": "nobody"}, 'role "nobody" does not exist'),
    ],
)
def test_an_unknown_database_or_user_names_the_url_without_its_password(
    postgres_url: str, change: dict[str, str], expected: str
) -> None:
    url = _with(postgres_url, password=SECRET, path=change.get("path", urlsplit(postgres_url).path))
    if "user" in change:
        url = url.replace("//tweetgen:", f"//{change['user']}:")
    with pytest.raises(ConfigurationError) as caught:
        Store(url)
    message = str(caught.value)
    assert expected in message
    assert f"{urlsplit(url).username}:***@" in message
    _assert_hidden(message)


def test_without_psycopg_a_url_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without it sees
    with pytest.raises(ConfigurationError, match=r"needs psycopg 3: pip install") as caught:
        Store(f"postgres://tweetgen:{quote(SECRET, safe='')}@127.0.0.1:1/tweetgen")
    assert "'tweetgen[postgres]'" in str(caught.value)
    assert "postgres://tweetgen:***@127.0.0.1:1/tweetgen" in str(caught.value)


def test_an_unknown_scheme_is_refused_rather_than_made_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown scheme mysql://.*postgresql:// URL"):
        Store("mysql://u:p@h/db")
    assert list(tmp_path.iterdir()) == []


# --- the password --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_the_password_reaches_no_message_log_or_row(
    postgres_url: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = (
        _with(postgres_url, password=SECRET)
        if where == "userinfo"
        else _with(postgres_url, query=f"password={quote(SECRET, safe='')}&sslmode=disable")
    )
    seen: list[str] = []
    with Store(url) as store:
        seen += [store.where, str(store), repr(store), repr(store.observer())]
        store.record(retried_call())
        with pytest.raises(StoreError) as caught, store.transaction() as tx:
            tx.execute("INSERT INTO nowhere VALUES (?)", (1,))
        seen.append(str(caught.value))
        dump = store.query(
            "SELECT string_agg(c::text, ' ') FROM calls c UNION ALL "
            "SELECT string_agg(a::text, ' ') FROM attempts a"
        )
        seen += [str(r[0]) for r in dump]
    assert "***" in store.where
    seen += [r.getMessage() for r in caplog.records]
    leaked = [s for s in seen if SECRET in s or quote(SECRET, safe="") in s]
    assert leaked == []


# --- a connection that dies -------------------------------------------------------------------


def test_a_write_after_the_server_dropped_the_connection_reconnects(postgres_url: str) -> None:
    with Store(postgres_url) as store:
        first = store.record(call("before"))
        assert _terminate(postgres_url) == 1
        second = store.record(call("after"))
        assert second > first
        assert [r.request_id for r in store.calls()] == ["before", "after"]
        assert _terminate(postgres_url) == 1
        assert store.schema_version == SCHEMA_VERSION  # a read reconnects too


def test_a_body_whose_connection_dies_before_commit_runs_again_once(postgres_url: str) -> None:
    with Store(postgres_url) as store:
        runs: list[int] = []

        def body(tx: object) -> int:
            runs.append(1)
            rows = tx.execute(  # type: ignore[attr-defined]
                "INSERT INTO batches (batch_id, total, created_at) VALUES (?, ?, ?) "
                "RETURNING total",
                ("b", len(runs), "t"),
            )
            if len(runs) == 1:
                _terminate(postgres_url)  # this transaction's server process is gone
                tx.execute("SELECT 1")  # type: ignore[attr-defined]
            return int(rows[0]["total"])

        assert store._db.run(body) == 2
        assert runs == [1, 1]
        assert [tuple(r) for r in store.query("SELECT batch_id, total FROM batches")] == [("b", 2)]


def _insert_and_die(store: Store, url: str) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", ("lost", 1, "t", "{}"))
        _terminate(url)
        tx.execute("SELECT 1")


def test_a_transaction_whose_connection_dies_is_a_store_error_then_the_store_recovers(
    postgres_url: str,
) -> None:
    with Store(postgres_url) as store:
        with pytest.raises(StoreError, match="cannot write to the tweetgen database"):
            _insert_and_die(store, postgres_url)
        with store.transaction() as tx:
            tx.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", ("kept", 1, "t", "{}"))
        assert [r["batch_id"] for r in store.query("SELECT batch_id FROM batches")] == ["kept"]


def test_a_write_while_the_server_is_unreachable_is_a_store_error(postgres_url: str) -> None:
    port = str(urlsplit(postgres_url).port)
    with Store(postgres_url) as store:
        store._db._url = postgres_url.replace(port, str(_free_port()))  # type: ignore[union-attr]
        _terminate(postgres_url)
        with pytest.raises(StoreError, match="lost the connection and cannot connect"):
            store.record(call("nowhere"))


def test_a_nul_character_is_kept_as_a_replacement_character(postgres_url: str) -> None:
    with Store(postgres_url) as store:
        store.record(call("nul", status="failed", error_message="bad\x00byte"))
        (row,) = store.calls()
    assert row.error_message == "bad\ufffdbyte"


# --- the command line ---------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return {**base, **extra}


def test_generate_records_and_stats_reports_over_a_url(postgres_url: str, tmp_path: Path) -> None:
    url = _with(postgres_url, password=SECRET)
    with SandboxServer(faults="503") as server:
        generated = subprocess.run(
            [sys.executable, "-m", "tweetgen", "generate", "--topic", "AI", "-q", "--db", url,
             "--log-file", str(tmp_path / "t.log"), "--base-delay", "0"],
            env=_env(GEMINI_BASE_URL=server.url, GEMINI_API_KEY="test-key"),
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    stats = subprocess.run(  # the store named by TWEETGEN_DB this time
        [sys.executable, "-m", "tweetgen", "stats", "--json"],
        env=_env(TWEETGEN_DB=url), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert stats.returncode == 0, stats.stderr
    figures = json.loads(stats.stdout)
    assert (figures["calls"], figures["ok"], figures["attempts"]) == (1, 1, 2)
    assert figures["errors_by_status"] == {"503": 1}
    assert list(tmp_path.iterdir()) == [tmp_path / "t.log"]  # no tweetgen.db made
    everything = (
        generated.stdout + generated.stderr + stats.stderr + (tmp_path / "t.log").read_text()
    )
    _assert_hidden(everything)


def test_stats_over_an_unreachable_url_exits_2_with_the_url_shown_safely(
    postgres_url: str, tmp_path: Path
) -> None:
    url = _nowhere(postgres_url)
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", "stats", "--db", url],
        env=_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot connect to the tweetgen database postgresql://" in result.stderr
    # the store says tweetgen:***@, the command line's own redaction then hides the user-info
    assert f"@127.0.0.1:{urlsplit(url).port}/" in result.stderr
    _assert_hidden(result.stderr)
