"""The time a retried call must end by: set by the retry engine, read by the providers.

A module of its own so that the providers read the deadline without importing the retry engine.
"""

from __future__ import annotations

import contextlib
import contextvars
import time

__all__ = ["call_deadline", "reset_call_deadline", "set_call_deadline"]

#: when (``time.monotonic()``) the retried call in progress must end; set while an attempt runs
_CALL_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tweetgen_call_deadline", default=None
)
Token = contextvars.Token


def call_deadline() -> float | None:
    """The ``time.monotonic()`` by which the retried call in progress must end, else ``None``.

    The hook that lets ``RetryPolicy.deadline`` bound an attempt in flight: the engine sets it
    before each attempt to what the deadline leaves (measured on the engine's clock, so an injected
    clock works too), and the providers end their attempt then, whatever their ``timeout`` allows.
    """
    return _CALL_DEADLINE.get()


def set_call_deadline(left: float) -> Token[float | None]:
    """Bound the next attempt to ``left`` seconds from now (or the outer bound if less)."""
    until, outer = time.monotonic() + left, _CALL_DEADLINE.get()
    return _CALL_DEADLINE.set(until if outer is None else min(until, outer))


def reset_call_deadline(token: Token[float | None]) -> None:
    """Undo :func:`set_call_deadline` (a token of another context is ignored)."""
    with contextlib.suppress(ValueError):  # set in another context
        _CALL_DEADLINE.reset(token)
