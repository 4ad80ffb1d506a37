"""What every JSON-over-HTTP provider shares: clients, bounded attempts, bounded reads, telemetry and errors.

An attempt is bounded twice, whatever the server does:

- **in time**: ``timeout`` bounds the *whole* attempt by the wall clock (connecting, sending, the status
  line and headers, every read of the body), not each read as httpx's own timeout does, so a server that
  trickles one byte a second cannot stretch an attempt. The retry engine's deadline
  (:func:`tweetgen.retry.call_deadline`) shortens it further when less time is left. The bound lives in a
  context variable that a wrapping httpcore network backend reads on every connect, read and write; the body
  loop checks it too (which is all an injected transport gets), and async attempts also run under
  ``asyncio.wait_for``.
- **in size**: the body is streamed and decoded here (gzip or deflate, the only encodings asked for), with
  the decompressor's output capped, so no answer can hold more than ``max_response_bytes`` of memory
  however well it compresses.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import httpcore
import httpx

from ..config import DEFAULT_MAX_RESPONSE_BYTES, Secret
from ..errors import (
    APIError,
    ConfigurationError,
    InvalidResponseError,
    NetworkError,
    RedirectError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TweetGenError,
    clip,
)
from ..logs import get_logger, preview, register_secret
from ..retry import call_deadline
from .base import GenerationRequest, GenerationResult

__all__ = [
    "MAX_TOKEN_COUNT",
    "HTTPProvider",
    "install_deadline_backend",
    "json_object",
    "server_text",
    "token_count",
    "transport_error",
]

_log = get_logger()
#: the largest token count believed: a signed 32-bit integer, what the APIs (and any store) use
MAX_TOKEN_COUNT = 2**31 - 1
#: the encodings asked for (and so the only ones decoded); httpx would also ask for br and zstd when installed
ACCEPT_ENCODING = "gzip, deflate"
_CHUNK = 64 * 1024  # the most decoded bytes produced from one step of the decompressor
#: the attempt in flight must end by this ``time.monotonic()``; read by the network backend below
_ATTEMPT_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tweetgen_attempt", default=None
)
_ASYNC_GRACE = (
    0.1  # asyncio.wait_for fires this much after the deadline: httpcore's own timeout goes first
)


def json_object(content: bytes) -> dict[str, Any]:
    """The body as a JSON object, or :class:`InvalidResponseError` saying what it was instead."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        snippet = content[:80].decode("utf-8", "replace").strip()
        raise InvalidResponseError(f"response is not JSON: {snippet!r}") from None
    if not isinstance(data, dict):
        raise InvalidResponseError(f"response is JSON but not an object: {type(data).__name__}")
    return data


def token_count(value: object) -> int:
    """A token count from the server if it is a plain int from 0 to :data:`MAX_TOKEN_COUNT`, else 0.

    Decision: a count out of range (``10**30``, ``-5``, ``true``, ``"12"``) counts as 0 rather than making
    the answer invalid: usage is bookkeeping, and the text it came with was paid for and may be good.
    """
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT
        else 0
    )


def server_text(value: object, limit: int = 200) -> str | None:
    """A short string field from the server (model version, response id), cut to ``limit``; else ``None``."""
    return clip(value, limit) if isinstance(value, str) else None


# --- bounded in time ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
    """The wall-clock bound of one attempt: its ``timeout``, or what the call's deadline leaves if less."""

    until: float
    timeout: float
    connect: float
    by_deadline: bool

    @classmethod
    def start(cls, timeout: float, connect: float) -> _Bound:
        until, outer = time.monotonic() + timeout, call_deadline()
        if outer is not None and outer < until:
            return cls(outer, timeout, connect, by_deadline=True)
        return cls(until, timeout, connect, by_deadline=False)

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def timeouts(self) -> httpx.Timeout:
        """httpx's per-operation timeouts, none longer than what is left (the backend shortens them as it goes)."""
        left = self.left()
        return httpx.Timeout(left, connect=min(self.connect, left), pool=left)

    def error(self, what: str) -> RequestTimeoutError:
        if (
            what == "ConnectTimeout" and self.left() > 0
        ):  # the connect timeout, shorter than the attempt's
            return RequestTimeoutError(
                f"request timed out: no connection within the {self.connect:g}s connect timeout"
            )
        if self.by_deadline:
            return RequestTimeoutError(
                f"request timed out: the call's deadline ran out during the attempt ({what})"
            )
        return RequestTimeoutError(
            f"request timed out: no complete answer within the {self.timeout:g}s timeout ({what})"
        )

    def check(self) -> None:
        """Raise :class:`RequestTimeoutError` once the bound has passed (between reads of the body)."""
        if time.monotonic() >= self.until:
            raise self.error("while reading the body")


