"""The OpenAI chat-completions wire format, spoken by OpenAI, Ollama, vLLM, LM Studio and llama.cpp.

Decisions where the servers or the error tree leave room:

- **408 and 409 are** :class:`ServerError` (retried, ``status_code`` kept): both are the server's
  transient refusal (request timeout, lock conflict), and the openai SDK retries both. A 408 is not
  a :class:`RequestTimeoutError`, which means *our* timeout fired with no HTTP answer.
- **429 with** ``insufficient_quota`` is still a :class:`RateLimitError` but says "quota exhausted",
  drops any wait hint (waiting will not help) and has ``retryable = False`` on the instance.
- Error bodies: OpenAI's ``{"error": {"message", "type", "code", "param"}}``, Ollama's
  ``{"error": "text"}``, vLLM's flat ``{"object": "error", "message", ...}``, FastAPI's
  ``{"detail": "text"}``, or not JSON at all (the reason phrase stands in).
- ``n`` is sent only when more than one choice is wanted (llama.cpp and Ollama ignore or refuse it).
- Choices whose ``finish_reason`` is ``content_filter`` are dropped even with partial text.
- ``Usage.output_tokens`` excludes reasoning tokens (``thought_tokens``), as Gemini's count does.
- The token limit goes in ``max_tokens`` (what every local server reads); OpenAI's reasoning models
  want ``max_completion_tokens`` instead: pass ``max_tokens_field="max_completion_tokens"``.
- ``reasoning_effort`` is sent only for a thinking level the caller set (``--thinking``,
  ``TWEETGEN_THINKING``, ``thinking=``), never by default: models without reasoning (and many local
  servers) refuse the field. ``off`` is ``minimal``, ``auto`` sends nothing.
- ``service_tier`` (``flex``, ``priority``) only when asked for; standard sends nothing.
- Structured output (``response_format`` ``json_schema``, an object holding a ``tweets`` array) only
  with ``structured_output=True``: not every compatible server accepts it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_OPENAI_BASE_URL, Secret
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentBlockedError,
    EmptyResponseError,
    InvalidResponseError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    TweetGenError,
    clip,
)
from ..hints import parse_retry_after
from ..logs import preview
from ._http import HTTPProvider, json_object, server_text, token_count
from .base import GenerationRequest, GenerationResult, Usage

__all__ = [
    "MAX_TOKENS_FIELDS",
    "OpenAIProvider",
    "build_body",
    "error_from_response",
    "parse_response",
]

MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")
_RETRIED_4XX = frozenset({408, 409})
_BLOCKED = "content_filter"
#: a thinking level's ``reasoning_effort`` (``auto``: none sent)
_EFFORTS = {"off": "minimal", "low": "low", "medium": "medium", "high": "high"}


def build_body(
    request: GenerationRequest, *, model: str, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """The JSON body of a ``chat/completions`` call (optional fields only when set)."""
    messages = [{"role": "user", "content": request.prompt}]
    if request.system_instruction:
        messages.insert(0, {"role": "system", "content": request.system_instruction})
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        max_tokens_field: request.max_output_tokens,
    }
    if request.candidate_count != 1:
        body["n"] = request.candidate_count
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.seed is not None:
        body["seed"] = request.seed
    if request.thinking in _EFFORTS:
        body["reasoning_effort"] = _EFFORTS[request.thinking]
    if request.service_tier in ("flex", "priority"):
        body["service_tier"] = request.service_tier
    if request.json_items:
        body["response_format"] = _response_format(request.json_items)
    return body


def _response_format(items: int) -> dict[str, Any]:
    """A JSON schema answer: ``{"tweets": [...]}`` (OpenAI wants an object at the root)."""
    tweets = {"type": "array", "items": {"type": "string"}, "minItems": items, "maxItems": items}
    schema = {
        "type": "object",
        "properties": {"tweets": tweets},
        "required": ["tweets"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "tweets", "schema": schema}}


def _count(data: object, key: str) -> int:
    return token_count(data.get(key, 0) if isinstance(data, Mapping) else 0)


def _usage(data: Mapping[str, Any]) -> Usage:
    usage = data.get("usage")
    details = usage.get("completion_tokens_details") if isinstance(usage, Mapping) else None
    reasoning = _count(details, "reasoning_tokens")
    completion = _count(usage, "completion_tokens")
    return Usage(
        input_tokens=_count(usage, "prompt_tokens"),
        output_tokens=max(0, completion - reasoning),
        thought_tokens=reasoning,
        total_tokens=_count(usage, "total_tokens"),
    )


def _message_text(message: object) -> str:
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return ""
    texts = [
        p["text"]
        for p in content
        if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
    ]
    return "".join(texts).strip()


@dataclass(frozen=True)
class _Choice:
    text: str
    reason: str
    refusal: str | None


def _choice(choice: Mapping[str, Any]) -> _Choice:
    message = choice.get("message")
    refusal = message.get("refusal") if isinstance(message, Mapping) else None
    reason = choice.get("finish_reason")
    return _Choice(
        text=_message_text(message),
        reason=clip(reason, 100) if isinstance(reason, str) else "",
        refusal=refusal if isinstance(refusal, str) else None,
    )


def _no_text(choice: _Choice) -> TweetGenError:
    if choice.reason == _BLOCKED:
        return ContentBlockedError(
            f"the answer was blocked by a content filter (finish_reason {_BLOCKED})",
            reason=_BLOCKED,
        )
    if choice.refusal:
        return ContentBlockedError(
            f"the model refused: {preview(choice.refusal)}", reason="refusal"
        )
    hint = (
        "; the output token limit was spent, maybe on reasoning"
        if choice.reason == "length"
        else ""
    )
    return EmptyResponseError(
        f"the model returned no text (finish_reason {choice.reason or 'missing'}){hint}",
        finish_reason=choice.reason or None,
    )


def _choices(data: Mapping[str, Any]) -> list[_Choice]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        said = _error_info(data).message
        raise InvalidResponseError(
            f"response has no choices: {said}" if said else "response has no choices"
        )
    if not all(isinstance(c, Mapping) for c in choices):
        raise InvalidResponseError("response choices are not objects")
    return [_choice(c) for c in choices]


def _text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    return server_text(data.get(key))


def parse_response(
    content: bytes, *, provider: str, model: str, status_code: int = 200
) -> GenerationResult:
    """Parse a successful body into texts and usage; raise blocked, empty or invalid errors."""
    data = json_object(content)
    choices = _choices(data)
    kept = [c for c in choices if c.text and c.reason != _BLOCKED]
    if not kept:
        raise _no_text(choices[0])
    return GenerationResult(
        texts=tuple(c.text for c in kept),
        finish_reasons=tuple(c.reason for c in kept),
        provider=provider,
        model=model,
        usage=_usage(data),
        model_version=_text_or_none(data, "model"),
        response_id=_text_or_none(data, "id"),
        status_code=status_code,
    )


@dataclass(frozen=True)
class _ErrorInfo:
    """What an error body said, whichever server's shape it had; ``found``: the API said it."""

    message: str | None = None
    kind: str | None = None
    code: str | None = None
    param: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    found: bool = False


