"""The seed's demo: a normal call, a 503 retried to success, and a 401 and a 429 that are not
retried."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from .config import SANDBOX_NOTICE, Settings, load_settings
from .errors import TweetGenError
from .generator import TweetGenerator
from .providers.gemini import GeminiProvider
from .retry import RetryPolicy
from .sandbox import SandboxServer

__all__ = ["run_demo"]

TOPIC = "Artificial Intelligence"


def _scripted(
    server: SandboxServer, settings: Settings, sleep: Callable[[float], None]
) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="sandbox",
        model=settings.model,
        base_url=server.url,
        name="sandbox",
        secret_key=False,
    )
    return TweetGenerator(
        provider=provider, settings=settings, policy=RetryPolicy.from_retries(3), sleep=sleep
    )


def _scenario(
    title: str, faults: str, settings: Settings, sleep: Callable[[float], None], out: TextIO
) -> bool:
    """Run one scripted scenario; True when it ended as the seed says it should."""
    print(f"\n== {title} (sandbox fault script: {faults})", file=out)
    with SandboxServer(faults=faults) as server, _scripted(server, settings, sleep) as generator:
        try:
            tweet = generator.generate(TOPIC, "professional", 25)
        except TweetGenError as error:
            print(f"   not retried: {error} (attempts: {error.attempts})", file=out)
            return faults in ("401", "429") and error.attempts == 1
        print(
            f"   {tweet.text}\n   (provider {tweet.provider}, attempts {tweet.attempts}, "
            f"{tweet.latency_ms:.0f} ms)",
            file=out,
        )
        return tweet.attempts == 2


def _normal(settings: Settings, out: TextIO) -> bool:
    provider = "gemini" if settings.api_key else "sandbox"
    if provider == "sandbox":
        print(SANDBOX_NOTICE, file=sys.stderr)
    print(f"== Normal generation ({provider}, model {settings.model})", file=out)
    try:
        with TweetGenerator(provider=provider, settings=settings) as generator:
            tweet = generator.generate(TOPIC, "professional", 25)
    except TweetGenError as error:
        print(f"   failed: {error}", file=out)
        return False
    print(
        f"   {tweet.text}\n   (provider {tweet.provider}, attempts {tweet.attempts}, "
        f"{tweet.latency_ms:.0f} ms)",
        file=out,
    )
    return True


def run_demo(
    *,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settings: Settings | None = None,
) -> int:
    """Run the four scenarios; 0 when each behaved as the seed describes, else 1."""
    out = out or sys.stdout
    settings = settings or load_settings()
    results = [
        _normal(settings, out),
        _scenario("Server error, then success on retry (503)", "503", settings, sleep, out),
        _scenario("Authentication error, not retried (401)", "401", settings, sleep, out),
        _scenario("Rate limit, not retried by default (429)", "429", settings, sleep, out),
    ]
    print(f"\n{sum(results)} of {len(results)} scenarios behaved as expected", file=out)
    return 0 if all(results) else 1
