"""One run per store: an exclusive lock on a file beside the SQLite store, held for a whole batch.

Why a lock per store file (and not per store and input): the store is what two runs would share, and
a row's idempotency key comes from its content and settings, not from the input file's name. Two
runs on one store with two different input files that share topics would each see the other's rows
as "not done yet" and pay for them twice, exactly as two runs on the same input do. Sharing work
between processes is a later issue; until then a store belongs to one run at a time.

How: ``fcntl.flock`` on ``STORE.lock``. The kernel releases the lock when its holder dies, however
it dies (SIGKILL, power loss of the process, OOM killer), so a killed run never blocks the next one:
its lock file may stay, with the dead run's details in it, and the next run simply takes the lock
over (and can say that the earlier run did not finish). The holder writes its pid, host, start time
and what it runs into the lock file, so that a refused run can say who holds the store. A run that
ends normally empties the file before unlocking. Waiting (``wait=True``) is a blocking ``flock``
call: no polling, and a signal (Ctrl-C, or SIGTERM, which the CLI turns into the same stop)
interrupts it at once.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .errors import ConfigurationError

__all__ = ["Holder", "RunLock", "StoreBusyError", "lock_path"]

_UNLOCKED_PATHS = ("", ":memory:")  # SQLite stores that no other process can open: nothing to lock
_MAX_METADATA = 64 * 1024  # a lock file is tiny; never read more than this of one


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a store: what its lock file says."""

    pid: int
    host: str
    started: float  # seconds since the epoch
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def since(self) -> str:
        """The start time, ISO-8601 UTC to the second."""
        moment = datetime.datetime.fromtimestamp(self.started, tz=datetime.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def describe(self, now: float | None = None) -> str:
        """One phrase for a user:
        ``pid 123 on host-a, started 2026-11-30T10:00:00Z, 5 min ago: tweetgen batch ...``."""
        age = max(0.0, (time.time() if now is None else now) - self.started)
        text = (
            f"pid {self.pid} on {self.host or 'an unknown host'}, started {self.since}, {_ago(age)}"
        )
        command = self.details.get("command")
        return f"{text}: {command}" if command else text

    def to_json(self) -> str:
        """The lock file's content (one line of JSON)."""
        payload = {"pid": self.pid, "host": self.host, "started": self.started, **self.details}
        return json.dumps(payload, ensure_ascii=False, sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder a lock file's first line names; ``None`` when it is empty or unreadable."""
        try:
            value = json.loads(text.split("\n", 1)[0])
            pid, host, started = (
                int(value.pop("pid")),
                str(value.pop("host")),
                float(value.pop("started")),
            )
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None
        return cls(pid, host, started, {str(k): str(v) for k, v in value.items()})


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def lock_path(store: str | Path) -> Path | None:
    """A store's lock file: beside the real file, so that two names of one store share one lock."""
    if str(store) in _UNLOCKED_PATHS:
        return None
    real = Path(os.path.realpath(Path(store).expanduser()))
    return real.with_name(real.name + ".lock")


class StoreBusyError(ConfigurationError):
    """Another run holds the store (exit 2): ``holder`` says who, when its lock file says so."""

    def __init__(self, store: str | Path, holder: Holder | None) -> None:
        who = f"({holder.describe()})" if holder else "(it has not written its details yet)"
        super().__init__(
            f"another tweetgen run is using the store {store} {who}; wait for it to finish, "
            "add --wait to start when it does, or give this run another --db"
        )
        self.holder = holder


def _read(fd: int) -> str:
    data = os.pread(fd, _MAX_METADATA, 0)
    return data.decode("utf-8", "replace")


class RunLock:
    """An exclusive, process-wide lock on a store, released by the kernel if the process dies.

    ``with RunLock("tweetgen.db", details={"command": "tweetgen batch in.csv"}) as lock: ...``
    raises :class:`StoreBusyError` at once when another process holds the store, or, with
    ``wait=True``, blocks until it is free (calling ``on_wait(holder)`` once first).
    ``lock.previous`` is the holder a killed earlier run left in the lock file (``None`` when the
    last run ended normally). For ``:memory:`` stores it does nothing.
    """

    def __init__(
        self,
        store: str | Path,
        *,
        details: Mapping[str, str] | None = None,
        wait: bool = False,
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> None:
        self.store = store
        self.path = lock_path(store)
        self.details = dict(details or {})
        self.wait = wait
        self.on_wait = on_wait
        self.previous: Holder | None = None
        self.holder: Holder | None = None
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"RunLock({str(self.store)!r}, held={self._fd is not None})"

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def _open(self) -> tuple[int, bool]:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as the store itself does
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666), True
        except PermissionError:
            try:  # a store shared with other users: flock works on a read-only descriptor too
                return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), False
            except OSError as error:
                raise self._cannot(error) from None
        except OSError as error:
            raise self._cannot(error) from None

    def _cannot(self, error: OSError) -> ConfigurationError:
        from .oserrors import explain_path_error

        reason = explain_path_error(error, self.path or self.store)
        return ConfigurationError(
            f"cannot lock the store {self.store}: cannot open {self.path}: {reason}; "
            "pass --db PATH with a writable location"
        )

    def acquire(self) -> RunLock:
        """Take the lock (at once, or after waiting when ``wait``); write this run's details into
        the lock file."""
        if self.path is None or self._fd is not None:
            return self
        waited = False
        while True:
            fd, writable = self._open()
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise self._cannot(error) from None
                    holder = Holder.parse(_read(fd))
                    if not self.wait:
                        raise StoreBusyError(self.store, holder) from None
                    if not waited and self.on_wait is not None:
                        self.on_wait(holder)
                    waited = True
                    fcntl.flock(
                        fd, fcntl.LOCK_EX
                    )  # blocks in the kernel; a signal interrupts it (PEP 475)
                if not self._same_file(
                    fd
                ):  # removed or replaced while we waited: lock the file that is there now
                    os.close(fd)
                    continue
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            break
        self._fd = fd
        self.previous = Holder.parse(_read(fd))  # a run that ended normally leaves the file empty
        self.holder = Holder(os.getpid(), socket.gethostname(), time.time(), self.details)
        if writable:
            payload = (self.holder.to_json() + "\n").encode("utf-8")
            with contextlib.suppress(
                OSError
            ):  # the details are for messages only; the lock is what counts
                os.pwrite(
                    fd, payload, 0
                )  # overwrite first, then cut: a reader never sees an empty file
                os.ftruncate(fd, len(payload))
        return self

    def _same_file(self, fd: int) -> bool:
        assert self.path is not None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)

    def release(self) -> None:
        """Empty the lock file (this run ended normally) and unlock it; the file itself stays."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
