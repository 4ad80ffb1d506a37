"""The sandbox's thinking model: thought tokens a thinking-capable Gemini model spends, and the
requests the real API refuses for their ``thinkingConfig``.

A request's need for thought is drawn from its prompt and seed (the same request always thinks
the same), log-uniform from 150 to 1,500 tokens. What it spends:

- Gemini 2.5 (``thinkingBudget``): ``-1`` or no config (dynamic): the need; ``0``: nothing (2.5 Pro
  refuses 0, as the API does); a budget: the need, at most the budget. 2.5 Flash-Lite does not
  think unless asked.
- Gemini 3 and the ``*-latest`` aliases (``thinkingLevel``): the need times 0.05 (``minimal``),
  0.3 (``low``), 0.8 (``medium``) or 1.6 (``high``, also the default when no level is sent).
- Any other model name: nothing.

A request without any ``thinkingConfig`` (an older client, a raw body, ``auto`` on Gemini 3) thinks
as the model's default but always keeps room for its text, so tools written before thinking see
the sandbox answer as before. With a ``thinkingConfig``, when the thoughts leave no room for the
answer within ``maxOutputTokens`` the answer is what the real API sends: ``finishReason:
MAX_TOKENS``, a candidate without parts, ``thoughtsTokenCount`` counting the whole limit.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..thinking import family

__all__ = ["thinking_problem", "thoughts_spent"]

_FACTORS = {"minimal": 0.05, "low": 0.3, "medium": 0.8, "high": 1.6}
_BUDGET_RANGE = {"pro": (128, 32768), "flash-lite": (512, 24576), "flash": (1, 24576)}


def _variant(model: str) -> str:
    name = model.lower()
    return "pro" if "-pro" in name else "flash-lite" if "flash-lite" in name else "flash"


def _thinking(config: dict[str, Any]) -> dict[str, Any]:
    thinking = config.get("thinkingConfig")
    return thinking if isinstance(thinking, dict) else {}


def thinking_problem(model: str, config: object) -> str | None:
    """Why the API would refuse this ``generationConfig``'s thinking (a 400), or ``None``."""
    if not isinstance(config, dict):
        return None
    thinking = _thinking(config)
    budget, level = thinking.get("thinkingBudget"), thinking.get("thinkingLevel")
    if budget is not None and level is not None:
        return "You can only set only one of thinking budget and thinking level."
    kind = family(model)
    if level is not None and (kind != "level" or level not in _FACTORS):
        return f"Thinking level {level!r} is not supported for this model."
    if budget is None or kind is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int):
        return "Invalid value at 'generation_config.thinking_config.thinking_budget'."
    low, high = _BUDGET_RANGE[_variant(model)]
    if budget == 0 and _variant(model) == "pro":
        return "Budget 0 is invalid. This model only works in thinking mode."
    if budget not in (-1, 0) and not low <= budget <= high:
        return (
            f"The thinking budget {budget} is invalid. Please choose a value between {low} and "
            f"{high}."
        )
    return None


def _need(key: str) -> int:
    digest = hashlib.sha256(key.encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return int(150 * 10**unit)


def thoughts_spent(model: str, config: dict[str, Any], key: str) -> int:
    """The thought tokens one answer spends (before the output limit cuts them)."""
    kind = family(model)
    if kind is None:
        return 0
    thinking = _thinking(config)
    need = _need(key)
    if kind == "level":
        return int(need * _FACTORS.get(str(thinking.get("thinkingLevel", "high")), 1.6))
    budget = thinking.get("thinkingBudget")
    if budget is None:
        budget = 0 if _variant(model) == "flash-lite" else -1
    if not isinstance(budget, int) or budget == -1:
        return need
    return min(need, max(budget, 0))
