"""What an answer cost in US dollars, from its tokens and the model's price.

Prices come from the ``genai-prices`` package (kept by the pydantic team), from the price data it
bundles: tweetgen builds its own snapshot of that data and never starts genai-prices' updater, so
pricing never touches the network (a newer price list comes with a newer package).

Decisions where the issue left room:

- **Tokens billed.** Input at the input rate; output *and thinking* at the output rate. Gemini's
  ``candidatesTokenCount`` excludes thoughts (``thoughtsTokenCount``) and bills both as output, and
  genai-prices' own Gemini extractor adds the two into ``output_tokens``: so does :func:`cost_usd`.
  Cached input (implicit caching's ``cachedContentTokenCount``) is not read: it is priced as input,
  which can only overstate the cost.
- **Unknown is unknown.** A model genai-prices does not know gives ``None`` ("cost unknown"), never
  a neighbour's price. The answer's own model (the API's ``modelVersion``) is priced first; the
  model asked for otherwise, unless it is an alias (``gemini-flash-latest``) and the API named a
  model genai-prices does not know: an alias's price would then be a guess.
- **Tiers.** ``standard`` (or none said) is the standard price. ``flex`` and ``batch`` take
  genai-prices' own price for the tier where it has one (a price variant: ``service_tier: flex`` or
  ``processing: batch``), else, for Google's models, 50 % of standard, Google's documented discount
  for both (docs: optimization, flex-inference, batch-api). ``priority`` takes genai-prices' price
  where it has one, else ``None``: Google documents a range (75 % to 100 % more than standard), not
  a rate. Any other tier is unknown.
- **Prompt-length tiers** (a higher rate for every token of a prompt over 200k tokens) are
  genai-prices' data, applied its way: the input token count picks the rate for all tokens.

Cost per call: a model's rates are resolved once per (price list, model, answer's model, tier) and
UTC day (prices change on dates), then an answer costs two multiplications: 3-10 µs a call with
``python -m timeit`` on a busy 2-core machine, where genai-prices' own ``calc_price`` took 0.14-1
ms. genai-prices is imported on the first priced answer: about 0.4 s of CPU once per process.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .providers.base import Usage

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

__all__ = [
    "GOOGLE",
    "HALF_PRICE_TIERS",
    "STANDARD",
    "TIER_DISCOUNT",
    "cost_usd",
    "price_list_for",
]

#: genai-prices' id of Google's price list (Gemini's models)
GOOGLE = "google"
STANDARD = "standard"
#: tiers Google bills at a discount of :data:`TIER_DISCOUNT` where genai-prices has no price of its
#: own for them
HALF_PRICE_TIERS = frozenset({"flex", "batch"})
TIER_DISCOUNT = 0.5
#: the price context that selects a tier's price variant in genai-prices' data
_CONTEXT: dict[str, dict[str, str]] = {
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
    "batch": {"processing": "batch"},
}
#: what APIs say for the standard tier (Gemini: standard; OpenAI: default; also auto)
_STANDARD_NAMES = frozenset({"", STANDARD, "default", "auto"})
#: the price keys the fast path computes; a model priced by any other key our usage has (none today)
#: is priced by genai-prices on every call
_TOKEN_KEYS = ("input_mtok", "output_mtok")
_PER_MILLION = 1_000_000
_ALIAS = re.compile(r"-latest$")
#: more entries than this (a server naming a new model in every answer) empties the cache
_CACHE_LIMIT = 512
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class _Rate:
    """One token price in dollars per million tokens: the base, and ``(start, price)`` tiers that
    apply to every token once the prompt has more than ``start`` input tokens."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, input_tokens: int) -> float:
        for start, price in reversed(self.tiers):
            if input_tokens > start:
                return price
        return self.base


@dataclass(frozen=True)
class _Price:
    """A model's resolved price at one tier for one UTC day."""

    day: int
    input: _Rate
    output: _Rate
    factor: float = 1.0
    #: genai-prices' model and price context, priced by genai-prices itself at every call (None:
    #: the fast path)
    slow: tuple[Any, dict[str, str] | None] | None = None

    def cost(self, usage: Usage) -> float | None:
        billed_output = usage.output_tokens + usage.thought_tokens
        if self.slow is not None:
            from genai_prices import Usage as PricedUsage

            found, context = self.slow
            prices = found.get_prices(datetime.fromtimestamp(_clock(), timezone.utc), context)
            priced = PricedUsage(input_tokens=usage.input_tokens, output_tokens=billed_output)
            try:
                return float(prices.calc_price(priced)["total_price"]) * self.factor
            except (ValueError, ArithmeticError):  # a paid answer never fails on its price
                return None
        tokens = usage.input_tokens
        dollars = tokens * self.input.at(tokens) + billed_output * self.output.at(tokens)
        return dollars / _PER_MILLION * self.factor


#: the clock that says which UTC day's prices apply (tests move it)
_clock: Callable[[], float] = time.time
_UNKNOWN: tuple[int, None] = (0, None)
_cache: dict[tuple[str, str, str | None, str], tuple[int, _Price | None]] = {}
_snapshot: DataSnapshot | None = None
_snapshot_lock = threading.Lock()
_url_lists: dict[str, str | None] = {}


