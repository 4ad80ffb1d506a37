"""No key at rest: a hostile server repeats the key in every place and form; every byte the program
writes (store and its WAL, output, log, metrics file, stdout, stderr) is scanned for the key in each
form."""

from __future__ import annotations

import base64
import itertools
import os
import random
import string
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import Exchange, HostileServer, gemini_body

_ALPHABET = string.ascii_letters + string.digits


def _fake_key(prefix: str, length: int, seed: int) -> str:
    """A key-shaped value built at run time (nothing key-shaped is committed)."""
    rng = random.Random(seed)
    return prefix + "".join(rng.choice(_ALPHABET) for _ in range(length))


def _forms(key: str) -> dict[str, bytes]:
    """Every form the key must never take in the output: itself, percent- and base64-encoded, its
    halves."""
    raw = key.encode()
    forms = {
        "plain": raw,
        "percent": urllib.parse.quote(key, safe="").encode(),
        "first half": raw[: len(raw) // 2],
        "second half": raw[len(raw) // 2 :],
    }
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).rstrip(b"=")
        start, stop = -(-offset * 4 // 3), (offset + len(raw)) * 4 // 3
        forms[f"base64 at offset {offset}"] = encoded[start:stop]
    return forms


def _sent_key(exchange: Exchange) -> str:
    headers = exchange.request.headers
    return headers.get("x-goog-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def _echoes() -> Callable[[Exchange], None]:
    """Answers in turn with the key in: an error message, the reason phrase, a non-JSON body, a
    percent-encoded and a base64-encoded message, a message that splits it in two, a response
    header, and a tweet's text."""
    counter = itertools.count()
    lock = threading.Lock()

    def handler(exchange: Exchange) -> None:
        key = _sent_key(exchange)
        with lock:
            turn = next(counter) % 9
        half = len(key) // 2
        if turn == 0:
            exchange.respond(
                503, json={"error": {"code": 503, "message": f"overloaded for key {key}"}}
            )
        elif turn == 1:
            exchange.respond(503, b"{}", reason=f"Unavailable {key}")
        elif turn == 2:
            exchange.respond(
                502, f"<html>proxy error for {key}</html>", headers=[("Content-Type", "text/html")]
            )
        elif turn == 3:
            exchange.respond(
                500, json={"error": {"message": "bad " + urllib.parse.quote(key, safe="")}}
            )
        elif turn == 4:
            encoded = base64.b64encode(b"u:" + key.encode()).decode()
            exchange.respond(500, json={"error": {"message": f"cred {encoded}"}})
        elif turn == 5:
            exchange.respond(
                503, json={"error": {"message": f"part {key[:half]} and later {key[half:]}"}}
            )
        elif turn == 6:
            exchange.respond(
                503, json={"error": {"message": "see header"}}, headers=[("X-Debug-Key", key)]
            )
        elif turn == 7:
            exchange.respond(json=gemini_body(f"Our key is {key} enjoy"))
        else:
            exchange.respond(json=gemini_body("Tests keep code honest and teams calm."))

    return handler


PROVIDERS = {
    "GEMINI_API_KEY": ("gemini", "AIza", 35),
    "GOOGLE_API_KEY": ("gemini", "AIza", 35),
    "OPENAI_API_KEY": ("openai", "sk-proj-", 40),
}


@pytest.mark.parametrize("variable", sorted(PROVIDERS))
def test_no_form_of_the_key_is_written_anywhere(tmp_path: Path, variable: str) -> None:
    provider, prefix, length = PROVIDERS[variable]
    key = _fake_key(prefix, length, seed=len(variable))
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(12)))
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    outputs: list[bytes] = []
    with HostileServer(_echoes()) as server:
        env = {
            **base,
            variable: key,
            "GEMINI_BASE_URL": server.url,
            "OPENAI_BASE_URL": server.url + "/v1",
            "TWEETGEN_PROVIDER": provider,
        }
        common = [
            "--log-level",
            "DEBUG",
            "--log-file",
            str(tmp_path / "t.log"),
            "--base-delay",
            "0",
        ]
        runs = [
            [
                "batch",
                str(tmp_path / "in.txt"),
                "-o",
                str(tmp_path / "out.jsonl"),
                "--db",
                str(tmp_path / "t.db"),
            ],
            [
                "batch",
                str(tmp_path / "in.txt"),
                "-o",
                str(tmp_path / "out.csv"),
                "--db",
                str(tmp_path / "t.db"),
            ],
            [
                "generate",
                "--topic",
                "AI",
                "--db",
                str(tmp_path / "t.db"),
                "--metrics-file",
                str(tmp_path / "m.prom"),
            ],
            ["generate", "--topic", "AI", "--json", "--max-retries", "8"],
        ]
        for run in runs:
            result = subprocess.run(
                [sys.executable, "-m", "tweetgen", *run, *common],
                env=env,
                capture_output=True,
                timeout=120,
            )
            assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
            assert b"Traceback" not in result.stderr
            outputs += [result.stdout, result.stderr]
        assert server.count >= 12  # the server was really asked, and answered with the key
    written = {
        p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file() and p.name != "in.txt"
    }
    assert {"t.db", "t.log", "out.jsonl", "out.csv", "m.prom"} <= set(written)
    written.update({f"output {i}": data for i, data in enumerate(outputs)})
    for name, data in written.items():
        for form, needle in _forms(key).items():
            assert needle not in data, f"the key ({form}) was written to {name}"
    assert b"[REDACTED]" in written["t.log"]
