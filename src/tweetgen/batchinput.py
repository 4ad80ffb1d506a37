"""Batch input: CSV, JSON Lines or plain text, streamed row by row; a bad row is that row's error.

Re-exported by :mod:`tweetgen.batchio`, which writes the output.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigurationError

__all__ = [
    "INPUT_FORMATS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NUMBER",
    "MAX_ROW_BYTES",
    "Row",
    "detect_format",
    "read_rows",
]

INPUT_FORMATS = ("csv", "jsonl", "txt")


@dataclass(frozen=True)
class Row:
    """One input row: its number (1-based, header excluded), its values, or why it cannot be
    read."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def id(self) -> str:
        """The row's ``id`` column, or its number."""
        return str(self.values.get("id") or self.number)


def detect_format(path: Path, given: str | None = None) -> str:
    """The input format from ``given`` or the file extension (``.csv``, ``.jsonl``/``.ndjson``, else
    text)."""
    if given:
        if given not in INPUT_FORMATS:
            raise ConfigurationError(
                f"input format must be one of {', '.join(INPUT_FORMATS)}, got {given!r}"
            )
        return given
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}.get(
        suffix, "txt"
    )


#: Longest row, in bytes as stored (UTF-8, line break included): a line of text or JSON Lines, or a
#: CSV record with its quoted line breaks. A row is a topic and a few short options, so 64 KiB is
#: far beyond any real one. A longer row is read on in chunks of this size and dropped (memory stays
#: bounded whatever the file holds): it is that row's error, and the next row is read as usual. Half
#: the csv module's default field limit (131,072 characters), so that no field reaches that limit,
#: whose error would leave the parser out of step.
MAX_ROW_BYTES = 65_536
#: Deepest nesting of arrays and objects in a JSON Lines row (``{"hashtags": ["ai"]}`` is 2).
#: Python's json module recurses once a level and fails near 1,000 with a ``RecursionError``; a row
#: is refused long before.
MAX_JSON_DEPTH = 32
#: Largest number in a JSON Lines row, in absolute value: a float's range. ``1e400`` (which Python
#: would read as infinity), ``NaN`` and ``Infinity`` (which JSON does not have) and a whole number
#: longer than Python reads (4,300 digits by default since Python 3.10.7) are that row's error; each
#: field's own range is checked later.
MAX_JSON_NUMBER = sys.float_info.max


class _RowError(ValueError):
    """Why one row cannot be read (a sentence for that row's output record)."""


class _Line(NamedTuple):
    """One physical line: its text (``None`` when it is not UTF-8 or too long), bytes and size on
    disk.

    A line longer than ``MAX_ROW_BYTES`` is not kept: ``raw`` is then the CSV skeleton of it, or
    empty.
    """

    text: str | None
    raw: bytes
    size: int
    too_long: bool = False


def _lines(
    stream: io.BufferedReader, squeeze: Callable[[bytes], bytes] | None = None
) -> Iterator[_Line]:
    """Decode line by line so that one bad line is one bad row, not a crashed batch.

    At most ``MAX_ROW_BYTES`` + 1 bytes of a line are held at once: a longer line is read on in
    chunks to its end and comes back ``too_long``, with ``squeeze`` of its chunks as ``raw`` (the
    CSV skeleton) or nothing.
    """
    first = True
    while raw := stream.readline(MAX_ROW_BYTES + 1):
        if first:
            raw, first = raw.removeprefix(codecs.BOM_UTF8), False
        if len(raw) <= MAX_ROW_BYTES:
            try:
                text: str | None = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            yield _Line(text, raw, len(raw))
            continue
        size, kept = len(raw), squeeze(raw) if squeeze else b""
        while not raw.endswith(b"\n") and (raw := stream.readline(MAX_ROW_BYTES)):
            size += len(raw)
            if squeeze:
                kept = squeeze(kept + squeeze(raw))
        yield _Line(None, kept, size, too_long=True)


def _too_long(size: int, what: str = "line") -> str:
    return f"{what} is {size:,} bytes long; a row may have at most {MAX_ROW_BYTES:,} bytes"


