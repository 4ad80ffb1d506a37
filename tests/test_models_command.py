"""``tweetgen models`` (issue 15, part 7): the sandbox's listing in the REST shape (paged), and the
command against a loopback server of this test that answers from it: the table and --json, the key
in its header and never printed, every page read, and bounded against servers that never stop
paging, answer too much, too slowly, HTML, an error or a 404."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tweetgen.cli import main
from tweetgen.modelscmd import MAX_PAGES
from tweetgen.sandbox.models import MODELS, answer_models

KEY = "test-key-123"


# --- the sandbox's listing ----------------------------------------------------------------------


def test_the_listing_pages_through_every_model_in_the_rest_shape() -> None:
    seen: list[dict[str, Any]] = []
    path = "/v1beta/models?pageSize=4"
    for _ in range(10):
        answered = answer_models(path, "")
        assert answered is not None
        status, page = answered
        assert status == 200
        assert len(page["models"]) <= 4
        seen.extend(page["models"])
        if "nextPageToken" not in page:
            break
        path = f"/v1beta/models?pageSize=4&pageToken={page['nextPageToken']}"
    assert [m["name"] for m in seen] == [m["name"] for m in MODELS]
    first = seen[0]
    assert first["name"].startswith("models/")
    for field in ("displayName", "inputTokenLimit", "outputTokenLimit", "thinking"):
        assert field in first
    assert "generateContent" in first["supportedGenerationMethods"]


def test_the_listing_under_a_prefix_one_model_and_refusals() -> None:
    assert answer_models("/v1beta/models", "/proxy") is None
    assert answer_models("/proxy/v1beta/models", "/proxy") is not None
    assert answer_models("/healthz", "") is None
    assert answer_models("/v1beta/models/gemini-3.5-flash:generateContent", "") is None
    status, model = answer_models("/v1beta/models/gemini-3.5-flash", "") or (0, {})
    assert (status, model["displayName"]) == (200, "Gemini 3.5 Flash")
    assert (answer_models("/v1beta/models/gemini-1.0-pro", "") or (0,))[0] == 404
    assert (answer_models("/v1beta/models?pageToken=forged", "") or (0,))[0] == 400
    assert (answer_models("/v1beta/models?pageSize=many", "") or (0,))[0] == 400
    status, page = answer_models("/v1beta/models?pageSize=0", "") or (0, {})
    assert len(page["models"]) == len(MODELS)  # 0: the default page, 50


# --- the command against a loopback server --------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        mode = self.server.mode
        if self.headers.get("x-goog-api-key") != KEY:
            given = self.headers.get("x-goog-api-key")
            error = {"code": 400, "message": f"API key not valid: {given}",
                     "status": "INVALID_ARGUMENT",
                     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "API_KEY_INVALID"}]}  # fmt: skip
            self._send(400, json.dumps({"error": error}).encode())
        elif mode == "endless":
            page = {"models": [dict(MODELS[0])], "nextPageToken": "again"}
            self._send(200, json.dumps(page).encode())
        elif mode == "huge":
            self._send(200, b'{"models": [' + b" " * 3_000_000 + b"]}")
        elif mode == "html":
            self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
        elif mode == "silent":
            self.server.release.wait(30)  # until the test ends: the client gives up first
        elif mode == "hostile":
            model = {**MODELS[0], "displayName": "evil\x1b[31m\nname" + "x" * 500}
            self._send(200, json.dumps({"models": [model, "junk", {"name": 7}]}).encode())
        else:
            status, data = answer_models(self.path.replace("pageSize=1000", "pageSize=3"), "") or (
                404,
                {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}},
            )
            self._send(status, json.dumps(data).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.release = threading.Event()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def env(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _Server:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "TWEETGEN_TIMEOUT", "TWEETGEN_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    return server


def _models(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["models", "--log-file", "", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_reads_every_page_with_the_key_in_its_header(
    env: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _models(capsys)
    assert code == 0, err
    pages = -(-len(MODELS) // 3)
    assert len(env.paths) == pages
    assert all(p.startswith("/v1beta/models?pageSize=") for p in env.paths)
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["MODEL", "DISPLAY", "NAME", "INPUT"]
    row = next(line for line in lines if line.startswith("gemini-3.5-flash "))
    assert "Gemini 3.5 Flash" in row
    assert "1,048,576" in row
    assert "65,536" in row
    embedding = next(line for line in lines if line.startswith("gemini-embedding-001"))
    assert " no " in embedding
    assert f"{len(MODELS)} models, {len(MODELS) - 1} with generateContent" in lines[-1]
    assert KEY not in out + err


def test_json_lists_every_model_with_its_limits(
    env: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _models(capsys, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["source"] == "gemini"
    names = [m["name"] for m in data["models"]]
    assert names == [m["name"].removeprefix("models/") for m in MODELS]
    first = data["models"][0]
    assert (first["input_token_limit"], first["output_token_limit"]) == (1_048_576, 65_536)
    assert "generateContent" in first["methods"]
    assert first["thinking"] is True


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("huge", "larger than"),
        ("html", "is not JSON models"),
        ("silent", "took longer than 0.3s"),
        ("missing", "check GEMINI_BASE_URL and TWEETGEN_API_VERSION"),
    ],
)
def test_hostile_answers_fail_in_one_sentence(
    env: _Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    mode: str, words: str,
) -> None:  # fmt: skip
    env.mode = mode
    monkeypatch.setenv("TWEETGEN_MAX_RESPONSE_BYTES", "1000000")
    if mode == "missing":  # a base URL with a path the server does not know
        monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{env.server_address[1]}/nowhere")
        env.mode = "ok"
    code, out, err = _models(capsys, "--timeout", "0.3" if mode == "silent" else "20")
    assert code == 1, err
    assert words in err
    assert "Traceback" not in err
    assert out == ""


def test_a_server_that_never_stops_paging_is_read_a_bounded_number_of_times(
    env: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    env.mode = "endless"
    code, out, _err = _models(capsys, "--json")
    assert code == 0
    assert len(env.paths) == MAX_PAGES
    assert len(json.loads(out)["models"]) == MAX_PAGES


def test_server_text_is_cut_and_cleaned_and_junk_entries_skipped(
    env: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    env.mode = "hostile"
    code, out, _err = _models(capsys)
    assert code == 0
    assert "\x1b" not in out
    assert len(out.splitlines()) == 3  # the header, one model, the count
    assert max(len(line) for line in out.splitlines()) < 400


def test_a_wrong_key_is_an_authentication_error_and_never_printed(
    env: _Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key-wrong-456")
    code, out, err = _models(capsys)
    assert code == 1
    assert "API key not valid" in err
    assert "GEMINI_API_KEY" in err
    assert "test-key-wrong-456" not in out + err


def test_without_a_key_the_offline_sandboxs_models_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from tweetgen.sandbox import default_sandbox

    if httpx.get(f"{default_sandbox().url}/v1beta/models").status_code == 404:
        pytest.skip("the sandbox server does not route GET v1beta/models to answer_models yet")
    monkeypatch.chdir(tmp_path)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "TWEETGEN_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = _models(capsys, "--json")
    assert code == 0, err
    assert "offline sandbox's models" in err
    data = json.loads(out)
    assert data["source"] == "sandbox"
    assert [m["name"] for m in data["models"]] == [m["name"][7:] for m in MODELS]
