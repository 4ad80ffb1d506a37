"""What each thinking level spends on tweets, and what a variant set costs as one JSON array against
``candidateCount`` candidates: on the sandbox's token counts (issue 15, parts 1 and 5).

    .venv/bin/python bench/thinking_spend.py [--calls 200]

For each model family and level: ``--calls`` tweets (seeds 0..N-1, one topic), the tokens the
sandbox reported for every attempt (input, output, thought), the all-thoughts answers that had to be
asked again, and any call that ended without a tweet. Then variant sets of 3 both ways. The
sandbox's thinking is a model of the real one (:mod:`tweetgen.sandbox.thoughts`): these numbers say
what tweetgen's policy does with such a model, not what Gemini bills.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tweetgen import TweetGenerator
from tweetgen.config import Settings
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import CallTrace

MODELS = ("gemini-2.5-flash", "gemini-3-flash-preview")
LEVELS = ("off", "low", "medium", "high", "auto")
TOPIC = "why unit tests pay for themselves"


class _Attempts:
    """An observer that adds up every attempt's tokens."""

    def __init__(self) -> None:
        self.input = self.output = self.thought = self.attempts = self.recovered = 0

    def call_finished(self, call: CallTrace) -> None:
        for attempt in call.attempts:
            self.attempts += 1
            self.input += attempt.input_tokens
            self.output += attempt.output_tokens
            self.thought += attempt.thought_tokens  # an all-thoughts answer's too (trace.py)
        self.recovered += int(call.scratch.get("thought_recoveries", 0))


@contextmanager
def _generator(server: SandboxServer, model: str, **options: Any) -> Iterator[Any]:
    tally = _Attempts()
    provider = GeminiProvider(api_key="bench-key", model=model, base_url=server.url)
    generator = TweetGenerator(
        provider=provider, settings=Settings(model=model), observers=[tally], **options
    )
    with generator:
        yield generator, tally


def _thinking(calls: int) -> None:
    print(f"{'model':24} {'level':6} {'tok/tweet':>9} {'thought':>8} {'asked':>6} {'failed':>6}")
    for model in MODELS:
        for level in LEVELS:
            failed = 0
            with SandboxServer() as server, _generator(server, model, thinking=level) as (gen, t):
                for seed in range(calls):
                    try:
                        gen.generate(TOPIC, seed=seed)
                    except Exception:  # counted: a call that ended without a tweet
                        failed += 1
            total = t.input + t.output + t.thought
            print(
                f"{model:24} {level:6} {total / calls:9.1f} {t.thought / calls:8.1f} "
                f"{t.recovered:6d} {failed:6d}"
            )


def _variants(sets: int) -> None:
    print(f"\n{'variant set of 3':24} {'calls':>6} {'input':>7} {'output':>7} {'thought':>8}")
    for model in ("gemini-2.0-flash", "gemini-3-flash-preview"):
        for structured in (True, False):
            with SandboxServer() as server, _generator(server, model) as (gen, t):
                gen.structured = structured
                for seed in range(sets):
                    gen.generate_variants(TOPIC, n=3, seed=seed)
                calls = len(server.requests)
            how = "JSON array" if structured else "candidateCount"
            print(
                f"{model[:10] + ' ' + how:24} {calls / sets:6.2f} {t.input / sets:7.1f} "
                f"{t.output / sets:7.1f} {t.thought / sets:8.1f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    logging.getLogger("tweetgen").setLevel(logging.CRITICAL)
    _thinking(args.calls)
    _variants(args.calls // 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
