"""What the generator concludes about a call's candidates: a key-leaking text is never valid, the
error when none passed, and the call's cost so far."""

from __future__ import annotations

from dataclasses import replace

from .errors import TweetValidationError
from .logs import contains_secret, redact_text
from .trace import CallTrace
from .tweets import TweetCheck

__all__ = ["call_cost", "no_secret", "no_valid"]


def call_cost(trace: CallTrace) -> float | None:
    """The call's cost so far: every attempt's (None when one is unknown)."""
    costs = [a.cost_usd for a in trace.attempts]
    return None if None in costs else sum(c for c in costs if c is not None)


def no_secret(check: TweetCheck) -> TweetCheck:
    """A tweet that repeats a configured key (a server echoing it) is never valid: it would publish
    the key. Its text is redacted so the key goes nowhere (logs, store, the error's best text)."""
    if not contains_secret(check.text):
        return check
    return replace(
        check, text=redact_text(check.text), reasons=(*check.reasons, "it contains an API key")
    )


def no_valid(best: TweetCheck | None, regenerations: int) -> TweetValidationError:
    reasons = best.reasons if best else ("no candidate came back",)
    return TweetValidationError(
        f"no candidate passed the tweet rules after {regenerations} regeneration(s): "
        f"{'; '.join(reasons)}",
        best=best.text if best else None,
        reasons=reasons,
    )
