"""Batch input and output: CSV, JSON Lines or plain text in (:mod:`tweetgen.batchinput`); JSON Lines
or CSV out, streamed, atomic (here)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import secrets
import socket
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .batchinput import (
    INPUT_FORMATS,
    MAX_JSON_DEPTH,
    MAX_JSON_NUMBER,
    MAX_ROW_BYTES,
    Row,
    detect_format,
    read_rows,
)
from .errors import ConfigurationError

__all__ = [
    "INPUT_FORMATS",
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
    """Where and how an output is written: ``stdout``; ``stream`` (a FIFO or device, in place);
    ``file``."""

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
            f"output {path} is a {kind}; name a regular file, a FIFO, a character device or - "
            "(stdout) with -o"
        )
    real = Path(os.path.realpath(path))
    try:
        same = os.path.samestat(os.stat(real), status)
    except OSError:
        same = False
    # a name whose resolved path is not the file itself (e.g. /dev/stdout redirected to a file) is
    # written in place
    return _Target("file", real, status) if same else _Target("stream", path, status)


def _same_file(path: Path, other: str | Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):
        return False


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:100]}.{_TEMP_MARK}-"


def _temp_owner(name: str, prefix: str) -> int | None:
    """The pid in a temporary file name of ours made on this host
    (``.NAME.tweetgen-PID-HOST-TOKEN.tmp``)."""
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
    """Remove the temporary files a killed earlier run left beside ``target``; returns what was
    removed.

    Only names of this scheme (``.NAME.tweetgen-PID-HOST-TOKEN.tmp``) made on this host are touched,
    and only when their process is gone (or is this one and is not writing them now).
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
    """A new file beside ``target`` named by our scheme, opened for writing (``mode`` before the
    umask)."""
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
    """Fail before any call when the output cannot be written, or would overwrite a file it must
    not.

    ``not_same_as`` names files the output must not be (``{"the input file": input}``): same file by
    device and inode, through symlinks and hard links too.
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
                f"output {path} is {what} ({other}): writing it would destroy it; name another "
                "file with -o"
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
        # the reader went away: what is still buffered can go nowhere, and must not fail again at
        # exit
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
    """A FIFO or device: opened and streamed to (opening a FIFO waits for a reader, as a shell's
    ``>`` does)."""
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
    """Write beside the real file, fsync, then rename over it (atomic); the temporary never outlives
    the call."""
    remove_stale_temporaries(target.path)
    # a new file follows the umask (0666 minus it); a replacement is private until it has the old
    # file's mode
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

    ``-`` is standard output. A regular file (new, or existing, or the target of a symlink) is
    written to a temporary file beside it, fsynced and renamed over it: atomic, an existing file
    keeps its mode (and owner when allowed), a new one follows the umask, a symlink stays a symlink.
    A FIFO or character device is written in place; other special files are refused
    (:class:`ConfigurationError`).
    """
    target = _target(path)
    if target.kind == "stdout":
        return _write_stdout(records, fmt)
    if target.kind == "stream":
        return _write_in_place(path, records, fmt)
    return _replace(target, records, fmt)
