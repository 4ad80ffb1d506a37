"""Tests for tweetgen.logs: event sequences, levels, the log file (rotation, logrotate), redaction.

Every assertion reads parsed JSON (one object per line); only the secret checks look at raw output,
because a secret must not appear anywhere in the bytes.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import string
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import structlog
from optional_tools import HealthCheck, given, settings, st

from tweetgen import logs, redaction
from tweetgen.config import load_settings
from tweetgen.errors import BadRequestError, ConfigurationError, ServerError
from tweetgen.generator import TweetGenerator
from tweetgen.logs import (
    WatchedRotatingFileHandler,
    get_logger,
    preview,
    redact_text,
    register_secret,
    setup_logging,
)
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_LEVELS = {"debug", "info", "warning", "error", "critical"}
_UNAVAILABLE = "HTTP 503: Service temporarily unavailable"
_TOPIC = "python testing"


# --- fixtures and helpers ------------------------------------------------------------------------


def _close_tweetgen_handlers() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_tweetgen", False)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo setup_logging after each test: handlers, levels, registered secrets, preview length."""
    names = ["", logs.LOGGER_NAME, *logs._QUIET_LIBRARIES]
    levels = {name: logging.getLogger(name).level for name in names}
    secrets, state = set(logs._secrets), dict(logs._state)
    yield
    _close_tweetgen_handlers()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logs._secrets.intersection_update(secrets)
    logs._state.update(state)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _setup(tmp_path: Path, level: str = "INFO", **options: Any) -> tuple[Path, io.StringIO]:
    """Log to ``tmp_path/tweetgen.jsonl`` and to a JSON console stream; return both."""
    log_file, stream = tmp_path / "tweetgen.jsonl", io.StringIO()
    setup_logging(level, str(log_file), stream=stream, console_format="json", **options)
    return log_file, stream


def _parse(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def _read(path: Path) -> list[dict[str, Any]]:
    return _parse(path.read_text(encoding="utf-8")) if path.exists() else []


def _assert_shape(record: dict[str, Any]) -> None:
    """The common shape: event, lowercase level, ISO-8601 UTC timestamp with Z, in that order
    first."""
    assert list(record)[:3] == ["event", "level", "timestamp"]
    assert isinstance(record["event"], str)
    assert record["level"] in _LEVELS
    assert _TIMESTAMP.match(record["timestamp"]), record["timestamp"]
    when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=5)


def _emit(seqs: range, **fields: Any) -> None:
    log = get_logger()
    for seq in seqs:
        log.info("tick", seq=seq, **fields)


def _seqs(path: Path) -> list[int]:
    return [record["seq"] for record in _read(path)]


def _generator(provider: GeminiProvider) -> TweetGenerator:
    return TweetGenerator(
        provider=provider, settings=load_settings(dotenv_path=None, env={}), sleep=lambda _s: None
    )


def _sandbox_provider(server: SandboxServer) -> GeminiProvider:
    return GeminiProvider(
        api_key="k-test", model="m", base_url=server.url, name="sandbox", secret_key=False
    )


# --- the events of one call ----------------------------------------------------------------------


