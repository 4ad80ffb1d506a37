"""Voice profiles: habits measured, notes, examples, the prompt block's budget, the file, and
``tweetgen voice`` through run(args)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tweetgen.errors import InputError
from tweetgen.voice import (
    build_profile,
    check_name,
    delete_profile,
    list_profiles,
    load_profile,
    measure,
    prompt_block,
    save_profile,
    voice_dir,
)
from tweetgen.voicecmd import parse_notes, run

POSTS = [
    f"Day {i}: shipped a tiny fix, felt great! #buildinpublic #indiedev" for i in range(1, 16)
] + [
    "So what is your favourite debugging trick? #indiedev",
    "So many small wins today. #buildinpublic #indiedev",
    "Wrote docs before code, again. Worth it. #buildinpublic",
    "A much longer post about why I rewrote the whole billing module over one long weekend "
    "and what it taught me about patience and tests #buildinpublic #indiedev #saas",
    "Coffee, then code \u2615 #indiedev #buildinpublic",
]


def test_habits_follow_the_posts() -> None:
    habits = measure(POSTS)
    assert habits.posts == 20
    assert habits.words_median == 10
    assert habits.hashtags_mean == 1.95
    assert habits.words_p25 <= habits.words_median <= habits.words_p75
    assert habits.hashtags_median == 2
    assert habits.hashtags_per_post == 2
    assert habits.hashtags_max == 3
    assert habits.common_hashtags == ["#buildinpublic", "#indiedev"]  # 19 posts each
    assert habits.exclamation_rate == 0.75
    assert habits.question_rate == 0.05
    assert habits.emoji_rate == 0.05
    assert habits.link_rate == 0.0
    assert habits.openers == ["day"]


def test_examples_are_near_the_median_and_notes_fall_back_to_habits() -> None:
    profile = build_profile("indie", POSTS, banned=["game changer", " "])
    assert len(profile.examples) == 5
    assert POSTS[18] not in profile.examples
    assert profile.notes_source == "habits"
    assert any("2 hashtags a post" in n for n in profile.notes)
    assert profile.banned == ["game changer"]


def test_prompt_block_says_the_habits_and_stays_within_budget() -> None:
    profile = build_profile("indie", POSTS, notes=["Upbeat", "Short", "Ends with tags"])
    block = prompt_block(profile)
    assert "Aim for about 10 words" in block
    assert "Use 2 hashtags per post, such as #buildinpublic #indiedev." in block
    assert "Style notes: Upbeat; Short; Ends with tags." in block
    assert block.count("\n- ") == 3
    assert len(block) <= 300 * 4
    small = prompt_block(profile, budget_tokens=60)
    assert len(small) <= 240
    assert "Use 2 hashtags" in small
    assert "\n- " not in small


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 65, "voice.json"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="letters, digits, - and _"):
        check_name(name)


def test_file_round_trip_list_and_delete(tmp_path: Path) -> None:
    profile = build_profile("indie-1", POSTS)
    path = save_profile(profile, tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "tweetgen-voice/1"
    assert data["habits"]["posts"] == 20
    assert load_profile("indie-1", tmp_path) == profile
    assert list_profiles(tmp_path) == ["indie-1"]
    assert [p.name for p in tmp_path.iterdir()] == ["indie-1.json"]  # no temporary left
    delete_profile("indie-1", tmp_path)
    with pytest.raises(InputError, match=r"no voice named 'indie-1' .*voices: none yet"):
        load_profile("indie-1", tmp_path)


def test_directory_from_environment_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWEETGEN_VOICE_DIR", str(tmp_path / "v"))
    assert voice_dir() == tmp_path / "v"
    monkeypatch.delenv("TWEETGEN_VOICE_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert voice_dir() == tmp_path / "cfg" / "tweetgen" / "voices"
    assert voice_dir(tmp_path / "d") == tmp_path / "d"


def test_parse_notes_needs_three_to_six_bullets() -> None:
    assert parse_notes("- Short.\n- Upbeat\n* Ends with hashtags\n") == [
        "Short",
        "Upbeat",
        "Ends with hashtags",
    ]
    assert parse_notes("Shipping beats planning. #SmallPRs") == []
    assert len(parse_notes("\n".join(f"{i}. note {i}" for i in range(1, 9)))) == 6


def _args(**values: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {"dir": None, "json": False, "name": None, "from_file": None}
    return argparse.Namespace(**{**defaults, **values})


def test_command_create_show_list_delete_on_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    posts = tmp_path / "posts.txt"
    posts.write_text("\n".join(POSTS), encoding="utf-8")
    voices = tmp_path / "voices"
    assert (
        run(
            _args(
                voice_command="create",
                name="indie",
                from_file=str(posts),
                dir=voices,
                ban=["synergy"],
            )
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "voice indie: 20 posts read" in out
    assert "derived from the habits" not in err
    saved = load_profile("indie", voices)
    assert saved.notes_source.startswith("model (sandbox/")  # the sandbox answers the notes
    assert "2 hashtags a post, often #buildinpublic, #indiedev" in saved.notes
    assert saved.banned == ["synergy"]
    again = _args(voice_command="create", name="quiet", from_file=str(posts), dir=voices)
    again.no_notes = True
    assert run(again) == 0
    assert "derived from the habits: --no-notes" in capsys.readouterr().err
    assert load_profile("quiet", voices).notes_source == "habits (--no-notes)"
    assert run(_args(voice_command="delete", name="quiet", dir=voices)) == 0
    assert run(_args(voice_command="show", name="indie", dir=voices)) == 0
    shown = capsys.readouterr().out
    assert "hashtags: 1.95 a post (#buildinpublic, #indiedev)" in shown
    assert "examples:" in shown
    assert run(_args(voice_command="list", dir=voices, json=True)) == 0
    assert json.loads(capsys.readouterr().out)["voices"] == ["indie"]
    assert run(_args(voice_command="delete", name="indie", dir=voices)) == 0
    assert list_profiles(voices) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"voice_command": "show", "name": "ghost"}, "no voice named 'ghost'"),
        ({"voice_command": "delete", "name": "ghost"}, "no voice named 'ghost'"),
        ({"voice_command": "create", "name": "bad name", "from_file": "x"}, "letters, digits"),
        ({"voice_command": "create", "name": "ok", "from_file": "missing.txt"}, "--from: cannot"),
        ({"voice_command": None}, "choose create, list, show or delete"),
    ],
)
def test_command_errors_exit_2_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: dict[str, Any], message: str
) -> None:
    assert run(_args(dir=tmp_path, **values)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
