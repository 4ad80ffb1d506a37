"""The store on PostgreSQL (issue 14): one psycopg 3 connection shared by threads, the schema's
migrations under an advisory lock, and bounded waits.

psycopg is imported only when a ``postgresql://`` URL is opened, so SQLite users never need it.
The connection is in autocommit mode: a read is its own statement, a write one explicit
``BEGIN`` ... ``COMMIT`` at READ COMMITTED. Connecting waits at most :data:`CONNECT_TIMEOUT`
seconds, a statement at most :data:`STATEMENT_TIMEOUT_MS` (unless the URL's ``options`` set
their own), and a dead socket is noticed by TCP keepalives. The URL's password never reaches a
message: errors name :func:`tweetgen.storedb.display` and the driver's text is scrubbed.

A connection found dead (the server restarted) is replaced once: before a transaction begins
(safe: nothing ran), and for :meth:`PostgresDb.run` also when it dies before ``COMMIT`` is sent
(nothing was committed, so the body runs again). Dying during ``COMMIT`` leaves the outcome unknown:
that is a :class:`StoreError`, never a retry that could write a call twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigurationError
from .storedb import Exclusive, Row, StoreError, Tx, display
from .storeschema import MIGRATIONS, Migration, newer_schema_error

__all__ = ["CONNECT_TIMEOUT", "LOCK_KEY", "STATEMENT_TIMEOUT_MS", "PostgresDb"]

T = TypeVar("T")
#: seconds a connection attempt may take (the URL's ``connect_timeout`` wins)
CONNECT_TIMEOUT = 10
#: the longest a statement (or a wait for a lock) may take, unless the URL's ``options`` set one
STATEMENT_TIMEOUT_MS = 30_000
#: a transaction left open by a stuck process is ended by the server after this long
IDLE_IN_TRANSACTION_MS = 60_000
#: the ``pg_advisory_xact_lock`` key that serialises migrations (b"tweetgen" as a big-endian int)
LOCK_KEY = int.from_bytes(b"tweetgen", "big", signed=True)
_DEFAULTS = {
    "connect_timeout": str(CONNECT_TIMEOUT),
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": str(STATEMENT_TIMEOUT_MS),
    "application_name": "tweetgen",
}
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"  # whatever the server's default
_BOUNDED = ("statement_timeout", "idle_in_transaction_session_timeout")
_SCHEMA_TABLE = """CREATE TABLE tweetgen_schema (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), version BIGINT NOT NULL
)"""


def _psycopg(where: str) -> ModuleType:
    try:
        import psycopg
    except ImportError as error:
        raise ConfigurationError(
            f"the store {where} is a PostgreSQL database, which needs psycopg 3: "
            "pip install 'tweetgen[postgres]'"
        ) from error
    return psycopg


class _PgRow:
    """A row by column name (case-insensitive, as ``sqlite3.Row``) or by index."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            found = self._index.get(key)
            return self._values[self._index[key.lower()] if found is None else found]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self._values) == (tuple(other) if isinstance(other, _PgRow) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Row({dict(zip(self.keys(), self._values, strict=False))!r})"

    def keys(self) -> list[str]:
        return sorted(self._index, key=self._index.__getitem__)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], _PgRow]:
    names = [column.name for column in cursor.description or ()]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
        index.setdefault(name.lower(), position)
    return lambda values: _PgRow(values, index)


def _sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _params(params: Sequence[object]) -> tuple[object, ...]:
    """Values PostgreSQL's text takes: a NUL character (which SQLite keeps) becomes U+FFFD."""
    return tuple(
        v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in params
    )


class _PgTx:
    """``tx`` of a PostgreSQL transaction; also what a migration is given (it names its dialect)."""

    dialect = "postgresql"

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        cursor = self._connection.execute(_sql(sql), _params(params))
        return list(cursor.fetchall()) if cursor.description else []

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[object]]) -> None:
        rows = [_params(p) for p in seq_of_params]
        if len(rows) < 3:  # a pipeline costs more than one or two round trips on loopback
            for row in rows:
                self._connection.execute(_sql(sql), row)
            return
        with self._connection.cursor() as cursor:
            cursor.executemany(_sql(sql), rows)


