"""A server's "wait this long" hints, parsed defensively: ``Retry-After`` headers and Durations.

Hints come from the server, so negative, NaN, infinite or unparsable values are no hint at all, and
anything longer than :data:`MAX_HINT` (a day) counts as a day, so no ``Retry-After: 1000000000``,
``"1e400s"`` or date in the year 9999 can overflow a sleep or a clock.

The providers read hints here; the retry engine (:mod:`tweetgen.backoff`) only decides with them.
This module imports neither httpx nor the engine.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping

__all__ = ["MAX_HINT", "parse_duration", "parse_retry_after"]

#: the longest server hint kept, in seconds: a longer one means "not today", and is capped here so
#: that no later sum or sleep can overflow (``max_retry_after`` still decides if it is honoured)
MAX_HINT = 86_400.0

_DURATION = re.compile(r"^\s*(\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})\s*s\s*$")
#: the email parser's ways to say "no date"
_NO_DATE = (TypeError, ValueError, OverflowError, IndexError, OSError)


def _hint(seconds: float) -> float | None:
    """A wait in seconds, kept when it is a finite number >= 0, capped at :data:`MAX_HINT`."""
    return min(seconds, MAX_HINT) if math.isfinite(seconds) and seconds >= 0 else None


def parse_duration(value: object) -> float | None:
    """Seconds of a protobuf Duration string such as ``"26s"`` or ``"1.5s"``; ``None`` if not one.

    At most 30 digits either side of the point (longer is not a duration but an attack on the
    parser); capped at :data:`MAX_HINT`.
    """
    match = _DURATION.match(value) if isinstance(value, str) and len(value) <= 100 else None
    return _hint(float(match.group(1))) if match else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), else ``None``.

    Negative, NaN, infinite or unparsable values are ignored; long waits are capped at
    :data:`MAX_HINT`.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = _number(lowered.get("retry-after-ms"))
    hint = _hint(ms / 1000) if ms is not None else None
    if hint is not None:
        return hint
    raw = lowered.get("retry-after")
    if raw is None or len(raw) > 100:  # an HTTP date is 29 characters; longer is no hint
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _hint(seconds)
    try:
        when = email.utils.parsedate_to_datetime(raw)
        current = time.time() if now is None else now
        return _hint(max(0.0, when.timestamp() - current))
    except _NO_DATE:
        return None


def _number(raw: str | None) -> float | None:
    """``raw`` as a float, or ``None`` (not a number, or absurdly long)."""
    if raw is None or len(raw) > 100:
        return None
    try:
        return float(raw)
    except ValueError:
        return None
