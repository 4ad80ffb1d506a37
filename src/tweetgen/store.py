"""Every call and its attempts in SQLite or PostgreSQL, so batches resume after a crash and
``tweetgen stats`` can report.

One file (``tweetgen.db`` by default) in WAL mode, or a ``postgresql://`` URL
(:mod:`tweetgen.storepg`): readers never block the writer, and a call is written with all its
attempts in one transaction, so a crash leaves whole calls or none. The schema
(tables, rows, migrations) lives in :mod:`tweetgen.storeschema`; what is written for one call, in
:mod:`tweetgen.storerecord`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .errors import ConfigurationError
from .storedb import DamagedStoreError, Row, SqliteDb, StoreError, Tx, is_url
from .storerecord import INSERT_ATTEMPT, INSERT_CALL, CallRecord
from .storeschema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AttemptRow,
    CallRow,
    _connect,
    idempotency_key,
    utc_iso,
)
from .storeschema import (
    _migrate as _migrate,  # re-exported: the migration tests drive it
)
from .trace import CallContext, CallTrace, Observer

if TYPE_CHECKING:
    from .storepg import PostgresDb

__all__ = [
    "DEFAULT_DB_PATH",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRow",
    "CallRecord",
    "CallRow",
    "DamagedStoreError",
    "Row",
    "Store",
    "StoreError",
    "StoreObserver",
    "Tx",
    "idempotency_key",
    "utc_iso",
]

DEFAULT_DB_PATH = "tweetgen.db"
DEFAULT_BUSY_TIMEOUT = 5.0
INTERRUPTIONS = frozenset({"KeyboardInterrupt", "SystemExit", "CancelledError", "GeneratorExit"})
_PAGE = 500
R = TypeVar("R", "CallRow", "AttemptRow")
SELECT_CALLS = "SELECT * FROM calls WHERE id > ? AND created_at >= ? ORDER BY id LIMIT ?"
SELECT_ATTEMPTS = (
    "SELECT a.* FROM attempts a JOIN calls c ON c.id = a.call_id "
    "WHERE a.id > ? AND c.created_at >= ? AND (CAST(? AS BIGINT) IS NULL OR a.call_id = ?) "
    "ORDER BY a.id LIMIT ?"
)


def _row(kind: type[R], row: Row) -> R:
    """A frozen row object from the columns it names (extra columns are ignored)."""
    return kind(**{f.name: row[f.name] for f in fields(kind)})


def _sqlite(path: str, create: bool, timeout: float) -> SqliteDb:
    if not create and not Path(path).is_file():
        raise ConfigurationError(
            f"no tweetgen database at {path}; pass --db PATH to name an existing one"
        )
    try:
        return SqliteDb(_connect(path, timeout), path)
    except (sqlite3.Error, OSError) as error:
        from .oserrors import explain_path_error

        raise ConfigurationError(
            f"cannot open the tweetgen database {path}: {explain_path_error(error, path)}; "
            "pass --db PATH with a writable location"
        ) from error


class Store:
    """The calls and attempts of a SQLite file or a PostgreSQL database; one connection shared by
    threads, its statements serialised by a lock."""

    def __init__(
        self,
        path: str | Path = DEFAULT_DB_PATH,
        *,
        create: bool = True,
        timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        target = str(path)
        self._db: SqliteDb | PostgresDb
        if is_url(target):
            from .storepg import PostgresDb

            self._db = PostgresDb(target)
        else:
            target = target if target == ":memory:" else str(Path(target).expanduser())
            self._db = _sqlite(target, create, timeout)
        #: ``sqlite`` or ``postgresql``
        self.backend: str = self._db.backend
        #: where the store is, fit to show: a path, or a URL with its password as ``***``
        self.where: str = self._db.where
        self.path = self.where  # its name before PostgreSQL (issue 14)

    def __repr__(self) -> str:
        return f"Store({self.where!r})"

    def __str__(self) -> str:
        return self.where

    @property
    def schema_version(self) -> int:
        """The store's schema version (SQLite ``PRAGMA user_version``; PostgreSQL
        ``tweetgen_schema``)."""
        return self._db.schema_version()

    # --- the contract of the batch work queue (issue 14) ----------------------------------------

    def transaction(self) -> AbstractContextManager[Tx]:
        """One transaction (SQLite ``BEGIN IMMEDIATE``, PostgreSQL READ COMMITTED), committed when
        the block ends, rolled back on any exception; ``tx.execute(sql, params)`` returns the rows,
        SQL uses ``?`` placeholders on both backends. A failed statement is :class:`StoreError`."""
        return self._db.transaction()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """The rows of a read outside an explicit transaction (``?`` placeholders)."""
        return self._db.fetch(sql, params)

    def now(self) -> float:
        """The database's clock in seconds since the epoch (SQLite: this machine's)."""
        return self._db.now()

    # --- writing ------------------------------------------------------------------------------

    def write(self, record: CallRecord) -> int:
        """Write one call with all its attempts in one transaction; return its id.

        The one way a call enters the store: :meth:`record` (a finished trace) and a batch row's
        input error both come here."""

        def insert(tx: Tx) -> int:
            (row,) = tx.execute(INSERT_CALL, record.call_values())
            call_id = int(row[0])
            tx.executemany(INSERT_ATTEMPT, record.attempt_values(call_id))
            return call_id

        return self._db.run(insert)

    def record(
        self,
        call: CallTrace,
        *,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
        row_number: int | None = None,
    ) -> int:
        """Write a finished call with all its attempts; return its id. The call's context names its
        key, batch and row; a value given here replaces the context's."""
        own = call.context
        context = CallContext(
            own.idempotency_key if idempotency_key is None else idempotency_key,
            own.batch_id if batch_id is None else batch_id,
            own.row_number if row_number is None else row_number,
        )
        return self.write(CallRecord.of(call, context))

    def observer(self, *, batch_id: str | None = None, required: bool = False) -> StoreObserver:
        """An observer that records every call it sees (``batch_id`` unless the call's context names
        one).

        ``required``: a failed write fails the call with :class:`StoreError` (a batch must not count
        a row as done that was never kept); otherwise it is logged and the call's result stands.
        """
        return StoreObserver(self, batch_id=batch_id, required=required)

    # --- reading ------------------------------------------------------------------------------

    def _fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        return self._db.fetch(sql, params)

    def _calls_where(self, where: str, params: Sequence[object]) -> list[CallRow]:
        return [_row(CallRow, r) for r in self._fetch("SELECT * FROM calls WHERE " + where, params)]  # noqa: S608

    def _latest(self, where: str, params: Sequence[object]) -> CallRow | None:
        rows = self._calls_where(where + " ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    def done(self, key: str) -> CallRow | None:
        """The latest successful call with this idempotency key, if any."""
        return self._latest("idempotency_key = ? AND status = 'ok'", (key,))

    def latest(self, key: str) -> CallRow | None:
        """The latest call with this idempotency key, whatever its status."""
        return self._latest("idempotency_key = ?", (key,))

    def rows_for_batch(self, batch_id: str) -> list[CallRow]:
        """One call per numbered row of a batch, in row order: its latest ok call, else its latest
        call."""
        best: dict[int, CallRow] = {}
        for row in self._calls_where(
            "batch_id = ? AND row_number IS NOT NULL ORDER BY id", (batch_id,)
        ):
            assert row.row_number is not None
            kept = best.get(row.row_number)
            if kept is None or row.ok or not kept.ok:
                best[row.row_number] = row
        return [best[n] for n in sorted(best)]

    def _pages(self, kind: type[R], sql: str, params: Sequence[object]) -> Iterator[R]:
        """Rows of a keyset-paginated query (``id > ?`` first, ``LIMIT ?`` last), so no cursor stays
        open."""
        last = 0
        while True:
            page = self._fetch(sql, (last, *params, _PAGE))
            yield from (_row(kind, r) for r in page)
            if len(page) < _PAGE:
                return
            last = page[-1]["id"]

    def calls(self, since: datetime | None = None) -> Iterator[CallRow]:
        """Every stored call, oldest first; with ``since``, only calls started at or after it."""
        return self._pages(CallRow, SELECT_CALLS, (utc_iso(since) if since else "",))

    def attempts(
        self, call_id: int | None = None, *, since: datetime | None = None
    ) -> Iterator[AttemptRow]:
        """Every stored attempt in order, of one call or of the calls started at or after
        ``since``."""
        return self._pages(
            AttemptRow, SELECT_ATTEMPTS, (utc_iso(since) if since else "", call_id, call_id)
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (committed calls are already safe); closing twice is harmless."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreObserver(Observer):
    """Records each finished call in a :class:`Store`; per-call metadata comes from
    ``call.context``."""

    def __init__(
        self, store: Store, *, batch_id: str | None = None, required: bool = False
    ) -> None:
        self.store = store
        self.batch_id = batch_id
        self.required = required

    def __repr__(self) -> str:
        return f"StoreObserver({self.store!r}, batch_id={self.batch_id!r})"

    def call_finished(self, call: CallTrace) -> None:
        """Write the call and its attempts, unless it was interrupted rather than finished."""
        if call.error_type in INTERRUPTIONS:
            return
        self.store.record(call, batch_id=call.context.batch_id or self.batch_id)
