"""The review page served for real on 127.0.0.1 (issue 16): in a thread, and as the command in a
subprocess that prints its URL and stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from browser.reviewdata import add_batch
from conftest import wait_until

from tweetgen.review.server import ReviewServer
from tweetgen.store import Store

DEADLINE = 30.0


def _command(db: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TWEETGEN_LOG_FILE": "", "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tweetgen.review", "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()  # the command prints its URL first, then serves
    assert line.startswith("tweetgen review: http://127.0.0.1:"), line
    return line.split(": ", 1)[1].strip()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_server_in_a_thread_answers_on_loopback_only_with_the_token(tmp_path):
    with Store(tmp_path / "r.db") as store:
        (call,) = add_batch(store, "b", 1)
        server = ReviewServer(store).start()
        try:
            wait_until(lambda: _ready(server.url), what="the review server", timeout=DEADLINE)
            assert server.url.startswith(f"http://127.0.0.1:{server.port}/")
            assert len(server.token) >= 32
            page = httpx.get(server.url, timeout=5)
            assert "Row 1" in page.text
            root = f"http://127.0.0.1:{server.port}"
            assert httpx.get(root + "/", timeout=5).status_code == 403
            assert httpx.get(root + "/api/calls", timeout=5).status_code == 403
            rebound = httpx.get(server.url, headers={"host": "rebind.example"}, timeout=5)
            assert rebound.status_code == 403
            approved = httpx.post(server.url + f"api/calls/{call}/approve", json={}, timeout=5)
            assert approved.json()["state"] == "approved"
            with socket.socket() as probe:  # bound to 127.0.0.1, not every interface
                assert probe.connect_ex(("127.0.0.1", server.port)) == 0
            assert server.app.port == server.port  # the Host check names this port
        finally:
            server.stop()
        assert server._thread is not None
        assert not server._thread.is_alive()  # stopped within the deadline


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_command_prints_its_url_serves_and_stops_cleanly(tmp_path, stop):
    db = tmp_path / "r.db"
    with Store(db) as store:
        add_batch(store, "b", 3)
    process = _command(db, "--no-browser")
    try:
        url = _url(process)
        wait_until(lambda: _ready(url), what="the review command", process=process)
        assert "Row 3" in httpx.get(url, timeout=5).text
        process.send_signal(stop)
        _, err = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in err


def test_the_command_refuses_a_missing_store_and_a_busy_port(tmp_path):
    missing = _command(tmp_path / "none.db", "--no-browser")
    _, err = missing.communicate(timeout=DEADLINE)
    assert missing.returncode == 2
    assert "no store at" in err
    assert "--db PATH|URL" in err
    assert "Traceback" not in err
    db = tmp_path / "r.db"
    Store(db).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        taken = _command(db, "--no-browser", "--port", str(port))
        _, err = taken.communicate(timeout=DEADLINE)
    assert taken.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port 0" in err
    bad = _command(db, "--port", "70000")
    _, err = bad.communicate(timeout=DEADLINE)
    assert bad.returncode == 2
    assert "invalid port" in err
