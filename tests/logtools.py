"""What the logging tests share: the fixture that undoes ``setup_logging`` after each test, and
helpers that set it up, emit numbered events and read the JSON Lines back."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog

from tweetgen import logs
from tweetgen.config import load_settings
from tweetgen.generator import TweetGenerator
from tweetgen.logs import (
    get_logger,
    setup_logging,
)
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
LEVELS = {"debug", "info", "warning", "error", "critical"}
UNAVAILABLE = "HTTP 503: Service temporarily unavailable"
TOPIC = "python testing"


# --- fixtures and helpers ------------------------------------------------------------------------


def close_tweetgen_handlers() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_tweetgen", False)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo setup_logging after each test: handlers, levels, registered secrets, preview length."""
    names = ["", logs.LOGGER_NAME, *logs._QUIET_LIBRARIES]
    levels = {name: logging.getLogger(name).level for name in names}
    secrets, state = set(logs._secrets), dict(logs._state)
    yield
    close_tweetgen_handlers()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logs._secrets.intersection_update(secrets)
    logs._state.update(state)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def setup(tmp_path: Path, level: str = "INFO", **options: Any) -> tuple[Path, io.StringIO]:
    """Log to ``tmp_path/tweetgen.jsonl`` and to a JSON console stream; return both."""
    log_file, stream = tmp_path / "tweetgen.jsonl", io.StringIO()
    setup_logging(level, str(log_file), stream=stream, console_format="json", **options)
    return log_file, stream


def parse(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def read(path: Path) -> list[dict[str, Any]]:
    return parse(path.read_text(encoding="utf-8")) if path.exists() else []


def assert_shape(record: dict[str, Any]) -> None:
    """The common shape: event, lowercase level, ISO-8601 UTC timestamp with Z, in that order
    first."""
    assert list(record)[:3] == ["event", "level", "timestamp"]
    assert isinstance(record["event"], str)
    assert record["level"] in LEVELS
    assert TIMESTAMP.match(record["timestamp"]), record["timestamp"]
    when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=5)


def emit(seqs: range, **fields: Any) -> None:
    log = get_logger()
    for seq in seqs:
        log.info("tick", seq=seq, **fields)


def read_seqs(path: Path) -> list[int]:
    return [record["seq"] for record in read(path)]


def make_generator(provider: GeminiProvider) -> TweetGenerator:
    return TweetGenerator(
        provider=provider, settings=load_settings(dotenv_path=None, env={}), sleep=lambda _s: None
    )


def sandbox_provider(server: SandboxServer) -> GeminiProvider:
    return GeminiProvider(
        api_key="k-test", model="m", base_url=server.url, name="sandbox", secret_key=False
    )