def test_retried_call_logs_the_full_event_sequence(tmp_path: Path) -> None:
    log_file, stream = _setup(tmp_path)
    with SandboxServer(faults="503") as server, _generator(_sandbox_provider(server)) as generator:
        tweet = generator.generate(_TOPIC)
        prompt = generator.prompt(_TOPIC)
    records = _read(log_file)
    assert _parse(stream.getvalue()) == records
    assert [(r["event"], r["level"]) for r in records] == [
        ("Making API request", "info"),
        ("API request failed", "error"),
        ("Retry attempt", "warning"),
        ("Making API request", "info"),
        ("API request successful", "info"),
        ("Retry succeeded", "info"),
    ]
    making1, failed, retry, making2, success, succeeded = records
    assert tweet.request_id
    for record in records:
        _assert_shape(record)
        assert record["request_id"] == tweet.request_id
    for record, attempt in zip((making1, failed, making2, success), (1, 1, 2, 2), strict=True):
        assert (record["attempt"], record["provider"], record["model"]) == (attempt, "sandbox", "m")
    assert failed["status_code"] == 503
    assert failed["retry_attempted"] is True
    assert failed["error_message"] == "Service temporarily unavailable"
    assert failed["latency_ms"] >= 0
    assert (retry["attempt"], retry["delay_seconds"], retry["max_attempts"]) == (1, 1.0, 4)
    assert retry["exception"] == _UNAVAILABLE
    assert succeeded["final_attempt"] == 2
    for making in (making1, making2):
        assert making["url_endpoint"] == "m"
        assert making["prompt_length"] == len(prompt) > 100
        assert making["prompt_preview"] == prompt[:100] + "..."
    assert success["status_code"] == 200
    assert success["latency_ms"] >= 0
    assert success["response_length"] == len(tweet.text)
    assert success["response_preview"] == preview(tweet.text, 100)
    assert len(success["response_preview"]) <= 103


def test_exhausted_call_ends_with_retries_exhausted(tmp_path: Path) -> None:
    log_file, _ = _setup(tmp_path)
    with (
        SandboxServer(faults="503*4") as server,
        _generator(_sandbox_provider(server)) as generator,
        pytest.raises(ServerError) as caught,
    ):
        generator.generate(_TOPIC)
    records = _read(log_file)
    attempt_events = ["Making API request", "API request failed", "Retry attempt"]
    last_events = ["Making API request", "API request failed", "Retries exhausted"]
    assert [r["event"] for r in records] == attempt_events * 3 + last_events
    assert len({r["request_id"] for r in records}) == 1
    assert [r["attempt"] for r in records if r["event"] == "Making API request"] == [1, 2, 3, 4]
    assert [r["retry_attempted"] for r in records if r["event"] == "API request failed"] == [
        True
    ] * 3 + [False]
    assert [r["delay_seconds"] for r in records if r["event"] == "Retry attempt"] == [1.0, 2.0, 4.0]
    exhausted = records[-1]
    _assert_shape(exhausted)
    assert (exhausted["level"], exhausted["attempts"], exhausted["exception"]) == (
        "error",
        4,
        _UNAVAILABLE,
    )
    assert caught.value.attempts == 4


# --- levels and setup ----------------------------------------------------------------------------


def test_warning_level_hides_info_events(tmp_path: Path) -> None:
    log_file, stream = _setup(tmp_path, "WARNING")
    log, lib = get_logger(), logging.getLogger("somelib")
    log.debug("hidden debug")
    log.info("hidden info")
    lib.info("hidden library info")
    log.warning("shown warning")
    log.error("shown error")
    lib.warning("shown library warning")
    expected = [
        ("shown warning", "warning"),
        ("shown error", "error"),
        ("shown library warning", "warning"),
    ]
    for records in (_read(log_file), _parse(stream.getvalue())):
        assert [(r["event"], r["level"]) for r in records] == expected


@pytest.mark.parametrize("level", ["debug", "Debug", "DEBUG"])
def test_level_names_are_case_insensitive(tmp_path: Path, level: str) -> None:
    log_file, _ = _setup(tmp_path, level)
    get_logger().debug("details", n=1)
    [record] = _read(log_file)
    assert (record["event"], record["level"], record["n"]) == ("details", "debug", 1)


@pytest.mark.parametrize("level", ["verbose", "trace", ""])
def test_invalid_level_raises_configuration_error(tmp_path: Path, level: str) -> None:
    with pytest.raises(ConfigurationError, match="log level must be one of"):
        setup_logging(level, str(tmp_path / "tweetgen.jsonl"), stream=io.StringIO())
    assert not [h for h in logging.getLogger().handlers if getattr(h, "_tweetgen", False)]


