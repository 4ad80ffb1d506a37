"""What a person at a terminal sees: the result and warnings, not a screen of INFO events (the file
keeps them)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tweetgen.sandbox import SandboxServer


def _run_on_a_terminal(args: list[str], cwd: Path, **extra: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); return exit code, stdout,
    terminal text."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    env.update(extra)
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tweetgen", *args],
            stdout=subprocess.PIPE,
            stderr=secondary,
            cwd=cwd,
            env=env,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end closed: the child is done writing
                break
            if not chunk:
                break
            chunks.append(chunk)
        stdout, _ = process.communicate(timeout=120)
    finally:
        os.close(main)
        if secondary != -1:
            os.close(secondary)
    return process.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_a_terminal_shows_the_tweet_and_warnings_while_the_file_keeps_info(tmp_path: Path) -> None:
    code, stdout, terminal = _run_on_a_terminal(
        ["generate", "--topic", "Python", "--provider", "sandbox", "--log-file", "t.log"], tmp_path
    )
    assert code == 0, terminal
    assert stdout.strip()
    assert "Making API request" not in terminal
    assert "API request successful" not in terminal
    events = [json.loads(line)["event"] for line in (tmp_path / "t.log").read_text().splitlines()]
    assert "Making API request" in events
    assert "API request successful" in events


def test_a_log_level_asked_for_is_shown_on_the_terminal_too(tmp_path: Path) -> None:
    code, _, terminal = _run_on_a_terminal(
        [
            "generate",
            "--topic",
            "Python",
            "--provider",
            "sandbox",
            "--log-file",
            "",
            "--log-level",
            "info",
        ],
        tmp_path,
    )
    assert code == 0, terminal
    assert "Making API request" in terminal


def test_warnings_print_above_a_live_progress_bar_on_their_own_lines(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("".join(f"topic {i}\n" for i in range(30)))
    with SandboxServer(
        faults="ok*10,503*3", latency=0.05
    ) as server:  # the bar is drawn before the retries
        code, _, terminal = _run_on_a_terminal(
            [
                "batch",
                "in.txt",
                "-o",
                "out.jsonl",
                "--provider",
                "gemini",
                "--base-delay",
                "0",
                "--concurrency",
                "1",
            ],
            tmp_path,
            GEMINI_BASE_URL=server.url,
            GEMINI_API_KEY="terminal-test-key",
        )
    assert code == 0, terminal
    lines = [line for line in terminal.replace("\r", "\n").splitlines() if "Retry attempt" in line]
    assert len(lines) >= 3
    assert not any("batch" in line for line in lines)  # never drawn over or into the bar's line
    assert any(
        "batch" in line and "30/30" in line for line in terminal.replace("\r", "\n").splitlines()
    )
