"""Batch input and output: CSV, JSON Lines or plain text in; JSON Lines or CSV out, streamed, atomic."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigurationError

__all__ = ["OUTPUT_FIELDS", "Row", "detect_format", "read_rows", "write_records"]

FIELDS = (
    "id",
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
)
OUTPUT_FIELDS = ("id", "topic", "tone", "max_words", "text", "status", "attempts", "latency_ms", "error")
INPUT_FORMATS = ("csv", "jsonl", "txt")


@dataclass(frozen=True)
class Row:
    """One input row: its number (1-based, header excluded), its values, or why it cannot be read."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def id(self) -> str:
        """The row's ``id`` column, or its number."""
        return str(self.values.get("id") or self.number)


def detect_format(path: Path, given: str | None = None) -> str:
    """The input format from ``given`` or the file extension (``.csv``, ``.jsonl``/``.ndjson``, else text)."""
    if given:
        if given not in INPUT_FORMATS:
            raise ConfigurationError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {given!r}")
        return given
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}.get(suffix, "txt")


def _lines(stream: io.BufferedReader) -> Iterator[tuple[str | None, bytes]]:
    """Decode line by line so that one bad line is one bad row, not a crashed batch."""
    for index, raw in enumerate(stream):
        line = raw.removeprefix(codecs.BOM_UTF8) if index == 0 else raw
        try:
            yield line.decode("utf-8"), line
        except UnicodeDecodeError:
            yield None, line


def _txt(stream: io.BufferedReader) -> Iterator[Row]:
    number = 0
    for text, _raw in _lines(stream):
        if text is not None and not text.strip():
            continue
        number += 1
        yield Row(number, error="line is not valid UTF-8") if text is None else Row(number, {"topic": text.strip()})


def _jsonl(stream: io.BufferedReader) -> Iterator[Row]:
    number = 0
    for text, _raw in _lines(stream):
        if text is not None and not text.strip():
            continue
        number += 1
        if text is None:
            yield Row(number, error="line is not valid UTF-8")
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Row(number, error=f"line is not valid JSON: {exc.msg}")
            continue
        if isinstance(value, str):
            value = {"topic": value}
        yield Row(number, value) if isinstance(value, dict) else Row(number, error="line is not a JSON object")


def _csv(stream: io.BufferedReader) -> Iterator[Row]:
    bad: set[int] = set()

    def decoded() -> Iterator[str]:
        for index, (text, raw) in enumerate(_lines(stream)):
            if text is None:
                bad.add(index)
                text = raw.decode("utf-8", "replace")
            yield text

    reader = csv.DictReader(decoded())
    if reader.fieldnames is None or "topic" not in [(f or "").strip() for f in reader.fieldnames]:
        raise ConfigurationError(f"the CSV header must have a 'topic' column; it has: {reader.fieldnames or 'nothing'}")
    for number, record in enumerate(reader, 1):
        line = reader.line_num - 1
        values = {(k or "").strip(): (v or "").strip() for k, v in record.items() if k is not None}
        if line in bad:
            yield Row(number, error="row is not valid UTF-8")
        elif None in record:
            yield Row(number, error="row has more fields than the header")
        else:
            yield Row(number, {k: v for k, v in values.items() if v != ""})


def read_rows(path: Path, input_format: str | None = None) -> Iterator[Row]:
    """Stream the rows of an input file (the file is opened now, so a missing file fails at once)."""
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


def check_writable(path: Path) -> None:
    """Fail before any call when the output cannot be written (missing directory, not writable)."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigurationError(f"output {path} is a directory")
    if not directory.is_dir():
        raise ConfigurationError(f"cannot write output {path}: directory {directory} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigurationError(f"cannot write output {path}: permission denied")
    try:  # the output is written as a temporary file beside it, then renamed: try exactly that
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(f"cannot write output {path}: {exc.strerror or exc}") from None


def _write(handle: TextIO, records: Iterable[dict[str, Any]], fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(handle, fieldnames=OUTPUT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(record)
            count += 1
        return count
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_records(path: Path, records: Iterable[dict[str, Any]], *, fmt: str = "jsonl") -> int:
    """Write all records to a temporary file beside ``path``, then rename it over ``path`` (atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            count = _write(handle, records, fmt)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
