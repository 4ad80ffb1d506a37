"""The store's two kinds of connection: which one a target names, how it is shown, and the SQLite
one (the PostgreSQL one is :mod:`tweetgen.storepg`).

A target is a SQLite path or a ``postgresql://`` (or ``postgres://``) URL. Both connections offer
the same small surface to :class:`tweetgen.store.Store`: ``transaction()`` yields a ``tx`` whose
``execute`` and ``executemany`` take SQL with ``?`` placeholders; ``run(body)`` runs a body in one
transaction (PostgreSQL retries it once on a fresh connection when the old one died before the
commit); ``fetch`` reads outside a transaction; ``now``, ``schema_version`` and ``close``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError, TweetGenError

__all__ = [
    "DamagedStoreError",
    "Exclusive",
    "Row",
    "SqliteDb",
    "StoreError",
    "Tx",
    "display",
    "is_url",
]

T = TypeVar("T")
URL_SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


class StoreError(TweetGenError):
    """The store could not write (disk full, read-only, corrupted, server gone): what was paid for
    would be lost, so stop."""


class DamagedStoreError(StoreError, ConfigurationError):
    """The store cannot be read (a damaged file): exit 2, nothing was lost by this run."""


class Row(Protocol):
    """A result row: by column name (``row["state"]``) or by index (``row[0]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Tx(Protocol):
    """The statements of one open transaction, with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[object]]) -> None: ...


def is_url(target: str) -> bool:
    """Whether ``target`` is a URL (``scheme://``) rather than a SQLite path; an unknown scheme is
    refused."""
    scheme, found, _ = target.partition("://")
    if not found or not scheme.replace("+", "").replace("-", "").isalnum():
        return False
    if scheme.lower() not in URL_SCHEMES:
        raise ConfigurationError(
            f"the store {display(target)} has an unknown scheme {scheme}://: pass --db with a "
            "SQLite file path or a postgresql:// URL"
        )
    return True


def display(target: str) -> str:
    """``target`` as it may be shown: a URL's password (in its user-info or a ``password=``
    parameter) replaced by ``***``; a path unchanged."""
    if "://" not in target:
        return target
    parts = urlsplit(target)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs], safe="*/:"
        )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class Exclusive:
    """A connection's lock: the thread in a transaction may read (``query``, ``now``) inside it,
    but a transaction never opens inside another."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._in_transaction = False

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._in_transaction:  # only the thread holding the lock can see it set
                raise RuntimeError("a store transaction cannot be opened inside another one")
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False


class _SqliteTx:
    """``tx`` of a SQLite transaction: the connection's own ``?`` placeholders."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        rows: list[Row] = self._connection.execute(sql, params).fetchall()
        return rows

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[object]]) -> None:
        self._connection.executemany(sql, seq_of_params)


class SqliteDb:
    """One SQLite connection shared by threads; a lock serialises its statements."""

    backend = "sqlite"

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self._connection = connection
        self.where = where
        self._lock = Exclusive()

    def write_error(self, error: BaseException) -> StoreError:
        return StoreError(
            f"cannot write to the tweetgen database {self.where}: {error}; free disk space or "
            "pass --db PATH with a writable location, then run the same command again"
        )

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception; SQLite errors become
        :class:`StoreError`."""
        with self._lock.transaction():
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except (sqlite3.Error, OSError) as error:
                raise self.write_error(error) from error
            try:
                yield _SqliteTx(self._connection)
                self._connection.execute("COMMIT")
            except BaseException as error:
                with suppress(sqlite3.Error):  # unusable connection: the original error says why
                    self._connection.rollback()
                if isinstance(error, (sqlite3.Error, OSError)):
                    raise self.write_error(error) from error
                raise

    def run(self, body: Callable[[Tx], T]) -> T:
        """``body`` in one transaction; its value."""
        with self.transaction() as tx:
            return body(tx)

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """A read outside an explicit transaction; a damaged file is :class:`DamagedStoreError`."""
        try:
            with self._lock:
                rows: list[Row] = self._connection.execute(sql, params).fetchall()
                return rows
        except sqlite3.DatabaseError as error:
            raise DamagedStoreError(
                f"cannot read the tweetgen database {self.where}: {error}; move the file aside "
                f"(its rows may be saved with: sqlite3 {self.where} .recover) or pass --db PATH, "
                "then run the same command again"
            ) from error

    def now(self) -> float:
        """This machine's clock (one SQLite file is on one machine)."""
        return time.time()

    def schema_version(self) -> int:
        """The file's ``PRAGMA user_version``."""
        return int(self.fetch("PRAGMA user_version")[0][0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()
