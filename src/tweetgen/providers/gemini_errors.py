"""Gemini's error answers mapped onto the error tree (DESIGN.md "Errors"): status, message and the
``google.rpc`` details (RetryInfo, ErrorInfo, QuotaFailure)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ..config import DEFAULT_API_VERSION
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    clip,
)
from ..hints import parse_duration, parse_retry_after

__all__ = ["error_from_response"]

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


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


def error_from_response(
    response: httpx.Response, *, model: str, api_version: str = DEFAULT_API_VERSION
) -> APIError:
    """Map an HTTP error response onto the error tree (DESIGN.md "Errors")."""
    code = response.status_code
    message, status, details = _error_fields(response.content)
    message = clip(message or response.reason_phrase or f"HTTP {code}")
    hints = [
        parse_retry_after(response.headers),
        parse_duration(_detail(details, _RETRY_INFO).get("retryDelay")),
    ]
    found = [h for h in hints if h is not None]
    kwargs: dict[str, Any] = {
        "status_code": code,
        "status": status,
        "details": details,
        "retry_after": max(found) if found else None,
    }
    if code in (401, 403) or _detail(details, _ERROR_INFO).get("reason") == "API_KEY_INVALID":
        return AuthenticationError(
            f"{message} (check GEMINI_API_KEY / GOOGLE_API_KEY)" if code == 400 else message,
            **kwargs,
        )
    if code == 429:
        return RateLimitError(message, **kwargs)
    if code == 404:
        return ModelNotFoundError(
            f"model {model!r} was not found for API version {api_version}: {message} "
            f"(set TWEETGEN_MODEL or --model to a current model{_suggestion(model)})",
            **kwargs,
        )
    if (
        code >= 500 or code == 408
    ):  # 408: the server gave up waiting; as transient as a 504 (both providers)
        return ServerError(message, **kwargs)
    return BadRequestError(message, **kwargs)


def _suggestion(model: str) -> str:
    """A model to try instead of one that was not found (never the one that just failed)."""
    for alias in ("gemini-flash-latest", "gemini-pro-latest"):
        if model != alias:
            return f" such as {alias}"
    return ""  # pragma: no cover - both aliases cannot have failed at once
