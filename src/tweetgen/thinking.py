"""How much a model may think before it writes: one level (``off`` ... ``high``, ``auto``) mapped to
each model family's own field, and what to do when the thoughts spent every output token.

Gemini 2.5 takes ``generationConfig.thinkingConfig.thinkingBudget`` (tokens; ``-1``: dynamic);
Gemini 3 and the ``*-latest`` aliases take ``thinkingLevel`` (``minimal``, ``low``, ``medium``,
``high``). Never both: the API refuses that with a 400. A model of neither family (Gemini 2.0,
Gemma, a test name) gets no thinking field at all.

Budgets for the 2.5 family, chosen for a tweet (an answer of ~40 tokens):

- ``off``: 0, except 2.5 Pro, which cannot stop thinking: its minimum, 128.
- ``low``: 512, the smallest budget 2.5 Flash-Lite accepts when it thinks at all; a tweet's plan
  fits in it with room to spare, and it is half of the 1,024 output tokens tweetgen asks for.
- ``medium``: 2,048 and ``high``: 8,192 (2.5 Flash stops at 24,576, Pro at 32,768); with a budget
  above zero the output limit is raised by the budget, so the thoughts cannot eat the answer's room.
- ``auto``: -1, the model decides (dynamic thinking).

An answer that spent its tokens on thoughts (``MAX_TOKENS``, no text, thought tokens counted) is a
:class:`ThoughtsExhaustedError`; the generator asks again with one level less (down to ``off``),
then with twice the output room, at most :data:`MAX_RECOVERIES` times.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import EmptyResponseError

if TYPE_CHECKING:  # providers import this module
    from .providers.base import GenerationRequest, Usage

__all__ = [
    "DEFAULT_THINKING",
    "LEVELS",
    "MAX_RECOVERIES",
    "ThoughtsExhaustedError",
    "family",
    "less_thinking",
    "output_room",
    "thinking_config",
]

LEVELS = ("off", "low", "medium", "high", "auto")
#: the level used when none is set: a tweet needs no reasoning, and thoughts bill at the output
#: rate (bench/thinking_spend.py: 91 tokens a tweet at off against 488 at low on 2.5 Flash)
DEFAULT_THINKING = "off"
#: new tries after an all-thoughts answer (one level down each, then more room)
MAX_RECOVERIES = 2
#: the most output tokens a recovery asks for
MAX_ROOM = 8192
_BUDGETS = {"off": 0, "low": 512, "medium": 2048, "high": 8192, "auto": -1}
_DOWN = {"auto": "low", "high": "medium", "medium": "low", "low": "off"}


class ThoughtsExhaustedError(EmptyResponseError):
    """The model spent its output tokens on thoughts and wrote no text (``MAX_TOKENS``)."""

    def __init__(self, message: str, *, thought_tokens: int, usage: Usage) -> None:
        super().__init__(message, finish_reason="MAX_TOKENS")
        self.thought_tokens = thought_tokens
        self.usage = usage


def _name(model: str) -> str:
    return model.lower().removeprefix("models/")


@functools.lru_cache(maxsize=256)
def family(model: str) -> str | None:
    """``budget`` (Gemini 2.5), ``level`` (Gemini 3.x and the ``*-latest`` aliases) or ``None``."""
    name = _name(model)
    if not name.startswith("gemini-"):
        return None
    if name.startswith("gemini-2.5"):
        return "budget"
    if name.startswith("gemini-3") or name.endswith("-latest"):
        return "level"
    return None


def _level(name: str, level: str) -> str | None:
    """A Gemini 3 level: Flash and Flash-Lite know ``minimal``; 3.0 Pro only ``low`` and
    ``high``."""
    pro = "-pro" in name
    if level == "off":
        return "low" if pro else "minimal"
    if level == "medium" and name.startswith("gemini-3-pro"):
        return "high"
    return level


@functools.lru_cache(maxsize=256)
def thinking_config(model: str, level: str) -> dict[str, Any] | None:
    """The ``thinkingConfig`` of a level for a model (``None``: send none)."""
    kind = family(model)
    if kind is None:
        return None
    name = _name(model)
    if kind == "level":
        value = None if level == "auto" else _level(name, level)
        return None if value is None else {"thinkingLevel": value}
    budget = _BUDGETS[level]
    if budget == 0 and "-pro" in name:
        budget = 128  # 2.5 Pro cannot turn thinking off; 128 is its least
    return {"thinkingBudget": budget}


@functools.lru_cache(maxsize=256)
def output_room(model: str, level: str, max_output_tokens: int) -> int:
    """The output limit to send: the answer's room plus a 2.5 budget (thoughts count in it)."""
    config = thinking_config(model, level)
    budget = config.get("thinkingBudget", 0) if config else 0
    return max_output_tokens + budget if budget > 0 else max_output_tokens


def less_thinking(request: GenerationRequest, level: str) -> GenerationRequest | None:
    """The request to send after an all-thoughts answer at ``level``: one level down, or (at
    ``off``) twice the output room; ``None`` when the room is already at its most."""
    lower = _DOWN.get(level)
    if lower is not None:
        return replace(request, thinking=lower)
    if request.max_output_tokens >= MAX_ROOM:
        return None
    return replace(request, max_output_tokens=min(MAX_ROOM, request.max_output_tokens * 2))


def check_level(value: object, where: str) -> str | None:
    """Why ``value`` is not a thinking level (a sentence naming ``where``), or ``None``."""
    if value is None or value in LEVELS:
        return None
    return f"the thinking level{where} must be one of {', '.join(LEVELS)}, got {value!r}"


def think_less(
    request: GenerationRequest, error: ThoughtsExhaustedError, recoveries: int
) -> GenerationRequest:
    """The request to send after ``error`` (logged, counted in the call's trace as
    ``scratch["thought_recoveries"]``); re-raises ``error`` once :data:`MAX_RECOVERIES` are spent
    or nothing is left to lower."""
    from . import events
    from .trace import current_trace

    level = request.thinking or DEFAULT_THINKING
    retry = less_thinking(request, level) if recoveries < MAX_RECOVERIES else None
    if retry is None:
        raise error
    events.thoughts_exhausted(
        error.thought_tokens, level, retry.thinking or level, retry.max_output_tokens, recoveries
    )
    trace = current_trace()
    if trace is not None:
        trace.scratch["thought_recoveries"] = recoveries + 1
    return retry