def _row(number: int, line: _Line, parse: Callable[[str], dict[str, Any]]) -> Row:
    """One row from one line: whatever goes wrong while reading it is that row's error, and the
    batch goes on."""
    if line.too_long:
        return Row(number, error=_too_long(line.size))
    if line.text is None:
        return Row(number, error="line is not valid UTF-8")
    try:
        return Row(number, parse(line.text))
    except _RowError as error:
        return Row(number, error=str(error))
    except (
        Exception
    ) as error:  # the last line of defence: a bug or a library surprise fails this row only
        _unexpected(number, error)
        return Row(
            number,
            error=f"line cannot be read ({type(error).__name__}); the log file has the details",
        )


def _unexpected(number: int, error: Exception) -> None:
    from .events import row_unreadable  # imported here: only this rare path logs

    row_unreadable(number, error)


def _txt_row(text: str) -> dict[str, Any]:
    return {"topic": text.strip()}


def _txt(stream: io.BufferedReader) -> Iterator[Row]:
    number = 0
    for line in _lines(stream):
        if line.text is not None and not line.text.strip():
            continue
        number += 1
        yield _row(number, line, _txt_row)


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``MAX_JSON_DEPTH`` (brackets in
    strings aside)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _shown_number(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}...({len(literal):,} characters)"


def _json_float(literal: str) -> float:
    value = float(literal)
    if not abs(value) <= MAX_JSON_NUMBER:
        raise _RowError(
            f"line has a number out of range: {_shown_number(literal)} (the largest is about "
            "1.8e308)"
        )
    return value


def _json_constant(literal: str) -> float:
    raise _RowError(f"line is not valid JSON: {literal} is not a JSON number")


_JSON = json.JSONDecoder(parse_float=_json_float, parse_constant=_json_constant)


