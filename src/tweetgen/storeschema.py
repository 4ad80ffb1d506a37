"""The store's schema: its tables, their rows, the migrations and the configured SQLite connection.

One set of migrations serves both backends: each is written in SQLite's words and :func:`ddl` says
it in PostgreSQL's (BIGINT, DOUBLE PRECISION, identity ids, timestamps in the "C" collation). SQLite
versions the file with ``PRAGMA user_version``, PostgreSQL with a ``tweetgen_schema`` row
(:mod:`tweetgen.storepg`); :data:`MIGRATIONS` brings an older store up to date when opened, and a
newer one is refused. Timestamps are UTC ISO-8601 text with microseconds
and a ``Z`` (fixed width, so text order is time order). :mod:`tweetgen.store` re-exports what is
public here.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

__all__ = [
    "BATCHES_SQL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRow",
    "CallRow",
    "Migration",
    "idempotency_key",
    "utc_iso",
]

_V1 = (
    """CREATE TABLE calls (
        id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, idempotency_key TEXT,
        batch_id TEXT, row_number INTEGER,
        created_at TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
        topic TEXT, tone TEXT, max_words INTEGER, inputs_json TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        text TEXT, error_type TEXT, error_message TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, regenerations INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        waited_seconds REAL NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX calls_idempotency_key ON calls (idempotency_key)",
    "CREATE INDEX calls_created_at ON calls (created_at)",
    "CREATE INDEX calls_provider_model ON calls (provider, model)",
    "CREATE INDEX calls_batch ON calls (batch_id, row_number)",
    """CREATE TABLE attempts (
        id INTEGER PRIMARY KEY, call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, number INTEGER NOT NULL,
        started_at TEXT, delay_before REAL NOT NULL DEFAULT 0,
        latency_ms REAL, status_code INTEGER, error_type TEXT, error_message TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
        finish_reason TEXT, response_model TEXT,
        UNIQUE (call_id, seq)
    )""",
)


#: the batch work queue (issue 14): a batch's rows, claimed by workers with leases
BATCHES_SQL = (
    """CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY, total INTEGER NOT NULL, created_at TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE batch_rows (
        batch_id TEXT NOT NULL, row_number INTEGER NOT NULL, idempotency_key TEXT,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done')),
        worker TEXT, lease_until REAL, claims INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL, PRIMARY KEY (batch_id, row_number)
    )""",
    "CREATE INDEX batch_rows_state ON batch_rows (batch_id, state, row_number)",
)

#: issue 15: thinking tokens, the service tier that answered, the cost in US dollars (NULL: unknown)
#: and the kind of quota a 429 named, per attempt and per call; and the Gemini Batch jobs a batch
#: submitted (so that a rerun polls the same job instead of submitting again)
_V3 = (
    *(
        f"ALTER TABLE {table} ADD COLUMN {column}"
        for table in ("calls", "attempts")
        for column in (
            "thought_tokens INTEGER NOT NULL DEFAULT 0",
            "service_tier TEXT",
            "cost_usd REAL",
            "quota_kind TEXT",
        )
    ),
    """CREATE TABLE gemini_batch_jobs (
        batch_id TEXT NOT NULL, job_name TEXT NOT NULL, state TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deadline_at TEXT,
        details TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (batch_id, job_name)
    )""",
)

#: issue 16: the review page's decisions. ``reviews`` holds each reviewed call's state, its text
#: as edited (NULL: the generated text) and the call a regeneration replaced; ``review_events``
#: every decision and edit with its time, the state and text before and after
_V4 = (
    """CREATE TABLE reviews (
        call_id INTEGER PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'approved', 'rejected', 'replaced')),
        text TEXT, replaces INTEGER, updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX reviews_state ON reviews (state, call_id)",
    """CREATE TABLE review_events (
        id INTEGER PRIMARY KEY, call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL, action TEXT NOT NULL, old_state TEXT, new_state TEXT,
        old_text TEXT, new_text TEXT, details TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX review_events_call ON review_events (call_id, id)",
)

_POSTGRES_WORDS = (
    (
        re.compile(r"\bid INTEGER PRIMARY KEY\b"),
        "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\b(\w+_at) TEXT\b"), r'\1 TEXT COLLATE "C"'),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def ddl(statement: str, dialect: str) -> str:
    """A statement written for SQLite, in ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "postgresql":
        for pattern, words in _POSTGRES_WORDS:
            statement = pattern.sub(words, statement)
    return statement


def _run(connection: Any, statements: Sequence[str]) -> None:
    """Run DDL on a SQLite connection or a PostgreSQL transaction (which names its ``dialect``)."""
    dialect = getattr(connection, "dialect", "sqlite")
    for statement in statements:
        connection.execute(ddl(statement, dialect))


def _v1(connection: Any) -> None:
    """Create the calls and attempts tables and their indexes."""
    _run(connection, _V1)


def _v2(connection: Any) -> None:
    """Create the batch work queue: ``batches`` and ``batch_rows``."""
    _run(connection, BATCHES_SQL)


def _v3(connection: Any) -> None:
    """Add thinking tokens, service tier, cost and quota kind; create ``gemini_batch_jobs``."""
    _run(connection, _V3)


def _v4(connection: Any) -> None:
    """Create the review page's ``reviews`` and ``review_events``."""
    _run(connection, _V4)


#: a SQLite connection or a PostgreSQL transaction (``execute(sql)``; the latter has ``dialect``)
Migration = Callable[[Any], None]
#: Migration ``n`` (1-based) takes a store from schema version ``n - 1`` to ``n``; append, never
#: edit.
MIGRATIONS: tuple[Migration, ...] = (_v1, _v2, _v3, _v4)
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
    thought_tokens: int = 0
    service_tier: str | None = None
    cost_usd: float | None = None
    quota_kind: str | None = None

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
    """One stored attempt; ``seq`` orders a call's attempts (``number`` restarts when a tweet is
    regenerated)."""

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
    thought_tokens: int = 0
    service_tier: str | None = None
    cost_usd: float | None = None
    quota_kind: str | None = None


def utc_iso(moment: datetime | float) -> str:
    """A moment (aware, naive meaning UTC, or epoch seconds) as fixed-width UTC ISO text ending in
    ``Z``."""
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
    """The sha256 hex digest of a call's inputs and the settings that change its output (not retries
    or timeouts)."""
    canonical = json.dumps(
        {"inputs": dict(inputs), "settings": dict(settings)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_plain,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def newer_schema_error(where: object, version: int, target: int) -> ConfigurationError:
    """The refusal of a store written by a newer tweetgen (both backends)."""
    return ConfigurationError(
        f"the database {where} has schema version {version}, but this tweetgen understands only "
        f"up to {target}: it was written by a newer tweetgen; upgrade tweetgen or pass another "
        "--db PATH or URL"
    )


def _migrate(connection: sqlite3.Connection, migrations: Sequence[Migration], where: object) -> int:
    """Bring the file to ``len(migrations)`` in one transaction (or refuse a newer file); return the
    version."""
    target = len(migrations)
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > target:
            raise newer_schema_error(where, version, target)
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
