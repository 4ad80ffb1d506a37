"""Cost in dollars (issue 15): hand computations with the prices written out here, thinking tokens,
tiers, aliases, unknown models, the cache, and no network."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tweetgen import pricing
from tweetgen.pricing import cost_usd, price_list_for
from tweetgen.providers.base import Usage

genai_prices = pytest.importorskip("genai_prices")

#: a day whose prices these tests read (Google's page and genai-prices' data agree on them)
DAY = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
#: dollars per million tokens, input and output (thinking billed as output), written out by hand
FLASH = (0.30, 2.50)  # gemini-2.5-flash
LITE = (0.10, 0.40)  # gemini-2.5-flash-lite
PRO = (1.25, 10.00)  # gemini-2.5-pro, prompts up to 200k tokens
PRO_LONG = (2.50, 15.00)  # gemini-2.5-pro, prompts over 200k tokens
FLASH_38 = (0.75, 3.75)  # gemini-3.8-flash until 2026-12-31 (what gemini-flash-latest names)
FLASH_38_2027 = (1.50, 7.50)  # gemini-3.8-flash from 2027-01-01


def at(moment: datetime) -> float:
    return moment.timestamp()


@pytest.fixture(autouse=True)
def fixed_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Prices of :data:`DAY`, from an empty cache."""
    monkeypatch.setattr(pricing, "_clock", lambda: at(DAY))
    pricing._cache.clear()
    yield
    pricing._cache.clear()


