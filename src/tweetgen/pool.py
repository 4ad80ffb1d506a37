"""A batch's connections: several small httpx pools sized from the concurrency, one transport.

One pool per provider of ``concurrency`` connections spends its CPU looking through them on every
request and response (httpx keeps 20 alive by default, so a batch of 50 also kept closing and
opening connections); several small ones, each capped, keep every connection alive and look through
fewer (``bench/batch_pool.py`` measures the options). Each small pool is built as httpx builds a
client's own, so proxies from the environment are honoured, and its connections end by the
attempt's deadline like every client's of tweetgen.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import httpx

from .providers._deadline import install_deadline_backend

__all__ = ["SHARD_SIZE", "PooledTransport"]

#: the most connections one small pool holds (httpcore looks through them on every request and
#: response: pools of 4 cut a batch's CPU per row by 0.5-0.9 ms against 16, bench/fleet_batch.py)
SHARD_SIZE = 4


class _Counted(httpx.AsyncByteStream):
    """A response body that tells its pool when it is closed (its connection is free again)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream, self._release = stream, release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, lambda: None
            release()


class PooledTransport(httpx.AsyncBaseTransport):
    """``concurrency`` connections in small pools of at most :data:`SHARD_SIZE`, each kept alive;
    a request goes to the pool with the fewest requests in flight."""

    def __init__(self, concurrency: int, *, shard_size: int = SHARD_SIZE) -> None:
        count = max(1, math.ceil(concurrency / shard_size))
        size = math.ceil(concurrency / count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        verify = httpx.create_ssl_context()  # one for every pool: each costs 75 ms of CPU to load
        self.pools = [httpx.AsyncClient(limits=limits, verify=verify) for _ in range(count)]
        for pool in self.pools:
            install_deadline_backend(pool)
        self.busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1

        def release() -> None:
            self.busy[index] -= 1

        try:
            transport = self.pools[index]._transport_for_url(request.url)
            response = await transport.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Counted(response.stream, release)
        return response

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()
