"""The log file's handler: append JSON Lines, follow logrotate, optionally rotate by size.

Split out of :mod:`tweetgen.logs` (which re-exports :class:`WatchedRotatingFileHandler`).

Costs per record, and what was chosen:

- **logrotate check.** Whether the file was renamed or removed from outside is one ``os.stat``.
  Without size rotation it is made at most once per :data:`CHECK_INTERVAL` seconds (monotonic
  clock), and for every WARNING or ERROR record; a record written between a rename and the next
  check goes to the renamed file, where it is kept (logrotate renames; ``delaycompress`` keeps the
  renamed file as it is until the next rotation). With size rotation every record is checked under
  the lock, because another process may have rotated the file.
- **flush.** Every record is flushed at once (a ``write`` system call, about 2 us): a crash, a
  SIGKILL or an ``os._exit`` loses nothing already logged, and ``tail -f`` sees each event as it
  happens. Buffering would save those microseconds at the price of the last events of a killed
  process.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: size rotation is then safe for one process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["CHECK_INTERVAL", "WatchedRotatingFileHandler", "write_line"]

#: seconds between two checks for a renamed or removed log file (records below WARNING)
CHECK_INTERVAL = 0.1


class WatchedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Append to a file; reopen it when renamed or removed from outside; optionally rotate by
    size."""

    def __init__(
        self,
        filename: str,
        *,
        max_bytes: int = 0,
        backup_count: int = 0,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self.check_interval, self.clock = check_interval, clock
        self._identity = self._stat_stream()
        self._next_check = clock() + check_interval
        self.failed = False  # a write failed: reported once

    def _stat_stream(self) -> tuple[int, int] | None:
        if self.stream is None:
            return None
        st = os.fstat(self.stream.fileno())
        return st.st_dev, st.st_ino

    def _due(self, levelno: int) -> bool:
        """Whether a record at ``levelno`` checks the file (always with size rotation, and from
        WARNING up)."""
        if self.maxBytes or levelno >= logging.WARNING:
            return True
        now = self.clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval
        return True

    def _reopen_if_moved(self) -> None:
        try:
            st = os.stat(self.baseFilename)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            self._regular = stat.S_ISREG(st.st_mode)
        except FileNotFoundError:
            current = None
        if current is None or current != self._identity:
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
            self.stream = self._open()
            self._identity = self._stat_stream()
            self._regular = True

    _regular = True

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - the stdlib's name
        """Only with size rotation, and only a regular file (the stdlib's check, without its two
        extra ``stat`` calls: :meth:`_reopen_if_moved` just looked)."""
        return self._too_big(self.format(record))

    def _too_big(self, message: str) -> bool:
        if not self.maxBytes or not self._regular:
            return False
        if self.stream is None:  # pragma: no cover - the stream is opened at once (delay=False)
            self.stream = self._open()
        self.stream.seek(0, 2)
        return bool(self.stream.tell() + len(f"{message}\n") >= self.maxBytes)

    def doRollover(self) -> None:  # noqa: N802 - the stdlib's name
        super().doRollover()
        self._identity = self._stat_stream()

    @contextlib.contextmanager
    def _shared_file(self) -> Iterator[None]:
        """With size rotation, hold an exclusive lock on ``FILE.lock`` for one check-rotate-write
        step, so several processes appending to one file never rotate it twice or write into a
        rotated-away file."""
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        with open(self.baseFilename + ".lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._append(self.format(record), record.levelno)
        except Exception:
            self.handleError(record)

    def emit_line(self, line: str, levelno: int) -> None:
        """Append one line formatted already (tweetgen's own events take this direct route, see
        :func:`tweetgen.logs.emit_direct`); the caller holds the handler's lock, as for
        :meth:`emit`."""
        try:
            self._append(line, levelno)
        except Exception:
            self._report_failure()

    def _append(self, message: str, levelno: int) -> None:
        if not self.maxBytes:
            if self._due(levelno):
                self._reopen_if_moved()
            self._write(message)
            return
        with self._shared_file():
            self._reopen_if_moved()
            if self._too_big(message):
                self.doRollover()
            self._write(message)

    def _write(self, message: str) -> None:
        """What ``logging.FileHandler.emit`` does once the record is formatted: open the file if
        needed, write, flush."""
        if self.stream is None and (self.mode != "w" or not self._closed):  # type: ignore[attr-defined]
            self.stream = self._open()
        if self.stream:
            self.stream.write(message + self.terminator)
            self.flush()

    def close(self) -> None:
        """Close the file; a final flush that fails (full disk) was already reported and is not
        raised."""
        try:
            super().close()
        except OSError:
            stream, self.stream = self.stream, None
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - the stdlib's name
        """Say once, in one line on stderr, that the log file cannot be written (full disk...);
        never a traceback per event, never an exception into the caller. Events that cannot be
        written are dropped."""
        self._report_failure()

    def _report_failure(self) -> None:
        if self.failed:
            return
        self.failed = True
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or error or "unknown error"
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"tweetgen: cannot write the log file {self.baseFilename}: {reason}; later log "
                "events are not written to it (set TWEETGEN_LOG_FILE or --log-file to another "
                "place)\n"
            )


def write_line(handler: logging.Handler, line: str, levelno: int) -> None:
    """What ``handler.handle`` does with a record whose formatted text is ``line`` (the direct route
    of tweetgen's own events), for this module's handler and ``logging.StreamHandler``."""
    handler.acquire()
    try:
        if isinstance(handler, WatchedRotatingFileHandler):
            handler.emit_line(line, levelno)
            return
        assert isinstance(handler, logging.StreamHandler)
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except RecursionError:  # as logging.StreamHandler.emit
            raise
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": line, "levelno": levelno}))
    finally:
        handler.release()