def test_setup_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    _, first_stream = _setup(tmp_path)
    log_file, stream = _setup(tmp_path)
    other = tmp_path / "other.jsonl"
    setup_logging("INFO", str(other), stream=stream, console_format="json")
    get_logger().info("once")
    logging.getLogger("somelib").warning("library once")
    assert sum(getattr(h, "_tweetgen", False) for h in logging.getLogger().handlers) == 2
    assert _read(log_file) == []
    assert first_stream.getvalue() == ""
    for records in (_read(other), _parse(stream.getvalue())):
        assert [r["event"] for r in records] == ["once", "library once"]


# --- the log file --------------------------------------------------------------------------------


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _file_handler_with_clock() -> tuple[WatchedRotatingFileHandler, _Clock]:
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h, WatchedRotatingFileHandler)
    ]
    clock = _Clock()
    handler.clock, handler._next_check = clock, 0.0
    return handler, clock


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_log_file_survives_logrotate(tmp_path: Path, action: str) -> None:
    log_file, _ = _setup(tmp_path, console=False)
    handler, clock = _file_handler_with_clock()
    seen: list[int] = []
    for cycle in range(3):
        _emit(range(cycle * 5, cycle * 5 + 5))
        if action == "rename":
            os.rename(log_file, tmp_path / f"rotated.{cycle}")
        else:
            seen += _seqs(log_file)
            log_file.unlink()
        clock.now += handler.check_interval  # the next record checks the file
    _emit(range(15, 20))
    if action == "rename":
        seen = [seq for cycle in range(3) for seq in _seqs(tmp_path / f"rotated.{cycle}")]
    assert seen + _seqs(log_file) == list(range(20))


def test_logrotate_check_is_not_made_per_record_and_loses_nothing(tmp_path: Path) -> None:
    """Between two checks, records go on into the renamed file (kept there); the first record after
    the interval, or any WARNING at once, opens the new file."""
    log_file, _ = _setup(tmp_path, console=False)
    handler, clock = _file_handler_with_clock()
    _emit(range(0, 3))
    os.rename(log_file, tmp_path / "rotated.0")
    _emit(range(3, 6))  # no check yet: written to the renamed file
    assert not log_file.exists()
    clock.now += handler.check_interval
    _emit(range(6, 9))
    os.rename(log_file, tmp_path / "rotated.1")
    get_logger().warning("tick", seq=9)  # a warning checks at once
    assert _seqs(tmp_path / "rotated.0") == list(range(6))
    assert _seqs(tmp_path / "rotated.1") == list(range(6, 9))
    assert _seqs(log_file) == [9]


@pytest.mark.parametrize("backup_count", [50, 3])
def test_size_rotation_loses_nothing_within_retained_backups(
    tmp_path: Path, backup_count: int
) -> None:
    max_bytes, total = 1024, 60
    log_file, _ = _setup(tmp_path, console=False, max_bytes=max_bytes, backup_count=backup_count)
    _emit(range(total), pad="x" * 60)
    backups = [log_file.with_name(f"{log_file.name}.{n}") for n in range(backup_count, 0, -1)]
    files = [f for f in [*backups, log_file] if f.exists()]
    assert all(f.stat().st_size <= max_bytes for f in files)
    assert not log_file.with_name(f"{log_file.name}.{backup_count + 1}").exists()
    seqs = [seq for f in files for seq in _seqs(f)]
    if backup_count == 50:
        assert len(files) > 3
        assert seqs == list(range(total))
    else:
        assert len(files) == backup_count + 1
        assert seqs == list(range(total - len(seqs), total))


def test_missing_log_directory_is_created(tmp_path: Path) -> None:
    log_file = tmp_path / "a" / "b" / "tweetgen.jsonl"
    setup_logging("INFO", str(log_file), console=False)
    get_logger().info("hello")
    assert [r["event"] for r in _read(log_file)] == ["hello"]