def hand(price: tuple[float, float], input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


@pytest.mark.parametrize(
    ("model", "price"),
    [("gemini-2.5-flash", FLASH), ("gemini-2.5-flash-lite", LITE), ("gemini-2.5-pro", PRO)],
)
def test_three_models_cost_what_a_hand_computation_says(
    model: str, price: tuple[float, float]
) -> None:
    usage = Usage(input_tokens=1234, output_tokens=56, thought_tokens=789)
    assert cost_usd(model, usage) == pytest.approx(hand(price, 1234, 56 + 789), rel=1e-12)
    assert cost_usd(model, usage) == pytest.approx(
        1234 * price[0] / 1e6 + 845 * price[1] / 1e6, abs=1e-15
    )


def test_one_hand_computed_figure_written_out() -> None:
    # 1,000 input tokens at $0.30/M = $0.0003; 200 output + 300 thinking tokens at $2.50/M =
    # $0.00125; total $0.00155
    usage = Usage(input_tokens=1000, output_tokens=200, thought_tokens=300)
    assert cost_usd("gemini-2.5-flash", usage) == pytest.approx(0.00155, abs=1e-15)


def test_thinking_tokens_bill_at_the_output_rate() -> None:
    thinking = cost_usd(
        "gemini-2.5-flash", Usage(input_tokens=10, output_tokens=10, thought_tokens=90)
    )
    plain = cost_usd("gemini-2.5-flash", Usage(input_tokens=10, output_tokens=100))
    without = cost_usd("gemini-2.5-flash", Usage(input_tokens=10, output_tokens=10))
    assert thinking == pytest.approx(plain, rel=1e-12)
    assert thinking is not None
    assert without is not None
    assert thinking - without == pytest.approx(90 * FLASH[1] / 1e6, rel=1e-9)


def test_thinking_is_counted_as_genai_prices_own_gemini_extractor_counts_it() -> None:
    body = {
        "usageMetadata": {
            "promptTokenCount": 400,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 570,
        },
        "modelVersion": "gemini-2.5-flash",
    }
    extracted = genai_prices.extract_usage(body, provider_id="google")
    theirs = extracted.calc_price(genai_request_timestamp=DAY).total_price
    ours = cost_usd(
        "gemini-2.5-flash", Usage(input_tokens=400, output_tokens=30, thought_tokens=570)
    )
    assert ours == pytest.approx(float(theirs), rel=1e-12)


def test_a_prompt_over_200k_tokens_pays_the_long_prompt_rate_on_every_token() -> None:
    short = cost_usd("gemini-2.5-pro", Usage(input_tokens=200_000, output_tokens=1000))
    long = cost_usd("gemini-2.5-pro", Usage(input_tokens=200_001, output_tokens=1000))
    assert short == pytest.approx(hand(PRO, 200_000, 1000), rel=1e-12)
    assert long == pytest.approx(hand(PRO_LONG, 200_001, 1000), rel=1e-12)


@pytest.mark.parametrize("tier", ["flex", "batch", "FLEX"])
def test_flex_and_batch_cost_half_of_standard(tier: str) -> None:
    usage = Usage(input_tokens=5000, output_tokens=400, thought_tokens=100)
    for model, price in (("gemini-2.5-flash", FLASH), ("gemini-2.5-pro", PRO)):
        assert cost_usd(model, usage, tier=tier) == pytest.approx(
            hand(price, 5000, 500) / 2, rel=1e-12
        )


@pytest.mark.parametrize("tier", [None, "standard", "default", "auto", ""])
def test_the_standard_tier_has_several_names(tier: str | None) -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    assert cost_usd("gemini-2.5-flash", usage, tier=tier) == pytest.approx(hand(FLASH, 100, 100))


def test_priority_is_priced_only_where_genai_prices_has_a_rate() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    # Google documents 75 % to 100 % more, not a rate: unknown for a model without one
    assert cost_usd("gemini-2.5-flash", usage, tier="priority") is None
    # gemini-3.8-flash-tts has a priority price in genai-prices: $0.90 in, $16.20 out
    assert cost_usd("gemini-3.8-flash-tts", usage, tier="priority") == pytest.approx(
        hand((0.90, 16.20), 1000, 1000), rel=1e-12
    )


def test_an_undocumented_tier_is_unknown() -> None:
    assert cost_usd("gemini-2.5-flash", Usage(input_tokens=1), tier="scale") is None


def test_a_tier_price_of_genai_prices_wins_over_the_rule_of_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    new_year = at(datetime(2027, 1, 1, 0, 0, 1, tzinfo=timezone.utc))
    monkeypatch.setattr(pricing, "_clock", lambda: new_year)
    # from 2027-01-01 gemini-3.8-flash's batch price is its old standard price, not half the new one
    assert cost_usd("gemini-3.8-flash", usage) == pytest.approx(hand(FLASH_38_2027, 1000, 1000))
    assert cost_usd("gemini-3.8-flash", usage, tier="batch") == pytest.approx(
        hand(FLASH_38, 1000, 1000)
    )
    assert cost_usd("gemini-3.8-flash", usage, tier="flex") == pytest.approx(
        hand(FLASH_38_2027, 1000, 1000) / 2
    )


def test_an_unknown_model_costs_unknown_never_a_guess() -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    for model in ("gemini-sandbox", "my-finetune", "gemini-2.5-flash-001", ""):
        assert cost_usd(model, usage) is None
        assert cost_usd(model, usage, tier="flex") is None


def test_the_answers_model_is_priced_first() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_usd(
        "gemini-flash-latest", usage, response_model="gemini-2.5-flash"
    ) == pytest.approx(hand(FLASH, 1000, 1000))
    assert cost_usd("gemini-flash-latest", usage) == pytest.approx(hand(FLASH_38, 1000, 1000))
    assert cost_usd("models/gemini-2.5-pro", usage) == pytest.approx(hand(PRO, 1000, 1000))


def test_an_alias_answered_by_an_unknown_model_is_unknown() -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_usd("gemini-flash-latest", usage, response_model="gemini-9-flash") is None
    # not an alias: the model asked for is priced when the answer's version is not listed
    assert cost_usd(
        "gemini-2.5-flash", usage, response_model="gemini-2.5-flash-999"
    ) == pytest.approx(hand(FLASH, 1000, 1000))


def test_other_price_lists_and_their_tiers() -> None:
    usage = Usage(input_tokens=1000, output_tokens=500)
    assert cost_usd("gpt-4o-mini", usage, provider="openai") == pytest.approx(
        hand((0.15, 0.60), 1000, 500)
    )
    # half price for flex and batch is Google's rule, not OpenAI's
    assert cost_usd("gpt-4o-mini", usage, provider="openai", tier="flex") is None
    assert cost_usd("gemini-2.5-flash", usage, provider="openai") is None
    assert cost_usd("gemini-2.5-flash", usage, provider="no-such-list") is None


def test_price_lists_follow_the_api_address() -> None:
    assert price_list_for("http://127.0.0.1:9/v1beta/models/m:generateContent") == "google"
    assert price_list_for("https://api.openai.com/v1/chat/completions") == "openai"
    assert price_list_for("http://127.0.0.1:11434/v1/chat/completions") is None
    assert price_list_for("http://localhost:8000/v1/chat/completions") is None


def _genai_price(model: str, usage: Usage, context: dict[str, str] | None) -> float:
    priced = genai_prices.Usage(
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens + usage.thought_tokens
    )
    result = genai_prices.calc_price(
        priced, model, provider_id="google", genai_request_timestamp=DAY, price_context=context
    )
    return float(result.total_price)


def test_the_fast_path_prices_as_genai_prices_does() -> None:
    rng = random.Random(15)
    models = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.1-pro-preview", "gemini-3.8-flash"]
    for _ in range(300):
        model = rng.choice(models)
        usage = Usage(
            input_tokens=rng.choice([0, 1, rng.randrange(10**6), 200_000, 200_001]),
            output_tokens=rng.randrange(10**5),
            thought_tokens=rng.randrange(10**4),
        )
        assert cost_usd(model, usage) == pytest.approx(_genai_price(model, usage, None), rel=1e-12)
        assert cost_usd(model, usage, tier="batch") == pytest.approx(
            _genai_price(model, usage, {"processing": "batch"}), rel=1e-12
        )


def test_time_of_day_prices_are_left_to_genai_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2000)
    for hour in (3, 17):  # deepseek's off-peak and peak hours
        moment = datetime(2026, 12, 3, hour, 0, tzinfo=timezone.utc)
        monkeypatch.setattr(pricing, "_clock", lambda moment=moment: at(moment))
        expected = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=10_000, output_tokens=2000),
            "deepseek-chat",
            provider_id="deepseek",
            genai_request_timestamp=moment,
        ).total_price
        assert cost_usd("deepseek-chat", usage, provider="deepseek") == pytest.approx(
            float(expected), rel=1e-12
        )


