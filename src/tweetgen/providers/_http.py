"""What every JSON-over-HTTP provider shares: reused clients, one bounded attempt, errors.

An attempt is bounded twice, whatever the server does: in time (:mod:`._deadline`: the attempt's
``timeout``, or less when the call's deadline leaves less) and in size (:mod:`._body`: the body is
streamed and decoded here, capped at ``max_response_bytes`` after decompression).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import httpx

from .. import events, pricing
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
from ..logs import register_secret
from ._body import ACCEPT_ENCODING, Answer, TooLargeError, aread, decoded, read
from ._deadline import ATTEMPT_DEADLINE, Bound, install_deadline_backend
from .base import GenerationRequest, GenerationResult, Usage

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_TOKEN_COUNT",
    "HTTPProvider",
    "install_deadline_backend",
    "json_object",
    "server_text",
    "token_count",
    "transport_error",
]

#: the largest token count believed: a signed 32-bit integer, what the APIs (and any store) use
MAX_TOKEN_COUNT = 2**31 - 1
#: asyncio.wait_for fires this much after the deadline: httpcore's own timeout goes first
_ASYNC_GRACE = 0.1


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

    Decision: a count out of range (``10**30``, ``-5``, ``true``, ``"12"``) counts as 0 rather than
    making the answer invalid: usage is bookkeeping, and the text it came with was paid for and may
    be good.
    """
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return 0


def server_text(value: object, limit: int = 200) -> str | None:
    """A short string field from the server (model version, response id), cut to ``limit``."""
    return clip(value, limit) if isinstance(value, str) else None


def transport_error(error: httpx.RequestError, bound: Bound | None = None) -> TweetGenError:
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
    """One POST per attempt over reused httpx clients; subclasses give the URL and wire format."""

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
        self._parsed: tuple[str, httpx.URL] | None = None
        #: (url, genai-prices' price list for it), found on the first answer
        self._price_list: tuple[str, str | None] | None = None

    def __repr__(self) -> str:
        key = "***" if self._key is not None else "None"
        return (
            f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, url={self.url!r}, "
            f"api_key={key})"
        )

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

    def _endpoint(self) -> httpx.URL:
        """``url`` parsed once (httpx would parse the string on every request)."""
        if self._parsed is None or self._parsed[0] != self.url:
            self._parsed = (self.url, httpx.URL(self.url))
        return self._parsed[1]

    def _started(self, request: GenerationRequest) -> float:
        events.request_started(self.model, request.prompt)
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
        if response.status_code >= 400:  # the status still says what failed; the body is not read
            error: TweetGenError = self.error_from_response(decoded(response, b""))
            error.add_to_message(f" (the error body is larger than {limit} and was not read)")
            return error
        return ResponseTooLargeError(
            f"the answer is larger than {limit} (counted after decompression) and was not read; if "
            "this server's answers really are that large, raise TWEETGEN_MAX_RESPONSE_BYTES or "
            "--max-response-bytes",
            limit=self.max_response_bytes,
        )

    def _finish(self, answer: Answer, started: float) -> GenerationResult:
        latency_ms = _elapsed_ms(started)
        response = answer.response
        try:
            if 300 <= response.status_code < 400:
                raise self._redirect(response)
            if answer.content is None:
                raise self._too_large(response)
            if response.status_code >= 400:
                raise self.error_from_response(decoded(response, answer.content))
            result = self.parse_response(answer.content, status_code=response.status_code)
        except TweetGenError as error:
            error.latency_ms = latency_ms
            usage = getattr(error, "usage", None)
            if isinstance(usage, Usage):  # an answer refused but billed (all thoughts, no text)
                setattr(error, "cost_usd", self._cost(usage, None, None))  # noqa: B010
            raise
        result = self._priced(result, latency_ms)
        events.request_succeeded(response.status_code, latency_ms, result)
        return result

    def _cost(self, usage: Usage, tier: str | None, response_model: str | None) -> float | None:
        """What an answer with ``usage`` cost in dollars (:mod:`tweetgen.pricing`), or None."""
        if self._price_list is None or self._price_list[0] != self.url:
            self._price_list = (self.url, pricing.price_list_for(self.url))
        price_list = self._price_list[1]
        if price_list is None:
            return None
        return pricing.cost_usd(
            self.model, usage, tier=tier, response_model=response_model, provider=price_list
        )

    def _priced(self, result: GenerationResult, latency_ms: float) -> GenerationResult:
        """``result`` with its latency and its cost in dollars (None: the model's price is
        unknown), in one copy (what ``with_latency`` alone did before)."""
        cost = result.cost_usd
        if cost is None:
            cost = self._cost(result.usage, result.service_tier, result.model_version)
        return GenerationResult(
            result.texts,
            result.provider,
            result.model,
            result.finish_reasons,
            result.usage,
            result.model_version,
            result.response_id,
            result.status_code,
            latency_ms,
            result.service_tier,
            cost,
        )

    def _failed(self, error: Exception, started: float, bound: Bound) -> TweetGenError:
        if isinstance(error, TweetGenError):
            mapped = error
        elif isinstance(error, httpx.RequestError):
            mapped = transport_error(error, bound)
        else:  # asyncio's TimeoutError from wait_for: the deadline passed wherever the attempt was
            mapped = bound.error("the attempt did not finish")
        mapped.latency_ms = _elapsed_ms(started)
        return mapped

    def _exchange(self, request: GenerationRequest, bound: Bound) -> Answer:
        timeouts = bound.timeouts()
        body = self.build_body(request)
        client = self._sync_client()
        post = client.build_request("POST", self._endpoint(), json=body, timeout=timeouts)
        response = client.send(post, stream=True)  # what client.stream() does, without its
        try:  # context manager
            if 300 <= response.status_code < 400:
                return Answer(response, b"")
            try:
                return Answer(response, read(response, bound.check, self.max_response_bytes))
            except TooLargeError:
                return Answer(response, None)
        finally:
            response.close()

    async def _aexchange(self, request: GenerationRequest, bound: Bound) -> Answer:
        timeouts = bound.timeouts()
        body = self.build_body(request)
        client = self._async_client()
        post = client.build_request("POST", self._endpoint(), json=body, timeout=timeouts)
        response = await client.send(post, stream=True)  # as AsyncClient.stream() does
        try:
            if 300 <= response.status_code < 400:
                return Answer(response, b"")
            try:
                content = await aread(response, bound.check, self.max_response_bytes)
            except TooLargeError:
                return Answer(response, None)
            return Answer(response, content)
        finally:
            await response.aclose()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt (no retries), bounded by ``timeout`` and the call's deadline."""
        started = self._started(request)
        bound = Bound.start(self.timeout, self.connect_timeout)
        token = ATTEMPT_DEADLINE.set(bound.until)
        try:
            answer = self._exchange(request, bound)
        except (httpx.RequestError, TweetGenError) as error:
            raise self._failed(error, started, bound) from error
        finally:
            ATTEMPT_DEADLINE.reset(token)
        return self._finish(answer, started)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """One attempt without blocking the event loop (no retries), bounded as :meth:`generate`."""
        started = self._started(request)
        bound = Bound.start(self.timeout, self.connect_timeout)
        token = ATTEMPT_DEADLINE.set(bound.until)
        try:
            answer = await asyncio.wait_for(
                self._aexchange(request, bound), bound.left() + _ASYNC_GRACE
            )
        except (httpx.RequestError, TweetGenError, asyncio.TimeoutError) as error:
            raise self._failed(error, started, bound) from error
        finally:
            ATTEMPT_DEADLINE.reset(token)
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
