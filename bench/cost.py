"""Cost per 1,000 tweets (issue 15): standard, flex, batch and priority, on the sandbox's token
counts, priced with :func:`tweetgen.pricing.cost_usd` (genai-prices' bundled prices).

For each model, ``--tweets`` tweets are generated through an in-process sandbox (the default
prompt, thinking as tweetgen asks for it by default, varied topics); every attempt's tokens are
kept, regenerations included, and each attempt is priced at each tier. The figure is dollars per
1,000 tweets delivered. The sandbox's counts are its own (words x 4/3, thoughts simulated): they
show the arithmetic and the tiers' ratios, not what Gemini will count for the same prompt.

Run alone: ``python bench/cost.py [--tweets 100]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _common import Config, Section, Table, Target

from tweetgen import TweetGenerator
from tweetgen.config import load_settings
from tweetgen.pricing import cost_usd
from tweetgen.providers.base import Usage
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import CallTrace, Observer

__all__ = ["MODELS", "TIERS", "main", "measure", "run"]

#: current models, cheapest first (gemini-flash-latest is tweetgen's default)
MODELS = ("gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-flash-latest", "gemini-2.5-pro")
TIERS = ("standard", "flex", "batch", "priority")
TOPICS = ("Python", "tea", "the sea", "open source", "bicycles", "rain", "jazz", "compilers")
HEADERS = ("model", "tokens per tweet (in / out / thinking)", *(f"{t} $/1k" for t in TIERS))


class _Attempts(Observer):
    """Keeps every answered attempt's tokens."""

    def __init__(self) -> None:
        self.usages: list[Usage] = []
        self.model_versions: list[str | None] = []

    def call_finished(self, call: CallTrace) -> None:
        for attempt in call.attempts:
            if attempt.ok:
                usage = Usage(attempt.input_tokens, attempt.output_tokens, attempt.thought_tokens)
                self.usages.append(usage)
                self.model_versions.append(attempt.response_model)


@dataclass(frozen=True)
class ModelCost:
    """One model's tokens per tweet and dollars per 1,000 tweets at each tier (None: unknown)."""

    model: str
    tweets: int
    attempts: int
    tokens: tuple[float, float, float]
    per_1k: dict[str, float | None]
    seconds: float


def _price(model: str, seen: _Attempts, tier: str, tweets: int) -> float | None:
    costs = [
        cost_usd(model, usage, tier=tier, response_model=version)
        for usage, version in zip(seen.usages, seen.model_versions, strict=True)
    ]
    if not costs or None in costs:
        return None
    return sum(c for c in costs if c is not None) / tweets * 1000


def measure_model(model: str, tweets: int, url: str) -> ModelCost:
    """Generate ``tweets`` tweets with ``model`` through the sandbox at ``url`` and price them."""
    seen = _Attempts()
    provider = GeminiProvider(api_key="sandbox", model=model, base_url=url, name="sandbox")
    settings = load_settings(env={}, dotenv_path=None)
    started = time.perf_counter()
    with TweetGenerator(
        provider=provider, settings=settings, observers=[seen], sleep=lambda _: None
    ) as generator:
        for n in range(tweets):
            generator.generate(TOPICS[n % len(TOPICS)], "casual", 25)
    seconds = time.perf_counter() - started
    count = len(seen.usages)
    tokens = tuple(
        sum(getattr(u, name) for u in seen.usages) / tweets
        for name in ("input_tokens", "output_tokens", "thought_tokens")
    )
    per_1k = {tier: _price(model, seen, tier, tweets) for tier in TIERS}
    return ModelCost(model, tweets, count, (tokens[0], tokens[1], tokens[2]), per_1k, seconds)


def measure(tweets: int) -> list[ModelCost]:
    """Every model of :data:`MODELS` through one in-process sandbox."""
    with SandboxServer() as server:
        return [measure_model(model, tweets, server.url) for model in MODELS]


def _dollars(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _rows(costs: list[ModelCost]) -> list[tuple[str, ...]]:
    return [
        (
            c.model,
            " / ".join(f"{t:.1f}" for t in c.tokens),
            *(_dollars(c.per_1k[tier]) for tier in TIERS),
        )
        for c in costs
    ]


def _summary(cost: ModelCost) -> str:
    prices = ", ".join(f"{_dollars(cost.per_1k[t])} {t}" for t in ("standard", "flex", "batch"))
    return f"{cost.model}: {prices} per 1,000 tweets"


def run(config: Config, workdir: Path) -> Section:
    """The table as a report section (registered in bench/run.py as the ``cost`` stage)."""
    tweets = 40 if config.quick else 200
    costs = measure(tweets)
    default = next(c for c in costs if c.model == "gemini-flash-latest")
    attempts = sum(c.attempts for c in costs) / sum(c.tweets for c in costs)
    return Section(
        title="Cost per 1,000 tweets: standard, flex, batch and priority",
        method=(
            f"{tweets} tweets per model through an in-process sandbox ({attempts:.2f} answered "
            "attempts per tweet, regenerations included); each attempt's tokens priced with "
            "tweetgen.pricing.cost_usd (genai-prices' bundled prices; flex and batch at their "
            "listed price or Google's 50 %, priority only where a rate is listed). The sandbox's "
            "token counts are its own, not Gemini's."
        ),
        tables=[Table("Dollars per 1,000 tweets (sandbox token counts)", HEADERS, _rows(costs))],
        targets=[
            Target(
                "cost per 1,000 tweets",
                "standard, flex and batch on the sandbox's token counts, stated",
                _summary(default),
                None,
            )
        ],
        notes=[f"{c.model}: {c.tweets} tweets in {c.seconds:.2f} s" for c in costs],
        commands=["python bench/cost.py"],
    )


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=100, help="tweets generated per model")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    costs = measure(args.tweets)
    print(f"Dollars per 1,000 tweets, {args.tweets} tweets per model on the sandbox's token counts")
    rows = [HEADERS, *_rows(costs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
