"""A hostile HTTP server on 127.0.0.1 for tests: every answer scripted down to the byte and the
pause.

``HostileServer(handler, ...)`` is a context manager that listens on an ephemeral port and exposes
``url``, ``requests`` (what was asked, in order) and ``count``. Each request is read whole (request
line, headers, ``Content-Length`` body) and handed to the next handler as an :class:`Exchange`; the
last handler answers every request after that. A handler answers any way it likes: a complete
response, raw bytes, a trickle, nothing at all. Every wait of the server ends as soon as the client
hangs up or the server is closed, so a test never waits for this server longer than the client under
test does. Each connection carries one request and is closed after it (``Connection: close``).

Handlers ready to use: :func:`answer` (any status, body, headers and reason phrase), :func:`echo` (a
request header said back in the error message, the reason phrase, a non-JSON body or a response
header), :func:`gemini_ok`, :func:`trickle` (a body a few bytes at a time), :func:`header_trickle`
(the status line and headers a byte at a time), :func:`silent` (accept, read, never answer),
:func:`huge` (a long body streamed in chunks) and :func:`gzip_bomb`. Writing one is a function of an
:class:`Exchange`; for instance a server that echoes the API key it was sent in its error message::

    def echo(exchange: Exchange) -> None:
        key = exchange.request.headers["x-goog-api-key"]
        exchange.respond(400, json={"error": {"code": 400, "message": f"bad key {key}"}})

    with HostileServer(echo) as server:
        ...  # GEMINI_BASE_URL=server.url
"""

from __future__ import annotations

import contextlib
import functools
import json as jsonlib
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = [
    "ClientGoneError",
    "Exchange",
    "Handler",
    "HostileServer",
    "Request",
    "answer",
    "echo",
    "gemini_body",
    "gemini_ok",
    "gzip_bomb",
    "header_trickle",
    "huge",
    "silent",
    "trickle",
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
        self.send(_head(status, headers, reason))

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


def _head(status: int, headers: Iterable[tuple[str, str]], reason: str | bytes | None) -> bytes:
    phrase = reason if reason is not None else _REASONS.get(status, "Whatever")
    phrase_bytes = phrase if isinstance(phrase, bytes) else phrase.encode("latin-1")
    lines = [b"HTTP/1.1 %d %s" % (status, phrase_bytes)]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request",
            401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip


# --- ready-made handlers --------------------------------------------------------------------------


def gemini_body(
    text: str = "Tests keep code honest and teams calm.", **extra: Any
) -> dict[str, Any]:
    """A ``generateContent`` answer with one candidate; ``extra`` adds or replaces top-level
    fields."""
    body: dict[str, Any] = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
        "modelVersion": "gemini-hostile",
    }
    body.update(extra)
    return body


def answer(
    status: int = 200,
    body: bytes | str = b"",
    *,
    json: Any = None,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | bytes | None = None,
) -> Handler:
    """Answer every request with this complete response."""
    headers = list(headers)
    return lambda exchange: exchange.respond(
        status, body, json=json, headers=headers, reason=reason
    )


def gemini_ok(text: str = "Tests keep code honest and teams calm.", **extra: Any) -> Handler:
    """A successful ``generateContent`` answer (see :func:`gemini_body`)."""
    return answer(json=gemini_body(text, **extra))


ECHO_PLACES = ("message", "reason", "body", "header")


def echo(header: str = "x-goog-api-key", *, where: str = "message", status: int = 400) -> Handler:
    """Say the request's ``header`` back (a key, say): in the JSON error ``message``, the ``reason``
    phrase, a non-JSON ``body``, or a response ``header`` (``X-Echo``)."""
    if where not in ECHO_PLACES:
        raise ValueError(f"where must be one of {', '.join(ECHO_PLACES)}")

    def handler(exchange: Exchange) -> None:
        value = exchange.request.headers.get(header.lower(), "")
        if where == "message":
            exchange.respond(
                status,
                json={"error": {"code": status, "message": f"rejected {value}", "status": "X"}},
            )
        elif where == "reason":
            exchange.respond(status, b"", reason=f"Rejected {value}")
        elif where == "body":
            exchange.respond(
                status,
                f"<html><body>rejected {value}</body></html>",
                headers=[("Content-Type", "text/html")],
            )
        else:
            exchange.respond(
                status,
                json={"error": {"code": status, "message": "rejected"}},
                headers=[("X-Echo", value)],
            )

    return handler


def trickle(
    interval: float, body: bytes | None = None, *, size: int = 1, status: int = 200
) -> Handler:
    """Headers at once (with ``Content-Length``), then the body ``size`` bytes every ``interval``
    seconds."""
    data = jsonlib.dumps(gemini_body()).encode() if body is None else body

    def handler(exchange: Exchange) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        exchange.head(status, headers)
        exchange.trickle(data, interval, size)

    return handler


def header_trickle(interval: float) -> Handler:
    """The status line and headers one byte every ``interval`` seconds (then a complete, valid
    body)."""
    data = jsonlib.dumps(gemini_body()).encode()

    def handler(exchange: Exchange) -> None:
        head = _head(
            200, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))], None
        )
        exchange.trickle(head, interval)
        exchange.send(data)

    return handler


def silent(exchange: Exchange) -> None:
    """Read the request and never answer (until the client gives up)."""
    exchange.hang()


def huge(
    size: int,
    *,
    status: int = 200,
    chunk: int = 64 * 1024,
    declare_length: bool = False,
    prefix: bytes = b'{"candidates": [{"content": {"parts": [{"text": "',
) -> Handler:
    """A body of ``size`` bytes (``prefix``, then ``a``s) streamed in chunks, chunked unless
    ``declare_length``."""

    def pieces() -> Iterator[bytes]:
        yield prefix
        block = b"a" * chunk
        left = size - len(prefix)
        while left > 0:
            yield block[: min(chunk, left)]
            left -= chunk

    def handler(exchange: Exchange) -> None:
        headers = [("Content-Type", "application/json")]
        if declare_length:
            headers.append(("Content-Length", str(size)))
            exchange.head(status, headers)
            exchange.stream(pieces(), chunked=False)
        else:
            exchange.head(status, [*headers, ("Transfer-Encoding", "chunked")])
            exchange.stream(pieces())

    return handler


@functools.lru_cache(maxsize=4)
def _bomb(mebibytes: int) -> bytes:
    """A valid gzip stream of ``mebibytes`` MiB of zeros, about 1,000 times smaller (built in well
    under 1 s)."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, repeatable
    end = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return (
        header + block * mebibytes + end + struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF)
    )


def gzip_bomb(mebibytes: int = 1024, *, status: int = 200) -> Handler:
    """``Content-Encoding: gzip`` over ``mebibytes`` MiB of zeros (1024 MiB: about 1 MB on the
    wire)."""
    data = _bomb(mebibytes)
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    return answer(status, data, headers=headers)
