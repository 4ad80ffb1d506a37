"""One process of a fleet (bench/fleet_limits.py, tests/test_shared_fleet.py): calls the sandbox at
``--base-url`` through a throttled provider, sharing its limits at ``--shared`` (empty: its own
limits only), and prints what it saw as one JSON line.

It prints ``ready`` once connected (``rate``: after one call, so the first timed call is not
slowed by imports and connecting), then reads the start (a wall-clock time, the same for the whole
fleet) from stdin. ``rate``: ``--concurrency`` tasks call in a loop from the start for
``--seconds``. ``outage``: ``--calls`` calls in all, by
``--concurrency`` tasks, against a sandbox answering 503 to everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

from tweetgen import TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import TweetGenError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.retry import RetryPolicy
from tweetgen.throttle import ThrottledProvider


class _Events(logging.Handler):
    """Counts tweetgen's structured events by name."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.seen[str(record.msg.get("event"))] += 1


def _generator(args: argparse.Namespace) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="test-key", model="m", base_url=args.base_url, name="sandbox", secret_key=False
    )
    throttled = ThrottledProvider(provider, rpm=args.rpm, tpm=args.tpm, shared=args.shared or None)
    policy = RetryPolicy.from_retries(
        args.retries, base_delay=args.base_delay, jitter="full", retry_rate_limits=True
    )
    return TweetGenerator(
        provider=[throttled],
        settings=load_settings(env={}, dotenv_path=None),
        policy=policy,
        shared=args.shared,
    )


async def _run(args: argparse.Namespace, outcomes: Counter[str]) -> None:
    generator = _generator(args)
    left = [args.calls]

    async def worker(index: int) -> None:
        n = 0
        while True:
            if args.mode == "rate" and time.time() >= args.start_at + args.seconds:
                return
            if args.mode == "outage":
                if left[0] <= 0:
                    return
                left[0] -= 1
            n += 1
            try:
                await generator.agenerate(f"topic {index}-{n}")
                outcomes["ok"] += 1
            except TweetGenError as error:
                outcomes[type(error).__name__] += 1

    if args.shared:  # connect (and create the tables) before the start, not on the clock
        from tweetgen.shared import fleet

        await fleet(args.shared).aacquire("warm-up", 0.0, 0.0)
    if args.mode == "rate":  # one call before the start: imports and connections made
        await generator.agenerate("warm up")
    print("ready", flush=True)
    args.start_at = float(await asyncio.to_thread(sys.stdin.readline) or 0.0)
    try:
        if (wait := args.start_at - time.time()) > 0:
            await asyncio.sleep(wait)
        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    finally:
        await generator.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("rate", "outage"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--shared", default="")
    parser.add_argument("--rpm", type=float)
    parser.add_argument("--tpm", type=float)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--base-delay", type=float, default=0.05)
    args = parser.parse_args()
    args.start_at = 0.0
    handler = _Events()
    logger = logging.getLogger("tweetgen")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    asyncio.run(_run(args, outcomes))
    report: dict[str, Any] = {
        "outcomes": dict(outcomes),
        "calls": sum(outcomes.values()),
        "events": dict(handler.seen),
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
