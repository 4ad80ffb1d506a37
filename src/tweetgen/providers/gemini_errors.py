"""Gemini's error answers mapped onto the error tree (DESIGN.md "Errors"): status, message and the
``google.rpc`` details (RetryInfo, ErrorInfo, QuotaFailure)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
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
from ..quotas import PER_DAY, PREPAY_DEPLETED, SPEND_CAP, WORDS, QuotaInfo, classify, reset_time

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
    response: httpx.Response,
    *,
    model: str,
    api_version: str = DEFAULT_API_VERSION,
    now: Callable[[], dt.datetime] | None = None,
) -> APIError:
    """Map an HTTP error response onto the error tree (DESIGN.md "Errors"); ``now``: the UTC clock
    a daily quota's reset time is computed from (tests inject it)."""
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
        return _rate_limited(message, details, kwargs, model, now)
    if code == 404:
        return ModelNotFoundError(_not_found(message, details, model, api_version), **kwargs)
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


def _rate_limited(
    message: str,
    details: list[Any],
    kwargs: dict[str, Any],
    model: str,
    now: Callable[[], dt.datetime] | None,
) -> RateLimitError:
    """A 429 with the kind of quota it names; a quota no wait of minutes clears is not retried
    and keeps no wait hint (its RetryInfo says "33s" even when the quota is a daily one)."""
    info = classify(details, message, now=now)
    extra: dict[str, Any] = {
        "quota_kind": info.kind,
        "quota_id": info.quota_id,
        "resets_at": info.resets_at,
    }
    if not info.final:
        return RateLimitError(message, **extra, **kwargs)
    error = RateLimitError(
        _final_message(info, model, message), **extra, **{**kwargs, "retry_after": None}
    )
    error.retryable = False
    return error


def _final_message(info: QuotaInfo, model: str, message: str) -> str:
    named = f" ({info.quota_id})" if info.quota_id else ""
    if info.kind == PREPAY_DEPLETED:
        return (
            f"the project's prepaid credits are used up, so {model} cannot be called: {message} "
            "(add credits in Google AI Studio; waiting will not help)"
        )
    if info.kind == SPEND_CAP:
        return (
            f"the project's spend cap is reached, so {model} cannot be called: {message} "
            "(raise the cap in Google AI Studio; waiting will not help)"
        )
    words = WORDS.get(info.kind, "quota")
    if info.kind not in (PER_DAY, "tokens-per-day"):  # a limit of 0: no free tier for it
        return (
            f"the {words} for {model} is 0 on this project{named}: waiting will not help (enable "
            "billing, or set TWEETGEN_MODEL or --model to a model your tier can use)"
        )
    return (
        f"the {words} for {model} is spent{named}; it resets at {reset_time(info.resets_at)} "
        "(midnight Pacific time); waiting minutes will not help"
    )


#: "Please use gemini-3.5-flash instead", "switch to models/gemini-3.5-flash", "migrate to ..."
_REPLACEMENT = re.compile(
    r"\b(?:use|switch to|migrate to|move to|upgrade to)\s+(?:models/)?"
    r"(?P<model>[a-z][a-z0-9]*(?:[.-][a-z0-9]+)+)",
    re.IGNORECASE,
)


def replacement(message: str, details: list[Any]) -> str | None:
    """The model a 404 names as the replacement of a retired one, if it names one: in its message
    ("... is no longer available. Please use gemini-3.5-flash instead.") or an ErrorInfo's
    metadata (a key with "replacement" in its name; UNCONFIRMED: no real body seen with one)."""
    for detail in details:
        metadata = detail.get("metadata") if detail.get("@type") == _ERROR_INFO else None
        for key, value in (metadata or {}).items() if isinstance(metadata, dict) else ():
            if "replacement" in str(key).lower() and isinstance(value, str) and value:
                return value.removeprefix("models/")[:100]
    match = _REPLACEMENT.search(message)
    return match.group("model")[:100] if match else None


def _not_found(message: str, details: list[Any], model: str, api_version: str) -> str:
    """A 404's message: which model, and what to use instead (the API's replacement when it names
    one, else an alias), and where the list is."""
    better = replacement(message, details)
    retired = "no longer available" in message.lower()
    what = "is no longer available" if retired else "was not found"
    if better is not None and better != model:
        advice = f"use {better} instead: set TWEETGEN_MODEL or --model to {better}"
    else:
        advice = f"set TWEETGEN_MODEL or --model to a current model{_suggestion(model)}"
    return (
        f"model {model!r} {what} for API version {api_version}: {message} ({advice}; "
        "`tweetgen models` lists the models your key can use)"
    )
