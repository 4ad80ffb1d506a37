"""Service tiers: the tier a call asks for, and a shed flex call asked again at standard.

Gemini's Flex tier (``serviceTier: FLEX``) costs half and is *sheddable*: when it has no room the
API refuses the call. Google documents no error of its own for that; what a shed call gets is the
overload answer, ``503 UNAVAILABLE``, or ``429 RESOURCE_EXHAUSTED`` without a ``QuotaFailure``
naming one of the project's quotas (a named quota is the caller's limit, which standard shares, not
a shed). Either one, on a flex call, is asked again at once at the standard tier (unless
``flex_fallback`` is off), inside the same attempt, and logged as ``Flex request shed``. The tier
that answered is set on the result: the API's own word (the ``x-gemini-service-tier`` header) when
it says, else the tier that was asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from . import events
from .errors import RateLimitError, ServerError
from .providers.base import GenerationRequest, GenerationResult

__all__ = ["TIERS", "acall_at_tier", "call_at_tier", "check_tier", "is_shed"]

TIERS = ("standard", "flex", "priority")
#: quota kinds of a 429 that are not a named quota of the project (so may be a shed flex call)
_UNNAMED = (None, "unknown")


def check_tier(value: object, where: str) -> str | None:
    """Why ``value`` is not a service tier (a sentence naming ``where``), or ``None``."""
    if value is None or value in TIERS:
        return None
    return f"the service tier{where} must be one of {', '.join(TIERS)}, got {value!r}"


def is_shed(error: BaseException) -> bool:
    """Whether a flex call's error is Flex shedding it (503, or a 429 naming no quota)."""
    if isinstance(error, RateLimitError):
        return getattr(error, "quota_kind", None) in _UNNAMED
    return isinstance(error, ServerError) and getattr(error, "status_code", None) == 503


def _said(result: GenerationResult, tier: str) -> GenerationResult:
    return result if result.service_tier else replace(result, service_tier=tier)


def _standard(request: GenerationRequest, error: Exception) -> GenerationRequest:
    events.flex_shed(error)
    return replace(request, service_tier=None)


def call_at_tier(
    generate: Callable[[GenerationRequest], GenerationResult],
    request: GenerationRequest,
    fallback: bool,
) -> Callable[[], GenerationResult]:
    """One attempt at the request's tier; a shed flex call asked again at standard."""
    tier = request.service_tier or "standard"

    def attempt() -> GenerationResult:
        try:
            return _said(generate(request), tier)
        except (RateLimitError, ServerError) as error:
            if not (fallback and tier == "flex" and is_shed(error)):
                raise
            return _said(generate(_standard(request, error)), "standard")

    return attempt


def acall_at_tier(
    agenerate: Callable[[GenerationRequest], Awaitable[GenerationResult]],
    request: GenerationRequest,
    fallback: bool,
) -> Callable[[], Awaitable[GenerationResult]]:
    """The async twin of :func:`call_at_tier`."""
    tier = request.service_tier or "standard"

    async def attempt() -> GenerationResult:
        try:
            return _said(await agenerate(request), tier)
        except (RateLimitError, ServerError) as error:
            if not (fallback and tier == "flex" and is_shed(error)):
                raise
            return _said(await agenerate(_standard(request, error)), "standard")

    return attempt
