"""What every JSON-over-HTTP provider shares: clients, timing, telemetry events and transport errors."""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any

import httpx

from ..config import Secret
from ..errors import APIError, InvalidResponseError, NetworkError, RequestTimeoutError, TweetGenError
from ..logs import get_logger, preview, register_secret
from .base import GenerationRequest, GenerationResult

__all__ = ["HTTPProvider", "json_object", "transport_error"]

_log = get_logger()


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


def transport_error(error: httpx.RequestError) -> TweetGenError:
    """Map an httpx request failure: timeouts, network errors, or a body that cannot be decoded."""
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.DecodingError):
        return InvalidResponseError(f"response body could not be decoded ({type(error).__name__}): {reason}")
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeoutError(f"request timed out ({type(error).__name__}): {reason}")
    return NetworkError(f"network error ({type(error).__name__}): {reason}")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class HTTPProvider(ABC):
    """One POST per attempt over reused httpx clients; subclasses supply the URL and the wire format."""

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
    ) -> None:
        self._key = Secret(api_key) if isinstance(api_key, str) else api_key
        if secret_key and self._key is not None:
            register_secret(self._key.reveal())
        self.name = name
        self.model = model
        self.url = url
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

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            with self._client_lock:  # threads share a provider: one client (and pool), never a leaked extra
                if self._client is None:
                    self._client = httpx.Client(
                        timeout=self._timeout, transport=self._transport, headers=self._headers()
                    )
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                timeout=self._timeout, transport=self._async_transport, headers=self._headers()
            )
        return self._aclient

    def _started(self, request: GenerationRequest) -> float:
        _log.info(
            "Making API request",
            url_endpoint=self.model,
            prompt_length=len(request.prompt),
            prompt_preview=preview(request.prompt),
        )
        return time.perf_counter()

    def _finish(self, response: httpx.Response, started: float) -> GenerationResult:
        latency_ms = _elapsed_ms(started)
        try:
            if response.status_code >= 400:
                raise self.error_from_response(response)
            result = self.parse_response(response.content, status_code=response.status_code)
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

    def _failed(self, error: httpx.RequestError, started: float) -> TweetGenError:
        mapped = transport_error(error)
        mapped.latency_ms = _elapsed_ms(started)
        return mapped

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt (no retries)."""
        started = self._started(request)
        try:
            response = self._sync_client().post(self.url, json=self.build_body(request))
        except httpx.RequestError as error:
            raise self._failed(error, started) from error
        return self._finish(response, started)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt without blocking the event loop (no retries)."""
        started = self._started(request)
        try:
            response = await self._async_client().post(self.url, json=self.build_body(request))
        except httpx.RequestError as error:
            raise self._failed(error, started) from error
        return self._finish(response, started)

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
