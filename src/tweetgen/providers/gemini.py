"""The Gemini REST wire format (``generateContent``) and one-attempt sync/async httpx clients."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

import httpx

from ..config import DEFAULT_API_VERSION, DEFAULT_BASE_URL, DEFAULT_MAX_RESPONSE_BYTES, Secret
from ..errors import (
    APIError,
    ContentBlockedError,
    EmptyResponseError,
    InvalidResponseError,
    clip,
)
from ..thinking import DEFAULT_THINKING, ThoughtsExhaustedError, output_room, thinking_config
from ._body import Answer
from ._http import HTTPProvider, json_object, server_text, token_count
from .base import GenerationRequest, GenerationResult, Usage
from .gemini_errors import error_from_response

__all__ = [
    "SERVICE_TIERS",
    "TIER_HEADER",
    "GeminiProvider",
    "build_body",
    "error_from_response",
    "json_schema",
    "parse_response",
]

BLOCKING_FINISH_REASONS = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}
)


#: the request's ``serviceTier`` for each tier asked for (standard: the field is left out); the
#: REST reference's example sends the enum's name, ``"FLEX"``
SERVICE_TIERS = {"flex": "FLEX", "priority": "PRIORITY"}
#: the response header that names the tier which answered (``x-gemini-service-tier: standard``)
TIER_HEADER = "x-gemini-service-tier"
_SAID_TIER: contextvars.ContextVar[str | None] = contextvars.ContextVar("tier", default=None)


def json_schema(items: int) -> dict[str, Any]:
    """The ``responseJsonSchema`` of an answer that is exactly ``items`` tweets."""
    return {
        "type": "array",
        "items": {"type": "string"},
        "minItems": items,
        "maxItems": items,
    }


def build_body(request: GenerationRequest, *, model: str | None = None) -> dict[str, Any]:
    """The JSON body of a ``generateContent`` call (camelCase, optional fields only when set).

    With ``model``, the thinking level (the request's, else :data:`DEFAULT_THINKING`) becomes
    that model family's ``thinkingConfig`` (:mod:`tweetgen.thinking`)."""
    config: dict[str, Any] = {
        "maxOutputTokens": request.max_output_tokens,
        "candidateCount": request.candidate_count,
    }
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.seed is not None:
        config["seed"] = request.seed
    if model is not None:
        level = request.thinking or DEFAULT_THINKING
        thinking = thinking_config(model, level)
        if thinking is not None:
            config["thinkingConfig"] = thinking
            config["maxOutputTokens"] = output_room(model, level, request.max_output_tokens)
    if request.json_items:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = json_schema(request.json_items)
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
        "generationConfig": config,
    }
    if request.system_instruction:
        body["systemInstruction"] = {"parts": [{"text": request.system_instruction}]}
    if request.service_tier in SERVICE_TIERS:
        body["serviceTier"] = SERVICE_TIERS[request.service_tier]
    return body


# JSON objects are dicts: the checks below are ``isinstance(..., dict)`` (an ABC check costs more)


def _candidate_text(candidate: Mapping[str, Any]) -> str:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    texts = [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]
    return "".join(texts).strip()


def _usage(data: Mapping[str, Any]) -> Usage:
    meta = data.get("usageMetadata") or {}
    if not isinstance(meta, dict):
        return Usage()

    return Usage(
        input_tokens=token_count(meta.get("promptTokenCount")),
        output_tokens=token_count(meta.get("candidatesTokenCount")),
        thought_tokens=token_count(meta.get("thoughtsTokenCount")),
        total_tokens=token_count(meta.get("totalTokenCount")),
    )


def parse_response(
    content: bytes, *, provider: str, model: str, status_code: int = 200
) -> GenerationResult:
    """Parse a successful body into texts and usage; raise blocked, empty or invalid errors."""
    data = json_object(content)
    feedback = data.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = data.get("candidates")
    if block:
        block = clip(str(block), 100)
        raise ContentBlockedError(
            f"the prompt was blocked by Gemini's safety filters ({block})", reason=block
        )
    if not isinstance(candidates, list) or not candidates:
        raise InvalidResponseError("response has no candidates and no block reason")
    if not all(isinstance(c, dict) for c in candidates):
        raise InvalidResponseError("response candidates are not objects")
    texts = [_candidate_text(c) for c in candidates]
    reasons = [clip(str(c.get("finishReason") or ""), 100) for c in candidates]
    kept = [
        (t, r)
        for t, r in zip(texts, reasons, strict=True)
        if t and r not in BLOCKING_FINISH_REASONS
    ]
    if not kept:
        reason = reasons[0]
        if reason in BLOCKING_FINISH_REASONS:
            raise ContentBlockedError(
                f"the answer was blocked by Gemini (finishReason {reason})", reason=reason
            )
        hint = (
            "; the output token limit was spent, maybe on thinking"
            if reason == "MAX_TOKENS"
            else ""
        )
        usage = _usage(data)
        if reason == "MAX_TOKENS" and usage.thought_tokens > 0:
            raise ThoughtsExhaustedError(
                f"the model spent its output tokens on thinking ({usage.thought_tokens} thought "
                "tokens) and wrote no text (finishReason MAX_TOKENS)",
                thought_tokens=usage.thought_tokens,
                usage=usage,
            )
        raise EmptyResponseError(
            f"the model returned no text (finishReason {reason or 'missing'}){hint}",
            finish_reason=reason or None,
        )
    return GenerationResult(
        texts=tuple(t for t, _ in kept),
        finish_reasons=tuple(r for _, r in kept),
        provider=provider,
        model=model,
        usage=_usage(data),
        model_version=server_text(data.get("modelVersion")),
        response_id=server_text(data.get("responseId")),
        status_code=status_code,
        service_tier=_SAID_TIER.get(),
    )


class GeminiProvider(HTTPProvider):
    """One ``generateContent`` attempt per call; one reused httpx client, sync and async."""

    _key: Secret
    base_url_setting = "GEMINI_BASE_URL"
    #: variants and threads are asked for as a JSON array (``responseJsonSchema``)
    structured_output = True

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__(
            api_key=api_key,
            model=model,
            url=f"{base_url.rstrip('/')}/{api_version}/models/{model}:generateContent",
            timeout=timeout,
            connect_timeout=connect_timeout,
            name=name,
            secret_key=secret_key,
            transport=transport,
            async_transport=async_transport,
            max_response_bytes=max_response_bytes,
        )
        self.api_version = api_version
        self._tiered = False  # a service tier was asked for: read the tier header of answers

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._key.reveal(), "content-type": "application/json"}

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The ``generateContent`` body (see the module function)."""
        if request.service_tier is not None:
            self._tiered = True
        return build_body(request, model=self.model)

    def _finish(self, answer: Answer, started: float) -> GenerationResult:
        """The answer, its service tier read from the response header once a tier was asked for
        (no header lookup on the other calls)."""
        if not self._tiered:
            return super()._finish(answer, started)
        said = answer.response.headers.get(TIER_HEADER)
        token = _SAID_TIER.set(said.strip().lower()[:20] if said else None)
        try:
            return super()._finish(answer, started)
        finally:
            _SAID_TIER.reset(token)

    def parse_response(self, content: bytes, *, status_code: int) -> GenerationResult:
        """Parse a ``generateContent`` answer (see the module function)."""
        return parse_response(
            content, provider=self.name, model=self.model, status_code=status_code
        )

    def error_from_response(self, response: httpx.Response) -> APIError:
        """Map a Gemini error response (see the module function)."""
        return error_from_response(response, model=self.model, api_version=self.api_version)
