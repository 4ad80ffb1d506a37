"""The Gemini REST wire format (``generateContent``) and one-attempt sync/async clients over httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from ..config import DEFAULT_API_VERSION, DEFAULT_BASE_URL, Secret
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentBlockedError,
    EmptyResponseError,
    InvalidResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TweetGenError,
)
from ..logs import get_logger, preview, register_secret
from ..retry import parse_duration, parse_retry_after
from .base import GenerationRequest, GenerationResult, Usage

__all__ = ["GeminiProvider", "build_body", "error_from_response", "parse_response"]

_log = get_logger()
BLOCKING_FINISH_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"})
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def build_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON body of a ``generateContent`` call (camelCase, optional fields only when set)."""
    config: dict[str, Any] = {"maxOutputTokens": request.max_output_tokens, "candidateCount": request.candidate_count}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.seed is not None:
        config["seed"] = request.seed
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
        "generationConfig": config,
    }
    if request.system_instruction:
        body["systemInstruction"] = {"parts": [{"text": request.system_instruction}]}
    return body


def _candidate_text(candidate: Mapping[str, Any]) -> str:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    if not isinstance(parts, list):
        return ""
    texts = [
        p["text"] for p in parts if isinstance(p, Mapping) and isinstance(p.get("text"), str) and not p.get("thought")
    ]
    return "".join(texts).strip()


def _usage(data: Mapping[str, Any]) -> Usage:
    meta = data.get("usageMetadata") or {}
    if not isinstance(meta, Mapping):
        return Usage()

    def count(key: str) -> int:
        value = meta.get(key, 0)
        return value if isinstance(value, int) else 0

    return Usage(
        input_tokens=count("promptTokenCount"),
        output_tokens=count("candidatesTokenCount"),
        thought_tokens=count("thoughtsTokenCount"),
        total_tokens=count("totalTokenCount"),
    )


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        snippet = content[:80].decode("utf-8", "replace").strip()
        raise InvalidResponseError(f"response is not JSON: {snippet!r}") from None
    if not isinstance(data, dict):
        raise InvalidResponseError(f"response is JSON but not an object: {type(data).__name__}")
    return data


def parse_response(content: bytes, *, provider: str, model: str, status_code: int = 200) -> GenerationResult:
    """Parse a successful body into texts and usage; raise blocked, empty or invalid-response errors."""
    data = _json_object(content)
    feedback = data.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
    candidates = data.get("candidates")
    if block:
        raise ContentBlockedError(f"the prompt was blocked by Gemini's safety filters ({block})", reason=str(block))
    if not isinstance(candidates, list) or not candidates:
        raise InvalidResponseError("response has no candidates and no block reason")
    if not all(isinstance(c, Mapping) for c in candidates):
        raise InvalidResponseError("response candidates are not objects")
    texts = tuple(_candidate_text(c) for c in candidates)
    reasons = tuple(str(c.get("finishReason") or "") for c in candidates)
    kept = tuple((t, r) for t, r in zip(texts, reasons, strict=True) if t and r not in BLOCKING_FINISH_REASONS)
    if not kept:
        reason = reasons[0]
        if reason in BLOCKING_FINISH_REASONS:
            raise ContentBlockedError(f"the answer was blocked by Gemini (finishReason {reason})", reason=reason)
        hint = "; the output token limit was spent, maybe on thinking" if reason == "MAX_TOKENS" else ""
        raise EmptyResponseError(
            f"the model returned no text (finishReason {reason or 'missing'}){hint}", finish_reason=reason or None
        )
    return GenerationResult(
        texts=tuple(t for t, _ in kept),
        finish_reasons=tuple(r for _, r in kept),
        provider=provider,
        model=model,
        usage=_usage(data),
        model_version=data.get("modelVersion") if isinstance(data.get("modelVersion"), str) else None,
        response_id=data.get("responseId") if isinstance(data.get("responseId"), str) else None,
        status_code=status_code,
    )


def _error_fields(content: bytes) -> tuple[str | None, str | None, list[Any]]:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None, []
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, []
    details = error.get("details")
    message = error.get("message")
    status = error.get("status")
    return (
        message if isinstance(message, str) else None,
        status if isinstance(status, str) else None,
        [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
    )


def _detail(details: list[Any], type_url: str) -> dict[str, Any]:
    return next((d for d in details if d.get("@type") == type_url), {})


def error_from_response(response: httpx.Response, *, model: str, api_version: str = DEFAULT_API_VERSION) -> APIError:
    """Map an HTTP error response onto the error tree (DESIGN.md "Errors")."""
    code = response.status_code
    message, status, details = _error_fields(response.content)
    message = message or response.reason_phrase or f"HTTP {code}"
    hints = [parse_retry_after(response.headers), parse_duration(_detail(details, _RETRY_INFO).get("retryDelay"))]
    found = [h for h in hints if h is not None]
    kwargs: dict[str, Any] = {
        "status_code": code,
        "status": status,
        "details": details,
        "retry_after": max(found) if found else None,
    }
    if code in (401, 403) or _detail(details, _ERROR_INFO).get("reason") == "API_KEY_INVALID":
        return AuthenticationError(
            f"{message} (check GEMINI_API_KEY / GOOGLE_API_KEY)" if code == 400 else message, **kwargs
        )
    if code == 429:
        return RateLimitError(message, **kwargs)
    if code == 404:
        return ModelNotFoundError(
            f"model {model!r} was not found for API version {api_version}: {message} "
            "(set TWEETGEN_MODEL or --model to a current model such as gemini-flash-latest)",
            **kwargs,
        )
    if code >= 500:
        return ServerError(message, **kwargs)
    return BadRequestError(message, **kwargs)


def _transport_error(error: httpx.TransportError) -> NetworkError:
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeoutError(f"request timed out ({type(error).__name__}): {reason}")
    return NetworkError(f"network error ({type(error).__name__}): {reason}")


class GeminiProvider:
    """One ``generateContent`` attempt per call; one reused httpx client (sync) and one async client."""

    def __init__(
        self,
        *,
        api_key: Secret | str,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        name: str = "gemini",
        secret_key: bool = True,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        if secret_key:
            register_secret(self._key.reveal())
        self.name = name
        self.model = model
        self.api_version = api_version
        self.url = f"{base_url.rstrip('/')}/{api_version}/models/{model}:generateContent"
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"GeminiProvider(name={self.name!r}, model={self.model!r}, url={self.url!r}, api_key=***)"

    @property
    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._key.reveal(), "content-type": "application/json"}

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, transport=self._transport, headers=self._headers)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                timeout=self._timeout, transport=self._async_transport, headers=self._headers
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
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        try:
            if response.status_code >= 400:
                raise error_from_response(response, model=self.model, api_version=self.api_version)
            result = parse_response(
                response.content, provider=self.name, model=self.model, status_code=response.status_code
            )
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
        return _with_latency(result, latency_ms)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt (no retries)."""
        started = self._started(request)
        try:
            response = self._sync_client().post(self.url, json=build_body(request))
        except httpx.TransportError as error:
            raise _failed(_transport_error(error), started) from error
        return self._finish(response, started)

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt without blocking the event loop (no retries)."""
        started = self._started(request)
        try:
            response = await self._async_client().post(self.url, json=build_body(request))
        except httpx.TransportError as error:
            raise _failed(_transport_error(error), started) from error
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


def _failed(error: TweetGenError, started: float) -> TweetGenError:
    error.latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return error


def _with_latency(result: GenerationResult, latency_ms: float) -> GenerationResult:
    return replace(result, latency_ms=latency_ms)
