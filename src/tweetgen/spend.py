"""What the stored calls cost in US dollars: per model, per UTC day, the calls whose cost is
unknown, and what the flex and batch tiers saved (the spend section of ``tweetgen stats``).

A call's cost is what the store holds (the sum of its attempts' costs; NULL, unknown, when one of
them could not be priced, and for calls stored before costs were). What a discounted tier saved is
the standard price of each of its answers, priced from the attempt's stored tokens with
:func:`tweetgen.pricing.cost_usd` at the standard tier, minus what the answer cost; an answer whose
standard price is unknown saves nothing that can be said.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import pricing
from .providers.base import Usage
from .store import AttemptRow, CallRow

__all__ = [
    "DISCOUNTED_TIERS",
    "Saving",
    "Spend",
    "SpendRow",
    "dollars",
    "render_lines",
    "summarize_spend",
]

#: the tiers whose savings are counted
DISCOUNTED_TIERS = ("flex", "batch")


@dataclass(frozen=True)
class SpendRow:
    """The calls of one model or one UTC day: how many, what the priced ones cost (None when none
    could be priced), how many could not be priced."""

    key: str
    calls: int
    cost_usd: float | None
    unknown: int

    def to_dict(self, name: str) -> dict[str, Any]:
        """A JSON-ready dict, the key under ``name`` (``model`` or ``day``)."""
        return {
            name: self.key,
            "calls": self.calls,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 9),
            "unknown_calls": self.unknown,
        }


@dataclass(frozen=True)
class Saving:
    """The answers of one discounted tier: their standard price and what they cost."""

    tier: str
    answers: int
    standard_usd: float
    cost_usd: float

    @property
    def saved_usd(self) -> float:
        """The standard price minus what the answers cost."""
        return self.standard_usd - self.cost_usd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tier": self.tier,
            "answers": self.answers,
            "standard_usd": round(self.standard_usd, 9),
            "cost_usd": round(self.cost_usd, 9),
            "saved_usd": round(self.saved_usd, 9),
        }


@dataclass(frozen=True)
class Spend:
    """What the calls cost, by model and by UTC day, and what the discounted tiers saved."""

    cost_usd: float = 0.0
    priced_calls: int = 0
    unknown_calls: int = 0
    by_model: tuple[SpendRow, ...] = ()
    by_day: tuple[SpendRow, ...] = ()
    savings: tuple[Saving, ...] = field(default_factory=tuple)

    @property
    def saved_usd(self) -> float:
        """What every discounted tier saved."""
        return sum(s.saved_usd for s in self.savings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict whose keys do not depend on the data."""
        return {
            "cost_usd": round(self.cost_usd, 9),
            "priced_calls": self.priced_calls,
            "unknown_calls": self.unknown_calls,
            "by_model": [r.to_dict("model") for r in self.by_model],
            "by_day": [r.to_dict("day") for r in self.by_day],
            "saved_usd": round(self.saved_usd, 9),
            "savings": [s.to_dict() for s in self.savings],
        }


def dollars(value: float | None) -> str:
    """Dollars to a millionth of a dollar (a tweet costs fractions of a cent): ``$0.000743``;
    ``unknown`` for None."""
    return "unknown" if value is None else f"${value:,.6f}"


def _row(key: str, calls: Sequence[CallRow]) -> SpendRow:
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    return SpendRow(key, len(calls), sum(costs) if costs else None, len(calls) - len(costs))


def _rows(groups: Mapping[str, Sequence[CallRow]]) -> tuple[SpendRow, ...]:
    return tuple(_row(key, calls) for key, calls in sorted(groups.items()))


def _price_list(provider: str) -> str:
    """The price list a stored call's provider name stands for: OpenAI's for ``openai`` (whose
    unpriced local servers stored no cost), Google's for Gemini and the sandbox."""
    return "openai" if provider == "openai" else pricing.GOOGLE


def _savings(calls: Mapping[int, CallRow], attempts: Iterable[AttemptRow]) -> tuple[Saving, ...]:
    figures: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for attempt in attempts:
        call = calls.get(attempt.call_id)
        tier = (attempt.service_tier or "").lower()
        if call is None or tier not in DISCOUNTED_TIERS or attempt.cost_usd is None:
            continue
        usage = Usage(attempt.input_tokens, attempt.output_tokens, attempt.thought_tokens)
        standard = pricing.cost_usd(
            call.model,
            usage,
            tier=pricing.STANDARD,
            response_model=attempt.response_model,
            provider=_price_list(call.provider),
        )
        if standard is None:
            continue
        figure = figures[tier]
        figure[0] += 1
        figure[1] += standard
        figure[2] += attempt.cost_usd
    return tuple(
        Saving(tier, int(figures[tier][0]), figures[tier][1], figures[tier][2])
        for tier in DISCOUNTED_TIERS
        if tier in figures
    )


def summarize_spend(calls: Iterable[CallRow], attempts: Iterable[AttemptRow]) -> Spend:
    """What some stored calls cost (a function of the rows and the bundled prices)."""
    rows = list(calls)
    by_model: defaultdict[str, list[CallRow]] = defaultdict(list)
    by_day: defaultdict[str, list[CallRow]] = defaultdict(list)
    for row in rows:
        by_model[row.model].append(row)
        by_day[row.created_at[:10]].append(row)
    priced = [r.cost_usd for r in rows if r.cost_usd is not None]
    return Spend(
        cost_usd=sum(priced),
        priced_calls=len(priced),
        unknown_calls=len(rows) - len(priced),
        by_model=_rows(by_model),
        by_day=_rows(by_day),
        savings=_savings({r.id: r for r in rows}, attempts),
    )


# --- rendering (tweetgen stats' text report) ------------------------------------------------------

_WIDTH = 80


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _row_lines(title: str, rows: Sequence[SpendRow]) -> list[str]:
    """``title`` and its rows as columns: key, calls, unknown, cost (within 80 columns)."""
    cells = [(r.key, str(r.calls), str(r.unknown), dollars(r.cost_usd)) for r in rows]
    cells.insert(0, (title, "calls", "unknown", "cost"))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    widths[0] = min(widths[0], max(_WIDTH - 2 - sum(widths[1:]) - 6, 10))
    return [
        f"  {_clip(key, widths[0]):<{widths[0]}}  {calls:>{widths[1]}}  "
        f"{unknown:>{widths[2]}}  {cost:>{widths[3]}}"
        for key, calls, unknown, cost in cells
    ]


def _line(label: str, value: str, note: str = "") -> str:
    return _clip(f"  {label:<24}{value:>10}  {note}".rstrip(), _WIDTH)


def render_lines(spend: Spend) -> list[str]:
    """The spend section of ``tweetgen stats``' text report (no line wider than 80 columns)."""
    lines = [
        "Spend (US dollars)",
        _line("total", dollars(spend.cost_usd), f"{spend.priced_calls} calls priced"),
        _line("cost unknown", str(spend.unknown_calls), "calls (a model without a known price)"),
    ]
    for saving in spend.savings:
        answers = f"{saving.answers} answer{'' if saving.answers == 1 else 's'}"
        note = f"{answers}; {dollars(saving.standard_usd)} at standard"
        lines.append(_line(f"saved by {saving.tier}", dollars(saving.saved_usd), note))
    if spend.by_model:
        lines += ["", *_row_lines("model", spend.by_model)]
    if spend.by_day:
        lines += ["", *_row_lines("day (UTC)", spend.by_day)]
    return lines