def _secrets(url: str) -> list[str]:
    """The password of a URL as it is written and decoded (user-info and ``password=``)."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in ("password", "sslpassword")]
    return sorted({s for p in found if p for s in (p, unquote(p))}, key=len, reverse=True)


class PostgresDb:
    """One psycopg connection shared by threads; a lock serialises its statements."""

    backend = "postgresql"

    def __init__(self, url: str, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        scheme, _, rest = url.partition("://")
        url = f"{scheme.lower()}://{rest}"  # libpq knows the scheme in lower case only
        self.where = display(url)
        self._url = url
        self._secrets = _secrets(url)
        self._migrations = tuple(migrations)
        self._psycopg = _psycopg(self.where)
        self._lock = Exclusive()
        self._closed = False
        self._connection = self._connect()

    # --- messages: the driver's text, one line, without the password ---------------------------

    def _text(self, error: BaseException) -> str:
        text = " ".join(str(error).split()) or type(error).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text.replace(self._url, self.where)

    def write_error(self, error: BaseException, *, unknown: bool = False) -> StoreError:
        outcome = " (the server went away during COMMIT: it may or may not be stored)"
        return StoreError(
            f"cannot write to the tweetgen database {self.where}: {self._text(error)}"
            f"{outcome if unknown else ''}; check that the server runs and accepts writes, "
            "then run the same command again"
        )

    # --- connecting and migrating -------------------------------------------------------------

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            given = psycopg.conninfo.conninfo_to_dict(self._url)
            options = {k: v for k, v in _DEFAULTS.items() if k not in given}
            connection = psycopg.connect(
                self._url, autocommit=True, row_factory=_row_factory, **options
            )
        except psycopg.Error as error:
            raise ConfigurationError(
                f"cannot connect to the tweetgen database {self.where}: {self._text(error)}; "
                "check that the server runs and that the URL names the right host, port, user, "
                "password and database"
            ) from None  # the driver's own text is not scrubbed
        try:
            for setting in _BOUNDED:  # bound every wait unless the URL's options chose a bound
                limit = (
                    STATEMENT_TIMEOUT_MS
                    if setting == "statement_timeout"
                    else IDLE_IN_TRANSACTION_MS
                )
                connection.execute(
                    "SELECT set_config(%s, %s, false) WHERE current_setting(%s) = '0'",
                    (setting, str(limit), setting),
                )
            self._migrate(connection)
        except BaseException as error:
            connection.close()
            if isinstance(error, psycopg.Error):
                raise ConfigurationError(
                    f"cannot prepare the tweetgen database {self.where}: {self._text(error)}; "
                    "check that the URL's user may create tables there"
                ) from None
            raise
        return connection

    def _migrate(self, connection: Any) -> int:
        """Bring the database to the latest schema in one transaction under an advisory lock (so
        processes opening it together migrate it once), or refuse a newer one."""
        target = len(self._migrations)
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            exists = connection.execute("SELECT to_regclass('tweetgen_schema')").fetchone()[0]
            if exists is None:
                connection.execute(_SCHEMA_TABLE)
                connection.execute("INSERT INTO tweetgen_schema (version) VALUES (0)")
            version = int(connection.execute("SELECT version FROM tweetgen_schema").fetchone()[0])
            if version > target:
                raise newer_schema_error(self.where, version, target)
            for migration in self._migrations[version:]:
                migration(_PgTx(connection))
            if version < target:
                connection.execute("UPDATE tweetgen_schema SET version = %s", (target,))
        return target

    def _reconnect(self) -> Any:
        """A new connection in place of a dead one (under the lock); unreachable is StoreError."""
        with suppress(Exception):
            self._connection.close()
        try:
            self._connection = self._connect()
        except ConfigurationError as error:
            raise StoreError(f"lost the connection and {error}") from None
        return self._connection

    def _live(self) -> Any:
        if self._closed:
            raise StoreError(f"the tweetgen database {self.where} was closed by this program")
        return self._reconnect() if self._connection.closed else self._connection

    # --- transactions -------------------------------------------------------------------------

    def _begin(self) -> Any:
        """``BEGIN`` on a live connection: a dead one is replaced once (nothing ran yet)."""
        connection = self._live()
        try:
            connection.execute(_BEGIN)
        except self._psycopg.OperationalError as error:
            if not connection.closed:
                raise self.write_error(error) from None
            connection = self._reconnect()
            try:
                connection.execute(_BEGIN)
            except self._psycopg.Error as again:
                raise self.write_error(again) from None
        return connection

    def _rollback(self, connection: Any) -> None:
        if not connection.closed:
            with suppress(self._psycopg.Error):
                connection.execute("ROLLBACK")

    def _commit(self, connection: Any) -> None:
        try:
            connection.execute("COMMIT")
        except self._psycopg.Error as error:
            self._rollback(connection)
            raise self.write_error(error, unknown=connection.closed) from None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """``BEGIN`` ... ``COMMIT`` at READ COMMITTED, rolled back on any exception; driver errors
        become :class:`StoreError`."""
        with self._lock.transaction():
            connection = self._begin()
            try:
                yield _PgTx(connection)
            except BaseException as error:
                self._rollback(connection)
                if isinstance(error, self._psycopg.Error):
                    raise self.write_error(error) from None
                raise
            self._commit(connection)

    def run(self, body: Callable[[Tx], T]) -> T:
        """``body`` in one transaction; run once more on a new connection if the old one died
        before the commit (nothing of it was kept)."""
        with self._lock.transaction():
            for again in (True, False):
                connection = self._begin()
                try:
                    value = body(_PgTx(connection))
                except self._psycopg.Error as error:
                    self._rollback(connection)
                    if again and connection.closed:
                        continue
                    raise self.write_error(error) from None
                except BaseException:
                    self._rollback(connection)
                    raise
                self._commit(connection)
                return value
        raise AssertionError("unreachable")  # pragma: no cover

    # --- reading ------------------------------------------------------------------------------

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """A read in its own statement; a dead connection is replaced once (reading is safe to
        repeat)."""
        with self._lock:
            for again in (True, False):
                connection = self._live()
                try:
                    cursor = connection.execute(_sql(sql), _params(params))
                    return list(cursor.fetchall()) if cursor.description else []
                except self._psycopg.Error as error:
                    if again and connection.closed:
                        continue
                    raise StoreError(
                        f"cannot read the tweetgen database {self.where}: {self._text(error)}; "
                        "check that the server runs, then run the same command again"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def now(self) -> float:
        """The server's clock (every process of a fleet compares leases with this one)."""
        return float(self.fetch("SELECT extract(epoch FROM clock_timestamp())")[0][0])

    def schema_version(self) -> int:
        """The ``tweetgen_schema`` version."""
        return int(self.fetch("SELECT version FROM tweetgen_schema")[0][0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._connection.close()
