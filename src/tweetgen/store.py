"""Every call and its attempts in SQLite, so batches resume after a crash and ``tweetgen stats`` can report.

One file (``tweetgen.db`` by default) in WAL mode: readers never block the writer, and a call is written with all
its attempts in one transaction, so a crash leaves whole calls or none. The schema is versioned with ``PRAGMA
user_version``; :data:`MIGRATIONS` brings older files up to date when opened, and a newer file is refused.
Timestamps are UTC ISO-8601 text with microseconds and a ``Z`` (fixed width, so text order is time order).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigurationError, TweetGenError
from .logs import redact_text
from .trace import AttemptTrace, CallTrace, Observer

__all__ = [
    "DEFAULT_DB_PATH",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRow",
    "CallRow",
    "DamagedStoreError",
    "Store",
    "StoreError",
    "StoreObserver",
    "idempotency_key",
    "utc_iso",
]

DEFAULT_DB_PATH = "tweetgen.db"
DEFAULT_BUSY_TIMEOUT = 5.0
INTERRUPTIONS = frozenset({"KeyboardInterrupt", "SystemExit", "CancelledError", "GeneratorExit"})
_PAGE = 500
R = TypeVar("R", "CallRow", "AttemptRow")
#: SQLite's INTEGER range; counts from a server are clamped into it before they are written
_MAX_INT = 2**63 - 1


class StoreError(TweetGenError):
    """The store could not write (disk full, read-only, corrupted): what was paid for would be lost, so stop."""


class DamagedStoreError(StoreError, ConfigurationError):
    """The store cannot be read (a damaged file): exit 2, nothing was lost by this run."""


_V1 = (
    """CREATE TABLE calls (
        id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, idempotency_key TEXT, batch_id TEXT, row_number INTEGER,
        created_at TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
        topic TEXT, tone TEXT, max_words INTEGER, inputs_json TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), text TEXT, error_type TEXT, error_message TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, regenerations INTEGER NOT NULL DEFAULT 0, latency_ms REAL,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        waited_seconds REAL NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX calls_idempotency_key ON calls (idempotency_key)",
    "CREATE INDEX calls_created_at ON calls (created_at)",
    "CREATE INDEX calls_provider_model ON calls (provider, model)",
    "CREATE INDEX calls_batch ON calls (batch_id, row_number)",
    """CREATE TABLE attempts (
        id INTEGER PRIMARY KEY, call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, number INTEGER NOT NULL, started_at TEXT, delay_before REAL NOT NULL DEFAULT 0,
        latency_ms REAL, status_code INTEGER, error_type TEXT, error_message TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        finish_reason TEXT, response_model TEXT,
        UNIQUE (call_id, seq)
    )""",
)


def _v1(connection: sqlite3.Connection) -> None:
    """Create the calls and attempts tables and their indexes."""
    for statement in _V1:
        connection.execute(statement)


Migration = Callable[[sqlite3.Connection], None]
#: Migration ``n`` (1-based) takes a file from schema version ``n - 1`` to ``n``; append, never edit.
MIGRATIONS: tuple[Migration, ...] = (_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class CallRow:
    """One stored call, as the ``calls`` table holds it."""

    id: int
    request_id: str
    idempotency_key: str | None
    batch_id: str | None
    row_number: int | None
    created_at: str
    provider: str
    model: str
    topic: str | None
    tone: str | None
    max_words: int | None
    inputs_json: str
    status: str
    text: str | None
    error_type: str | None
    error_message: str | None
    attempts: int
    regenerations: int
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    waited_seconds: float

    @property
    def ok(self) -> bool:
        """Whether the call produced its tweet(s)."""
        return self.status == "ok"

    @property
    def inputs(self) -> dict[str, Any]:
        """The call's inputs, decoded from ``inputs_json``."""
        decoded: dict[str, Any] = json.loads(self.inputs_json)
        return decoded


@dataclass(frozen=True)
class AttemptRow:
    """One stored attempt; ``seq`` orders a call's attempts (``number`` restarts when a tweet is regenerated)."""

    id: int
    call_id: int
    seq: int
    number: int
    started_at: str | None
    delay_before: float
    latency_ms: float | None
    status_code: int | None
    error_type: str | None
    error_message: str | None
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    response_model: str | None


def utc_iso(moment: datetime | float) -> str:
    """A moment (aware, naive meaning UTC, or epoch seconds) as fixed-width UTC ISO text ending in ``Z``."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: object) -> object:
    """The JSON-ready form of the few non-JSON values settings hold; anything else is refused."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (Path, date)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(
        f"{type(value).__name__} values cannot be part of an idempotency key; pass plain values"
    )


