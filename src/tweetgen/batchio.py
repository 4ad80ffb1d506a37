"""Batch input and output: CSV, JSON Lines or plain text in; JSON Lines or CSV out, streamed, atomic."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import socket
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from .errors import ConfigurationError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_NUMBER",
    "MAX_ROW_BYTES",
    "OUTPUT_FIELDS",
    "STDOUT",
    "Row",
    "check_writable",
    "detect_format",
    "is_stdout",
    "read_rows",
    "write_records",
]

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
OUTPUT_FIELDS = (
    "id",
    "topic",
    "tone",
    "max_words",
    "text",
    "status",
    "attempts",
    "latency_ms",
    "error",
    "provider",
    "model",
)
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
            raise ConfigurationError(
                f"input format must be one of {', '.join(INPUT_FORMATS)}, got {given!r}"
            )
        return given
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}.get(
        suffix, "txt"
    )


#: Longest row, in bytes as stored (UTF-8, line break included): a line of text or JSON Lines, or a CSV record
#: with its quoted line breaks. A row is a topic and a few short options, so 64 KiB is far beyond any real one.
#: A longer row is read on in chunks of this size and dropped (memory stays bounded whatever the file holds):
#: it is that row's error, and the next row is read as usual. Half the csv module's default field limit
#: (131,072 characters), so that no field reaches that limit, whose error would leave the parser out of step.
MAX_ROW_BYTES = 65_536
#: Deepest nesting of arrays and objects in a JSON Lines row (``{"hashtags": ["ai"]}`` is 2). Python's json
#: module recurses once a level and fails near 1,000 with a ``RecursionError``; a row is refused long before.
MAX_JSON_DEPTH = 32
#: Largest number in a JSON Lines row, in absolute value: a float's range. ``1e400`` (which Python would read as
#: infinity), ``NaN`` and ``Infinity`` (which JSON does not have) and a whole number longer than Python reads
#: (4,300 digits by default since Python 3.10.7) are that row's error; each field's own range is checked later.
MAX_JSON_NUMBER = sys.float_info.max


class _RowError(ValueError):
    """Why one row cannot be read (a sentence for that row's output record)."""


class _Line(NamedTuple):
    """One physical line: its text (``None`` when it is not UTF-8 or too long), bytes and size on disk.

    A line longer than ``MAX_ROW_BYTES`` is not kept: ``raw`` is then the CSV skeleton of it, or empty.
    """

    text: str | None
    raw: bytes
    size: int
    too_long: bool = False


def _lines(
    stream: io.BufferedReader, squeeze: Callable[[bytes], bytes] | None = None
) -> Iterator[_Line]:
    """Decode line by line so that one bad line is one bad row, not a crashed batch.

    At most ``MAX_ROW_BYTES`` + 1 bytes of a line are held at once: a longer line is read on in chunks to its
    end and comes back ``too_long``, with ``squeeze`` of its chunks as ``raw`` (the CSV skeleton) or nothing.
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
    """One row from one line: whatever goes wrong while reading it is that row's error, and the batch goes on."""
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
    from .logs import (
        get_logger,
    )  # imported here: only this rare path logs, and batchio stays light to import

    get_logger().error(
        "Input row unreadable", row=number, error_type=type(error).__name__, exc_info=True
    )


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
    """Whether a JSON text nests arrays and objects deeper than ``MAX_JSON_DEPTH`` (brackets in strings aside)."""
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
            f"line has a number out of range: {_shown_number(literal)} (the largest is about 1.8e308)"
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
    """What the csv parser needs of CSV ``data`` to stay in step with it, in a fraction of the memory.

    Quotes and line breaks are kept; every run of other bytes becomes its last byte (a comma, or ``x`` for
    anything else): a run takes the parser to the state its last byte alone would (a comma ends an unquoted
    field and anything else continues it; a quoted field takes them all). So quoted fields and record ends stay
    where they were, and only the text is lost, which is the point: that row is an error anyway. A skeleton
    still over ``MAX_ROW_BYTES`` (a wall of quotes) keeps only whether a quoted field was left open.
    """
    squeezed = _CSV_RUN.sub(rb"\1", _CSV_TEXT.sub(b"x", data))
    if len(squeezed) > MAX_ROW_BYTES:
        return b'"' if squeezed.count(b'"') % 2 else b"x"
    return squeezed


class _Record:
    """What the lines of the CSV record being parsed had: their size, a line not UTF-8, a line or size too long."""

    __slots__ = ("not_utf8", "size", "too_long")

    def __init__(self) -> None:
        self.size, self.not_utf8, self.too_long = 0, False, False

    def take(self) -> tuple[int, bool, bool]:
        """This record's size and flags; the next line starts a new record."""
        taken = self.size, self.not_utf8, self.too_long
        self.size, self.not_utf8, self.too_long = 0, False, False
        return taken


def _csv_lines(stream: io.BufferedReader, record: _Record) -> Iterator[str]:
    """The lines for the csv parser; once a record passes ``MAX_ROW_BYTES`` the rest of it goes as its skeleton.

    The parser pulls lines until a record is complete, and the reader takes the record's flags before the next
    line is pulled: so ``record`` always describes the lines of the record being parsed.
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
                error=f"row cannot be read ({type(failure).__name__}); the log file has the details",
            )
        yield row


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


STDOUT = "-"
"""The output name that means standard output (``-o -``)."""

_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_TEMP_MARK = "tweetgen"
_ACTIVE: set[str] = set()  # temporary files this process is writing now (never removed as stale)


def is_stdout(path: str | Path) -> bool:
    """Whether an output name means standard output (``-``)."""
    return str(path) == STDOUT


@dataclass(frozen=True)
class _Target:
    """Where and how an output is written: ``stdout``; ``stream`` (a FIFO or device, in place); ``file``."""

    kind: str
    path: Path  # for "file": the real file, symlinks resolved (it is replaced in its own directory)
    existing: os.stat_result | None = None


_KINDS = {
    stat.S_IFSOCK: "socket",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "directory",
}


def _target(path: Path) -> _Target:
    """Classify an output: symlinks are followed, special files are written in place or refused."""
    if is_stdout(path):
        return _Target("stdout", path)
    try:
        status = os.stat(path)  # follows symlinks
    except FileNotFoundError:  # a new file, or a dangling symlink: its target is created
        return _Target("file", Path(os.path.realpath(path)))
    except OSError as exc:  # a symlink loop, a path through a file, no permission to look
        raise ConfigurationError(f"cannot write output {path}: {exc.strerror or exc}") from None
    mode = status.st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return _Target("stream", path, status)
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "special file")
        raise ConfigurationError(
            f"output {path} is a {kind}; name a regular file, a FIFO, a character device or - (stdout) with -o"
        )
    real = Path(os.path.realpath(path))
    try:
        same = os.path.samestat(os.stat(real), status)
    except OSError:
        same = False
    # a name whose resolved path is not the file itself (e.g. /dev/stdout redirected to a file) is written in place
    return _Target("file", real, status) if same else _Target("stream", path, status)


def _same_file(path: Path, other: str | Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:100]}.{_TEMP_MARK}-"


def _temp_owner(name: str, prefix: str) -> int | None:
    """The pid in a temporary file name of ours made on this host (``.NAME.tweetgen-PID-HOST-TOKEN.tmp``)."""
    if not (name.startswith(prefix) and name.endswith(".tmp")):
        return None
    parts = name[len(prefix) : -len(".tmp")].split("-")
    if len(parts) != 3 or not parts[0].isdigit() or parts[1] != _HOST_TAG:
        return None
    return int(parts[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files a killed earlier run left beside ``target``; returns what was removed.

    Only names of this scheme (``.NAME.tweetgen-PID-HOST-TOKEN.tmp``) made on this host are touched, and only when
    their process is gone (or is this one and is not writing them now).
    """
    prefix = _temp_prefix(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent if str(target.parent) else "."))
    except OSError:
        return removed
    for entry in entries:
        pid = _temp_owner(entry.name, prefix)
        if pid is None or entry.path in _ACTIVE or (pid != os.getpid() and _alive(pid)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _create_temporary(target: Path, mode: int) -> tuple[int, str]:
    """A new file beside ``target`` named by our scheme, opened for writing (``mode`` before the umask)."""
    directory = target.parent if str(target.parent) else Path(".")
    while True:
        name = f"{_temp_prefix(target)}{os.getpid()}-{_HOST_TAG}-{secrets.token_hex(4)}.tmp"
        path = str(directory / name)
        _ACTIVE.add(path)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), path
        except FileExistsError:
            _ACTIVE.discard(path)
        except BaseException:
            _ACTIVE.discard(path)
            raise


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    _ACTIVE.discard(path)