@pytest.mark.parametrize("where", ["under-a-file", "is-a-directory"])
def test_unwritable_log_path_raises_configuration_error(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory", encoding="utf-8")
    target = blocker / "logs" / "tweetgen.jsonl" if where == "under-a-file" else tmp_path
    with pytest.raises(ConfigurationError, match="cannot write log file") as caught:
        setup_logging("INFO", str(target), console=False)
    assert str(target) in str(caught.value)
    assert "TWEETGEN_LOG_FILE" in str(caught.value)
    assert (
        caught.value.setting == "log_file"
    )  # the CLI names --log-file; the message no Python parameter
    reason = (
        f"{blocker} is a file, not a directory"
        if where == "under-a-file"
        else f"{target} is a directory"
    )
    assert reason in str(caught.value)


def test_third_party_records_are_json_with_the_same_shape(tmp_path: Path) -> None:
    log_file, stream = _setup(tmp_path)
    lib = logging.getLogger("somelib")
    lib.warning("disk %s is %d%% full", "sda", 93)
    try:
        raise ValueError("kaput")
    except ValueError:
        lib.error("could not parse", exc_info=True)
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        lib.warning("inside a call")
    for records in (_read(log_file), _parse(stream.getvalue())):
        plain, failed, inside = records
        for record in records:
            _assert_shape(record)
            assert record["logger"] == "somelib"
        assert (plain["event"], plain["level"]) == ("disk sda is 93% full", "warning")
        assert (failed["event"], failed["level"]) == ("could not parse", "error")
        lines = failed["exception"].splitlines()
        assert (lines[0], lines[-1]) == ("Traceback (most recent call last):", "ValueError: kaput")
        assert inside["request_id"] == "r-1"


# --- previews and truncation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("short", "short", id="short"),
        pytest.param("a" * 100, "a" * 100, id="exactly-100"),
        pytest.param("a" * 101, "a" * 100 + "...", id="101-is-cut"),
        pytest.param("é" * 500, "é" * 100 + "...", id="non-ascii"),
    ],
)
def test_preview_cuts_at_100_characters(text: str, expected: str) -> None:
    assert preview(text) == expected


def test_preview_length_follows_setup(tmp_path: Path) -> None:
    _setup(tmp_path, preview_length=10)
    assert preview("abcdefghijkl") == "abcdefghij..."
    assert preview("x" * 20, length=5) == "xxxxx..."


def _count_redactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = redaction.redact_text

    def counting(text: str) -> str:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(redaction, "redact_text", counting)
    return seen


def test_a_preview_is_built_only_when_its_event_is_written_and_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_file, _ = _setup(tmp_path, console=False)
    seen = _count_redactions(monkeypatch)
    secret = "prompt-secret-" + "k3y" * 6
    register_secret(secret)
    quiet, shown = preview("quiet " + secret), preview("shown " + secret + " " + "z" * 200)
    get_logger().debug("off", text_preview=quiet)
    get_logger().info("on", text_preview=shown)
    assert [text for text in seen if text.startswith("quiet")] == []
    assert len([text for text in seen if text.startswith("shown")]) == 1
    [record] = _read(log_file)
    assert record["text_preview"] == "shown [REDACTED] " + "z" * 83 + "..."
    assert shown == record["text_preview"]
    assert str(shown) == record["text_preview"]
    assert f"<{shown}>" == f"<{record['text_preview']}>"  # an f-string gets the text
    assert len(shown) == 103
    assert repr(shown) == repr(record["text_preview"])


def test_redaction_sees_a_secret_registered_after_the_same_text_was_redacted() -> None:
    secret = "late-registered-" + "s3cr" * 5
    text = f"token {secret} here"
    assert redact_text(text) == text  # not a secret yet (and remembered as clean)
    register_secret(secret)
    assert redact_text(text) == "token [REDACTED] here"
    assert redact_text("plain words, nothing to hide") == "plain words, nothing to hide"


def test_rejected_tweet_preview_is_cut_like_every_preview(tmp_path: Path) -> None:
    log_file, _ = _setup(tmp_path)
    with SandboxServer(faults="long") as server, _generator(_sandbox_provider(server)) as generator:
        generator.generate(_TOPIC)
    records = _read(log_file)
    first_answer = next(r for r in records if r["event"] == "API request successful")
    rejected = next(r for r in records if r["event"] == "Tweet rejected")
    assert first_answer["response_length"] > 100
    assert rejected["text_preview"] == first_answer["response_preview"]
    assert rejected["text_preview"][100:] == "..."  # cut at 100 characters and marked


