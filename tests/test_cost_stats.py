"""Cost in dollars through a call and the store (issue 15, part 6): every answer priced where the
provider's answers pass, and ``tweetgen stats`` dollars equal to a hand computation from the stored
tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeTime
from store_backends import any_target as any_target

from tweetgen import TweetGenerator
from tweetgen.cli import main
from tweetgen.config import load_settings
from tweetgen.errors import EmptyResponseError
from tweetgen.providers._body import Answer
from tweetgen.providers.base import GenerationRequest, GenerationResult, Usage
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.openai import OpenAIProvider
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import SandboxServer
from tweetgen.spend import render_lines
from tweetgen.stats import compute_stats, render_text
from tweetgen.store import Store
from tweetgen.trace import AttemptTrace, CallTrace

pytest.importorskip("genai_prices")

#: dollars per million tokens (input; output and thinking), from Google's pricing page, by hand
PRICES = {
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),  # prompts up to 200k tokens
}
T0 = datetime(2026, 11, 30, 23, 58, tzinfo=timezone.utc)


def by_hand(model: str, input_tokens: int, output_tokens: int, thought_tokens: int) -> float:
    price_in, price_out = PRICES[model]
    return (input_tokens * price_in + (output_tokens + thought_tokens) * price_out) / 1_000_000


def _generator(url: str, model: str, store: Store, fake: FakeTime) -> TweetGenerator:
    return TweetGenerator(
        provider=GeminiProvider(api_key="test-key-123", model=model, base_url=url, name="sandbox"),
        settings=load_settings(env={}, dotenv_path=None),
        policy=RetryPolicy.from_retries(1),
        sleep=fake.sleep,
        clock=fake.clock,
        observers=[store.observer()],
    )


def _stats_json(target: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["stats", "--db", target, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_stats_dollars_equal_a_hand_computation_for_three_models(
    any_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeTime()
    with Store(any_target) as store, SandboxServer() as server:
        for model in PRICES:
            with _generator(server.url, model, store, fake) as generator:
                for topic in ("Python", "tea", "the sea"):
                    tweet = generator.generate(topic, "casual", 20)
                    assert tweet.cost_usd is not None
                    assert tweet.cost_usd > 0
        calls = {c.id: c for c in store.calls()}
        attempts = list(store.attempts())
    expected: defaultdict[str, float] = defaultdict(float)
    for attempt in attempts:  # the stored tokens, priced by hand
        model = calls[attempt.call_id].model
        assert attempt.input_tokens > 0
        cost = by_hand(model, attempt.input_tokens, attempt.output_tokens, attempt.thought_tokens)
        assert attempt.cost_usd == pytest.approx(cost, rel=1e-9)
        expected[model] += cost
    spend = _stats_json(any_target, capsys)["spend"]
    assert {row["model"]: row["cost_usd"] for row in spend["by_model"]} == pytest.approx(
        dict(expected), abs=2e-9
    )
    assert [row["calls"] for row in spend["by_model"]] == [3, 3, 3]
    assert spend["cost_usd"] == pytest.approx(sum(expected.values()), abs=2e-9)
    assert (spend["priced_calls"], spend["unknown_calls"]) == (9, 0)
    assert [row["day"] for row in spend["by_day"]] == [calls[min(calls)].created_at[:10]]


def test_a_model_without_a_price_is_counted_as_cost_unknown(
    any_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeTime()
    with Store(any_target) as store, SandboxServer() as server:
        for model in ("my-finetune", "gemini-2.5-flash"):
            with _generator(server.url, model, store, fake) as generator:
                tweet = generator.generate("Python", "casual", 20)
                assert (tweet.cost_usd is None) == (model == "my-finetune")
        text = render_text(compute_stats(store))
    spend = _stats_json(any_target, capsys)["spend"]
    assert (spend["priced_calls"], spend["unknown_calls"]) == (1, 1)
    rows = {row["model"]: (row["unknown_calls"], row["cost_usd"]) for row in spend["by_model"]}
    assert rows["my-finetune"] == (1, None)  # unknown, not $0
    assert rows["gemini-2.5-flash"][0] == 0
    assert rows["gemini-2.5-flash"][1] > 0
    line = next(line for line in text.splitlines() if line.strip().startswith("cost unknown"))
    assert line.split()[2] == "1"


def _call(index: int, model: str, tiers: list[tuple[str | None, float | None]]) -> CallTrace:
    attempts = []
    for number, (tier, cost) in enumerate(tiers, 1):
        attempt = AttemptTrace(number=number, latency_ms=20.0, status_code=200)
        attempt.input_tokens, attempt.output_tokens, attempt.thought_tokens = 1000, 100, 300
        attempt.service_tier, attempt.cost_usd, attempt.response_model = tier, cost, model
        attempts.append(attempt)
    return CallTrace(
        request_id=f"c{index}",
        provider="gemini",
        model=model,
        inputs={"topic": "Python", "tone": "casual", "max_words": 20},
        started_at=(T0 + timedelta(minutes=index)).timestamp(),
        attempts=attempts,
        status="ok",
        text="A tweet.",
        latency_ms=40.0,
    )


def test_flex_and_batch_savings_and_days_from_the_stored_tokens(any_target: str) -> None:
    full = by_hand("gemini-2.5-flash", 1000, 100, 300)
    pro = by_hand("gemini-2.5-pro", 1000, 100, 300)
    with Store(any_target) as store:
        observer = store.observer()
        for index, model, tiers in [
            (0, "gemini-2.5-flash", [("flex", full / 2)]),
            (1, "gemini-2.5-flash", [(None, full)]),
            (2, "gemini-2.5-pro", [("batch", pro / 2)]),  # 23:58 + 2 min: the next UTC day
            (3, "gemini-2.5-flash", [("flex", full / 2), ("standard", full)]),
            (4, "gemini-2.5-pro", [("flex", None)]),  # unknown: no saving can be said
        ]:
            observer.call_finished(_call(index, model, tiers))
        spend = compute_stats(store).spend
    savings = {s.tier: (s.answers, s.standard_usd, s.cost_usd, s.saved_usd) for s in spend.savings}
    assert savings == {
        "flex": (2, pytest.approx(2 * full), pytest.approx(full), pytest.approx(full)),
        "batch": (1, pytest.approx(pro), pytest.approx(pro / 2), pytest.approx(pro / 2)),
    }
    assert spend.saved_usd == pytest.approx(full + pro / 2)
    assert spend.cost_usd == pytest.approx(full / 2 + full + pro / 2 + full / 2 + full)
    assert (spend.priced_calls, spend.unknown_calls) == (4, 1)
    days = {row.key: (row.calls, row.unknown) for row in spend.by_day}
    assert days == {"2026-11-30": (2, 0), "2026-12-01": (3, 1)}
    lines = render_lines(spend)
    assert any(line.split()[:3] == ["saved", "by", "flex"] for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_an_answer_is_priced_with_its_latency_in_one_copy() -> None:
    provider = GeminiProvider(api_key="test-key-123", model="gemini-2.5-flash")
    result = GenerationResult(
        ("a",), "gemini", "gemini-2.5-flash", ("STOP",), Usage(1000, 100, 300, 1400), "v", "id"
    )
    priced = provider._priced(result, 12.5)
    cost = by_hand("gemini-2.5-flash", 1000, 100, 300)
    assert priced == dataclasses.replace(result, latency_ms=12.5, cost_usd=pytest.approx(cost))
    said = dataclasses.replace(result, cost_usd=0.25)  # a cost the parser knew is kept
    assert provider._priced(said, 1.0).cost_usd == 0.25
    flex = dataclasses.replace(result, service_tier="flex", model_version="gemini-2.5-flash")
    assert provider._priced(flex, 1.0).cost_usd == pytest.approx(cost / 2)


def test_answers_of_a_local_openai_compatible_server_cost_unknown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "model": "gpt-4o-mini",
                "choices": [{"message": {"content": "A tweet."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )

    local = OpenAIProvider(
        api_key=None,
        model="gpt-4o-mini",
        base_url="http://127.0.0.1:11434/v1",
        transport=httpx.MockTransport(answer),
    )
    assert local.generate(GenerationRequest(prompt="p")).cost_usd is None
    local.close()
    openai = OpenAIProvider(
        api_key="test-key-123", model="gpt-4o-mini", transport=httpx.MockTransport(answer)
    )
    # OpenAI's own API: its price list ($0.15 in, $0.60 out per million tokens)
    assert openai.generate(GenerationRequest(prompt="p")).cost_usd == pytest.approx(
        (10 * 0.15 + 5 * 0.60) / 1e6
    )
    openai.close()


def test_an_answer_refused_but_billed_carries_its_cost() -> None:
    class RefusedError(EmptyResponseError):
        def __init__(self, usage: Usage) -> None:
            super().__init__("all thoughts", finish_reason="MAX_TOKENS")
            self.usage = usage

    class AllThoughts(GeminiProvider):
        def parse_response(self, content: bytes, *, status_code: int) -> GenerationResult:
            raise RefusedError(Usage(input_tokens=50, output_tokens=0, thought_tokens=1000))

    provider = AllThoughts(api_key="test-key-123", model="gemini-2.5-flash")
    answer = Answer(httpx.Response(200, request=httpx.Request("POST", provider.url)), b"{}")
    with pytest.raises(RefusedError) as raised:
        provider._finish(answer, 0.0)
    assert raised.value.cost_usd == pytest.approx(  # type: ignore[attr-defined]
        by_hand("gemini-2.5-flash", 50, 0, 1000)
    )


def test_the_tweet_and_the_success_event_carry_the_answers_cost(
    tmp_path: Path, events: Any, sandbox_server: SandboxServer
) -> None:
    fake = FakeTime()
    with Store(str(tmp_path / "t.db")) as store:
        with _generator(sandbox_server.url, "gemini-2.5-pro", store, fake) as generator:
            tweet = generator.generate("Python", "casual", 20)
        attempts = list(store.attempts())
    costs = [
        by_hand("gemini-2.5-pro", a.input_tokens, a.output_tokens, a.thought_tokens)
        for a in attempts
    ]
    assert tweet.cost_usd == pytest.approx(sum(costs), rel=1e-9)  # regenerations included
    succeeded = [e for e in events() if e["event"] == "API request successful"]
    assert [e["cost_usd"] for e in succeeded] == [pytest.approx(c, rel=1e-9) for c in costs]