def _error_info(data: object) -> _ErrorInfo:
    if not isinstance(data, Mapping):
        return _ErrorInfo()
    error = data.get("error")
    if isinstance(error, str):
        return _ErrorInfo(message=error, found=True)
    if isinstance(error, Mapping):
        data = error
    elif isinstance(
        data.get("detail"), str
    ):  # the web framework's, not the API's (FastAPI's "Not Found")
        return _ErrorInfo(message=data["detail"])
    elif not isinstance(data.get("message"), str):
        return _ErrorInfo()
    fields = {
        k: data.get(k) if isinstance(data.get(k), str) else None
        for k in ("message", "type", "code", "param")
    }
    return _ErrorInfo(
        message=fields["message"],
        kind=fields["type"],
        code=fields["code"],
        param=fields["param"],
        details=[dict(data)],
        found=True,
    )


def _error_body(content: bytes) -> _ErrorInfo:
    try:
        return _error_info(json.loads(content))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _ErrorInfo()


def _not_found(message: str, info: _ErrorInfo, model: str, base_url: str) -> str:
    setting = "set TWEETGEN_OPENAI_MODEL to a model this server serves"
    if info.found:
        return (
            f"model {model!r} was not found at {base_url}: {message} "
            f"({setting}; GET {base_url}/models lists them)"
        )
    return (
        f"model {model!r} or its URL was not found: {message} from {base_url}/chat/completions "
        f"(check the base URL, which usually ends in /v1, or {setting})"
    )


