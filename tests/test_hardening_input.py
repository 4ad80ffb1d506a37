"""Hostile input, one finding at a time: every malformed row is that row's error and the batch goes
on; bad settings and options are exit 2 with one sentence before any call; X's invalid characters
fail the tweet rules; a model's control characters never reach the terminal (issue 11, finding 5 and
the lower items)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tracemalloc
import unicodedata
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from optional_tools import given, st

from tweetgen import batch, batchinput, batchrows
from tweetgen.batch import PreparedRow, prepare, prepared_rows
from tweetgen.batchio import MAX_JSON_DEPTH, MAX_ROW_BYTES, Row, read_rows
from tweetgen.cli import main
from tweetgen.config import load_settings
from tweetgen.errors import ConfigurationError, InputError
from tweetgen.prompts import (
    MAX_FORMAT_WIDTH,
    MAX_PROMPT_CHARS,
    PromptTemplate,
    TemplateError,
    TemplateRegistry,
)
from tweetgen.request import TweetRequest
from tweetgen.tweets import TweetRules, check_tweet, clean_tweet

KEY_SETTINGS = {"provider": "sandbox", "model": "m"}
GOOD_FIRST = '{"topic": "good one"}'
GOOD_LAST = '{"topic": "good two"}'
# C0 and C1 controls but line feed: what must never reach a terminal from a model's answer
CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\n"}


def _rows(path: Path, fmt: str | None = None) -> list[PreparedRow]:
    return list(prepared_rows(path, fmt, KEY_SETTINGS))


def _between_good_rows(tmp_path: Path, line: str | bytes) -> list[PreparedRow]:
    """The prepared rows of a JSON Lines file: a good row, ``line``, another good row."""
    path = tmp_path / "in.jsonl"
    raw = line if isinstance(line, bytes) else line.encode("utf-8")
    path.write_bytes(GOOD_FIRST.encode() + b"\n" + raw + b"\n" + GOOD_LAST.encode() + b"\n")
    return _rows(path)


def _too_long(size: int, what: str = "line") -> str:
    return f"{what} is {size:,} bytes long; a row may have at most {MAX_ROW_BYTES:,} bytes"


def _nested(depth: int) -> str:
    return '{"topic": "deep", "x": ' + "[" * depth + "]" * depth + "}"


POISONED_ROWS = [
    ("topic-list", '{"topic": ["a"]}', 'topic must be a text, got ["a"]'),
    ("topic-number", '{"topic": 5}', "topic must be a text, got 5"),
    (
        "max-words-1e400",
        '{"topic": "x", "max_words": 1e400}',
        "line has a number out of range: 1e400",
    ),
    ("max-words-inf", '{"topic": "x", "max_words": Infinity}', "Infinity is not a JSON number"),
    ("max-words-nan", '{"topic": "x", "max_words": NaN}', "NaN is not a JSON number"),
    (
        "max-words-negative",
        '{"topic": "x", "max_words": -1}',
        "word limit must be a whole number from 1 to 60, got -1",
    ),
    (
        "max-words-10**100",
        '{"topic": "x", "max_words": 1' + "0" * 100 + "}",
        "from 1 to 60, got 10000000000",
    ),
    (
        "max-words-5000-digits",
        '{"topic": "x", "max_words": ' + "9" * 5000 + "}",
        "more digits than Python reads",
    ),
    (
        "max-words-true",
        '{"topic": "x", "max_words": true}',
        "max_words must be a whole number, got true",
    ),
    (
        "max-words-12.5",
        '{"topic": "x", "max_words": 12.5}',
        "max_words must be a whole number, got 12.5",
    ),
    (
        "max-words-text",
        '{"topic": "x", "max_words": "twelve"}',
        "max_words must be a whole number, got 'twelve'",
    ),
    ("nested-100000", _nested(100_000), f"a row may have at most {MAX_ROW_BYTES:,} bytes"),
    (
        "nested-30000",
        _nested(30_000),
        f"nests arrays or objects more than {MAX_JSON_DEPTH} levels deep",
    ),
    ("nul-escaped", '{"topic": "a\\u0000b"}', "topic contains a control character (U+0000)"),
    (
        "escape-in-topic",
        '{"topic": "a\\u001b[31mb"}',
        "topic contains a control character (U+001B)",
    ),
    ("nul-raw", '{"topic": "a\x00b"}', "line is not valid JSON"),
    ("tone-number", '{"topic": "x", "tone": 5}', "tone must be a text, got 5"),
    ("tone-list", '{"topic": "x", "tone": ["witty"]}', 'tone must be a text, got ["witty"]'),
    ("audience-number", '{"topic": "x", "audience": 5}', "audience must be a text, got 5"),
    ("cta-list", '{"topic": "x", "call_to_action": []}', "call_to_action must be a text, got []"),
    ("language-object", '{"topic": "x", "language": {}}', "language must be a text, got {}"),
    ("link-number", '{"topic": "x", "link": 5}', "link must be a text, got 5"),
    (
        "link-control",
        '{"topic": "x", "link": "https://a.example/\\u0007"}',
        "link contains a control character",
    ),
    ("hashtags-number", '{"topic": "x", "hashtags": 5}', "hashtags must be none, auto, or tags"),
    (
        "hashtags-numbers",
        '{"topic": "x", "hashtags": [1, 2]}',
        "hashtags must be none, auto, or tags",
    ),
    ("emoji-number", '{"topic": "x", "emoji": 5}', "emoji must be yes or no, got 5"),
    ("seed-float", '{"topic": "x", "seed": 1.5}', "seed must be a whole number, got 1.5"),
    (
        "seed-huge",
        '{"topic": "x", "seed": 99999999999}',
        "seed must be a whole number from -2147483648 to 2147483647",
    ),
    ("id-list", '{"topic": "x", "id": [1]}', "id must be a text or a whole number, got [1]"),
    ("not-utf8", b'{"topic": "caf\xe9"}', "line is not valid UTF-8"),
]


@pytest.mark.parametrize(
    ("line", "message"), [p[1:] for p in POISONED_ROWS], ids=[p[0] for p in POISONED_ROWS]
)
def test_a_poisoned_row_is_that_rows_error_and_the_next_row_is_read(
    tmp_path: Path, line: str | bytes, message: str
) -> None:
    first, bad, last = _between_good_rows(tmp_path, line)
    assert first.request is not None
    assert first.request.topic == "good one"
    assert bad.error is not None
    assert message in bad.error
    assert last.request is not None
    assert last.request.topic == "good two"
    assert [first.row.number, bad.row.number, last.row.number] == [1, 2, 3]


def test_a_whole_number_written_as_a_float_or_csv_text_is_read(tmp_path: Path) -> None:
    _, row, _ = _between_good_rows(tmp_path, '{"topic": "x", "max_words": 12.0, "seed": "42"}')
    assert row.request is not None
    assert (row.request.max_words, row.request.seed) == (12, 42)


def test_columns_that_are_not_batch_columns_are_ignored(tmp_path: Path) -> None:
    """README: other columns are ignored; before, a row could set variants, thread or template and
    be refused."""
    line = (
        '{"topic": "x", "thread": 1, "variants": 99, "template": 5, "numbering": "x", '
        '"note": [1e300]}'
    )
    _, row, _ = _between_good_rows(tmp_path, line)
    assert row.request is not None
    assert (row.request.thread, row.request.variants, row.request.template) == (0, 1, "tweet")


def test_an_error_rows_values_are_safe_to_write() -> None:
    """An error record repeats the row's id, topic, tone and max_words: never a list, a float or a
    300-digit int."""
    values = {"id": 7, "topic": ["a"], "tone": "x" * 5000, "max_words": 10**300}
    prepared = prepare(Row(3, values), KEY_SETTINGS)
    assert prepared.error == 'topic must be a text, got ["a"]'
    shown = prepared.row.values
    assert prepared.row.id == "7"
    assert shown["topic"] == '["a"]'
    assert len(shown["tone"]) <= batch.MAX_SHOWN_CHARS + 3
    assert isinstance(shown["max_words"], str)
    assert len(shown["max_words"]) <= 40


def test_a_line_of_50_mb_is_an_error_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    with path.open("w") as handle:
        handle.write(GOOD_FIRST + "\n")
        handle.write('{"topic": "' + "a" * 50_000_000 + '"}\n')
        handle.write(GOOD_LAST + "\n")
    tracemalloc.start()
    try:
        rows = list(read_rows(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [row.values.get("topic") for row in rows] == ["good one", None, "good two"]
    assert rows[1].error == _too_long(50_000_014)
    assert peak < 8 * MAX_ROW_BYTES, f"reading took {peak:,} bytes at its peak"


def test_the_row_size_limit_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    fits = "a" * (MAX_ROW_BYTES - 1) + "\n"
    path.write_text(fits + "b" + fits + "ok\n")
    first, second, third = read_rows(path)
    assert len(first.values["topic"]) == MAX_ROW_BYTES - 1
    assert second.error == _too_long(MAX_ROW_BYTES + 1)
    assert third.values == {"topic": "ok"}


def test_the_json_depth_limit_is_exact_and_ignores_brackets_in_strings(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    inside = '"' + "[" * 100 + '"'
    deepest = (
        '{"topic": "a", "x": '
        + "[" * (MAX_JSON_DEPTH - 1)
        + inside
        + "]" * (MAX_JSON_DEPTH - 1)
        + "}"
    )
    too_deep = '{"topic": "b", "x": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    path.write_text(f"{deepest}\n{too_deep}\n")
    ok, refused = read_rows(path)
    assert ok.values["topic"] == "a"
    assert refused.error == f"line nests arrays or objects more than {MAX_JSON_DEPTH} levels deep"


def test_a_csv_field_over_the_csv_module_limit_then_the_next_rows(tmp_path: Path) -> None:
    """csv's 131,072-character field limit ended the run; a multi-line quoted field over the limit
    also left the parser out of step, so that its remaining lines came back as rows of their own
    (and would have been called)."""
    path = tmp_path / "in.csv"
    long_line = "x" * 131_073
    many_lines = "".join(f"line {i} of a long quoted field, with commas\n" for i in range(4_000))
    quotes = 'a ""quoted"" word\n' * 5_000
    oversized = [f"2,{long_line},witty\n", f'4,"{many_lines}",casual\n', f'6,"{quotes}",casual\n']
    path.write_text(
        "id,topic,tone\n"
        "1,first,casual\n"
        f"{oversized[0]}"
        "3,after one long line,witty\n"
        f"{oversized[1]}"
        "5,after many lines,casual\n"
        f"{oversized[2]}"
        '7,"a ""fine"" one",informative\n'
        "8,caf\xe9,casual\n"
    )
    rows = list(read_rows(path))
    assert [row.number for row in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [row.values.get("id") for row in rows] == ["1", None, "3", None, "5", None, "7", "8"]
    assert rows[2].values == {"id": "3", "topic": "after one long line", "tone": "witty"}
    assert rows[4].values == {"id": "5", "topic": "after many lines", "tone": "casual"}
    assert rows[6].values["topic"] == 'a "fine" one'
    assert [row.error for row in rows[1:6:2]] == [
        _too_long(len(row.encode()), "row") for row in oversized
    ]


def test_a_csv_line_of_50_mb_is_an_error_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    with path.open("w") as handle:
        handle.write("topic,tone\nfirst,casual\n")
        handle.write('"' + "a" * 50_000_000 + ',b",witty\n')
        handle.write("last,witty\n")
    tracemalloc.start()
    try:
        rows = list(read_rows(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [row.values.get("topic") for row in rows] == ["first", None, "last"]
    assert peak < 8 * MAX_ROW_BYTES, f"reading took {peak:,} bytes at its peak"


def test_an_unforeseen_failure_while_reading_fails_only_that_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: Any
) -> None:
    real = batchinput._txt_row

    def flaky(text: str) -> dict[str, Any]:
        if "boom" in text:
            raise RuntimeError("a bug")
        return real(text)

    monkeypatch.setattr(batchinput, "_txt_row", flaky)
    path = tmp_path / "in.txt"
    path.write_text("one\nboom\nthree\n")
    rows = _rows(path)
    assert [row.request.topic if row.request else None for row in rows] == ["one", None, "three"]
    assert rows[1].error == "line cannot be read (RuntimeError); the log file has the details"
    logged = [e for e in events() if e["event"] == "Input row unreadable"]
    assert [(e["row"], e["error_type"]) for e in logged] == [(2, "RuntimeError")]


def test_an_unforeseen_failure_while_preparing_fails_only_that_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: Any
) -> None:
    real = batchrows.idempotency_key

    def flaky(inputs: Any, settings: Any) -> str:
        if inputs["topic"] == "boom":
            raise RuntimeError("a bug")
        return real(inputs, settings)

    monkeypatch.setattr(batchrows, "idempotency_key", flaky)
    path = tmp_path / "in.txt"
    path.write_text("one\nboom\nthree\n")
    rows = _rows(path)
    assert [row.key is not None for row in rows] == [True, False, True]
    assert rows[1].error == "row cannot be prepared (RuntimeError); the log file has the details"
    logged = [e for e in events() if e["event"] == "Row cannot be prepared"]
    assert [(e["row"], e["error_type"]) for e in logged] == [(2, "RuntimeError")]


# --- the whole CLI, as a user runs it -------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    prefixes = ("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


def _batch(tmp_path: Path, source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "tweetgen",
        "batch",
        str(source),
        "-o",
        str(output),
        "--provider",
        "sandbox",
    ]
    command += ["--db", str(tmp_path / "t.db"), "--log-file", str(tmp_path / "log.jsonl"), "-q"]
    return subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )


def test_cli_batch_with_poisoned_rows_writes_every_row_and_exits_1(tmp_path: Path) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    poisons = [line for name, line, _ in POISONED_ROWS if name != "not-utf8"]
    with source.open("wb") as handle:
        for index, poison in enumerate(poisons):
            handle.write(f'{{"id": "good-{index}", "topic": "good topic {index}"}}\n'.encode())
            handle.write(poison.encode() + b"\n")
        handle.write(b'{"topic": "' + b"a" * 50_000_000 + b'"}\n')
        handle.write(b"\xff\xfe not UTF-8\n")
        handle.write(b'{"id": "last", "topic": "the last good topic"}\n')
    result = _batch(tmp_path, source, output)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 2 * len(poisons) + 3
    good = [r for r in records if str(r["id"]).startswith("good-") or r["id"] == "last"]
    assert len(good) == len(poisons) + 1
    assert all(r["status"] == "ok" and r["text"] for r in good)
    bad = records[1 : 2 * len(poisons) : 2]
    for record, (_, _, message) in zip(
        bad, [p for p in POISONED_ROWS if p[0] != "not-utf8"], strict=True
    ):
        assert record["status"] == "failed", record
        assert message in record["error"], record
    assert records[-3]["error"] == _too_long(50_000_014)
    assert records[-2]["error"] == "line is not valid UTF-8"
    assert f"{len(poisons) + 1} ok, {len(poisons) + 2} failed" in result.stderr

    again = _batch(
        tmp_path, source, output
    )  # a rerun: same output, nothing called again, still exit 1
    assert again.returncode == 1, again.stderr
    assert [json.loads(line) for line in output.read_text().splitlines()] == records
    assert f"{len(poisons) + 1} already done" in again.stderr


def test_cli_batch_csv_with_an_oversized_field_goes_on(tmp_path: Path) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.jsonl"
    long_quoted = '"' + "a line of a long quoted field, with a comma\n" * 4_000 + '"'
    source.write_text(
        "id,topic,max_words\n"
        "1,first,20\n"
        f"2,{'x' * 131_073},20\n"
        "3,third,1e400\n"
        "4,fourth,20\n"
        f"5,{long_quoted},20\n"
        "6,sixth,20\n"
    )
    result = _batch(tmp_path, source, output)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [
        ("1", "ok"),
        ("2", "failed"),
        ("3", "failed"),
        ("4", "ok"),
        ("5", "failed"),
        ("6", "ok"),
    ]
    assert f"a row may have at most {MAX_ROW_BYTES:,} bytes" in records[1]["error"]
    assert records[2]["error"] == "max_words must be a whole number, got '1e400'"
    assert f"a row may have at most {MAX_ROW_BYTES:,} bytes" in records[4]["error"]


# --- settings and options: exit 2 with one sentence, before any call ------------------------------


class _Gemini:
    """A Gemini-shaped server on 127.0.0.1 that counts requests and answers every one with
    ``text``."""

    def __init__(self, text: str) -> None:
        self.text, self.requests = text, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                part = {"content": {"parts": [{"text": server.text}]}, "finishReason": "STOP"}
                body = json.dumps({"candidates": [part]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def gemini() -> Iterator[_Gemini]:
    server = _Gemini("Ship small changes, measure them, and keep what works. #Python")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _against(gemini: _Gemini, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("GEMINI_BASE_URL", gemini.url)
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-123456")
    return [
        "--provider",
        "gemini",
        "--log-file",
        "",
        "-q",
        "--max-retries",
        "0",
        "--regenerations",
        "2",
    ]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("tweetgen: error: "), err
    return err


def test_a_env_file_that_is_not_utf8_is_exit_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (clean_env / ".env").write_bytes(b"GEMINI_API_KEY=\xff\xfe\n")
    assert main(["generate", "--topic", "AI", "--provider", "sandbox", "--log-file", "", "-q"]) == 2
    assert ".env file is not valid UTF-8 (byte 0xff at offset 15)" in _error_line(capsys)


@pytest.mark.parametrize(
    ("variable", "value", "option", "named"),
    [
        ("TWEETGEN_MODEL", "gem\x1b[31mini", None, "TWEETGEN_MODEL"),
        ("TWEETGEN_MODEL", "gemini flash", None, "TWEETGEN_MODEL"),
        (None, None, "gemini\nflash", "--model"),
        (None, None, "gemini?key=x", "--model"),
        ("TWEETGEN_OPENAI_MODEL", "gpt\x07", None, "TWEETGEN_OPENAI_MODEL"),
    ],
)
def test_control_characters_in_a_model_name_are_exit_2(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str | None,
    value: str | None,
    option: str | None,
    named: str,
) -> None:
    if variable and value:
        monkeypatch.setenv(variable, value)
    args = ["generate", "--topic", "AI", "--provider", "sandbox", "--log-file", "", "-q"]
    assert main([*args, *(["--model", option] if option else [])]) == 2
    assert named in _error_line(capsys)


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://x",
        "http://exa mple.com/v1",
        "http://example.com/\x1b[2J",
        "http://[::1",
        "http://example.com:99999",
        "http://example.com/?key=1",
        "http://:80",
    ],
)
@pytest.mark.parametrize("variable", ["GEMINI_BASE_URL", "OPENAI_BASE_URL"])
def test_a_bad_base_url_is_exit_2(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, url)
    assert main(["generate", "--topic", "AI", "--provider", "sandbox", "--log-file", "", "-q"]) == 2
    assert f"(from environment {variable}) must be an http(s) URL" in _error_line(capsys)


def test_base_urls_that_work_still_pass() -> None:
    for url in (
        "http://127.0.0.1:8765",
        "https://example.com/gemini/",
        "http://[::1]:80/x",
        "https://h.example",
    ):
        assert load_settings(
            env={"GEMINI_BASE_URL": url, "OPENAI_BASE_URL": url}, dotenv_path=None
        ).base_url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["generate", "--topic", "AI", "--ban", ""],
            "--ban: a banned phrase must be a non-empty text, got ''",
        ),
        (
            ["generate", "--topic", "AI", "--ban", "ok", "--ban", "  "],
            "--ban: a banned phrase must be a non-empty",
        ),
        (
            ["thread", "--topic", "AI", "--tweets", "0"],
            "--tweets: the number of tweets in a thread must be",
        ),
        (["generate", "--topic", "A\x00I"], "topic contains a control character (U+0000)"),
        (
            ["generate", "--topic", "AI", "--seed", "99999999999"],
            "seed must be a whole number from -2147483648",
        ),
    ],
)
def test_bad_options_are_exit_2_before_any_call(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gemini: _Gemini,
    args: list[str],
    message: str,
) -> None:
    assert main([*args, *_against(gemini, monkeypatch)]) == 2
    assert message in _error_line(capsys)
    assert gemini.requests == 0


def test_a_template_with_an_absurd_width_is_exit_2_before_any_call(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gemini: _Gemini,
) -> None:
    (clean_env / "t.json").write_text(
        json.dumps({"wide": {"text": "Write about {topic:x>100000000}."}})
    )
    args = ["generate", "--topic", "AI", "--templates-file", "t.json", "--template", "wide"]
    assert main([*args, *_against(gemini, monkeypatch)]) == 2
    assert (
        f"asks for a width or precision of 100000000; the limit is {MAX_FORMAT_WIDTH}"
        in _error_line(capsys)
    )
    assert gemini.requests == 0


def test_widths_filled_in_at_render_time_and_huge_prompts_are_refused() -> None:
    templates = TemplateRegistry()
    nested = templates.register(PromptTemplate("nested", "{topic:x>{width}}"))
    assert nested.render(topic="AI", width="6") == "xxxxAI"
    with pytest.raises(TemplateError, match="width or precision of 100000000"):
        nested.render(topic="AI", width="100000000")
    request = TweetRequest("AI", template="long", extra={"blob": "b" * MAX_PROMPT_CHARS})
    templates.register(PromptTemplate("long", "{topic} {blob}"))
    with pytest.raises(TemplateError, match=f"the limit is {MAX_PROMPT_CHARS:,}"):
        request.render(templates)


def test_the_library_refuses_the_same_inputs() -> None:
    """The checks live where the request is validated, so the library and the CLI agree."""
    for options in (
        {"thread": 0},
        {"banned_phrases": ("",)},
        {"banned_phrases": "one phrase"},
        {"seed": True},
        {"temperature": "hot"},
        {"temperature": float("nan")},
        {"audience": 5},
        {"language": "Ger\x00man"},
    ):
        with pytest.raises(InputError):
            TweetRequest("AI", **options)
    with pytest.raises(ConfigurationError, match="TWEETGEN_MODEL"):
        load_settings(env={"TWEETGEN_MODEL": "m\x00"}, dotenv_path=None)
    assert TweetRequest("AI").thread == 0
    assert TweetRequest("AI", thread=5).thread == 5


# --- what comes back from the model ---------------------------------------------------------------

INVALID_FOR_X = ["\ufffe", "\uffff", "\ufeff"]


@pytest.mark.parametrize("char", INVALID_FOR_X)
def test_x_invalid_characters_fail_the_tweet_rules(char: str) -> None:
    for text in (
        f"Plain ASCII words{char}",
        f"{char}Caf\u00e9 and more",
        f"Link https://example.com {char}",
    ):
        check = check_tweet(text, TweetRules())
        assert not check.valid
        assert f"it contained a character X does not allow (U+{ord(char):04X})" in check.reasons


@given(
    st.text(
        alphabet=st.sampled_from(["a", " ", "\u00e9", "#", ".", "x", *INVALID_FOR_X]), max_size=30
    )
)
def test_invalid_characters_agree_with_twitter_text(text: str) -> None:
    from twitter_text.has_invalid_characters import has_invalid_characters  # type: ignore[import-untyped, unused-ignore]

    check = check_tweet(text, TweetRules(max_words=60))
    flagged = any("X does not allow" in reason for reason in check.reasons)
    assert flagged == bool(has_invalid_characters(text))


@given(st.text(max_size=40))
def test_clean_tweet_leaves_no_control_character_but_line_breaks(raw: str) -> None:
    assert not CONTROLS & set(clean_tweet(raw))


def test_a_models_escape_sequences_never_reach_the_terminal(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gemini: _Gemini,
) -> None:
    gemini.text = "Ship \x1b[2J\x1b]0;owned\x07small\x9b31m changes\x00 and measure them. #Python"
    assert main(["generate", "--topic", "AI", *_against(gemini, monkeypatch)]) == 0
    out = capsys.readouterr().out
    assert not CONTROLS & set(out.rstrip("\n")), repr(out)
    assert out.split()[0] == "Ship"
    assert "changes" in out
    assert "#Python" in out
    assert all(unicodedata.category(ch) != "Cc" for ch in out.rstrip("\n"))
