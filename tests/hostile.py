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

import functools
import json as jsonlib
import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from hostile_server import ClientGoneError, Exchange, Handler, HostileServer, Request, response_head

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
        head = response_head(
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
