"""The log schema lives in one module: every event emitted is declared there, with its level and
fields, and nothing else in the package calls the logger."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeTime

from tweetgen import events
from tweetgen.config import load_settings
from tweetgen.errors import ServerError
from tweetgen.events import CONTEXT, SCHEMA
from tweetgen.generator import TweetGenerator
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import BreakerSettings, RetryBudget
from tweetgen.retry import RetryPolicy

SRC = Path(events.__file__).parent
SETTINGS = load_settings(env={}, dotenv_path=None)
#: the modules that may call the logger: the schema's emitters, and the logging set-up
ALLOWED = {"events.py", "logs.py"}
VALID = "Python makes testing simple, and a clear test suite keeps every release calm."
TOO_LONG = " ".join(["word"] * 60)
#: the seed's contract (docs/seed-readme.md): these names, levels and fields never change
SEED = {
    "Making API request": ("info", {"url_endpoint", "prompt_length", "prompt_preview"}),
    "API request successful": (
        "info",
        {"status_code", "latency_ms", "response_length", "response_preview"},
    ),
    "API request failed": (
        "error",
        {"status_code", "latency_ms", "error_message", "retry_attempted"},
    ),
    "Retry attempt": ("warning", {"attempt", "max_attempts", "delay_seconds", "exception"}),
    "Retry succeeded": ("info", {"final_attempt"}),
    "Retries exhausted": ("error", {"attempts", "exception"}),
}


class _Capture(logging.Handler):
    """Every structured event tweetgen logs, as its dict (after the processors)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.seen.append(dict(record.msg))


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    logger = logging.getLogger("tweetgen")
    handler, level = _Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _answer(text: str) -> httpx.Response:
    body = {
        "candidates": [{"content": {"parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9},
    }
    return httpx.Response(200, content=json.dumps(body).encode())


def _unavailable() -> httpx.Response:
    body = {"error": {"code": 503, "message": "Service temporarily unavailable"}}
    return httpx.Response(503, content=json.dumps(body).encode())


def _all_thoughts() -> httpx.Response:
    body = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 5, "thoughtsTokenCount": 1024},
    }
    return httpx.Response(200, content=json.dumps(body).encode())


def _provider(name: str, script: list[Callable[[], httpx.Response]]) -> GeminiProvider:
    """A provider whose server answers from ``script`` in turn (the last answer repeats)."""
    answers = iter(script)
    last: list[Callable[[], httpx.Response]] = [script[-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        last[0] = next(answers, last[0])
        return last[0]()

    return GeminiProvider(
        api_key="k",
        model="m",
        name=name,
        secret_key=False,
        transport=httpx.MockTransport(handler),
    )


def _generator(fake: FakeTime, *providers: GeminiProvider, **options: Any) -> TweetGenerator:
    options.setdefault("policy", RetryPolicy(max_attempts=3))
    return TweetGenerator(
        provider=list(providers),
        settings=SETTINGS,
        sleep=fake.sleep,
        clock=fake.clock,
        **options,
    )


def _scenarios(fake: FakeTime) -> None:
    """One of each: retries that succeed, retries exhausted, a denied retry, a circuit opening and
    closing, a fallback, a rejected tweet, and the batch's and the command line's own events."""
    _generator(fake, _provider("g", [_unavailable, _unavailable, lambda: _answer(VALID)])).generate(
        "python"
    )
    with pytest.raises(ServerError):
        _generator(fake, _provider("g", [_unavailable])).generate("python")
    denying = RetryBudget(ratio=0.0, reserve=0, k=0, clock=fake.clock)
    with pytest.raises(ServerError):
        _generator(fake, _provider("g", [_unavailable]), retry_budget=denying).generate("python")
    breaker = BreakerSettings(
        consecutive_failures=1, minimum_calls=1, open_seconds=1.0, half_open_calls=1
    )
    flaky = _generator(
        fake,
        _provider("g", [_unavailable, lambda: _answer(VALID)]),
        circuit_breaker=breaker,
        policy=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(ServerError):
        flaky.generate("python")
    fake.sleep(2.0)
    flaky.generate("python")
    _generator(
        fake, _provider("a", [_unavailable]), _provider("b", [lambda: _answer(VALID)])
    ).generate("python")
    _generator(fake, _provider("g", [lambda: _answer(TOO_LONG), lambda: _answer(VALID)])).generate(
        "python"
    )
    _generator(fake, _provider("g", [_all_thoughts, lambda: _answer(VALID)])).generate("python")
    _generator(
        fake, _provider("g", [_unavailable, lambda: _answer(VALID)]), service_tier="flex"
    ).generate("python")
    try:
        raise RuntimeError("a bug")
    except RuntimeError as error:
        events.row_unprepared(1, error)
        events.row_failed(2, error)
        events.row_unreadable(3, error)
        events.unexpected_error(error)
    events.batch_stopped("the store cannot write", "disk full")
    events.batch_stopping(2, "signal")
    events.batch_abandoning(2)
    events.shared_unavailable("postgresql://u@db/t", "refused", 0.5)  # issue 14: tests/test_shared*
    events.shared_restored("postgresql://u@db/t", 1.0)
    events.batch_rows_taken_over("b1", 3, "host:1:ab")  # issue 14: tests/test_fleet_batch.py
    events.batch_worker_ended("host:1:ab/2", 2, -9)


def test_every_event_emitted_is_declared_with_its_level_and_fields(
    captured: list[dict[str, Any]],
) -> None:
    _scenarios(FakeTime())
    for event in captured:
        spec = SCHEMA.get(event["event"])
        assert spec is not None, f"{event['event']!r} is not declared in tweetgen.events"
        assert event["level"] == spec.level_name, event
        keys, declared = {k for k in event if not k.startswith("_")}, set(spec.fields)
        assert declared <= keys, (event["event"], "missing", declared - keys)
        assert keys - declared <= CONTEXT, (event["event"], "undeclared", keys - declared - CONTEXT)
    assert {e["event"] for e in captured} == set(SCHEMA), "every declared event is exercised"


def test_the_seed_events_keep_their_names_levels_and_fields() -> None:
    for name, (level, fields) in SEED.items():
        assert SCHEMA[name].level_name == level
        assert fields <= set(SCHEMA[name].fields)


def test_an_event_whose_level_is_off_builds_nothing(
    monkeypatch: pytest.MonkeyPatch, captured: list[dict[str, Any]]
) -> None:
    built: list[str] = []
    monkeypatch.setattr(events, "preview", lambda text: built.append(text) or text)
    logging.getLogger("tweetgen").setLevel(logging.WARNING)
    events.request_started("m", "a prompt")
    assert built == []
    assert captured == []
    logging.getLogger("tweetgen").setLevel(logging.INFO)
    events.request_started("m", "a prompt")
    assert built == ["a prompt"]
    assert [e["event"] for e in captured] == ["Making API request"]


def test_an_unknown_circuit_state_is_a_bug_not_a_silent_event() -> None:
    with pytest.raises(KeyError):
        events.circuit_changed("g/m", "closed", "ajar")


# --- nothing else calls the logger ---------------------------------------------------------------

_LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
_OWNERS = {"logging", "structlog", "_log", "log", "logger"}


def _logger_calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Where a module gets a logger or logs through the stdlib's module-level functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "get_logger" for a in node.names):
            yield node.lineno, "imports get_logger"
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func, "value", None)
        owner_name = owner.id if isinstance(owner, ast.Name) else ""
        if name in {"get_logger", "getLogger", "wrap_logger"}:
            yield node.lineno, f"calls {name}()"
        elif owner_name in _OWNERS and name in _LEVELS:
            yield node.lineno, f"calls {owner_name}.{name}()"


def test_no_module_but_events_calls_the_logger() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in ALLOWED:
            continue
        calls = _logger_calls(ast.parse(path.read_text(encoding="utf-8")))
        offenders += [f"{relative}:{line}: {what}" for line, what in calls]
    assert offenders == [], "log through tweetgen.events:\n" + "\n".join(offenders)


def test_the_check_finds_a_direct_logger_call() -> None:
    tree = ast.parse("from .logs import get_logger\n_log = get_logger()\n_log.info('x')\n")
    assert [what for _, what in _logger_calls(tree)] == [
        "imports get_logger",
        "calls get_logger()",
        "calls _log.info()",
    ]


# --- imports point one way -----------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The modules a source file imports, relative ones resolved against the package."""
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
    return found


def test_the_providers_do_not_import_the_retry_engine() -> None:
    engine = {"tweetgen.retry", "tweetgen.backoff", "tweetgen.attempts"}
    for path in sorted((SRC / "providers").glob("*.py")):
        assert not _imports(path) & engine, path.name
    hints = _imports(SRC / "hints.py") | _imports(SRC / "deadlines.py")
    assert not {m for m in hints if m.split(".")[0] in {"httpx", "httpcore", "tenacity"}}
    assert not {m for m in hints if m.startswith("tweetgen.")}
