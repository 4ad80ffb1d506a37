"""An answer bounded in size: the body is streamed and decoded here, its decoded size capped.

Only gzip and deflate are asked for (and so decoded); the decompressor's output is capped at each
step, so no answer can hold more than ``max_response_bytes`` of memory however well it compresses.
httpx's own decoder inflates a whole network chunk at once (a 64 KiB chunk of a gzip bomb is 64 MB).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..errors import InvalidResponseError, clip

__all__ = ["ACCEPT_ENCODING", "Answer", "TooLargeError", "aread", "decoded", "read"]

#: the encodings asked for (and so the only ones decoded); httpx would also ask for br and zstd
ACCEPT_ENCODING = "gzip, deflate"
_CHUNK = 64 * 1024  # the most decoded bytes produced from one step of the decompressor
_GZIP = ("gzip", "x-gzip")


class TooLargeError(Exception):
    """The body passed the size limit (the caller decides what that means for its status)."""


def _undecodable(coding: str | None, why: object) -> InvalidResponseError:
    return InvalidResponseError(f"response body could not be decoded ({coding}): {why}")


def _coding(headers: httpx.Headers) -> str | None:
    """The one content encoding of the body (``None``: identity); any other is refused."""
    codings = [c.strip().lower() for c in headers.get_list("content-encoding", split_commas=True)]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1 or (codings and codings[0] not in (*_GZIP, "deflate")):
        raise InvalidResponseError(
            f"response uses content encoding {clip(', '.join(codings), 100)!r}, which was not "
            f"asked for (tweetgen asks for {ACCEPT_ENCODING})"
        )
    return codings[0] if codings else None


class _Body:
    """One answer's body, decoded and counted as it streams in; never more than ``limit`` decoded
    bytes held."""

    def __init__(self, headers: httpx.Headers, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self._raw = 0
        self._coding = _coding(headers)
        self._head = bytearray()  # deflate: the first two bytes say whether a zlib header wraps it
        gzip = self._coding in _GZIP
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None
        length = headers.get("content-length", "")
        if length.isdigit() and (len(length) > 18 or int(length) > limit):
            raise TooLargeError

    def feed(self, chunk: bytes) -> None:
        """Add one raw chunk; :class:`TooLargeError` once the decoded (or raw) size is too large."""
        self._raw += len(chunk)
        if self._raw > self.limit:
            raise TooLargeError
        if self._coding is None:
            self.data += chunk
            return
        if self._inflate is None:  # deflate, undecided
            self._head += chunk
            if len(self._head) < 2:
                return
            first, second = self._head[0], self._head[1]
            wrapped = first & 0x0F == 8 and (first << 8 | second) % 31 == 0  # RFC 1950, else raw
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            chunk, self._head = bytes(self._head), bytearray()
        try:
            while chunk:
                room = min(_CHUNK, self.limit - len(self.data) + 1)
                self.data += self._inflate.decompress(chunk, room)
                if len(self.data) > self.limit:
                    raise TooLargeError
                chunk = self._inflate.unconsumed_tail
        except zlib.error as error:
            raise _undecodable(self._coding, error) from None

    def finish(self) -> bytes:
        """The whole decoded body."""
        if self._head:
            raise _undecodable(self._coding, "it is one byte long")
        if self._inflate is not None:
            try:
                self.data += self._inflate.flush()
            except zlib.error as error:
                raise _undecodable(self._coding, error) from None
            if len(self.data) > self.limit:
                raise TooLargeError
        return bytes(self.data)


def _preread(response: httpx.Response, limit: int) -> bytes | None:
    """The body an injected transport already read (``httpx.MockTransport`` hands over complete
    responses)."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return None
    if len(content) > limit:
        raise TooLargeError
    return content


def read(response: httpx.Response, check: Callable[[], None], limit: int) -> bytes:
    """The decoded body, at most ``limit`` bytes; ``check`` (the deadline) runs after each chunk."""
    content = _preread(response, limit)
    if content is not None:
        return content
    body = _Body(response.headers, limit)
    for chunk in response.iter_raw():
        body.feed(chunk)
        check()
    return body.finish()


async def aread(response: httpx.Response, check: Callable[[], None], limit: int) -> bytes:
    """The async twin of :func:`read`."""
    content = _preread(response, limit)
    if content is not None:
        return content
    body = _Body(response.headers, limit)
    async for chunk in response.aiter_raw():
        body.feed(chunk)
        check()
    return body.finish()


@dataclass(frozen=True)
class Answer:
    """What came back: the status and headers, and the decoded body (``None``: over the limit)."""

    response: httpx.Response
    content: bytes | None


def decoded(response: httpx.Response, content: bytes) -> httpx.Response:
    """A complete ``httpx.Response`` of the decoded body (the mappers read ``.content`` and the
    headers)."""
    skip = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
    kept = ("reason_phrase", "http_version")
    extensions = {k: v for k, v in response.extensions.items() if k in kept}
    return httpx.Response(
        response.status_code, headers=headers, content=content, extensions=extensions
    )