def _clamped(timeout: float | None, exc: type[Exception]) -> float | None:
    """``timeout`` shortened to what the attempt in flight has left; ``exc`` when nothing is left."""
    until = _ATTEMPT_DEADLINE.get()
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise exc("the attempt's time is up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, _clamped(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with every connection ending by the attempt's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    """The async twin of :class:`_DeadlineStream`."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _clamped(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _clamped(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout)
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`_DeadlineBackend`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncDeadlineStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        return _AsyncDeadlineStream(
            await self._backend.connect_unix_socket(path, timeout, socket_options)
        )

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def install_deadline_backend(client: httpx.Client | httpx.AsyncClient) -> int:
    """Put the deadline-aware network backend under every connection pool of ``client``; returns how many.

    The one place that reaches into private attributes of httpx (``Client._transport``, ``Client._mounts``,
    ``HTTPTransport._pool``) and httpcore (``ConnectionPool._network_backend``, proxies included), because
    httpx offers no option for a network backend and building our own transport would lose its proxy
    settings from the environment. tests/test_hostile_transport.py fails if a release renames them; the
    attempts are then still bounded between reads of the body, and async ones by ``asyncio.wait_for``.
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    installed = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, (_DeadlineBackend, _AsyncDeadlineBackend)):
            installed += 1
        elif isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
            installed += 1
        elif isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = _AsyncDeadlineBackend(backend)  # type: ignore[union-attr]
            installed += 1
    return installed


# --- bounded in size ------------------------------------------------------------------------------------


class _TooLargeError(Exception):
    """The body passed the size limit (internal: the caller decides what that means for its status)."""


class _Body:
    """One answer's body, decoded and counted as it streams in; never more than ``limit`` decoded bytes held.

    httpx's own decoder inflates a whole network chunk at once (a 64 KiB chunk of a gzip bomb is 64 MB), so
    the decompressor is driven here with its output capped at each step.
    """

    def __init__(self, headers: httpx.Headers, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self._raw = 0
        codings = [
            c.strip().lower() for c in headers.get_list("content-encoding", split_commas=True)
        ]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise InvalidResponseError(
                f"response uses content encoding {clip(', '.join(codings), 100)!r}, which was not asked for "
                f"(tweetgen asks for {ACCEPT_ENCODING})"
            )
        self._coding = codings[0] if codings else None
        self._head = (
            bytearray()
        )  # deflate: the first two bytes say whether a zlib header wraps the stream
        self._inflate = (
            zlib.decompressobj(zlib.MAX_WBITS | 16) if self._coding in ("gzip", "x-gzip") else None
        )
        length = headers.get("content-length", "")
        if length.isdigit() and (len(length) > 18 or int(length) > limit):
            raise _TooLargeError

    def feed(self, chunk: bytes) -> None:
        """Add one raw chunk; :class:`_TooLargeError` as soon as the decoded (or raw) size passes the limit."""
        self._raw += len(chunk)
        if self._raw > self.limit:
            raise _TooLargeError
        if self._coding is None:
            self.data += chunk
            return
        if self._inflate is None:  # deflate, undecided
            self._head += chunk
            if len(self._head) < 2:
                return
            first, second = self._head[0], self._head[1]
            wrapped = (
                first & 0x0F == 8 and (first << 8 | second) % 31 == 0
            )  # RFC 1950; else raw deflate
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            chunk, self._head = bytes(self._head), bytearray()
        try:
            while chunk:
                room = min(_CHUNK, self.limit - len(self.data) + 1)
                self.data += self._inflate.decompress(chunk, room)
                if len(self.data) > self.limit:
                    raise _TooLargeError
                chunk = self._inflate.unconsumed_tail
        except zlib.error as error:
            raise InvalidResponseError(
                f"response body could not be decoded ({self._coding}): {error}"
            ) from None

    def finish(self) -> bytes:
        """The whole decoded body."""
        if self._head:
            raise InvalidResponseError(
                f"response body could not be decoded ({self._coding}): it is one byte long"
            )
        if self._inflate is not None:
            try:
                self.data += self._inflate.flush()
            except zlib.error as error:
                raise InvalidResponseError(
                    f"response body could not be decoded ({self._coding}): {error}"
                ) from None
            if len(self.data) > self.limit:
                raise _TooLargeError
        return bytes(self.data)


def _preread(response: httpx.Response, limit: int) -> bytes | None:
    """The body an injected transport already read (``httpx.MockTransport`` hands over complete responses)."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return None
    if len(content) > limit:
        raise _TooLargeError
    return content


def _read(response: httpx.Response, bound: _Bound, limit: int) -> bytes:
    content = _preread(response, limit)
    if content is not None:
        return content
    body = _Body(response.headers, limit)
    for chunk in response.iter_raw():
        body.feed(chunk)
        bound.check()
    return body.finish()


async def _aread(response: httpx.Response, bound: _Bound, limit: int) -> bytes:
    content = _preread(response, limit)
    if content is not None:
        return content
    body = _Body(response.headers, limit)
    async for chunk in response.aiter_raw():
        body.feed(chunk)
        bound.check()
    return body.finish()


@dataclass(frozen=True)
class _Answer:
    """What came back: the status and headers, and the decoded body (``None`` when it was over the limit)."""

    response: httpx.Response
    content: bytes | None


def _decoded(response: httpx.Response, content: bytes) -> httpx.Response:
    """A complete ``httpx.Response`` of the decoded body (the mappers read ``.content`` and the headers)."""
    skip = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("reason_phrase", "http_version")
    }
    return httpx.Response(
        response.status_code, headers=headers, content=content, extensions=extensions
    )


