"""Benchmark 5: the cost of tweetgen's configured log pipeline (context, redaction, truncation,
JSON) to a file.

The events are the two a successful call writes ("Making API request", "API request successful")
with the fields the provider gives them; the baseline writes the same fields as JSON through a bare
stdlib ``logging.FileHandler`` (no structlog, no redaction).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog
from _common import (
    Config,
    Sample,
    Section,
    Table,
    Target,
    interleave,
    paired_ratios,
    per_call,
    ratio,
)
from per_call import QUIET, TOPIC, TWEETGEN, PerCallResult

from tweetgen import events
from tweetgen.config import DEFAULT_MODEL
from tweetgen.logs import setup_logging
from tweetgen.prompts import default_registry
from tweetgen.providers.base import GenerationResult, Usage
from tweetgen.request import TweetRequest

__all__ = ["run"]

OURS, PLAIN = (
    "tweetgen pipeline (structlog, redaction, JSON) to a file",
    "bare stdlib logging of the same JSON",
)
#: a Google-key-shaped value: the redactor's patterns and its secret list both run
SECRET = "AIza" + "B" * 35
ANSWER = (
    "Python Programming is reshaping how teams deliver value. Worth your time this week. "
    "#PythonProgramming"
)
#: how the pipeline keeps its per-event cost down (issue 13), said in the report
CHOICES = [
    "tweetgen's own events take a direct route when every handler they reach is one setup_logging "
    "installed (no foreign handler, no filter): the chain's processors run once and each handler's "
    "formatter renders the line, with no LogRecord and no second pass through ProcessorFormatter; "
    "the line is the one the standard route writes (tests/test_perf_paths.py).",
    "Redaction runs once per event, behind two pre-checks: one compiled search for any registered "
    "secret's anchors (its value, encoded forms and 8-character ends) and one for the words every "
    "secret-shaped pattern needs (AIza, key, authorization, bearer, ://); short texts already seen "
    "(event names, model, ids) are looked up in a bounded cache. Numbers, None and tweetgen's own "
    "level and timestamp are not looked at.",
    "Previews are lazy (tweetgen.logs.preview returns a Preview): cut and redacted once, when the "
    "event is written, never when its level is off.",
    "The log file is flushed after every record (about 2 us: a crash or SIGKILL loses nothing "
    "logged); whether logrotate renamed or removed it is one os.stat at most every 0.1 s (and at "
    "once for a warning or an error), no longer three per record.",
]
EVENTS_PER_CALL = 2


def _fields(prompt: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("Making API request", {"url_endpoint": DEFAULT_MODEL, "prompt_length": len(prompt)}),
        (
            "API request successful",
            {
                "status_code": 200,
                "latency_ms": 1.23,
                "response_length": len(ANSWER),
                "input_tokens": 64,
                "output_tokens": 18,
                "thought_tokens": 0,
                "finish_reason": "STOP",
            },
        ),
    ]


def _ours(log_file: Path, prompt: str) -> Callable[[], None]:
    """One call's events as the provider emits them (tweetgen.events), with the call's context
    bound as the generator binds it."""
    setup_logging("INFO", str(log_file), console=False, secrets=[SECRET])
    done = _fields(prompt)[1][1]
    result = GenerationResult(
        (ANSWER,),
        "gemini",
        DEFAULT_MODEL,
        ("STOP",),
        Usage(done["input_tokens"], done["output_tokens"], done["thought_tokens"]),
    )

    def emit() -> None:
        with (
            structlog.contextvars.bound_contextvars(
                request_id="0123456789abcdef", provider="gemini", model=DEFAULT_MODEL
            ),
            structlog.contextvars.bound_contextvars(attempt=1),
        ):
            events.request_started(DEFAULT_MODEL, prompt)
            events.request_succeeded(done["status_code"], done["latency_ms"], result)

    return emit


def _plain(log_file: Path, prompt: str) -> Callable[[], None]:
    """The same events as JSON lines through a bare stdlib logger and file handler."""
    logger = logging.getLogger("bench.plain")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    (started, started_fields), (done, done_fields) = _fields(prompt)

    def line(event: str, fields: dict[str, Any]) -> str:
        stamp = datetime.now(timezone.utc).isoformat()
        return json.dumps(
            {"event": event, "level": "info", "timestamp": stamp, **fields}, ensure_ascii=False
        )

    def emit() -> None:
        logger.info(line(started, {**started_fields, "prompt_preview": prompt[:100]}))
        logger.info(line(done, {**done_fields, "response_preview": ANSWER[:100]}))

    return emit


def measure(config: Config, workdir: Path) -> dict[str, Sample]:
    """Seconds per event of both pipelines, interleaved."""
    prompt = TweetRequest(TOPIC).render(default_registry)
    calls = config.log_events // EVENTS_PER_CALL
    ours, plain = _ours(workdir / "tweetgen.jsonl", prompt), _plain(workdir / "plain.jsonl", prompt)
    variants = {
        OURS: _per_event(per_call(ours, calls)),
        PLAIN: _per_event(per_call(plain, calls)),
    }
    for variant in variants.values():
        variant()
    samples = interleave(variants, config.log_rounds)
    setup_logging("WARNING", None, console=False)
    return samples


def _per_event(measure: Callable[[], float]) -> Callable[[], float]:
    return lambda: measure() / EVENTS_PER_CALL


def _table(samples: dict[str, Sample], calls: PerCallResult | None) -> Table:
    ours, plain = samples[OURS], samples[PLAIN]
    low, high = paired_ratios(ours, plain).quartiles
    rows = [
        (name, sample.show(scale=1e6, unit=" us", digits=1), f"{1 / sample.median:,.0f}")
        for name, sample in samples.items()
    ]
    rows.append(
        ("tweetgen / bare", f"{ratio(ours, plain):.2f}x (paired IQR {low:.2f}-{high:.2f})", "")
    )
    if calls is not None:
        per_call_cost = EVENTS_PER_CALL * ours.median
        measured = calls.instant[TWEETGEN].median - calls.instant[QUIET].median
        rows.append(
            ("2 events as a share of one tweetgen call", f"{calls.share(per_call_cost):.0%}", "")
        )
        rows.append(
            ("measured in benchmark 1 (INFO minus logging off)", f"{calls.share(measured):.0%}", "")
        )
    return Table(
        "Logging cost per event", ("pipeline", "per event: median (IQR, n)", "events/s"), rows
    )


def run(config: Config, workdir: Path, calls: PerCallResult | None = None) -> tuple[Section, float]:
    """Benchmark 5 as a report section, and the seconds one call's events take; ``calls`` gives
    the share."""
    samples = measure(config, workdir)
    ours = samples[OURS]
    share = (
        f"; {calls.share(EVENTS_PER_CALL * ours.median):.0%} of one instant-sandbox call"
        if calls
        else ""
    )
    section = Section(
        title="5. Logging cost",
        method=(
            f"Each measurement writes {config.log_events} events "
            f"({config.log_events // EVENTS_PER_CALL} calls' worth) to a file; the two pipelines "
            f"are interleaved for {config.log_rounds} rounds with a rotating order. tweetgen's "
            "pipeline is setup_logging('INFO', file, console=False) with a registered secret, the "
            "call's context bound as the generator binds it, previews cut and redacted as the "
            "provider does."
        ),
        tables=[_table(samples, calls)],
        targets=[
            Target(
                "5. logging cost",
                "events per second and share of one call, stated",
                f"{1 / ours.median:,.0f} events/s "
                f"({ours.show(scale=1e6, unit=' us', digits=1)} per event){share}",
                None,
            )
        ],
        commands=[
            "setup_logging('INFO', LOG_FILE, console=False, secrets=[KEY]); "
            "tweetgen.events.request_started(MODEL, PROMPT); "
            "tweetgen.events.request_succeeded(200, LATENCY, RESULT)"
        ],
        notes=CHOICES,
    )
    return section, EVENTS_PER_CALL * ours.median
