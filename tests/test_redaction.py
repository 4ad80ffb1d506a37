"""Tests for redaction (tweetgen.redaction): no secret in any form reaches the console or the file.

Only these checks look at raw output, because a secret must not appear anywhere in the bytes.
"""

from __future__ import annotations

import base64
import io
import logging
import string
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from logtools import (
    TOPIC,
    assert_shape,
    close_tweetgen_handlers,
    make_generator,
    parse,
    read,
    restore_logging,  # noqa: F401 - autouse: undoes setup_logging after each test
    setup,
)
from optional_tools import HealthCheck, given, settings, st

from tweetgen.errors import BadRequestError
from tweetgen.logs import (
    get_logger,
    redact_text,
    register_secret,
    setup_logging,
)
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer

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
        close_tweetgen_handlers()
    raw_console = stream.getvalue()
    for secret in secrets:
        assert secret not in raw_file
        assert secret not in raw_console
    for records in (parse(raw_file), parse(raw_console)):
        assert len(records) == len(placements)  # nothing was dropped instead of redacted
        for record in records:
            assert_shape(record)


@pytest.mark.parametrize("header", ["x-goog-api-key", "X-Goog-Api-Key"])
def test_secret_header_values_in_mappings_are_redacted(tmp_path: Path, header: str) -> None:
    log_file, _ = setup(tmp_path)
    get_logger().info(
        "Sending request", headers={header: "opaque-value-123", "content-type": "application/json"}
    )
    [record] = read(log_file)
    assert record["headers"] == {header: "[REDACTED]", "content-type": "application/json"}


_OPAQUE_KEY = "tg-e2e-Zq7Xw3Kp9Lm2Vn8Rt4Ys"  # not Google-shaped: only its registration protects it
_GOOGLE_KEY = "AIza" + "Sy0-x_" * 5 + "Q9z7W"


@pytest.mark.parametrize(
    "key", [pytest.param(_OPAQUE_KEY, id="opaque"), pytest.param(_GOOGLE_KEY, id="google")]
)
def test_configured_key_never_logged_end_to_end(tmp_path: Path, key: str) -> None:
    log_file, stream = setup(tmp_path, "DEBUG")
    with SandboxServer(faults="echo-key") as server:
        provider = GeminiProvider(api_key=key, model="m", base_url=server.url, name="sandbox")
        with make_generator(provider) as generator, pytest.raises(BadRequestError) as caught:
            generator.generate(TOPIC)
    assert key in str(caught.value)  # the sandbox really echoed the key, so the test bites
    assert key not in redact_text(str(caught.value))
    assert key not in log_file.read_text(encoding="utf-8")
    assert key not in stream.getvalue()
    records = read(log_file)
    assert parse(stream.getvalue())
    failed = next(r for r in records if r["event"] == "API request failed")
    assert failed["error_message"] == "API key not valid: [REDACTED]. Please pass a valid API key."
    assert (failed["status_code"], failed["retry_attempted"]) == (400, False)
    assert any(str(r.get("logger", "")).startswith(("httpx", "httpcore")) for r in records)


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


def test_a_low_entropy_piece_of_a_key_does_not_redact_ordinary_text() -> None:
    register_secret("AIza" + "x" * 35)  # a test key: its 8-character suffix is "xxxxxxxx"
    assert redact_text("padding xxxxxxxxxxxx here") == "padding xxxxxxxxxxxx here"
    assert redact_text("AIza" + "x" * 35) == "[REDACTED]"