def check_writable(path: Path, *, not_same_as: Mapping[str, str | Path] | None = None) -> None:
    """Fail before any call when the output cannot be written, or would overwrite a file it must not.

    ``not_same_as`` names files the output must not be (``{"the input file": input}``): same file by device and
    inode, through symlinks and hard links too.
    """
    if is_stdout(path):
        if sys.stdout is None:  # started with stdout closed (`>&-`)
            raise ConfigurationError(
                "cannot write output to stdout (-o -): standard output is closed"
            )
        return
    target = _target(path)
    for what, other in (not_same_as or {}).items():
        if _same_file(path, other):
            raise ConfigurationError(
                f"output {path} is {what} ({other}): writing it would destroy it; name another file with -o"
            )
    if target.kind == "stream":
        if not os.access(path, os.W_OK):
            raise ConfigurationError(f"cannot write output {path}: permission denied")
        return
    directory = target.path.parent
    if not directory.is_dir():
        raise ConfigurationError(
            f"cannot write output {path}: directory {directory} does not exist"
        )
    if target.existing is not None and not os.access(target.path, os.W_OK):
        raise ConfigurationError(f"cannot write output {path}: permission denied")
    remove_stale_temporaries(target.path)
    try:  # the output is written as a temporary file beside it, then renamed: try exactly that
        fd, probe = _create_temporary(target.path, 0o600)
        os.close(fd)
        _discard(probe)
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


