"""Every Python snippet of the seed (docs/seed-readme.md) runs verbatim from the repository root."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tweetgen.sandbox import SandboxServer
from tweetgen.tweets import count_words

ROOT = Path(__file__).resolve().parent.parent
SEED = (ROOT / "docs" / "seed-readme.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", SEED, flags=re.DOTALL)
# What a reader brings to two snippets: the placeholder `your_function`, and the import of the first
# snippet for the one that continues it ("In generate_tweet function"). Nothing else is added.
PRELUDES = {
    1: "def your_function():\n    return 'called'\n\n",
    3: "from main import generate_tweet\n\n",
}


def _run(index: int, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "snippet.py"
    script.write_text(PRELUDES.get(index, "") + SNIPPETS[index], encoding="utf-8")
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={
            **base,
            "PYTHONPATH": str(ROOT),
            "TWEETGEN_LOG_FILE": str(tmp_path / "default.log"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_seed_has_the_snippets_we_expect() -> None:
    assert len(SNIPPETS) == 4
    assert "from main import generate_tweet" in SNIPPETS[0]
    assert "from retry_handler import retry_with_tenacity, retry_with_custom_backoff" in SNIPPETS[1]


@pytest.mark.parametrize("index", range(4))
def test_snippet_runs_on_the_sandbox(index: int, tmp_path: Path) -> None:
    result = _run(index, tmp_path, TWEETGEN_PROVIDER="sandbox")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("index", range(4))
def test_snippet_runs_against_a_gemini_compatible_server(index: int, tmp_path: Path) -> None:
    with SandboxServer(prefix="/gemini") as server:
        result = _run(index, tmp_path, GEMINI_BASE_URL=server.url, GEMINI_API_KEY="dummy-seed-key")
        paths = {r.path for r in server.requests}
    assert result.returncode == 0, result.stderr
    if "generate_tweet(" in SNIPPETS[index]:
        assert paths == {"/gemini/v1beta/models/gemini-flash-latest:generateContent"}


def test_basic_snippet_prints_a_tweet_and_logs_json(tmp_path: Path) -> None:
    result = _run(0, tmp_path, TWEETGEN_PROVIDER="sandbox")
    tweet = result.stdout.strip()
    assert "Python Programming" in tweet
    assert count_words(tweet) <= 25
    events = [json.loads(line) for line in (tmp_path / "tweets.log").read_text().splitlines()]
    assert [e["event"] for e in events][-2:] == ["Making API request", "API request successful"]


def test_library_without_key_or_sandbox_refuses(tmp_path: Path) -> None:
    result = _run(0, tmp_path)
    assert result.returncode == 1
    assert "tweetgen.errors.ConfigurationError: no Gemini API key configured" in result.stderr
    assert "TWEETGEN_PROVIDER=sandbox" in result.stderr
