"""Batch rows made ready to run: each input row validated into a request and its idempotency key
once, or its error said; and the :class:`RowLedger` that keeps the prepared rows of one run on disk.

The ledger is what lets a batch read its input once and hold no row in memory: the rows are prepared
into a private temporary SQLite database (on disk, a bounded page cache), counted there for the
progress bar, run from there in input order, and the output is rebuilt from there and the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pickle
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import events
from .batchinput import Row, read_rows
from .errors import InputError
from .request import TweetRequest, brief
from .storeschema import idempotency_key

__all__ = [
    "MAX_SHOWN_CHARS",
    "PreparedRow",
    "RowLedger",
    "built",
    "from_payload",
    "payload",
    "prepare",
    "prepared_rows",
    "shown_inputs",
]

_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
#: The input columns that shape a request (README: other columns are ignored; ``id`` names the row).
_COLUMNS = frozenset(
    {
        "topic",
        "tone",
        "max_words",
        "hashtags",
        "emoji",
        "audience",
        "call_to_action",
        "language",
        "link",
        "seed",
        "voice",
    }
)
_TEXT_FIELDS = ("topic", "tone", "audience", "call_to_action", "language", "link")
_INT_FIELDS = ("max_words", "seed")
#: A whole number as CSV writes it: digits, and a ``.0`` as spreadsheets and pandas add (18 digits
#: fit 64 bits).
_WHOLE = re.compile(r"\s*[+-]?\d{1,18}(?:\.0*)?\s*")
#: Longest topic or tone an error record repeats (the output and the store keep them to find the
#: row).
MAX_SHOWN_CHARS = 1_000


@dataclass(frozen=True)
class PreparedRow:
    """A row ready to run (``request`` and ``key``, and the ``options`` it was built from) or its
    input error."""

    row: Row
    key: str | None = None
    request: TweetRequest | None = None
    error: str | None = None
    options: dict[str, Any] | None = None


def _whole(name: str, value: object) -> int:
    """A whole number from JSON (``12``, or ``12.0``) or CSV text (``"12"``); anything else is the
    row's error."""
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value.strip().split(".")[0])
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(f"{name} must be a whole number, got {brief(value)}")


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """The request options of a row: its known columns, types checked, CSV text read as numbers and
    yes/no."""
    options = {k: v for k, v in values.items() if k in _COLUMNS and v is not None}
    topic = options.get("topic")
    if topic is None or (isinstance(topic, str) and not topic.strip()):
        raise InputError("topic is empty")
    for name in _TEXT_FIELDS:
        if name in options and not isinstance(options[name], str):
            raise InputError(f"{name} must be a text, got {brief(options[name])}")
    for name in _INT_FIELDS:
        if name in options:
            options[name] = _whole(name, options[name])
    emoji = options.get("emoji")
    if isinstance(emoji, str):
        if emoji.strip().lower() not in _BOOL:
            raise InputError(f"emoji must be yes or no (true/false, 1/0), got {brief(emoji)}")
        options["emoji"] = _BOOL[emoji.strip().lower()]
    elif emoji is not None and not isinstance(emoji, bool):
        raise InputError(f"emoji must be yes or no, got {brief(emoji)}")
    return options


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The values an error record repeats (id, topic, tone, max_words), made safe to write to the
    output and the store: texts cut to ``MAX_SHOWN_CHARS``, numbers within 64 bits (18 digits),
    anything else as short text."""
    shown: dict[str, Any] = {}
    for name in ("id", "topic", "tone", "max_words"):
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
            shown[name] = value
        elif isinstance(value, str) and (len(value) <= 18 or name != "max_words"):
            cut = len(value) > MAX_SHOWN_CHARS
            shown[name] = value[:MAX_SHOWN_CHARS] + "..." if cut else value
        else:
            shown[name] = brief(value)
    return shown


def shown_inputs(values: dict[str, Any]) -> dict[str, Any]:
    """A row's own topic, tone and max_words (a number when it reads as one), as given."""
    max_words = values.get("max_words")
    with contextlib.suppress(TypeError, ValueError):
        max_words = int(max_words) if max_words is not None else None
    return {"topic": values.get("topic"), "tone": values.get("tone"), "max_words": max_words}


def _failed(row: Row, message: str) -> PreparedRow:
    return PreparedRow(Row(row.number, _shown(row.values), message), error=message)


def prepare(
    row: Row, settings: dict[str, Any], defaults: dict[str, Any] | None = None
) -> PreparedRow:
    """Validate a row into a request and its idempotency key, or say why it cannot run.

    Whatever goes wrong is that row's error, and the batch goes on: input problems have their own
    sentences; anything else (a bug, a library's surprise) is logged with its traceback and named by
    its type.
    """
    if row.error:
        return _failed(row, row.error)
    try:
        options = {**(defaults or {}), **_coerce(row.values)}
        request = TweetRequest(**options)
        # no voice: the key a row had before voices existed (a batch resumes across the upgrade)
        inputs = {
            k: v
            for k, v in vars(request).items()
            if k != "extra" and not (k == "voice" and v is None)
        }
        key = idempotency_key(inputs, settings)
        return PreparedRow(row, key=key, request=request, options=options)
    except InputError as error:
        return _failed(row, str(error))
    except Exception as error:  # the last line of defence: this row fails, not the batch
        name = type(error).__name__
        events.row_unprepared(row.number, error)
        return _failed(row, f"row cannot be prepared ({name}); the log file has the details")