def idempotency_key(inputs: Mapping[str, object], settings: Mapping[str, object]) -> str:
    """The sha256 hex digest of a call's inputs and the settings that change its output (not retries or timeouts)."""
    canonical = json.dumps(
        {"inputs": dict(inputs), "settings": dict(settings)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_plain,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _migrate(connection: sqlite3.Connection, migrations: Sequence[Migration], where: object) -> int:
    """Bring the file to ``len(migrations)`` in one transaction (or refuse a newer file); return the version."""
    target = len(migrations)
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > target:
            raise ConfigurationError(
                f"the database {where} has schema version {version}, but this tweetgen understands only up to "
                f"{target}: it was written by a newer tweetgen; upgrade tweetgen or pass another --db PATH"
            )
        for migration in migrations[version:]:
            migration(connection)
        connection.execute(f"PRAGMA user_version = {target:d}")
        connection.execute("COMMIT")
    except BaseException:
        connection.rollback()
        raise
    return target


def _connect(path: str, timeout: float) -> sqlite3.Connection:
    """A configured connection to ``path``: WAL, NORMAL sync, foreign keys, a busy timeout."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        path, timeout=timeout, check_same_thread=False, isolation_level=None
    )
    try:
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000):d}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        _migrate(connection, MIGRATIONS, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _safe(value: object) -> object:
    """A value SQLite can store and that holds no secret: text redacted, integers clamped, non-finite floats null."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return max(-_MAX_INT, min(_MAX_INT, value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _safe_row(values: Mapping[str, object]) -> dict[str, object]:
    return {name: _safe(value) for name, value in values.items()}


def _call_values(call: CallTrace, metadata: Mapping[str, object]) -> dict[str, object]:
    """The ``calls`` row of a finished trace, by column (``metadata``: key, batch id and row number)."""
    inputs = call.inputs
    return _safe_row(
        {
            **{name: getattr(call, name) for name in _COPIED_FROM_CALL},
            **metadata,
            "created_at": utc_iso(call.started_at),
            **{name: inputs.get(name) for name in ("topic", "tone", "max_words")},
            "inputs_json": json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str),
            "attempts": len(call.attempts),
            "regenerations": call.regenerations,
            "latency_ms": call.latency_ms,
            "waited_seconds": call.waited_seconds,
            "input_tokens": sum(a.input_tokens for a in call.attempts),
            "output_tokens": sum(a.output_tokens for a in call.attempts),
        }
    )


def _attempt_values(call_id: int, seq: int, attempt: AttemptTrace) -> dict[str, object]:
    """The ``attempts`` row of one attempt, by column."""
    copied = {name: getattr(attempt, name) for name in _COPIED_FROM_ATTEMPT}
    return _safe_row(
        {**copied, "call_id": call_id, "seq": seq, "started_at": utc_iso(attempt.started_at)}
    )


def _insert(table: str, kind: type[CallRow | AttemptRow]) -> str:
    """An INSERT of every column of ``kind`` but ``id``, with named parameters."""
    names = [f.name for f in fields(kind) if f.name != "id"]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"  # noqa: S608


_COPIED_FROM_CALL = (
    "request_id",
    "provider",
    "model",
    "status",
    "text",
    "error_type",
    "error_message",
)
_COPIED_FROM_ATTEMPT = tuple(
    f.name for f in fields(AttemptRow) if f.name not in ("id", "call_id", "seq", "started_at")
)
_INSERT_CALL = _insert("calls", CallRow)
_INSERT_ATTEMPT = _insert("attempts", AttemptRow)
_SELECT_CALLS = "SELECT * FROM calls WHERE id > ? AND created_at >= ? ORDER BY id LIMIT ?"
_SELECT_ATTEMPTS = (
    "SELECT a.* FROM attempts a JOIN calls c ON c.id = a.call_id "
    "WHERE a.id > ? AND c.created_at >= ? AND (? IS NULL OR a.call_id = ?) ORDER BY a.id LIMIT ?"
)


def _row(kind: type[R], row: sqlite3.Row) -> R:
    """A frozen row object from the columns it names (extra columns are ignored)."""
    return kind(**{f.name: row[f.name] for f in fields(kind)})


class Store:
    """The SQLite file of calls and attempts; one connection shared by threads, writes serialised by a lock."""

    def __init__(
        self,
        path: str | Path = DEFAULT_DB_PATH,
        *,
        create: bool = True,
        timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self.path = str(path) if str(path) == ":memory:" else str(Path(path).expanduser())
        if not create and not Path(self.path).is_file():
            raise ConfigurationError(
                f"no tweetgen database at {self.path}; pass --db PATH to name an existing one"
            )
        self._lock = threading.Lock()
        try:
            self._connection = _connect(self.path, timeout)
        except (sqlite3.Error, OSError) as error:
            from .oserrors import explain_path_error

            raise ConfigurationError(
                f"cannot open the tweetgen database {self.path}: {explain_path_error(error, self.path)}; "
                "pass --db PATH with a writable location"
            ) from error

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    @property
    def schema_version(self) -> int:
        """The file's ``PRAGMA user_version``."""
        return int(self._fetch("PRAGMA user_version", ())[0][0])

    # --- writing ------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.rollback()
                raise

    def record(
        self,
        call: CallTrace,
        *,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
        row_number: int | None = None,
    ) -> int:
        """Write a finished call with all its attempts in one transaction; return its id (``scratch`` fills gaps)."""
        if call.status not in ("ok", "failed"):
            raise ValueError(f"only finished calls can be stored; this one is {call.status!r}")
        given = {"idempotency_key": idempotency_key, "batch_id": batch_id, "row_number": row_number}
        context = vars(call.context)
        values = _call_values(
            call,
            {
                k: (context.get(k) or call.scratch.get(k)) if v is None else v
                for k, v in given.items()
            },
        )
        try:
            with self._transaction() as connection:
                call_id = connection.execute(_INSERT_CALL, values).lastrowid
                assert call_id is not None
                rows = [_attempt_values(call_id, seq, a) for seq, a in enumerate(call.attempts, 1)]
                connection.executemany(_INSERT_ATTEMPT, rows)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(
                f"cannot write to the tweetgen database {self.path}: {error}; "
                "free disk space or pass --db PATH with a writable location, then run the same command again"
            ) from error
        return call_id

    def observer(self, *, batch_id: str | None = None, required: bool = False) -> StoreObserver:
        """An observer that records every call it sees (``batch_id`` unless the call's scratch names one).

        ``required``: a failed write fails the call with :class:`StoreError` (a batch must not count a row
        as done that was never kept); otherwise it is logged and the call's result stands.
        """
        return StoreObserver(self, batch_id=batch_id, required=required)

    # --- reading ------------------------------------------------------------------------------

    def _fetch(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._connection.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as error:
            raise DamagedStoreError(
                f"cannot read the tweetgen database {self.path}: {error}; move the file aside (its rows may be saved "
                f"with: sqlite3 {self.path} .recover) or pass --db PATH, then run the same command again"
            ) from error

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
        """One call per numbered row of a batch, in row order: its latest ok call, else its latest call."""
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
        """Rows of a keyset-paginated query (``id > ?`` first, ``LIMIT ?`` last), so no cursor stays open."""
        last = 0
        while True:
            page = self._fetch(sql, (last, *params, _PAGE))
            yield from (_row(kind, r) for r in page)
            if len(page) < _PAGE:
                return
            last = page[-1]["id"]

    def calls(self, since: datetime | None = None) -> Iterator[CallRow]:
        """Every stored call, oldest first; with ``since``, only calls started at or after it."""
        return self._pages(CallRow, _SELECT_CALLS, (utc_iso(since) if since else "",))

    def attempts(
        self, call_id: int | None = None, *, since: datetime | None = None
    ) -> Iterator[AttemptRow]:
        """Every stored attempt in order, of one call or of the calls started at or after ``since``."""
        return self._pages(
            AttemptRow, _SELECT_ATTEMPTS, (utc_iso(since) if since else "", call_id, call_id)
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (committed calls are already safe); closing twice is harmless."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreObserver(Observer):
    """Records each finished call in a :class:`Store`; per-call metadata comes from ``call.scratch``."""

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
        batch_id = call.context.batch_id or call.scratch.get("batch_id", self.batch_id)
        self.store.record(call, batch_id=batch_id)