def test_every_field_is_cut_even_exceptions_and_nested_values(tmp_path: Path) -> None:
    log_file, _ = _setup(tmp_path)
    try:
        raise ValueError("z" * 50_000 + " the end")
    except ValueError:
        get_logger().error(
            "big",
            blob="x" * 50_000,
            small="y" * 50,
            nested={"a": ["w" * 50_000]},
            many=list(range(1000)),
            exc_info=True,
        )
    [record] = _read(log_file)
    half = logs.MAX_FIELD_LENGTH // 2
    assert record["blob"].startswith("x" * half)
    assert record["blob"].endswith("x" * half)
    assert "characters cut" in record["blob"]
    assert len(record["blob"]) < logs.MAX_FIELD_LENGTH + 50
    assert record["small"] == "y" * 50
    assert len(record["nested"]["a"][0]) < logs.MAX_FIELD_LENGTH + 50
    assert len(record["many"]) == logs.MAX_FIELD_ITEMS + 1
    exception = record["exception"]
    assert exception.startswith("Traceback")  # where it happened ...
    assert exception.endswith(" the end")  # ... and the end of the error itself
    assert len(exception) < logs.MAX_FIELD_LENGTH + 50
    assert log_file.stat().st_size < 4 * logs.MAX_FIELD_LENGTH + 2000


# --- redaction -----------------------------------------------------------------------------------

_KEY_CHARS = string.ascii_letters + string.digits + "_-"
_FORMS = (
    "{s}",
    "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key={s}&alt=sse",
    "x-goog-api-key: {s}",
    "Authorization: Bearer {s}",
    "{{'x-goog-api-key': '{s}'}}",
)
_PLACES = (
    "field",
    "nested",
    "list",
    "dict-key",
    "event",
    "positional",
    "object",
    "exc-info",
    "foreign",
    "foreign-exc",
)


