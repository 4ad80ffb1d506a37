"""The fast paths of a call (issue 13's per-call cost) give what the general paths give: plain-text
hashtag and word counts, the redaction pre-checks, and log events written straight to tweetgen's
own handlers."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from logtools import parse, read, restore_logging  # noqa: F401 - autouse: undoes setup_logging

from tweetgen import events, logs, redaction, tweets
from tweetgen.logs import setup_logging
from tweetgen.prompts import (
    TONES,
    PromptTemplate,
    TemplateRegistry,
    default_registry,
    register_tone,
)
from tweetgen.providers.base import GenerationResult, Usage
from tweetgen.request import TweetRequest

_ALPHABET = "aZ9_#&:/. \t\n\x1c\x1f-!@x1#"


def _texts(count: int, alphabet: str = _ALPHABET) -> list[str]:
    rng = random.Random(13)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24))) for _ in range(count)
    ]


def test_plain_hashtag_and_word_counts_match_the_general_counts() -> None:
    texts = [*_texts(5000), "#a#b", "x#tag", "&#tag", "#1", "#_a", "#tag://x", "#a# ", "#tag!"]
    for text in texts:
        assert tweets.count_words(text) == tweets._count_words(text), text
        if tweets._plain(text):
            assert tweets.count_hashtags(text) == tweets._count_hashtags(text), text


def test_trigger_precheck_finds_what_the_regex_finds() -> None:
    words = ["key", "KEY", "aIzA", "Bearer", "AUTHORIZATION", "://", "ke y", "\u212aey", "auth"]
    rng = random.Random(14)
    texts = [f"{rng.choice(words)}{text}{rng.choice(words)}" for text in _texts(500)]
    texts += ["authorızation: x", "\u212aEY=abcdefgh", "plain text", "kéy"]
    for text in [*texts, *_texts(500)]:
        expected = redaction._TRIGGER.search(text) is not None
        assert redaction._may_look_secret(text) == expected, text


def test_few_anchors_are_searched_as_the_regex_searches() -> None:
    for count in (1, 3):  # 1 secret: a few anchors; 3 long ones: more than _FEW_ANCHORS
        names = frozenset(f"secret-value-{n}-0123456789abcdef" for n in range(count))
        registered = redaction._Registered.of(names, 0)
        for text in [*_texts(200), *names, "c2VjcmV0LXZhbHVlLTA", "nothing here"]:
            expected = registered.anchors is not None and bool(registered.anchors.search(text))
            assert registered.found_in(text) == expected, text


@contextmanager
def own_handlers_only() -> Iterator[None]:
    """Without pytest's own log handlers on the root logger (foreign handlers, which send every
    event the standard way); pytest adds them back at the start of each phase of a test."""
    root = logging.getLogger()
    foreign = [h for h in root.handlers if not getattr(h, "_tweetgen", False)]
    for handler in foreign:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in foreign:
            root.addHandler(handler)


def _numbered(seqs: range) -> None:
    for seq in seqs:
        events.retry_succeeded(seq)


def _seqs(path: Path) -> list[int]:
    return [record["final_attempt"] for record in read(path)]


def _log_a_call(prompt: str, result: GenerationResult) -> None:
    with structlog.contextvars.bound_contextvars(request_id="abc123", provider="gemini"):
        events.request_started("gemini-flash-latest", prompt)
        events.request_succeeded(200, 1.5, result)
        events.retry_attempt(1, 3, 0.25, "HTTP 503: unavailable key=abcdefghijkl")
        events.retries_exhausted(3, "HTTP 503", "attempts")


def test_direct_route_writes_what_the_standard_route_writes(tmp_path: Path) -> None:
    with own_handlers_only():
        consoles = io.StringIO(), io.StringIO()
        setup_logging(
            "INFO",
            str(tmp_path / "direct.jsonl"),
            stream=consoles[0],
            console_format="json",
            secrets=["s3cr3t-k3y-v4lue"],
        )
        prompt = "Write about s3cr3t-k3y-v4lue and https://user:pw@example.com/ " + "x" * 5000
        result = GenerationResult(
            ("A tweet \u2728 #AI",), "gemini", "m", ("STOP",), Usage(1, 2, 0, 3)
        )
        assert logs._reached(logging.INFO) is not None  # the direct route
        _log_a_call(prompt, result)
        root = logging.getLogger()
        other = logging.NullHandler()  # any foreign handler sends events the standard way
        root.addHandler(other)
        try:
            for handler in root.handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.close()
                    handler.baseFilename = str(tmp_path / "standard.jsonl")
                elif isinstance(handler, logging.StreamHandler):
                    handler.setStream(consoles[1])
            assert logs._reached(logging.INFO) is None  # the standard route
            _log_a_call(prompt, result)
        finally:
            root.removeHandler(other)
        direct, standard = read(tmp_path / "direct.jsonl"), read(tmp_path / "standard.jsonl")
        direct += parse(consoles[0].getvalue())
        standard += parse(consoles[1].getvalue())
        assert len(direct) == len(standard) == 8
        for mine, theirs in zip(direct, standard, strict=True):
            assert mine.pop("timestamp")
            assert theirs.pop("timestamp")
            assert json.dumps(mine) == json.dumps(theirs)  # same fields, values and order
        assert "s3cr3t-k3y-v4lue" not in (tmp_path / "direct.jsonl").read_text(encoding="utf-8")


def test_direct_route_rotates_by_size_and_loses_nothing(tmp_path: Path) -> None:
    with own_handlers_only():
        log_file = tmp_path / "events.jsonl"
        setup_logging("INFO", str(log_file), console=False, max_bytes=1024, backup_count=50)
        assert logs._reached(logging.INFO) is not None
        _numbered(range(60))
        backups = [log_file.with_name(f"{log_file.name}.{n}") for n in range(50, 0, -1)]
        files = [f for f in [*backups, log_file] if f.exists()]
        assert len(files) > 3
        assert all(f.stat().st_size <= 1024 for f in files)
        assert [seq for f in files for seq in _seqs(f)] == list(range(60))


def test_direct_route_follows_logrotate(tmp_path: Path) -> None:
    with own_handlers_only():
        log_file = tmp_path / "events.jsonl"
        setup_logging("INFO", str(log_file), console=False)
        [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_tweetgen", False)]
        now = [0.0]
        handler.clock, handler._next_check = (lambda: now[0]), 0.0  # type: ignore[attr-defined]
        _numbered(range(3))
        log_file.rename(tmp_path / "rotated.0")
        _numbered(range(3, 5))  # before the next check: into the renamed file, kept there
        now[0] += 1.0
        _numbered(range(5, 8))
        assert _seqs(tmp_path / "rotated.0") == [0, 1, 2, 3, 4]
        assert _seqs(log_file) == [5, 6, 7]


def test_direct_route_reports_an_unwritable_file_once(capsys: pytest.CaptureFixture[str]) -> None:
    with own_handlers_only():
        if not Path("/dev/full").exists():
            pytest.skip("this system has no /dev/full to stand for a full disk")
        setup_logging("INFO", "/dev/full", console=False)
        assert logs._reached(logging.INFO) is not None
        _numbered(range(240))
        err = capsys.readouterr().err
        assert err.count("tweetgen: cannot write the log file /dev/full") == 1
        assert "Traceback" not in err


def test_with_latency_is_replace_of_every_field() -> None:
    result = GenerationResult(
        ("a", "b"), "p", "m", ("STOP", "X"), Usage(1, 2, 3, 6), "v", "id", 201
    )
    assert result.with_latency(12.5) == dataclasses.replace(result, latency_ms=12.5)
    assert len(dataclasses.fields(GenerationResult)) == 11  # a new field must be copied there too


def test_cached_prompts_follow_tones_templates_and_values() -> None:
    registry = TemplateRegistry({"tweet": PromptTemplate("tweet", "{topic} in a {tone} way")})
    request = TweetRequest("Rust", "casual")
    assert request.render(registry) == "Rust in a casual way"
    assert request.render(registry) == "Rust in a casual way"  # from the cache
    registry.register(PromptTemplate("tweet", "{topic}: {tone_description}"))
    assert request.render(registry) == f"Rust: {TONES['casual']}"
    saved = TONES["casual"]
    try:
        register_tone("casual", "like a pirate")
        assert request.render(registry) == "Rust: like a pirate"
    finally:
        TONES["casual"] = saved
    assert TweetRequest("Go", "casual").render(registry) == f"Go: {saved}"
    default = TweetRequest("Rust", extra={"x": "y"}).render(default_registry)
    assert default == TweetRequest("Rust").render(default_registry)
    assert default.startswith("Generate a professional tweet about Rust.\n")