def _rate_limited(message: str, info: _ErrorInfo, kwargs: dict[str, Any]) -> RateLimitError:
    if "insufficient_quota" not in (info.code, info.kind):
        return RateLimitError(message, **kwargs)
    error = RateLimitError(
        f"quota exhausted (insufficient_quota), waiting will not help: {message}",
        **{**kwargs, "retry_after": None},
    )
    error.retryable = False
    return error


def error_from_response(
    response: httpx.Response, *, model: str, base_url: str = DEFAULT_OPENAI_BASE_URL
) -> APIError:
    """Map an HTTP error response onto the error tree (DESIGN.md "Errors"; 408/409 are retried)."""
    code = response.status_code
    info = _error_body(response.content)
    message = clip(info.message or response.reason_phrase or f"HTTP {code}")
    kwargs: dict[str, Any] = {
        "status_code": code,
        "status": info.code or info.kind,
        "details": info.details,
        "retry_after": parse_retry_after(response.headers),
    }
    if code in (401, 403) or info.code == "invalid_api_key":
        return AuthenticationError(
            f"{message} (check OPENAI_API_KEY)" if code == 401 else message, **kwargs
        )
    if code == 429:
        return _rate_limited(message, info, kwargs)
    if code == 404:
        return ModelNotFoundError(_not_found(message, info, model, base_url.rstrip("/")), **kwargs)
    if code >= 500 or code in _RETRIED_4XX:
        return ServerError(message, **kwargs)
    if info.param == "max_tokens":
        message += (
            " (this model wants max_completion_tokens: "
            "pass max_tokens_field='max_completion_tokens')"
        )
    return BadRequestError(message, **kwargs)


class OpenAIProvider(HTTPProvider):
    """One ``chat/completions`` attempt per call, with a bearer key, or none for local servers."""

    base_url_setting = "OPENAI_BASE_URL"

    def __init__(
        self,
        *,
        api_key: Secret | str | None,
        model: str,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        name: str = "openai",
        secret_key: bool = True,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        max_tokens_field: str = "max_tokens",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        structured_output: bool = False,
    ) -> None:
        if max_tokens_field not in MAX_TOKENS_FIELDS:
            raise ConfigurationError(
                f"max_tokens_field must be one of {', '.join(MAX_TOKENS_FIELDS)}"
            )
        self.base_url = base_url.rstrip("/")
        self.max_tokens_field = max_tokens_field
        #: variants and threads asked for as a JSON schema (``response_format``)
        self.structured_output = structured_output
        super().__init__(
            api_key=api_key or None,
            model=model,
            url=f"{self.base_url}/chat/completions",
            timeout=timeout,
            connect_timeout=connect_timeout,
            name=name,
            secret_key=secret_key,
            transport=transport,
            async_transport=async_transport,
            max_response_bytes=max_response_bytes,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._key is not None and self._key.reveal():
            headers["authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The ``chat/completions`` body (see the module function)."""
        return build_body(request, model=self.model, max_tokens_field=self.max_tokens_field)

    def parse_response(self, content: bytes, *, status_code: int) -> GenerationResult:
        """Parse a ``chat/completions`` answer (see the module function)."""
        return parse_response(
            content, provider=self.name, model=self.model, status_code=status_code
        )

    def error_from_response(self, response: httpx.Response) -> APIError:
        """Map an OpenAI-compatible error response (see the module function)."""
        return error_from_response(response, model=self.model, base_url=self.base_url)
