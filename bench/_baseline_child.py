"""One side of the before/after comparison: a worker that times calls with whichever tweetgen its
``PYTHONPATH`` holds (benchmark 0, ``bench/baseline.py``).

``python _baseline_child.py SANDBOX_URL LOG_FILE WARMUP`` warms up, prints ``ready PATH`` (the
tweetgen it imported), then answers every ``round N`` line on stdin with one JSON line: the mean
wall and CPU seconds of ``N`` raw httpx posts and of ``N`` ``generate_tweet`` calls, timed back to
back in this one process (their order alternates round by round). An empty line or end of input
ends it. Only the public API is used, as it was at the baseline commit: the same script runs against
both trees.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import httpx

import tweetgen
from tweetgen import generate_tweet
from tweetgen.logs import setup_logging
from tweetgen.prompts import default_registry
from tweetgen.request import TweetRequest

TOPIC = "Python Programming"
KEY = "bench-key"
MODEL = "gemini-flash-latest"


def _raw(client: httpx.Client, base_url: str) -> Callable[[], object]:
    """A bare post of the body tweetgen sends for the same prompt."""
    prompt = TweetRequest(TOPIC).render(default_registry)
    body = {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"maxOutputTokens": 1024, "candidateCount": 1},
    }
    endpoint = f"{base_url}/v1beta/models/{MODEL}:generateContent"
    return lambda: client.post(endpoint, json=body)


def _timed(call: Callable[[], object], inner: int) -> tuple[float, float]:
    """Mean wall and CPU seconds of ``inner`` back-to-back calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(inner):
        call()
    return (time.perf_counter() - wall) / inner, (time.process_time() - cpu) / inner


def main(argv: list[str]) -> int:
    base_url, log_file, warmup = argv[0], argv[1], int(argv[2])
    setup_logging("INFO", log_file, console=False)
    headers = {"x-goog-api-key": KEY, "content-type": "application/json"}
    with httpx.Client(headers=headers) as client:
        calls = {
            "raw": _raw(client, base_url),
            "tweetgen": lambda: generate_tweet(TOPIC, api_key=KEY, base_url=base_url),
        }
        for call in calls.values():
            for _ in range(warmup):
                call()
        print("ready", tweetgen.__file__, flush=True)
        for number, line in enumerate(sys.stdin):
            if not line.strip():
                break
            inner = int(line.split()[1])
            names = list(calls) if number % 2 == 0 else list(reversed(calls))
            result: dict[str, float] = {}
            for name in names:
                result[name], result[f"{name}_cpu"] = _timed(calls[name], inner)
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