class _Shown:
    """A value that is not JSON: logged through str()."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _emit_placement(place: str, text: str) -> None:
    log, lib = get_logger(), logging.getLogger("somelib")
    if place == "field":
        log.info("leak", detail=text)
    elif place == "nested":
        log.info("leak", payload={"outer": {"inner": [1, {"deep": text}]}})
    elif place == "list":
        log.warning("leak", items=("ok", text, None, 3))
    elif place == "dict-key":
        log.info("leak", headers={text: "value"})
    elif place == "event":
        log.info(text)
    elif place == "positional":
        log.info("leak %s", text)
    elif place == "object":
        log.debug("leak", thing=_Shown(text))
    elif place == "foreign":
        lib.warning("leak %s", text)
    else:
        try:
            raise RuntimeError(f"request failed: {text}")
        except RuntimeError:
            (log if place == "exc-info" else lib).error("leak", exc_info=True)


@st.composite
def _leak_cases(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]], bool]:
    """Three secrets (Google-shaped, registered, opaque) placed in random forms and places."""
    google = "AIza" + draw(st.text(_KEY_CHARS, min_size=35, max_size=35))
    registered = "tok_" + draw(st.text(_KEY_CHARS, min_size=8, max_size=40))
    opaque = "op-" + draw(st.text(_KEY_CHARS, min_size=8, max_size=40))
    choices = [
        (google, _FORMS),
        (registered, _FORMS),
        (opaque, _FORMS[1:]),
    ]  # opaque: only in a context
    placements = []
    for _ in range(draw(st.integers(min_value=3, max_value=10))):
        secret, forms = draw(st.sampled_from(choices))
        form = draw(st.sampled_from(forms)).format(s=secret)
        text = (
            draw(st.text(" ,;:([\"'\n", max_size=3))
            + form
            + draw(st.text(" ,;:)]&#\"'\n", max_size=3))
        )
        placements.append((draw(st.sampled_from(_PLACES)), text))
    return [google, registered, opaque], placements, draw(st.booleans())


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_leak_cases())
def test_secrets_never_reach_console_or_file(
    case: tuple[list[str], list[tuple[str, str]], bool],
) -> None:
    secrets, placements, via_setup = case
    registered = secrets[1]
    if not via_setup:
        register_secret(registered)
    stream = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "tweetgen.jsonl"
        setup_logging(
            "DEBUG",
            str(log_file),
            stream=stream,
            console_format="json",
            secrets=[registered] if via_setup else [],
        )
        for place, text in placements:
            _emit_placement(place, text)
        raw_file = log_file.read_text(encoding="utf-8")
        _close_tweetgen_handlers()
    raw_console = stream.getvalue()
    for secret in secrets:
        assert secret not in raw_file
        assert secret not in raw_console
    for records in (_parse(raw_file), _parse(raw_console)):
        assert len(records) == len(placements)  # nothing was dropped instead of redacted
        for record in records:
            _assert_shape(record)


@pytest.mark.parametrize("header", ["x-goog-api-key", "X-Goog-Api-Key"])
def test_secret_header_values_in_mappings_are_redacted(tmp_path: Path, header: str) -> None:
    log_file, _ = _setup(tmp_path)
    get_logger().info(
        "Sending request", headers={header: "opaque-value-123", "content-type": "application/json"}
    )
    [record] = _read(log_file)
    assert record["headers"] == {header: "[REDACTED]", "content-type": "application/json"}


_OPAQUE_KEY = "tg-e2e-Zq7Xw3Kp9Lm2Vn8Rt4Ys"  # not Google-shaped: only its registration protects it
_GOOGLE_KEY = "AIza" + "Sy0-x_" * 5 + "Q9z7W"


@pytest.mark.parametrize(
    "key", [pytest.param(_OPAQUE_KEY, id="opaque"), pytest.param(_GOOGLE_KEY, id="google")]
)
def test_configured_key_never_logged_end_to_end(tmp_path: Path, key: str) -> None:
    log_file, stream = _setup(tmp_path, "DEBUG")
    with SandboxServer(faults="echo-key") as server:
        provider = GeminiProvider(api_key=key, model="m", base_url=server.url, name="sandbox")
        with _generator(provider) as generator, pytest.raises(BadRequestError) as caught:
            generator.generate(_TOPIC)
    assert key in str(caught.value)  # the sandbox really echoed the key, so the test bites
    assert key not in redact_text(str(caught.value))
    assert key not in log_file.read_text(encoding="utf-8")
    assert key not in stream.getvalue()
    records = _read(log_file)
    assert _parse(stream.getvalue())
    failed = next(r for r in records if r["event"] == "API request failed")
    assert failed["error_message"] == "API key not valid: [REDACTED]. Please pass a valid API key."
    assert (failed["status_code"], failed["retry_attempted"]) == (400, False)
    assert any(str(r.get("logger", "")).startswith(("httpx", "httpcore")) for r in records)


# --- hostile disks, several writers, secrets in other forms ---------------------------------------


def test_a_log_file_that_cannot_be_written_is_reported_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full to stand for a full disk")
    setup_logging("INFO", "/dev/full", console=False)
    _emit(range(240))
    err = capsys.readouterr().err
    assert err.count("tweetgen: cannot write the log file /dev/full") == 1
    assert "No space left on device" in err
    assert "Traceback" not in err


def test_a_full_log_disk_leaves_the_cli_result_and_exit_code_alone(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full to stand for a full disk")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "tweetgen", "generate", "--topic", "AI", "--provider", "sandbox",
         "--log-file", "/dev/full"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr.count("cannot write the log file /dev/full") == 1
    assert "Traceback" not in result.stderr


_WRITER = """
import sys
from tweetgen.logs import get_logger, setup_logging
setup_logging("INFO", sys.argv[1], console=False, max_bytes=2048, backup_count=1000)
log = get_logger()
for seq in range(int(sys.argv[3])):
    log.info("tick", writer=sys.argv[2], seq=seq)
"""


def test_two_processes_rotating_one_file_lose_nothing(tmp_path: Path) -> None:
    log_file, per_writer = tmp_path / "shared.jsonl", 400
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(log_file), name, str(per_writer)])
        for name in "ab"
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    files = [
        p
        for p in tmp_path.iterdir()
        if p.name.startswith("shared.jsonl") and not p.name.endswith(".lock")
    ]
    records = [r for f in files for r in _read(f)]
    assert len(files) > 10  # it really rotated, many times
    for name in "ab":
        assert sorted(r["seq"] for r in records if r["writer"] == name) == list(range(per_writer))


def test_secrets_are_redacted_in_encoded_split_and_url_forms() -> None:
    secret = "opaque-" + "q1w2e3r4t5" * 3
    register_secret(secret)
    half = len(secret) // 2
    texts = {
        "percent": urllib.parse.quote(secret + "/", safe=""),
        "base64": base64.b64encode(b"user:" + secret.encode()).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
        "split": f"first {secret[:half]} then {secret[half:]}",
        "split unevenly": f"{secret[:9]}\n{secret[9:]}",
    }
    for form, text in texts.items():
        redacted = redact_text(text)
        assert "[REDACTED]" in redacted, form
        for piece in (secret[:8], secret[-8:], secret[half - 4 : half + 4]):
            assert piece not in redacted, (form, piece)
    assert (
        redact_text("GET https://bob:hunter2@example.com/v1")
        == "GET https://[REDACTED]@example.com/v1"
    )
    own = "pass api_key= or set GEMINI_API_KEY (see https://example.com/docs)"
    assert (
        redact_text(own) == own.replace("api_key= or", "api_key=[REDACTED]")
        or redact_text(own) == own
    )


def test_the_applications_own_loggers_share_the_file_and_the_redaction(tmp_path: Path) -> None:
    """setup_logging() is the application's logging set-up (the seed presents it so)."""
    secret = "app-secret-" + "z9" * 8
    log_file, _ = _setup(tmp_path, secrets=[secret])
    structlog.get_logger("myapp").info("order placed", order=42, token=secret)
    logging.getLogger("myapp.db").warning("slow query %s", "SELECT 1")
    records = _read(log_file)
    placed = next(r for r in records if r["event"] == "order placed")
    assert placed["order"] == 42
    assert placed["token"] == "[REDACTED]"
    _assert_shape(placed)
    slow = next(r for r in records if r["event"] == "slow query SELECT 1")
    assert slow["level"] == "warning"
    assert slow["logger"] == "myapp.db"


def test_a_library_can_leave_structlog_alone(tmp_path: Path) -> None:
    structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
    before = structlog.get_config()["processors"]
    log_file, _ = _setup(tmp_path, configure_structlog=False)
    assert structlog.get_config()["processors"] == before
    get_logger().info("still routed")
    assert [r["event"] for r in _read(log_file)] == ["still routed"]


def test_the_pretty_console_keeps_a_retry_on_one_line_and_its_own_words() -> None:
    import types

    tty = io.StringIO()
    tty.isatty = types.MethodType(lambda self: True, tty)  # type: ignore[method-assign]
    setup_logging("INFO", None, stream=tty, console_format="pretty")
    get_logger().warning(
        "Retry attempt", attempt=1, exception="HTTP 503: Service temporarily unavailable"
    )
    get_logger().error("No key", hint="pass api_key=... or use the offline sandbox")
    lines = [line for line in tty.getvalue().splitlines() if line.strip()]
    assert len(lines) == 2
    assert "HTTP 503: Service temporarily unavailable" in lines[0]
    assert "api_key=... or use" in lines[1]


def test_a_low_entropy_piece_of_a_key_does_not_redact_ordinary_text() -> None:
    register_secret("AIza" + "x" * 35)  # a test key: its 8-character suffix is "xxxxxxxx"
    assert redact_text("padding xxxxxxxxxxxx here") == "padding xxxxxxxxxxxx here"
    assert redact_text("AIza" + "x" * 35) == "[REDACTED]"