def _write_stdout(records: Iterable[dict[str, Any]], fmt: str) -> int:
    """Stream the records to standard output as UTF-8, whatever the locale."""
    stream = sys.stdout
    if (
        stream is None
    ):  # closed since the check: an OSError, so the caller says that the store has every result
        raise OSError("standard output is closed")
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a replaced sys.stdout without bytes underneath
        count = _write(stream, records, fmt)
        stream.flush()
        return count
    handle = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    try:
        count = _write(handle, records, fmt)
        handle.flush()
    except BrokenPipeError:
        # the reader went away: what is still buffered can go nowhere, and must not fail again at exit
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        raise
    finally:
        with contextlib.suppress(OSError, ValueError):
            handle.detach()  # leave sys.stdout's buffer open
    return count


def _write_in_place(path: Path, records: Iterable[dict[str, Any]], fmt: str) -> int:
    """A FIFO or device: opened and streamed to (opening a FIFO waits for a reader, as a shell's ``>`` does)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        return _write(handle, records, fmt)


def _keep_owner_and_mode(fd: int, existing: os.stat_result) -> None:
    """Give the new file the replaced file's owner (when allowed) and mode (always)."""
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) != (existing.st_uid, existing.st_gid):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        except OSError:  # not root: the group at least, when we are in it
            with contextlib.suppress(OSError):
                os.fchown(fd, -1, existing.st_gid)
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))  # after chown, which may clear set-id bits


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(target: _Target, records: Iterable[dict[str, Any]], fmt: str) -> int:
    """Write beside the real file, fsync, then rename over it (atomic); the temporary never outlives the call."""
    remove_stale_temporaries(target.path)
    # a new file follows the umask (0666 minus it); a replacement is private until it has the old file's mode
    fd, tmp = _create_temporary(target.path, 0o666 if target.existing is None else 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            count = _write(handle, records, fmt)
            handle.flush()
            if target.existing is not None:
                _keep_owner_and_mode(handle.fileno(), target.existing)
            os.fsync(handle.fileno())
        os.replace(tmp, target.path)
    finally:
        _discard(tmp)  # after the rename there is nothing left to remove
    _fsync_directory(target.path.parent if str(target.path.parent) else Path("."))
    return count


def write_records(path: Path, records: Iterable[dict[str, Any]], *, fmt: str = "jsonl") -> int:
    """Write all records to ``path`` as a Unix tool would; returns how many.

    ``-`` is standard output. A regular file (new, or existing, or the target of a symlink) is written to a
    temporary file beside it, fsynced and renamed over it: atomic, an existing file keeps its mode (and owner when
    allowed), a new one follows the umask, a symlink stays a symlink. A FIFO or character device is written in
    place; other special files are refused (:class:`ConfigurationError`).
    """
    target = _target(path)
    if target.kind == "stdout":
        return _write_stdout(records, fmt)
    if target.kind == "stream":
        return _write_in_place(path, records, fmt)
    return _replace(target, records, fmt)