def test_the_cache_keeps_models_tiers_and_days_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    first = cost_usd("gemini-3.8-flash", usage)
    assert cost_usd("gemini-3.8-flash", usage) == first
    assert cost_usd("gemini-3.8-flash", usage, tier="flex") == pytest.approx(first / 2)
    assert cost_usd("gemini-2.5-flash", usage) == pytest.approx(hand(FLASH, 1000, 1000))
    assert cost_usd("gemini-3.8-flash", Usage(input_tokens=2000)) == pytest.approx(
        hand(FLASH_38, 2000, 0)
    )
    assert len(pricing._cache) == 3
    # a new UTC day resolves the price again: gemini-3.8-flash doubles on 2027-01-01
    monkeypatch.setattr(
        pricing, "_clock", lambda: at(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc))
    )
    assert cost_usd("gemini-3.8-flash", usage) == pytest.approx(hand(FLASH_38, 1000, 1000))
    monkeypatch.setattr(pricing, "_clock", lambda: at(datetime(2027, 1, 1, tzinfo=timezone.utc)))
    assert cost_usd("gemini-3.8-flash", usage) == pytest.approx(hand(FLASH_38_2027, 1000, 1000))


def test_the_cache_is_bounded() -> None:
    usage = Usage(input_tokens=1)
    for n in range(pricing._CACHE_LIMIT + 10):
        cost_usd("gemini-2.5-flash", usage, response_model=f"made-up-{n}")
    assert len(pricing._cache) <= pricing._CACHE_LIMIT
    assert cost_usd("gemini-2.5-flash", usage) == pytest.approx(hand(FLASH, 1, 0))


def test_prices_come_from_the_bundled_data_and_never_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("pricing opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(pricing, "_snapshot", None)
    # a snapshot someone else set in genai-prices (its updater's way) is not what we price with
    from genai_prices import data_snapshot
    from genai_prices.types import ClauseEquals, ModelInfo, ModelPrice, Provider

    cheap = Provider(
        id="google",
        name="fake",
        api_pattern="nothing",
        models=[
            ModelInfo(
                id="gemini-2.5-flash",
                match=ClauseEquals(equals="gemini-2.5-flash"),
                prices=ModelPrice(input_mtok=Decimal(0), output_mtok=Decimal(0)),
            )
        ],
    )
    monkeypatch.setattr(
        data_snapshot,
        "_custom_snapshot",
        data_snapshot.DataSnapshot([cheap], from_auto_update=True),
    )
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_usd("gemini-2.5-flash", usage) == pytest.approx(hand(FLASH, 1000, 1000))
    from genai_prices.update_prices import _shared_updater

    assert _shared_updater.thread is None


def test_without_genai_prices_every_cost_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(pricing, "_snapshot", None)
    monkeypatch.setitem(sys.modules, "genai_prices.data", None)  # import fails (Python 3.10)
    assert cost_usd("gemini-2.5-flash", Usage(input_tokens=1)) is None
    assert price_list_for("https://api.openai.com/v1/x") is None


def test_a_price_genai_prices_cannot_compute_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_prices.types import ModelPrice

    def refuse(self: object, usage: object) -> None:
        raise ValueError("Invalid usage data")

    monkeypatch.setattr(ModelPrice, "calc_price", refuse)
    usage = Usage(input_tokens=10, output_tokens=2)
    assert cost_usd("deepseek-chat", usage, provider="deepseek") is None  # priced by genai-prices
    assert cost_usd("gemini-2.5-flash", usage) == pytest.approx(hand(FLASH, 10, 2))  # fast path