def transport_error(error: httpx.RequestError, bound: _Bound | None = None) -> TweetGenError:
    """Map an httpx request failure: timeouts, network errors, or a body that cannot be decoded."""
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.DecodingError):
        return InvalidResponseError(
            f"response body could not be decoded ({type(error).__name__}): {reason}"
        )
    if isinstance(error, httpx.TimeoutException):
        if bound is not None:
            return bound.error(type(error).__name__)
        return RequestTimeoutError(f"request timed out ({type(error).__name__}): {reason}")
    return NetworkError(f"network error ({type(error).__name__}): {reason}")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class HTTPProvider(ABC):
    """One POST per attempt over reused httpx clients; subclasses supply the URL and the wire format."""

    #: the setting that holds this provider's base URL, named when a redirect says it is wrong
    base_url_setting = "the base URL"

    def __init__(
        self,
        *,
        api_key: Secret | str | None,
        model: str,
        url: str,
        timeout: float,
        connect_timeout: float,
        name: str,
        secret_key: bool,
        transport: httpx.BaseTransport | None,
        async_transport: httpx.AsyncBaseTransport | None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if (
            not isinstance(max_response_bytes, int)
            or isinstance(max_response_bytes, bool)
            or max_response_bytes < 1
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a whole number >= 1, got {max_response_bytes!r}"
            )
        self._key = Secret(api_key) if isinstance(api_key, str) else api_key
        if secret_key and self._key is not None:
            register_secret(self._key.reveal())
        self.name = name
        self.model = model
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        key = "***" if self._key is not None else "None"
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, url={self.url!r}, api_key={key})"

    @abstractmethod
    def _headers(self) -> dict[str, str]:
        """The headers of every request, the key's header included."""

    @abstractmethod
    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body for ``request``."""

    @abstractmethod
    def parse_response(self, content: bytes, *, status_code: int) -> GenerationResult:
        """Parse a successful body, or raise the blocked, empty or invalid-response error."""

    @abstractmethod
    def error_from_response(self, response: httpx.Response) -> APIError:
        """Map an HTTP error response (status >= 400) onto the error tree."""

    def _client_headers(self) -> dict[str, str]:
        return {**self._headers(), "accept-encoding": ACCEPT_ENCODING}

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            with (
                self._client_lock
            ):  # threads share a provider: one client (and pool), never a leaked extra
                if self._client is None:
                    client = httpx.Client(
                        timeout=self._timeout,
                        transport=self._transport,
                        headers=self._client_headers(),
                    )
                    install_deadline_backend(client)
                    self._client = client
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._aclient is None:
            client = httpx.AsyncClient(
                timeout=self._timeout,
                transport=self._async_transport,
                headers=self._client_headers(),
            )
            install_deadline_backend(client)
            self._aclient = client
        return self._aclient

    def _started(self, request: GenerationRequest) -> float:
        _log.info(
            "Making API request",
            url_endpoint=self.model,
            prompt_length=len(request.prompt),
            prompt_preview=preview(request.prompt),
        )
        return time.perf_counter()

    def _redirect(self, response: httpx.Response) -> RedirectError:
        location = response.headers.get("location")
        target = clip(location, 300) if location else "no Location header"
        return RedirectError(
            f"the server answered with a redirect (HTTP {response.status_code} to {target}); "
            f"set {self.base_url_setting} to the final address",
            status_code=response.status_code,
            location=location,
        )

    def _too_large(self, response: httpx.Response) -> TweetGenError:
        limit = f"{self.max_response_bytes:,} bytes"
        if (
            response.status_code >= 400
        ):  # the status still says what failed; only the body is not read
            error: TweetGenError = self.error_from_response(_decoded(response, b""))
            error.add_to_message(f" (the error body is larger than {limit} and was not read)")
            return error
        return ResponseTooLargeError(
            f"the answer is larger than {limit} (counted after decompression) and was not read; if this "
            "server's answers really are that large, raise TWEETGEN_MAX_RESPONSE_BYTES or --max-response-bytes",
            limit=self.max_response_bytes,
        )

    def _finish(self, answer: _Answer, started: float) -> GenerationResult:
        latency_ms = _elapsed_ms(started)
        response = answer.response
        try:
            if 300 <= response.status_code < 400:
                raise self._redirect(response)
            if answer.content is None:
                raise self._too_large(response)
            if response.status_code >= 400:
                raise self.error_from_response(_decoded(response, answer.content))
            result = self.parse_response(answer.content, status_code=response.status_code)
        except TweetGenError as error:
            error.latency_ms = latency_ms
            raise
        _log.info(
            "API request successful",
            status_code=response.status_code,
            latency_ms=latency_ms,
            response_length=len(result.text),
            response_preview=preview(result.text),
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            thought_tokens=result.usage.thought_tokens,
            finish_reason=result.finish_reasons[0] if result.finish_reasons else None,
        )
        return replace(result, latency_ms=latency_ms)

    def _failed(self, error: Exception, started: float, bound: _Bound) -> TweetGenError:
        if isinstance(error, TweetGenError):
            mapped = error
        elif isinstance(error, httpx.RequestError):
            mapped = transport_error(error, bound)
        else:  # asyncio's TimeoutError from wait_for: the deadline passed wherever the attempt was
            mapped = bound.error("the attempt did not finish")
        mapped.latency_ms = _elapsed_ms(started)
        return mapped

    def _exchange(self, request: GenerationRequest, bound: _Bound) -> _Answer:
        timeouts = bound.timeouts()
        body = self.build_body(request)
        with self._sync_client().stream("POST", self.url, json=body, timeout=timeouts) as response:
            if 300 <= response.status_code < 400:
                return _Answer(response, b"")
            try:
                return _Answer(response, _read(response, bound, self.max_response_bytes))
            except _TooLargeError:
                return _Answer(response, None)

    async def _aexchange(self, request: GenerationRequest, bound: _Bound) -> _Answer:
        timeouts = bound.timeouts()
        body = self.build_body(request)
        async with self._async_client().stream(
            "POST", self.url, json=body, timeout=timeouts
        ) as response:
            if 300 <= response.status_code < 400:
                return _Answer(response, b"")
            try:
                content = await _aread(response, bound, self.max_response_bytes)
            except _TooLargeError:
                return _Answer(response, None)
            return _Answer(response, content)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt (no retries), bounded by ``timeout`` and the call's deadline."""
        started = self._started(request)
        bound = _Bound.start(self.timeout, self.connect_timeout)
        token = _ATTEMPT_DEADLINE.set(bound.until)
        try:
            answer = self._exchange(request, bound)
        except (httpx.RequestError, TweetGenError) as error:
            raise self._failed(error, started, bound) from error
        finally:
            _ATTEMPT_DEADLINE.reset(token)
        return self._finish(answer, started)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt without blocking the event loop (no retries), bounded as :meth:`generate`."""
        started = self._started(request)
        bound = _Bound.start(self.timeout, self.connect_timeout)
        token = _ATTEMPT_DEADLINE.set(bound.until)
        try:
            answer = await asyncio.wait_for(
                self._aexchange(request, bound), bound.left() + _ASYNC_GRACE
            )
        except (httpx.RequestError, TweetGenError, asyncio.TimeoutError) as error:
            raise self._failed(error, started, bound) from error
        finally:
            _ATTEMPT_DEADLINE.reset(token)
        return self._finish(answer, started)

    def close(self) -> None:
        """Close the sync client (the async one is closed by :meth:`aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client."""
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
