"""README.md's shell commands, run as written against an in-process sandbox: the README cannot drift
from the program.

Every line of every ```bash block is either run here or skipped with its reason (a line this file
does not know fails, so a new command in the README gets a decision). ``tweetgen
...`` lines run as ``python -m tweetgen ...`` in an empty directory holding the input files they
name, with GEMINI_BASE_URL pointing at a sandbox in this process and a fake GEMINI_API_KEY, so every
call is seen by the test and nothing reaches the internet.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import PROGRESS_TIMEOUT, Children, wait_until

from tweetgen.sandbox import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FAKE_KEY = "test-key-123456"

#: lines that are not run, and why
SKIPPED = {
    "make demo": "creates .venv and installs packages from an index; what it runs, python main.py, "
    "runs here (test_python_main_py_runs_the_demo)",
    "make test": "runs this very suite (and ruff, mypy) again",
    "make bench": "about 5.5 minutes of real sleeps; "
    "tests/test_bench_smoke.py runs its quick stage",
    ".venv/bin/pytest tests/ --cov=. --cov-report=html": "runs this very suite again",
    "python bench/retry_impact.py": "real sleeps (~15 s) by design; "
    "tests/test_bench_smoke.py runs the bench suite",
}
#: the CLI with ``time.sleep`` made instant (the demo's scripted 503 is retried after a real 1 s
#: wait)
NO_SLEEP = (
    "import sys, time\ntime.sleep = lambda s: None\n"
    "from tweetgen.cli import main\nsys.exit(main(sys.argv[1:]))"
)
#: topics for the input files a command names
TOPICS = ["Rust", "Python Programming", "Testing in Python"]


def _bash_lines() -> list[tuple[int, str]]:
    """(line number, command) for every non-blank line of every ```bash block of the README."""
    found, inside = [], False
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        words = shlex.split(line, comments=True) if inside else []
        if words:
            found.append(
                (number, shlex.join(words))
            )  # the command without its comment, quoted as a shell would
    return found


LINES = _bash_lines()


def _env(server: SandboxServer) -> dict[str, str]:
    prefixes = ("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, "GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": FAKE_KEY}


def _inputs(words: list[str], cwd: Path) -> None:
    """Create the input file a batch command names (CSV with a header, JSON Lines, or one topic a
    line)."""
    if words[1:2] != ["batch"]:
        return
    source = cwd / words[2]
    if source.suffix == ".csv":
        source.write_text(
            "topic,tone\n" + "".join(f"{t},witty\n" for t in TOPICS), encoding="utf-8"
        )
    elif source.suffix == ".jsonl":
        source.write_text(
            "".join(json.dumps({"topic": t}) + "\n" for t in TOPICS), encoding="utf-8"
        )
    else:
        source.write_text("".join(f"{t}\n" for t in TOPICS), encoding="utf-8")


def _run(
    words: list[str], cwd: Path, env: dict[str, str], *, no_sleep: bool = False
) -> subprocess.CompletedProcess[str]:
    if no_sleep:  # the demo's scripted 503 is retried after a real 1 s wait: made instant here
        code = NO_SLEEP
        command = [sys.executable, "-c", code, *words[1:]]
    else:
        command = [sys.executable, "-m", "tweetgen", *words[1:]]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=PROGRESS_TIMEOUT * 2
    )


def test_the_readme_has_shell_commands_to_run() -> None:
    commands = [command for _, command in LINES]
    assert sum(command.startswith("tweetgen ") for command in commands) >= 10
    assert set(SKIPPED) <= set(commands), "a skip reason for a line the README no longer has"


@pytest.mark.parametrize("command", [pytest.param(c, id=f"line {n}: {c[:60]}") for n, c in LINES])
def test_readme_command(command: str, tmp_path: Path, children: Children) -> None:
    if command in SKIPPED:
        pytest.skip(SKIPPED[command])
    words = shlex.split(command)
    if words[:2] == [
        ".venv/bin/pytest",
        "tests/test_retry.py",
    ]:  # the seed's per-file run, with this interpreter
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *words[1:], "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=PROGRESS_TIMEOUT * 5,
        )
        assert result.returncode == 0, result.stdout[-3000:]
        assert " passed" in result.stdout.splitlines()[-1]
        return
    assert words[0] == "tweetgen", f"README line not handled by tests/test_readme.py: {command}"
    if words[1:3] == ["sandbox", "serve"]:
        _serve(words, tmp_path, children)
        return
    with SandboxServer() as server:
        env = _env(server)
        _inputs(words, tmp_path)
        if words[1] == "stats":  # a store to report on, recorded the way the README says
            setup = _run(
                ["tweetgen", "generate", "--topic", "Rust", "--db", "tweetgen.db", "-q"],
                tmp_path,
                env,
            )
            assert setup.returncode == 0, setup.stderr
        result = _run(words, tmp_path, env, no_sleep=words[1] == "demo")
        calls = len(server.requests)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    _check_output(words, result, tmp_path, calls)


def _check_output(
    words: list[str], result: subprocess.CompletedProcess[str], cwd: Path, calls: int
) -> None:
    """What each kind of command is documented to print or write."""
    if "--dry-run" in words:
        assert calls == 0
        assert words[words.index("--topic") + 1] in result.stdout
    elif words[1] in ("generate", "thread"):
        assert calls >= 1  # answered by the sandbox of this test, not by anything on the network
        assert result.stdout.strip()
        if "--json" in words:
            json.loads(result.stdout)
        if "--variants" in words:
            assert len(result.stdout.strip().split("\n\n")) == int(
                words[words.index("--variants") + 1]
            )
    elif words[1] == "batch":
        output = cwd / words[words.index("-o") + 1]
        records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert [r["topic"] for r in records] == TOPICS
        assert {r["status"] for r in records} == {"ok"}
        assert calls >= len(TOPICS)
    elif words[1] == "stats":
        assert "calls" in result.stdout.lower()
    elif words[1] == "demo":
        assert "4 of 4 scenarios behaved as expected" in result.stdout + result.stderr


def _serve(words: list[str], cwd: Path, children: Children) -> None:
    """Start ``tweetgen sandbox serve`` as written (on a free port: 8765 may be taken on a shared
    machine), send it one request, which gets the first scripted fault, and stop it with Ctrl-C
    (SIGINT)."""
    words = [
        ("0" if previous == "--port" else word)
        for previous, word in zip(["", *words], words, strict=False)
    ]
    log = cwd / "serve.err"
    with log.open("w", encoding="utf-8") as stderr:
        process = children.start(
            [sys.executable, "-m", "tweetgen", *words[1:]], cwd=cwd, stderr=stderr, text=True
        )
        line = wait_until(
            lambda: next(
                (s for s in log.read_text(encoding="utf-8").splitlines() if " at http://" in s),
                None,
            ),
            what="the sandbox to say where it serves",
            process=process,
        )
        url = line.rsplit(" at ", 1)[1]
        faults = words[words.index("--faults") + 1] if "--faults" in words else "ok"
        answer = httpx.post(
            f"{url}/v1beta/models/gemini-flash-latest:generateContent",
            headers={"x-goog-api-key": FAKE_KEY},
            json={"contents": [{"parts": [{"text": "Generate a tweet about Rust."}]}]},
            timeout=PROGRESS_TIMEOUT,
        )
        first = faults.split(",")[0].split("*")[0].split(":")[0]
        assert answer.status_code == (200 if first == "ok" else int(first))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=PROGRESS_TIMEOUT) == 0
    text = log.read_text(encoding="utf-8")
    assert "tweetgen sandbox stopped" in text
    assert "Traceback" not in text


def test_python_main_py_runs_the_demo(tmp_path: Path) -> None:
    """The Quick start's ``python main.py`` (what ``make demo`` runs): the demo, with the key and
    base URL set."""
    readme = README.read_text(encoding="utf-8")
    assert "then `python main.py` runs the same demo" in readme
    with SandboxServer() as server:
        code = (  # as `python main.py` does: the script's directory first on the path
            f"import runpy, sys, time\nsys.path.insert(0, {str(ROOT)!r})\n"
            "time.sleep = lambda s: None\n"
            f"runpy.run_path({str(ROOT / 'main.py')!r}, run_name='__main__')"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=_env(server),
            capture_output=True,
            text=True,
            timeout=PROGRESS_TIMEOUT * 2,
        )
        calls = len(server.requests)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "4 of 4 scenarios behaved as expected" in result.stdout + result.stderr
    assert (
        calls == 1
    )  # the normal call went to "Gemini" (this sandbox); the failure scenarios run on their own