def cost_usd(
    model: str,
    usage: Usage,
    *,
    tier: str | None = None,
    response_model: str | None = None,
    provider: str = GOOGLE,
) -> float | None:
    """What an answer with ``usage`` cost in US dollars, or ``None`` when the price is unknown.

    ``model`` is the model asked for, ``response_model`` the one the API said answered (Gemini's
    ``modelVersion``), ``tier`` the service tier that answered (``standard`` when ``None``), and
    ``provider`` genai-prices' id of the price list to read (Google's unless said).
    """
    day = int(_clock() // _SECONDS_PER_DAY)
    key = (provider, model, response_model, _tier_name(tier))
    entry = _cache.get(key, _UNKNOWN)
    if entry[0] != day:
        entry = (day, _resolve(provider, model, response_model, key[3], day))
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = entry
    price = entry[1]
    return None if price is None else price.cost(usage)


def price_list_for(url: str) -> str | None:
    """genai-prices' id of the price list for the API at ``url``: Google's for Gemini's
    ``generateContent`` (whatever the host: a proxy or the sandbox still names Gemini's models), the
    list whose API address matches otherwise (OpenAI, OpenRouter, Groq, ...), or ``None`` (a local
    server: a model's name there says nothing about a price)."""
    if url.endswith(":generateContent"):
        return GOOGLE
    if url not in _url_lists:
        if len(_url_lists) >= _CACHE_LIMIT:
            _url_lists.clear()
        _url_lists[url] = _list_matching(url)
    return _url_lists[url]


def _tier_name(tier: str | None) -> str:
    name = (tier or "").strip().lower()
    return STANDARD if name in _STANDARD_NAMES else name


def _bundled() -> DataSnapshot | None:
    """Our own snapshot of genai-prices' bundled data (never the auto-updated one); None when
    genai-prices cannot be imported (it needs Python 3.11)."""
    global _snapshot
    if _snapshot is None:
        with _snapshot_lock:
            if _snapshot is None:
                try:
                    from genai_prices.data import providers
                    from genai_prices.data_snapshot import DataSnapshot
                except ImportError:
                    return None
                _snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    return _snapshot


def _list_matching(url: str) -> str | None:
    snapshot = _bundled()
    if snapshot is None:
        return None
    try:
        return snapshot.find_provider(None, None, url).id
    except LookupError:
        return None


def _lookup(snapshot: DataSnapshot, provider: str, ref: str | None) -> Any:
    """genai-prices' model for ``ref`` in ``provider``'s list, or None."""
    if not ref:
        return None
    ref = ref.removeprefix("models/")
    try:
        return snapshot.find_provider_model(ref, None, provider, None)[1]
    except LookupError:
        return None


def _resolve(
    provider: str, model: str, response_model: str | None, tier: str, day: int
) -> _Price | None:
    snapshot = _bundled()
    if snapshot is None:
        return None
    found = _lookup(snapshot, provider, response_model)
    if found is None and not (response_model and _ALIAS.search(model)):
        found = _lookup(snapshot, provider, model)
    if found is None:
        return None
    now = datetime.fromtimestamp(day * _SECONDS_PER_DAY, timezone.utc)
    try:
        return _tier_price(found, provider, tier, now, day)
    except (ValueError, TypeError, ArithmeticError):  # prices genai-prices itself would refuse
        return None


def _tier_price(found: Any, provider: str, tier: str, now: datetime, day: int) -> _Price | None:
    context = _CONTEXT.get(tier)
    if tier == STANDARD:
        return _price(found, None, now, day)
    if context is None:
        return None  # a tier nobody documented
    if _has_variant(found, context, now):
        return _price(found, context, now, day)
    if tier in HALF_PRICE_TIERS and provider == GOOGLE:
        return _price(found, None, now, day, TIER_DISCOUNT)
    return None


def _has_variant(found: Any, context: dict[str, str], now: datetime) -> bool:
    return any(
        variant.when == context and (variant.constraint is None or variant.constraint.active(now))
        for variant in found.price_variants or ()
    )


def _price(
    found: Any, context: dict[str, str] | None, now: datetime, day: int, factor: float = 1.0
) -> _Price | None:
    prices = found.get_prices(now, context)
    input_rate, output_rate = (_rate(getattr(prices, key)) for key in _TOKEN_KEYS)
    if input_rate is None and output_rate is None:
        return None  # a model without token prices (genai-prices lists a few)
    zero = _Rate(0.0)
    slow = (found, context) if _needs_genai_prices(found, prices) else None
    return _Price(day, input_rate or zero, output_rate or zero, factor, slow)


def _rate(value: Any) -> _Rate | None:
    from decimal import Decimal

    if value is None:
        return None
    if isinstance(value, Decimal):
        return _Rate(float(value))
    tiers = tuple(
        (int(t.start), float(t.price)) for t in sorted(value.tiers, key=lambda t: t.start)
    )
    return _Rate(float(value.base), tiers)


def _needs_genai_prices(found: Any, prices: Any) -> bool:
    """Whether this price has more than the fast path computes: a price per request or for
    reasoning tokens, or one that changes with the time of day."""
    keys = {k for k, v in vars(prices).items() if v is not None}
    if keys & {"requests_kcount", "output_reasoning_mtok", "output_text_reasoning_mtok"}:
        return True
    from genai_prices.types import TimeOfDateConstraint

    conditions = found.prices if isinstance(found.prices, list) else []
    constraints = [c.constraint for c in conditions] + [
        v.constraint for v in found.price_variants or ()
    ]
    return any(isinstance(c, TimeOfDateConstraint) for c in constraints)
