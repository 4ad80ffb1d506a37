"""Reproduce the seed's "Performance Impact" table: real sleeps, scripted 503s, the sandbox over
loopback.

Each answer that succeeds takes ``--latency`` seconds (the seed assumes ~300 ms); a scripted 503
answers at once. Run: ``python bench/retry_impact.py`` (about 15 s).
"""

from __future__ import annotations

import argparse
import contextlib
import time

from tweetgen import RetryPolicy, TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import ServerError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer

SCENARIOS = [
    ("Success (1st attempt)", "ok:{lat}", 0.0),
    ("Success (2nd attempt)", "503,ok:{lat}", 1.0),
    ("Success (3rd attempt)", "503*2,ok:{lat}", 3.0),
    ("All attempts fail", "503*4", 7.0),
]


def measure(faults: str) -> tuple[float, int]:
    """Seconds and attempts of one generate_tweet-equivalent call with the default policy (3
    retries)."""
    with SandboxServer(faults=faults) as server:
        provider = GeminiProvider(
            api_key="bench", model="gemini-flash-latest", base_url=server.url, secret_key=False
        )
        settings = load_settings(env={}, dotenv_path=None)
        generator = TweetGenerator(provider=provider, settings=settings, policy=RetryPolicy())
        started = time.perf_counter()
        with contextlib.suppress(ServerError):
            generator.generate("Artificial Intelligence")
        elapsed = time.perf_counter() - started
        generator.close()
        return elapsed, len(server.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--latency", type=float, default=0.3, help="seconds per successful answer (default 0.3)"
    )
    args = parser.parse_args()
    print("| Scenario | Attempts | Measured latency | Retry overhead (seed) | Seed's latency |")
    print("|---|---|---|---|---|")
    for name, faults, overhead in SCENARIOS:
        elapsed, attempts = measure(faults.format(lat=args.latency))
        seed = overhead + (args.latency if "ok" in faults else 0.3)
        print(f"| {name} | {attempts} | {elapsed:.2f} s | +{overhead:g} s | ~{seed:.1f} s |")


if __name__ == "__main__":
    main()
