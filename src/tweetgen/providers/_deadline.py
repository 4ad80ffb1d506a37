"""An attempt bounded in time: its wall-clock bound, and a network backend that keeps to it.

``timeout`` bounds the *whole* attempt by the wall clock (connecting, sending, the status line and
headers, every read of the body), not each read as httpx's own timeout does, so a server that
trickles one byte a second cannot stretch an attempt. The retry engine's deadline
(:func:`tweetgen.deadlines.call_deadline`) shortens it further when less time is left. The bound
lives in a context variable that a wrapping httpcore network backend reads on every connect, read
and write; the body loop checks it too (which is all an injected transport gets), and async attempts
also run under ``asyncio.wait_for``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from ..deadlines import call_deadline
from ..errors import RequestTimeoutError

__all__ = ["ATTEMPT_DEADLINE", "Bound", "install_deadline_backend"]

#: the attempt in flight must end by this ``time.monotonic()``; read by the network backend below
ATTEMPT_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tweetgen_attempt", default=None
)


@dataclass(frozen=True)
class Bound:
    """The wall-clock bound of one attempt: its ``timeout``, or what the call's deadline leaves."""

    until: float
    timeout: float
    connect: float
    by_deadline: bool

    @classmethod
    def start(cls, timeout: float, connect: float) -> Bound:
        until, outer = time.monotonic() + timeout, call_deadline()
        if outer is not None and outer < until:
            return cls(outer, timeout, connect, by_deadline=True)
        return cls(until, timeout, connect, by_deadline=False)

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def timeouts(self) -> httpx.Timeout:
        """httpx's per-operation timeouts, none longer than what is left (the backend shortens them
        as it goes)."""
        left = self.left()
        return httpx.Timeout(left, connect=min(self.connect, left), pool=left)

    def error(self, what: str) -> RequestTimeoutError:
        if what == "ConnectTimeout" and self.left() > 0:  # the connect timeout, shorter
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
        """Raise :class:`RequestTimeoutError` once the bound has passed (between body reads)."""
        if time.monotonic() >= self.until:
            raise self.error("while reading the body")


def _clamped(timeout: float | None, exc: type[Exception]) -> float | None:
    """``timeout`` cut to what the attempt in flight has left; ``exc`` when nothing is left."""
    until = ATTEMPT_DEADLINE.get()
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
        timeout = _clamped(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

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
    """Put the deadline-aware network backend under every connection pool of ``client``; returns
    how many.

    The one place that reaches into private attributes of httpx (``Client._transport``,
    ``Client._mounts``, ``HTTPTransport._pool``) and httpcore (``ConnectionPool._network_backend``,
    proxies included), because httpx offers no option for a network backend and building our own
    transport would lose its proxy settings from the environment. tests/test_hostile_transport.py
    fails if a release renames them; the attempts are then still bounded between reads of the body,
    and async ones by ``asyncio.wait_for``.
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
