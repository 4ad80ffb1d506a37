"""``--voice NAME`` on generate and thread through the command's runner, on the sandbox.

The parser's ``--voice`` flag is the lead's to add (cli/cliargs); until then these tests set
``args.voice`` on the parsed arguments, as the flag will."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tweetgen import cli
from tweetgen.tweets import count_hashtags
from tweetgen.voice import build_profile, save_profile

POSTS = [f"Day {i}: one small fix shipped. #buildinpublic #saas" for i in range(1, 11)]


def main(argv: list[str]) -> int:
    """Parse ``argv`` less its ``--voice NAME``, set ``args.voice``, and run the command."""
    voice = argv[argv.index("--voice") + 1]
    rest = [a for i, a in enumerate(argv) if a != "--voice" and argv[i - 1] != "--voice"]
    args = cli._parse(rest)
    args.argv = list(argv)
    args.voice = voice
    return cli._run(args)


@pytest.fixture
def voices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "voices"
    monkeypatch.setenv("TWEETGEN_VOICE_DIR", str(folder))
    save_profile(build_profile("founder", POSTS), folder)
    return folder


def test_dry_run_shows_the_voice_in_the_prompt(
    voices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--topic", "code review", "--voice", "founder", "--dry-run"]) == 0
    prompt = capsys.readouterr().out
    assert "Write in the user's voice (founder)." in prompt
    assert "Use 2 hashtags per post, such as #buildinpublic #saas." in prompt
    assert "Use at most 2 relevant hashtags." not in prompt


def test_generate_and_thread_follow_the_voice(
    voices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--topic", "code review", "--voice", "founder", "--json", "-q"]) == 0
    tweet = json.loads(capsys.readouterr().out)
    assert count_hashtags(tweet["text"]) == 2
    assert "#buildinpublic" in tweet["text"]
    args = ["thread", "--topic", "code review", "--voice", "founder", "--tweets", "3", "--json"]
    assert main([*args, "-q"]) == 0
    thread = json.loads(capsys.readouterr().out)
    assert len(thread["tweets"]) == 3


def test_an_unknown_voice_exits_2_naming_it(
    voices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--topic", "code review", "--voice", "ghost", "-q"]) == 2
    err = capsys.readouterr().err
    assert "no voice named 'ghost'" in err
    assert "founder" in err
    assert "Traceback" not in err
