"""The server of tests/hostile.py: :class:`HostileServer` reads each request whole and hands it to
the next handler as an :class:`Exchange`, whose every wait ends as soon as the client hangs up or
the server stops. Import it from ``hostile``, which adds the ready-made handlers."""

from __future__ import annotations

import contextlib
import json as jsonlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = [
    "ClientGoneError",
    "Exchange",
    "Handler",
    "HostileServer",
    "Request",
    "response_head",
]

_MAX_HEAD = 64 * 1024


class ClientGoneError(Exception):
    """The client closed the connection (or the server is shutting down): the handler stops here."""


@dataclass(frozen=True)
class Request:
    """One request as the server read it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)


class Exchange:
    """One request on one connection, and the means to answer it any way a hostile server might."""

    def __init__(self, conn: socket.socket, request: Request, wake: socket.socket) -> None:
        self.request = request
        self._conn = conn
        self._wake = wake

    def send(self, data: bytes) -> None:
        """Send raw bytes; :class:`ClientGoneError` when the client has hung up."""
        try:
            self._conn.sendall(data)
        except OSError:
            raise ClientGoneError from None

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less: :class:`ClientGoneError` as soon as the client hangs up or the
        server stops."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self._conn, self._wake], [], [], left)
            if self._wake in readable:
                raise ClientGoneError
            if self._conn in readable:
                try:
                    data = self._conn.recv(65536)
                except OSError:
                    raise ClientGoneError from None
                if not data:
                    raise ClientGoneError

    def hang(self, limit: float = 600.0) -> None:
        """Say nothing until the client hangs up or the server stops (at most ``limit`` seconds)."""
        self.pause(limit)

    def head(
        self,
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (),
        *,
        reason: str | bytes | None = None,
    ) -> None:
        """Send the status line and headers (``Connection: close`` added)."""
        self.send(response_head(status, headers, reason))

    def respond(
        self,
        status: int = 200,
        body: bytes | str = b"",
        *,
        json: Any = None,
        headers: Iterable[tuple[str, str]] = (),
        reason: str | bytes | None = None,
    ) -> None:
        """Send a complete response with ``Content-Length`` (``json`` sets the body and its content
        type)."""
        headers = list(headers)
        if json is not None:
            body = jsonlib.dumps(json)
            headers.append(("Content-Type", "application/json"))
        data = body.encode() if isinstance(body, str) else body
        self.head(status, [*headers, ("Content-Length", str(len(data)))], reason=reason)
        self.send(data)

    def trickle(self, data: bytes, interval: float, size: int = 1) -> None:
        """Send ``data`` ``size`` bytes at a time, pausing ``interval`` seconds before each
        piece."""
        for start in range(0, len(data), size):
            self.pause(interval)
            self.send(data[start : start + size])

    def stream(self, chunks: Iterable[bytes], *, chunked: bool = True) -> None:
        """Send a body piece by piece: HTTP/1.1 chunked encoding, or raw (the body ends when the
        connection does)."""
        for chunk in chunks:
            if chunk:
                self.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.send(b"0\r\n\r\n")


Handler = Callable[[Exchange], None]


class HostileServer:
    """A scripted HTTP/1.1 server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *handlers: Handler) -> None:
        if not handlers:
            raise ValueError("HostileServer needs at least one handler")
        self._handlers = handlers
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self.requests: list[Request] = []
        self.errors: list[
            BaseException
        ] = []  # what handlers raised, other than a client hanging up
        self._accepting = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def count(self) -> int:
        """How many requests were read so far."""
        with self._lock:
            return len(self.requests)

    @property
    def connections(self) -> int:
        """How many connections are open now (0 once every client has hung up and every handler
        ended)."""
        with self._lock:
            return len(self._open)

    def __enter__(self) -> HostileServer:
        self._accepting.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop: wake every waiting handler, close every connection and join the threads."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._accepting.is_alive():
            self._accepting.join(10)
        self._listener.close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(10)
        self._wake_r.close()
        self._wake_w.close()

    def _accept(self) -> None:
        while True:
            readable, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(conn,), name="hostile-conn", daemon=True
            )
            with self._lock:
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is None:
                return
            with self._lock:
                index = len(self.requests)
                self.requests.append(request)
            handler = self._handlers[min(index, len(self._handlers) - 1)]
            handler(Exchange(conn, request, self._wake_r))
        except ClientGoneError:
            pass
        except (
            Exception
        ) as error:  # a handler's bug: kept for the test to see, the connection closed
            self.errors.append(error)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            with self._lock:
                self._open.discard(conn)

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            readable, _, _ = select.select([conn, self._wake_r], [], [])
            if self._wake_r in readable:
                return None
            chunk = conn.recv(65536)
            if not chunk or len(data) > _MAX_HEAD:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return Request(method, path, headers, body[:length])


def response_head(
    status: int, headers: Iterable[tuple[str, str]], reason: str | bytes | None
) -> bytes:
    phrase = reason if reason is not None else _REASONS.get(status, "Whatever")
    phrase_bytes = phrase if isinstance(phrase, bytes) else phrase.encode("latin-1")
    lines = [b"HTTP/1.1 %d %s" % (status, phrase_bytes)]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request",
            401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip
