"""Tests for tweetgen.logs: event sequences, levels, previews and cuts, the application's loggers.

Every assertion reads parsed JSON (one object per line). The log file's own tests are in
test_logfile.py, redaction's in test_redaction.py.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import structlog
from logtools import (
    TOPIC,
    UNAVAILABLE,
    assert_shape,
    make_generator,
    parse,
    read,
    restore_logging,  # noqa: F401 - autouse: undoes setup_logging after each test
    sandbox_provider,
    setup,
)

from tweetgen import logs, redaction
from tweetgen.errors import ConfigurationError, ServerError
from tweetgen.logs import (
    get_logger,
    preview,
    redact_text,
    register_secret,
    setup_logging,
)
from tweetgen.sandbox import SandboxServer

# --- the events of one call ----------------------------------------------------------------------


def test_retried_call_logs_the_full_event_sequence(tmp_path: Path) -> None:
    log_file, stream = setup(tmp_path)
    with (
        SandboxServer(faults="503") as server,
        make_generator(sandbox_provider(server)) as generator,
    ):
        tweet = generator.generate(TOPIC)
        prompt = generator.prompt(TOPIC)
    records = read(log_file)
    assert parse(stream.getvalue()) == records
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
        assert_shape(record)
        assert record["request_id"] == tweet.request_id
    for record, attempt in zip((making1, failed, making2, success), (1, 1, 2, 2), strict=True):
        assert (record["attempt"], record["provider"], record["model"]) == (attempt, "sandbox", "m")
    assert failed["status_code"] == 503
    assert failed["retry_attempted"] is True
    assert failed["error_message"] == "Service temporarily unavailable"
    assert failed["latency_ms"] >= 0
    assert (retry["attempt"], retry["delay_seconds"], retry["max_attempts"]) == (1, 1.0, 4)
    assert retry["exception"] == UNAVAILABLE
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
    log_file, _ = setup(tmp_path)
    with (
        SandboxServer(faults="503*4") as server,
        make_generator(sandbox_provider(server)) as generator,
        pytest.raises(ServerError) as caught,
    ):
        generator.generate(TOPIC)
    records = read(log_file)
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
    assert_shape(exhausted)
    assert (exhausted["level"], exhausted["attempts"], exhausted["exception"]) == (
        "error",
        4,
        UNAVAILABLE,
    )
    assert caught.value.attempts == 4


# --- levels and setup ----------------------------------------------------------------------------


def test_warning_level_hides_info_events(tmp_path: Path) -> None:
    log_file, stream = setup(tmp_path, "WARNING")
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
    for records in (read(log_file), parse(stream.getvalue())):
        assert [(r["event"], r["level"]) for r in records] == expected


@pytest.mark.parametrize("level", ["debug", "Debug", "DEBUG"])
def test_level_names_are_case_insensitive(tmp_path: Path, level: str) -> None:
    log_file, _ = setup(tmp_path, level)
    get_logger().debug("details", n=1)
    [record] = read(log_file)
    assert (record["event"], record["level"], record["n"]) == ("details", "debug", 1)


@pytest.mark.parametrize("level", ["verbose", "trace", ""])
def test_invalid_level_raises_configuration_error(tmp_path: Path, level: str) -> None:
    with pytest.raises(ConfigurationError, match="log level must be one of"):
        setup_logging(level, str(tmp_path / "tweetgen.jsonl"), stream=io.StringIO())
    assert not [h for h in logging.getLogger().handlers if getattr(h, "_tweetgen", False)]


def test_setup_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    _, first_stream = setup(tmp_path)
    log_file, stream = setup(tmp_path)
    other = tmp_path / "other.jsonl"
    setup_logging("INFO", str(other), stream=stream, console_format="json")
    get_logger().info("once")
    logging.getLogger("somelib").warning("library once")
    assert sum(getattr(h, "_tweetgen", False) for h in logging.getLogger().handlers) == 2
    assert read(log_file) == []
    assert first_stream.getvalue() == ""
    for records in (read(other), parse(stream.getvalue())):
        assert [r["event"] for r in records] == ["once", "library once"]


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
    setup(tmp_path, preview_length=10)
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
    log_file, _ = setup(tmp_path, console=False)
    seen = _count_redactions(monkeypatch)
    secret = "prompt-secret-" + "k3y" * 6
    register_secret(secret)
    quiet, shown = preview("quiet " + secret), preview("shown " + secret + " " + "z" * 200)
    get_logger().debug("off", text_preview=quiet)
    get_logger().info("on", text_preview=shown)
    assert [text for text in seen if text.startswith("quiet")] == []
    assert len([text for text in seen if text.startswith("shown")]) == 1
    [record] = read(log_file)
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
    log_file, _ = setup(tmp_path)
    with (
        SandboxServer(faults="long") as server,
        make_generator(sandbox_provider(server)) as generator,
    ):
        generator.generate(TOPIC)
    records = read(log_file)
    first_answer = next(r for r in records if r["event"] == "API request successful")
    rejected = next(r for r in records if r["event"] == "Tweet rejected")
    assert first_answer["response_length"] > 100
    assert rejected["text_preview"] == first_answer["response_preview"]
    assert rejected["text_preview"][100:] == "..."  # cut at 100 characters and marked


def test_every_field_is_cut_even_exceptions_and_nested_values(tmp_path: Path) -> None:
    log_file, _ = setup(tmp_path)
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
    [record] = read(log_file)
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


def test_the_applications_own_loggers_share_the_file_and_the_redaction(tmp_path: Path) -> None:
    """setup_logging() is the application's logging set-up (the seed presents it so)."""
    secret = "app-secret-" + "z9" * 8
    log_file, _ = setup(tmp_path, secrets=[secret])
    structlog.get_logger("myapp").info("order placed", order=42, token=secret)
    logging.getLogger("myapp.db").warning("slow query %s", "SELECT 1")
    records = read(log_file)
    placed = next(r for r in records if r["event"] == "order placed")
    assert placed["order"] == 42
    assert placed["token"] == "[REDACTED]"
    assert_shape(placed)
    slow = next(r for r in records if r["event"] == "slow query SELECT 1")
    assert slow["level"] == "warning"
    assert slow["logger"] == "myapp.db"


def test_a_library_can_leave_structlog_alone(tmp_path: Path) -> None:
    structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
    before = structlog.get_config()["processors"]
    log_file, _ = setup(tmp_path, configure_structlog=False)
    assert structlog.get_config()["processors"] == before
    get_logger().info("still routed")
    assert [r["event"] for r in read(log_file)] == ["still routed"]


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