def payload(prepared: PreparedRow) -> str:
    """A prepared row as JSON text, as a batch's work queue shares it between processes (never a
    pickle): its id and either its key and request options, or its error and shown inputs."""
    values = prepared.row.values
    if prepared.error is not None or prepared.options is None:
        body = {"id": values.get("id"), **shown_inputs(values), "error": prepared.error}
    else:
        body = {"id": values.get("id"), "key": prepared.key, "options": prepared.options}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def from_payload(number: int, text: str, *, build: bool = True) -> PreparedRow:
    """The prepared row a :func:`payload` describes (its request built again, so validated;
    ``build=False``: not yet, see :func:`built`)."""
    body = json.loads(text)
    error, options = body.get("error"), body.get("options")
    if error is not None or options is None:
        names = ("id", "topic", "tone", "max_words")
        shown = {name: body[name] for name in names if body.get(name) is not None}
        return PreparedRow(Row(number, shown, error), error=error or "row cannot be prepared")
    row = Row(number, {"id": body.get("id")})
    prepared = PreparedRow(row, key=body.get("key"), options=options)
    return built(prepared) if build else prepared


def built(prepared: PreparedRow) -> PreparedRow:
    """The row with its request built from its options (a row that needs a call)."""
    if prepared.request is not None or prepared.options is None:
        return prepared
    return dataclasses.replace(prepared, request=TweetRequest(**prepared.options))


_PAGE = 500
_SCHEMA = (
    "CREATE TABLE seen (digest BLOB PRIMARY KEY, row INTEGER) WITHOUT ROWID",
    "CREATE TABLE rows (number INTEGER PRIMARY KEY, id, topic, tone, max_words, key TEXT, "
    "error TEXT, request BLOB, payload TEXT)",
)


class RowLedger:
    """Prepared rows of one run in a private temporary SQLite database, so memory stays flat however
    long the input is; duplicates (a key an earlier row has) are marked on the way in."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary file, removed when closed
        for statement in _SCHEMA:
            self._db.execute(statement)
        self.count = 0
        self._digest = hashlib.sha256()

    @property
    def batch_id(self) -> str:
        """The batch's id: a digest of every prepared row (its inputs, and the settings its key
        covers), the same on every machine and for every output path."""
        return self._digest.hexdigest()[:16]

    def close(self) -> None:
        """Remove the temporary database."""
        self._db.close()

    def __enter__(self) -> RowLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unique(self, prepared: PreparedRow) -> PreparedRow:
        """The row, or its error when an earlier row of this input has the same key."""
        if prepared.key is None:
            return prepared
        digest = hashlib.blake2b(prepared.key.encode(), digest_size=16).digest()
        number = prepared.row.number
        self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (digest, number))
        (earlier,) = self._db.execute("SELECT row FROM seen WHERE digest = ?", (digest,)).fetchone()
        if earlier == number:
            return prepared
        return PreparedRow(prepared.row, error=f"duplicate of row {earlier}")

    def keep(self, rows: Iterable[PreparedRow]) -> int:
        """Mark duplicates and keep every row (its request pickled: this process reads it back);
        returns how many rows the ledger holds."""
        for prepared in rows:
            prepared = self.unique(prepared)
            request = prepared.request
            if prepared.error is not None or request is None:
                shown = shown_inputs(prepared.row.values)
                blob = None
            else:
                shown = {"topic": request.topic, "tone": request.tone}
                shown["max_words"] = request.max_words
                blob = pickle.dumps(request, pickle.HIGHEST_PROTOCOL)
            values = (prepared.row.number, prepared.row.values.get("id"), *shown.values())
            text = payload(prepared)
            self._digest.update(f"{prepared.row.number}\0{text}\n".encode())
            self._db.execute(
                "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, prepared.key, prepared.error, blob, text),
            )
            self.count += 1
        return self.count

    def _pages(self, columns: str) -> Iterator[tuple[Any, ...]]:
        last = -1
        query = f"SELECT number, {columns} FROM rows WHERE number > ? ORDER BY number LIMIT ?"  # noqa: S608
        while page := self._db.execute(query, (last, _PAGE)).fetchall():
            yield from page
            last = page[-1][0]

    def rows(self) -> Iterator[PreparedRow]:
        """The rows in input order, as :func:`prepare` made them (duplicates marked)."""
        for number, row_id, topic, tone, max_words, key, error, blob in self._pages(
            "id, topic, tone, max_words, key, error, request"
        ):
            if error is not None:
                values = {"id": row_id, "topic": topic, "tone": tone, "max_words": max_words}
                shown = {k: v for k, v in values.items() if v is not None}
                yield PreparedRow(Row(number, shown, error), error=error)
            else:
                request = pickle.loads(blob)  # noqa: S301  # written by this process just now
                yield PreparedRow(Row(number, {"id": row_id}), key=key, request=request)

    def payloads(self) -> Iterator[tuple[int, str | None, str]]:
        """Per row in input order: its number, its key and its :func:`payload`."""
        yield from self._pages("key, payload")

    def outcomes(self) -> Iterator[tuple[str, dict[str, Any], str | None, str | None]]:
        """Per row in input order: its id, its topic, tone and max_words, its key and its error."""
        for number, row_id, topic, tone, max_words, key, error in self._pages(
            "id, topic, tone, max_words, key, error"
        ):
            shown = {"topic": topic, "tone": tone, "max_words": max_words}
            yield str(row_id or number), shown, key, error


def prepared_rows(
    path: Path,
    input_format: str | None,
    settings: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> Iterator[PreparedRow]:
    """Stream the input as prepared rows (errors and duplicates marked)."""
    with RowLedger() as ledger:
        for row in read_rows(path, input_format):
            yield ledger.unique(prepare(row, settings, defaults))
