"""The baseline of benchmark 4: a bare ``httpx.AsyncClient`` posting tweetgen's bodies with the same
concurrency.

No retries, logging, validation or store: what the sandbox and loopback allow a client in one
process. Run: ``python bench/raw_batch.py TOPICS_FILE BASE_URL -o OUT.jsonl --concurrency 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import httpx

from tweetgen.config import DEFAULT_MODEL
from tweetgen.prompts import default_registry
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import build_body
from tweetgen.request import TweetRequest

KEY = "bench-key"


async def _one(
    client: httpx.AsyncClient, endpoint: str, topic: str, gate: asyncio.Semaphore
) -> str:
    body = build_body(GenerationRequest(prompt=TweetRequest(topic).render(default_registry)))
    async with gate:
        response = await client.post(endpoint, json=body)
    response.raise_for_status()
    candidate = response.json()["candidates"][0]
    parts = candidate.get("content", {}).get("parts") or [{}]  # none: thinking spent the tokens
    return str(parts[0].get("text", ""))


async def _run(topics: list[str], base_url: str, concurrency: int) -> list[str]:
    endpoint = f"{base_url}/v1beta/models/{DEFAULT_MODEL}:generateContent"
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(headers={"x-goog-api-key": KEY}, timeout=30) as client:
        return await asyncio.gather(*(_one(client, endpoint, topic, gate) for topic in topics))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("input", type=Path, help="one topic a line")
    parser.add_argument("base_url", help="the sandbox's base URL")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON Lines out")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    args = parser.parse_args()
    topics = [
        line.strip() for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    texts = asyncio.run(_run(topics, args.base_url, args.concurrency))
    with args.output.open("w", encoding="utf-8") as out:
        for topic, text in zip(topics, texts, strict=True):
            status = "ok" if text else "failed"
            out.write(json.dumps({"topic": topic, "text": text, "status": status}) + "\n")


if __name__ == "__main__":
    main()
