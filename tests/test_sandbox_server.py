"""Tests for tweetgen.sandbox's loopback server: answers, scripted faults, bad requests, stop, and
``sandbox serve --quota-rps`` as a child process (the quota itself: test_sandbox_quota.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import PROGRESS_TIMEOUT, Children, wait_until

from tweetgen.hints import parse_duration
from tweetgen.prompts import DEFAULT_TEMPLATE, TONES
from tweetgen.sandbox import SandboxServer, compose

PROMPT = "Generate a witty tweet about unit tests.\nWrite at most 20 words."


def prompt_for(topic: str, tone: str, max_words: int) -> str:
    return DEFAULT_TEMPLATE.render(
        topic=topic, tone=tone, tone_description=TONES[tone], max_words=max_words
    )


def gemini_body(prompt: str = PROMPT, **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if config:
        body["generationConfig"] = config
    return body


# --- the server over loopback --------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as http:
        yield http


def generate_url(server: SandboxServer, version: str = "v1beta", model: str = "gemini-test") -> str:
    return f"{server.url}/{version}/models/{model}:generateContent"


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_server_answers_and_records(client: httpx.Client, version: str) -> None:
    with SandboxServer() as server:
        body = gemini_body(prompt_for("unit tests", "witty", 20), seed=5)
        response = client.post(
            generate_url(server, version), json=body, headers={"x-goog-api-key": "sandbox-key"}
        )
        assert response.status_code == 200
        data = response.json()
        (candidate,) = data["candidates"]
        text = candidate["content"]["parts"][0]["text"]
        assert text == compose("unit tests", "witty", 20, seed=5)
        assert candidate["finishReason"] == "STOP"
        assert data["modelVersion"] == "gemini-test"
        assert data["usageMetadata"]["totalTokenCount"] > 0
        assert data["responseId"]
        (recorded,) = server.requests
        assert recorded.path == f"/{version}/models/gemini-test:generateContent"
        assert recorded.headers["x-goog-api-key"] == "sandbox-key"
        assert recorded.body == body


def test_server_with_prefix(client: httpx.Client) -> None:
    with SandboxServer(prefix="/some/prefix/") as server:
        assert server.url == f"http://127.0.0.1:{server.port}/some/prefix"
        response = client.post(generate_url(server), json=gemini_body())
        assert response.status_code == 200
        assert server.requests[0].path == "/some/prefix/v1beta/models/gemini-test:generateContent"
        assert client.get(f"{server.url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("count", [1, 3, 8])
def test_candidate_count(client: httpx.Client, count: int) -> None:
    with SandboxServer() as server:
        response = client.post(generate_url(server), json=gemini_body(candidateCount=count, seed=1))
        candidates = response.json()["candidates"]
        assert [c["index"] for c in candidates] == list(range(count))
        assert all(c["content"]["parts"][0]["text"] for c in candidates)


def test_scripted_503_then_ok(client: httpx.Client) -> None:
    with SandboxServer(faults="503") as server:
        first = client.post(generate_url(server), json=gemini_body())
        second = client.post(generate_url(server), json=gemini_body())
    assert first.status_code == 503
    assert first.json() == {
        "error": {
            "code": 503,
            "message": "Service temporarily unavailable",
            "status": "UNAVAILABLE",
        }
    }
    assert second.status_code == 200


def test_rate_limit_carries_retry_info(client: httpx.Client) -> None:
    with SandboxServer() as server:
        server.script("429:26s")
        response = client.post(generate_url(server), json=gemini_body())
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"} in error[
        "details"
    ]
    assert "26s" in error["message"]


def test_retry_after_header(client: httpx.Client) -> None:
    with SandboxServer(faults="503:retry-after=2") as server:
        response = client.post(generate_url(server), json=gemini_body())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"


def test_not_found_names_the_model_and_version(client: httpx.Client) -> None:
    with SandboxServer(faults="404") as server:
        response = client.post(generate_url(server, "v1", "gemini-1.5-pro"), json=gemini_body())
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith(
        "models/gemini-1.5-pro is not found for API version v1"
    )


@pytest.mark.parametrize(("sent", "status"), [("wrong", 400), (None, 400), ("right-key", 200)])
def test_require_key(client: httpx.Client, sent: str | None, status: int) -> None:
    headers = {"x-goog-api-key": sent} if sent is not None else {}
    with SandboxServer(require_key="right-key") as server:
        response = client.post(generate_url(server), json=gemini_body(), headers=headers)
    assert response.status_code == status
    if status == 400:
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert error["details"][0]["reason"] == "API_KEY_INVALID"
        assert error["message"] == "API key not valid. Please pass a valid API key."


@pytest.mark.parametrize(
    ("faults", "check"),
    [
        ("blocked", lambda r: r.json()["promptFeedback"]["blockReason"] == "SAFETY"),
        ("max-tokens", lambda r: r.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"),
        (
            "html",
            lambda r: r.headers["content-type"] == "text/html" and r.text.startswith("<html>"),
        ),
        (
            "quoted",
            lambda r: r.json()["candidates"][0]["content"]["parts"][0]["text"].startswith('"'),
        ),
        (
            "preamble",
            lambda r: r.json()["candidates"][0]["content"]["parts"][0]["text"].startswith(
                "Here's a tweet"
            ),
        ),
        (
            "long",
            lambda r: len(r.json()["candidates"][0]["content"]["parts"][0]["text"].split()) == 60,
        ),
        (
            "emoji",
            lambda r: (
                r.json()["candidates"][0]["content"]["parts"][0]["text"] == "\U0001f680" * 150
            ),
        ),
        (
            "echo-key",
            lambda r: r.status_code == 400 and "echoed-key" in r.json()["error"]["message"],
        ),
        ("ok:0.01", lambda r: r.status_code == 200),
        ("hang:0.01", lambda r: r.status_code == 200),
    ],
)
def test_answer_faults(client: httpx.Client, faults: str, check: Any) -> None:
    with SandboxServer(faults=faults) as server:
        response = client.post(
            generate_url(server), json=gemini_body(), headers={"x-goog-api-key": "echoed-key"}
        )
    assert check(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1beta/models/m:streamGenerateContent"),
        ("POST", "/v2/models/m:generateContent"),
        ("POST", "/nothing"),
        ("GET", "/v1beta/models/m:generateContent"),
    ],
)
def test_unknown_path_is_404(client: httpx.Client, method: str, path: str) -> None:
    with SandboxServer() as server:
        response = client.request(
            method, server.url + path, json=gemini_body() if method == "POST" else None
        )
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"contents": "nope"}', b"", b"{}"],
)
def test_invalid_request_body_is_400(client: httpx.Client, content: bytes) -> None:
    with SandboxServer() as server:
        response = client.post(
            generate_url(server), content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "config",
    [{"candidateCount": "abc"}, {"candidateCount": [2]}, ["not", "an", "object"]],
)
def test_invalid_generation_config_is_400_not_a_dropped_connection(
    client: httpx.Client, config: Any
) -> None:
    with SandboxServer() as server:
        response = client.post(
            generate_url(server), json={**gemini_body(), "generationConfig": config}
        )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_drop_makes_httpx_raise_a_transport_error(client: httpx.Client) -> None:
    with SandboxServer(faults="drop") as server:
        with pytest.raises(httpx.TransportError):
            client.post(generate_url(server), json=gemini_body())
        # The next request gets a normal answer.
        assert client.post(generate_url(server), json=gemini_body()).status_code == 200


def test_healthz(client: httpx.Client) -> None:
    with SandboxServer(faults="503") as server:
        response = client.get(f"{server.url}/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert len(server.faults) == 1  # a health check consumes no fault


def test_stop_closes_the_port(client: httpx.Client) -> None:
    server = SandboxServer().start()
    url = f"{server.url}/healthz"
    server.stop()
    with pytest.raises(httpx.ConnectError):
        client.get(url)


def test_stop_also_ends_kept_alive_connections(client: httpx.Client) -> None:
    server = SandboxServer().start()
    url = f"{server.url}/healthz"
    assert client.get(url).status_code == 200  # leaves a keep-alive connection in the client's pool
    server.stop()
    with pytest.raises(httpx.TransportError):
        client.get(url)


# --- tweetgen sandbox serve --quota-rps, as a shell runs it ----------------------------------


def test_sandbox_serve_with_a_per_second_quota_answers_429(children: Children) -> None:
    command = [sys.executable, "-m", "tweetgen", "sandbox", "serve", "--port", "0",
               "--quota-rps", "5"]  # fmt: skip
    process = children.start(command, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert process.stderr is not None
    stderr = process.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")), daemon=True)
    reader.start()
    wait_until(lambda: any("quota:" in line for line in lines), what="start-up", process=process)
    base = lines[0].rsplit(" at ", 1)[1].strip()
    assert "5 requests per second (sliding window)" in next(x for x in lines if "quota:" in x)
    url = f"{base}/v1beta/models/gemini-test:generateContent"
    statuses: list[int] = []
    refused: dict[str, Any] = {}
    with httpx.Client(timeout=10, trust_env=False) as client:
        while len(statuses) < 500 and not refused:  # ms each: a 429 comes within six
            answer = client.post(url, json=gemini_body(), headers={"x-goog-api-key": "test-key"})
            statuses.append(answer.status_code)
            refused = answer.json() if answer.status_code == 429 else {}
        stats = client.get(f"{base}/quota").json()
    process.terminate()
    process.wait(timeout=PROGRESS_TIMEOUT)
    reader.join(timeout=10)
    assert refused, f"no 429 in {len(statuses)} requests at 5 per second"
    assert refused["error"]["status"] == "RESOURCE_EXHAUSTED"
    delay = parse_duration(refused["error"]["details"][2]["retryDelay"])
    assert delay is not None
    assert 0 < delay <= 1.0
    assert set(statuses) == {200, 429}
    assert (stats["accepted"], stats["refused"]) == (statuses.count(200), statuses.count(429))
    assert stats["limit"] == 5
    assert stats["window"] == 1.0
    assert any("tweetgen sandbox stopped" in line for line in lines)
