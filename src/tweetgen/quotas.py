"""Which quota a 429 names, and when a daily one comes back.

Gemini says which quota refused a request in the body of its ``429 RESOURCE_EXHAUSTED``: a
``google.rpc.QuotaFailure`` whose ``violations[]`` carry ``quotaId``
(``GenerateRequestsPerDayPerProjectPerModel-FreeTier``), ``quotaMetric``
(``generativelanguage.googleapis.com/generate_content_free_tier_requests``), ``quotaDimensions``
(``{"location": "global", "model": "gemini-2.5-flash"}``) and ``quotaValue`` (the limit, ``"250"``),
seen in real bodies quoted in gemini-cli #7203, langchain-google #1445 and python-genai's issues.
A per-day quota's 429 still carries a short ``RetryInfo.retryDelay`` ("33s"): honouring it loops
until the quota resets, at midnight Pacific time (Google's quota documentation), so the kind, not
the hint, decides whether waiting helps.

The kinds (:data:`KINDS`), the words stored with a call and an attempt (``quota_kind``):

- ``per-minute``: requests per minute (or per second): wait the server's hint.
- ``tokens-per-minute``: input tokens per minute: wait the hint, as above.
- ``per-day`` / ``tokens-per-day``: requests (tokens) per day: never retried, a batch stops.
- ``spend-cap``: the project's spend cap is reached: never retried, a batch stops.
- ``prepay-depleted``: the prepaid credits are used up: never retried, a batch stops.
- ``unknown``: a 429 that names no quota this module knows (retried as before).

What is confirmed and what is not:

- QuotaFailure with ``PerDay`` / ``PerMinute`` quota ids: confirmed (real bodies, above).
- Prepaid credits: a real 429 RESOURCE_EXHAUSTED with no details and the message "Your prepayment
  credits are depleted. Please go to AI Studio ... to manage your project and billing" (quoted in
  several public projects' logs): confirmed by message only, so it is matched by message.
- Spend cap: Google documents project spend caps in AI Studio, but no public body of the refusal
  was found: UNCONFIRMED. Matched by words in the message ("spend cap", "spending cap", "spend
  limit") or an ErrorInfo reason naming a spend cap; a body that says neither stays ``unknown``.
- ErrorInfo ``metadata.quota_limit`` (older bodies: ``GenerateContentRequestsPerMinutePerProject
  PerRegion``) is read like a quota id; ``metadata.quotaResetTimeStamp`` (seen on Google's Code
  Assist endpoint, not confirmed on the Gemini API) is taken as the reset time when present.
- A quota whose ``quotaValue`` is ``"0"`` (a model with no free tier) never clears by waiting: it is
  reported as such and not retried (seen in real bodies: "limit: 0").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FINAL_KINDS",
    "KINDS",
    "QUOTA_FAILURE",
    "QuotaInfo",
    "classify",
    "next_pacific_midnight",
    "reset_time",
]

QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

PER_MINUTE, PER_DAY = "per-minute", "per-day"
TOKENS_PER_MINUTE, TOKENS_PER_DAY = "tokens-per-minute", "tokens-per-day"
SPEND_CAP, PREPAY_DEPLETED, UNKNOWN = "spend-cap", "prepay-depleted", "unknown"
KINDS = (
    PER_MINUTE,
    TOKENS_PER_MINUTE,
    PER_DAY,
    TOKENS_PER_DAY,
    SPEND_CAP,
    PREPAY_DEPLETED,
    UNKNOWN,
)
#: kinds no wait of minutes clears: never retried, and a batch stops at once
FINAL_KINDS = frozenset({PER_DAY, TOKENS_PER_DAY, SPEND_CAP, PREPAY_DEPLETED})
#: the most telling kind wins when a body names several quotas
_RANK = {
    k: i
    for i, k in enumerate(
        (
            UNKNOWN,
            PER_MINUTE,
            TOKENS_PER_MINUTE,
            TOKENS_PER_DAY,
            PER_DAY,
            SPEND_CAP,
            PREPAY_DEPLETED,
        )
    )
}

_PREPAY_WORDS = ("prepayment credits are depleted", "prepaid credits", "prepayment credit")
_SPEND_WORDS = ("spend cap", "spending cap", "spend limit", "spending limit")  # UNCONFIRMED
_MAX_VIOLATIONS = 20  # a hostile body may list thousands; the first few say enough

#: the words a message uses for each kind ("the daily request quota")
WORDS = {
    PER_MINUTE: "per-minute request quota",
    TOKENS_PER_MINUTE: "per-minute token quota",
    PER_DAY: "daily request quota",
    TOKENS_PER_DAY: "daily token quota",
}


@dataclass(frozen=True)
class QuotaInfo:
    """What a 429 says of its quota: the kind, the quota's id, its limit, and for a daily quota when
    it resets (UTC)."""

    kind: str
    quota_id: str | None = None
    limit: str | None = None
    resets_at: dt.datetime | None = None

    @property
    def final(self) -> bool:
        """Waiting minutes will not help: a daily quota, a spend cap, no credits, or a zero
        limit."""
        return self.kind in FINAL_KINDS or self.limit == "0"


def _text(value: object, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _kind_of(words: str) -> str | None:
    """The kind a quota id or metric names (``...PerDay...``, ``...InputTokens...PerMinute``)."""
    lowered = words.lower()
    tokens = "token" in lowered
    if "perday" in lowered or "per_day" in lowered or "daily" in lowered:
        return TOKENS_PER_DAY if tokens else PER_DAY
    if "perminute" in lowered or "per_minute" in lowered or "persecond" in lowered:
        return TOKENS_PER_MINUTE if tokens else PER_MINUTE
    return None


def _violations(details: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for detail in details:
        if detail.get("@type") == QUOTA_FAILURE and isinstance(detail.get("violations"), list):
            found.extend(v for v in detail["violations"] if isinstance(v, dict))
    return found[:_MAX_VIOLATIONS]


def _error_info(details: Sequence[Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]]:
    for detail in details:
        if detail.get("@type") == ERROR_INFO:
            metadata = detail.get("metadata")
            reason = _text(detail.get("reason")) or ""
            return reason, metadata if isinstance(metadata, dict) else {}
    return "", {}


def _timestamp(value: object) -> dt.datetime | None:
    text = _text(value, 40)
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(dt.timezone.utc) if when.tzinfo is not None else None


def classify(
    details: Sequence[Mapping[str, Any]],
    message: str | None = None,
    *,
    now: Callable[[], dt.datetime] | None = None,
) -> QuotaInfo:
    """The quota a 429's ``details`` (and, for credits and spend caps, its message) name; the
    reset time of a daily quota from ``now`` (a UTC clock, injectable for tests)."""
    lowered = (message or "").lower()
    reason, metadata = _error_info(details)
    if any(w in lowered for w in _PREPAY_WORDS):
        return QuotaInfo(PREPAY_DEPLETED)
    if any(w in lowered for w in _SPEND_WORDS) or "SPEND" in reason.upper():
        return QuotaInfo(SPEND_CAP)
    candidates = [
        QuotaInfo(
            _kind_of(_text(v.get("quotaId")) or "")
            or _kind_of(_text(v.get("quotaMetric")) or "")
            or UNKNOWN,
            _text(v.get("quotaId")),
            _text(v.get("quotaValue"), 40),
        )
        for v in _violations(details)
    ]
    # the most telling kind wins (the first of equals)
    best = max(candidates, key=lambda c: _RANK[c.kind]) if candidates else QuotaInfo(UNKNOWN)
    if best.kind == UNKNOWN and (limit_id := _text(metadata.get("quota_limit"))):
        best = QuotaInfo(_kind_of(limit_id) or UNKNOWN, limit_id, _text(metadata.get("limit")))
    if best.kind in (PER_DAY, TOKENS_PER_DAY):
        given = _timestamp(metadata.get("quotaResetTimeStamp"))
        clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
        resets = given or next_pacific_midnight(clock())
        best = QuotaInfo(best.kind, best.quota_id, best.limit, resets)
    return best


def _pacific() -> dt.tzinfo:
    """America/Los_Angeles from the system's time zone database (or the tzdata package); without
    either, US Pacific rules computed here (PST -8, PDT -7 from the second Sunday of March to the
    first Sunday of November, 2 a.m. local)."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/Los_Angeles")
    except Exception:  # ZoneInfoNotFoundError, or no tz database on this machine
        return _UsPacific()


class _UsPacific(dt.tzinfo):
    """US Pacific time by the rules in force since 2007 (a fallback without a tz database)."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=-8) + self.dst(when)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        if when is None:
            return dt.timedelta(0)
        start = _nth_sunday(when.year, 3, 2).replace(hour=2)
        end = _nth_sunday(when.year, 11, 1).replace(hour=1)
        naive = when.replace(tzinfo=None)
        return dt.timedelta(hours=1) if start <= naive < end else dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "PDT" if self.dst(when) else "PST"


def _nth_sunday(year: int, month: int, n: int) -> dt.datetime:
    first = dt.datetime(year, month, 1)
    return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def next_pacific_midnight(now: dt.datetime) -> dt.datetime:
    """The next midnight in America/Los_Angeles after ``now`` (aware, or naive UTC), in UTC: when
    Gemini's daily quotas reset."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    zone = _pacific()
    local = now.astimezone(zone)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return midnight.astimezone(dt.timezone.utc)


def reset_time(when: dt.datetime | None) -> str:
    """``"08:00 UTC"``: a reset time as a message shows it."""
    if when is None:
        return "midnight Pacific time"
    when = when.astimezone(dt.timezone.utc)
    return f"{when:%H:%M} UTC"