def _jsonl_row(text: str) -> dict[str, Any]:
    if _too_deep(text):
        raise _RowError(f"line nests arrays or objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = _JSON.decode(text)
    except json.JSONDecodeError as error:
        raise _RowError(f"line is not valid JSON: {error.msg}") from None
    except _RowError:
        raise
    except (
        ValueError
    ):  # Python's limit on the digits of a whole number (sys.set_int_max_str_digits)
        raise _RowError(
            "line has a whole number with more digits than Python reads (4,300 by default)"
        ) from None
    if isinstance(value, str):
        value = {"topic": value}
    if not isinstance(value, dict):
        raise _RowError("line is not a JSON object")
    row_id = value.get("id")
    if row_id is not None and (isinstance(row_id, bool) or not isinstance(row_id, str | int)):
        raise _RowError(f"id must be a text or a whole number, got {json.dumps(row_id)[:40]}")
    return value


def _jsonl(stream: io.BufferedReader) -> Iterator[Row]:
    number = 0
    for line in _lines(stream):
        if line.text is not None and not line.text.strip():
            continue
        number += 1
        yield _row(number, line, _jsonl_row)


_CSV_TEXT = re.compile(rb'[^",\r\n]+')
_CSV_RUN = re.compile(rb"[x,]*([x,])")
_CSV_QUOTED = re.compile(
    rb'[^"]*(?:""[^"]*)*'
)  # what a quoted field takes in: anything but a lone quote


def _csv_skeleton(data: bytes) -> bytes:
    """What the csv parser needs of CSV ``data`` to stay in step with it, in a fraction of the
    memory.

    Quotes and line breaks are kept; every run of other bytes becomes its last byte (a comma, or
    ``x`` for anything else): a run takes the parser to the state its last byte alone would (a comma
    ends an unquoted field and anything else continues it; a quoted field takes them all). So quoted
    fields and record ends stay where they were, and only the text is lost, which is the point: that
    row is an error anyway. A skeleton still over ``MAX_ROW_BYTES`` (a wall of quotes) keeps only
    whether a quoted field was left open.
    """
    squeezed = _CSV_RUN.sub(rb"\1", _CSV_TEXT.sub(b"x", data))
    if len(squeezed) > MAX_ROW_BYTES:
        return b'"' if squeezed.count(b'"') % 2 else b"x"
    return squeezed


class _Record:
    """What the lines of the CSV record being parsed had: their size, a line not UTF-8, a line or
    size too long."""

    __slots__ = ("not_utf8", "size", "too_long")

    def __init__(self) -> None:
        self.size, self.not_utf8, self.too_long = 0, False, False

    def take(self) -> tuple[int, bool, bool]:
        """This record's size and flags; the next line starts a new record."""
        taken = self.size, self.not_utf8, self.too_long
        self.size, self.not_utf8, self.too_long = 0, False, False
        return taken


def _csv_lines(stream: io.BufferedReader, record: _Record) -> Iterator[str]:
    """The lines for the csv parser; once a record passes ``MAX_ROW_BYTES`` the rest of it goes as
    its skeleton.

    The parser pulls lines until a record is complete, and the reader takes the record's flags
    before the next line is pulled: so ``record`` always describes the lines of the record being
    parsed.
    """
    for line in _lines(stream, _csv_skeleton):
        continued = (
            record.size > 0
        )  # the line goes on with a record: the parser is inside a quoted field
        record.size += line.size
        if line.too_long or record.size > MAX_ROW_BYTES:
            record.too_long = True
            skeleton = line.raw
            if (
                continued
            ):  # the quoted field takes all up to its closing quote: that part need not be fed
                skeleton = skeleton[_CSV_QUOTED.match(skeleton).end() :]  # type: ignore[union-attr]
            yield (skeleton if line.too_long else _csv_skeleton(skeleton)).decode(
                "ascii", "replace"
            )
        elif line.text is None:
            record.not_utf8 = True
            yield line.raw.decode("utf-8", "replace")
        else:
            yield line.text


def _shown_names(names: list[str]) -> str:
    shown = ", ".join(repr(name[:40]) for name in names[:10])
    return (shown + f" and {len(names) - 10} more" if len(names) > 10 else shown) or "nothing"


def _csv_header(reader: Iterator[list[str]], record: _Record) -> list[str]:
    try:
        header = next(reader, None)
        while header == []:  # blank lines before the header
            header = next(reader, None)
    except csv.Error as error:
        raise ConfigurationError(f"the CSV header cannot be read: {error}") from None
    _size, _not_utf8, too_long = record.take()
    if too_long:
        raise ConfigurationError(f"the CSV header is longer than {MAX_ROW_BYTES:,} bytes")
    names = [name.strip() for name in header or []]
    if "topic" not in names:
        raise ConfigurationError(
            f"the CSV header must have a 'topic' column; it has: {_shown_names(names)}"
        )
    return names


def _csv_values(names: list[str], fields: list[str]) -> dict[str, Any]:
    values = dict(
        zip(names, map(str.strip, fields), strict=False)
    )  # a repeated column: the last one counts
    return {k: v for k, v in values.items() if k and v}


def _csv(stream: io.BufferedReader) -> Iterator[Row]:
    record = _Record()
    reader = csv.reader(_csv_lines(stream, record))
    names = _csv_header(reader, record)
    number = 0
    while True:
        error = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as failure:  # the parser goes on at the next line
            fields, error = [], f"row is not valid CSV: {failure}"
        size, not_utf8, too_long = record.take()
        if not fields and error is None and not too_long:
            continue  # a blank line
        number += 1
        if too_long:
            error = _too_long(size, "row")
        elif error is None and not_utf8:
            error = "row is not valid UTF-8"
        elif error is None and len(fields) > len(names):
            error = "row has more fields than the header"
        if error is not None:
            yield Row(number, error=error)
            continue
        try:
            row = Row(number, _csv_values(names, fields))
        except Exception as failure:  # the last line of defence, as for the other formats
            _unexpected(number, failure)
            row = Row(
                number,
                error=f"row cannot be read ({type(failure).__name__}); the log file has the "
                "details",
            )
        yield row


def read_rows(path: Path, input_format: str | None = None) -> Iterator[Row]:
    """Stream the rows of an input file (the file is opened now, so a missing file fails at
    once)."""
    fmt = detect_format(path, input_format)
    try:
        path.open("rb").close()  # fail now, not at the first row, when the file cannot be read
    except OSError as exc:
        raise ConfigurationError(f"cannot read input file {path}: {exc.strerror or exc}") from None
    reader = {"csv": _csv, "jsonl": _jsonl, "txt": _txt}[fmt]

    def rows() -> Iterator[Row]:
        with path.open("rb") as stream:
            yield from reader(stream)

    return rows()
