"""Stores for the review page's tests and benchmark: calls written through Store.write, as a batch
would leave them (ok and failed calls, retried attempts, known and unknown costs)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from tweetgen.store import CallRecord, CallRow, Store, utc_iso
from tweetgen.trace import Observer

__all__ = ["AttemptSpec", "add_batch", "add_call", "record", "sandbox_engine", "tweet_text"]

START = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
#: (status code, error type, latency ms, delay before) of one attempt
AttemptSpec = tuple[int | None, str | None, float, float]
OK: tuple[AttemptSpec, ...] = ((200, None, 420.0, 0.0),)
RETRIED: tuple[AttemptSpec, ...] = (
    (503, "ServerError", 80.0, 0.0),
    (429, "RateLimitError", 60.0, 0.5),
    (200, None, 510.0, 1.0),
)


def tweet_text(n: int) -> str:
    """A plain tweet of a dozen words, different for each ``n``."""
    return f"Tweet number {n}: small steps every day add up to a big change #habits"


def record(
    text: str | None,
    *,
    at: datetime = START,
    batch_id: str | None = None,
    row_number: int | None = None,
    provider: str = "sandbox",
    model: str = "gemini-2.5-flash",
    topic: str = "habits",
    max_words: int = 25,
    attempts: Sequence[AttemptSpec] = OK,
    cost_usd: float | None = 0.000125,
    tier: str | None = None,
    thought_tokens: int = 12,
) -> CallRecord:
    """One call's record (``text`` None: a failed call)."""
    ok = text is not None
    inputs = {"topic": topic, "tone": "professional", "max_words": max_words}
    call = {
        "request_id": f"req-{row_number}-{at.timestamp()}",
        "idempotency_key": None if batch_id is None else f"key-{batch_id}-{row_number}",
        "batch_id": batch_id,
        "row_number": row_number,
        "created_at": utc_iso(at),
        "provider": provider,
        "model": model,
        "topic": topic,
        "tone": "professional",
        "max_words": max_words,
        "inputs_json": json.dumps(inputs, sort_keys=True),
        "status": "ok" if ok else "failed",
        "text": text,
        "error_type": None if ok else "ServerError",
        "error_message": None if ok else "the server failed",
        "attempts": len(attempts),
        "regenerations": 0,
        "latency_ms": sum(a[2] for a in attempts) if ok else None,
        "input_tokens": 40,
        "output_tokens": 20,
        "waited_seconds": sum(a[3] for a in attempts),
        "thought_tokens": thought_tokens,
        "service_tier": tier,
        "cost_usd": cost_usd,
        "quota_kind": None,
    }
    rows = tuple(
        {
            "number": n,
            "started_at": utc_iso(at + timedelta(milliseconds=10 * n)),
            "delay_before": delay,
            "latency_ms": latency,
            "status_code": status,
            "error_type": error,
            "error_message": None if error is None else f"{error} happened",
            "input_tokens": 40,
            "output_tokens": 20 if error is None else 0,
            "finish_reason": "STOP" if error is None else None,
            "response_model": model if error is None else None,
            "thought_tokens": thought_tokens if error is None else 0,
            "service_tier": tier if error is None else None,
            "cost_usd": (cost_usd if error is None else 0.0),
            "quota_kind": None,
        }
        for n, (status, error, latency, delay) in enumerate(attempts, 1)
    )
    return CallRecord(call, rows)


def add_call(store: Store, text: str | None, **options: object) -> int:
    """Write one call; its id."""
    return store.write(record(text, **options))  # type: ignore[arg-type]


def add_batch(
    store: Store,
    batch_id: str,
    rows: int,
    *,
    at: datetime = START,
    text: object = tweet_text,
    **options: object,
) -> list[int]:
    """A batch of ``rows`` ok calls (rows 1..n, a minute apart from ``at``); their ids."""
    make = text if callable(text) else (lambda n: str(text))
    return [
        add_call(
            store,
            make(n),
            at=at + timedelta(seconds=n),
            batch_id=batch_id,
            row_number=n,
            **options,
        )
        for n in range(1, rows + 1)
    ]


def sandbox_engine(
    url: str, sleep: Callable[[float], object]
) -> Callable[[CallRow, Observer], Any]:
    """The review's default engine construction pointed at a sandbox on loopback (a fake key),
    its waits on ``sleep`` (the tests never sleep for real)."""
    from tweetgen.config import load_settings
    from tweetgen.generator import TweetGenerator

    def build(row: CallRow, observer: Observer) -> TweetGenerator:
        env = {"GEMINI_API_KEY": "test-key-123", "GEMINI_BASE_URL": url}
        settings = load_settings(env=env, dotenv_path=None, model=row.model)
        return TweetGenerator(
            provider=row.provider, settings=settings, observers=[observer], sleep=sleep
        )

    return build
