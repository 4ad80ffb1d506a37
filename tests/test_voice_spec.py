"""A voice in a request: the spec's key and pickling, its prompt lines merged with the request's,
its rules, the copy check on checks, and the style notes asked through the engine."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from tweetgen.errors import InputError, ServerError
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.tweets import TweetCheck, TweetRules
from tweetgen.voice import build_profile, save_profile
from tweetgen.voicecmd import ask_notes
from tweetgen.voicespec import VoiceSpec, merge_instructions, voice_checks, voice_rules

POSTS = [f"Note {i}: small steps every day add up. #habits #growth" for i in range(1, 8)] + [
    "One hashtag only here, a quiet day. #habits",
    "Three today because why not at all. #habits #growth #life",
]
DEFAULT_LINES = ["Use at most 2 relevant hashtags.", "Write for this audience: founders."]


def test_spec_is_a_plain_hashable_key_and_pickles_whole(tmp_path: Path) -> None:
    profile = build_profile("steady", POSTS)
    spec = VoiceSpec(profile)
    name, digest = json.loads(json.dumps(spec))
    assert name == "steady"
    assert len(digest) == 16
    assert hash(spec) == hash(VoiceSpec(profile))
    assert pickle.loads(pickle.dumps(spec)).profile == profile  # noqa: S301
    changed = build_profile("steady", POSTS, banned=["hustle"])
    assert VoiceSpec(changed) != spec  # an edited profile is a different call
    save_profile(profile, tmp_path)
    assert VoiceSpec.of("steady", str(tmp_path)) == spec
    assert VoiceSpec.of(["steady", "old-digest"], str(tmp_path)) == spec
    assert VoiceSpec.of(None) is None
    with pytest.raises(InputError, match="a voice name or a loaded profile"):
        VoiceSpec.of(3)
    with pytest.raises(InputError, match="no voice named 'ghost'"):
        VoiceSpec.of("ghost", str(tmp_path))


def test_voice_hashtag_habit_replaces_auto_and_yields_to_named_tags() -> None:
    spec = VoiceSpec(build_profile("steady", POSTS))
    auto = merge_instructions(spec, DEFAULT_LINES, auto_hashtags=True, emoji_free=True)
    assert "Use at most 2 relevant hashtags." not in auto
    assert "Use 2 hashtags per post, such as #habits #growth." in auto
    assert "Write for this audience: founders." in auto
    assert "Do not use emoji." in auto
    named = merge_instructions(
        spec,
        ["Include these hashtags: #x.", *DEFAULT_LINES[1:]],
        auto_hashtags=False,
        emoji_free=False,
    )
    assert "Include these hashtags: #x." in named
    assert not any(line.startswith("Use 2 hashtags") for line in named)
    assert "Do not use emoji." not in named  # --emoji / --no-emoji stands over the voice


def test_rules_follow_the_habits() -> None:
    spec = VoiceSpec(build_profile("steady", POSTS, banned=["hustle"]))
    rules = TweetRules(max_hashtags=2, banned_phrases=("synergy",))
    auto = voice_rules(spec, rules, auto_hashtags=True)
    assert auto.max_hashtags == 3  # the most the user ever used
    assert auto.banned_phrases == ("synergy", "hustle")
    assert voice_rules(spec, rules, auto_hashtags=False).max_hashtags == 2


def test_copy_check_adds_its_reason_to_the_checks() -> None:
    spec = VoiceSpec(build_profile("steady", POSTS))
    copy = TweetCheck(POSTS[7], 40, 8, 1)
    fresh = TweetCheck("Rest days count as progress too, honestly. #habits #growth", 60, 8, 2)
    repeat = TweetCheck("Yesterday we shipped the new search page to everyone", 50, 9, 0)
    checked = voice_checks(spec, [copy, fresh, repeat], ["we shipped the new search page today"])
    assert checked[0].reasons == ("copies example 8",)
    assert checked[1].valid
    assert checked[2].reasons == ("repeats a tweet generated on this topic in the last 7 days",)


class _Engine:
    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer
        self.asked: list[GenerationRequest] = []
        self.thinking = None
        self.service_tier = None

    def _attempt(self, request: GenerationRequest) -> Any:
        self.asked.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return GenerationResult(texts=(self.answer,), provider="gemini", model="m")


def test_style_notes_from_the_model_or_why_not() -> None:
    engine = _Engine("Here you go:\n- Short and upbeat\n- Two hashtags at the end\n- No emoji\n")
    notes, why = ask_notes(engine, POSTS)
    assert notes == ["Short and upbeat", "Two hashtags at the end", "No emoji"]
    assert why == "model (gemini/m)"
    assert "- Note 1: small steps" in engine.asked[0].prompt
    assert ask_notes(_Engine("Small steps. #habits"), POSTS) == (
        [],
        "gemini's answer was not a list of 3-6 style notes",
    )
    notes, why = ask_notes(_Engine(ServerError("503 overloaded", status_code=503)), POSTS)
    assert notes == []
    assert why.startswith("the provider failed (ServerError")


def test_the_voice_is_part_of_the_prompt_and_the_key(tmp_path: Path) -> None:
    from tweetgen.prompts import default_registry
    from tweetgen.request import TweetRequest
    from tweetgen.storeschema import idempotency_key

    profile = build_profile("steady", POSTS)
    save_profile(profile, tmp_path)
    plain = TweetRequest("code review")
    voiced = TweetRequest("code review", voice=VoiceSpec.of("steady", str(tmp_path)))
    prompt = voiced.render(default_registry)
    assert "Write in the user's voice (steady)." in prompt
    assert "Use at most 2 relevant hashtags." not in prompt
    assert len(prompt) - len(plain.render(default_registry)) <= 300 * 4

    def key(request: TweetRequest) -> str:
        return idempotency_key({k: v for k, v in vars(request).items() if k != "extra"}, {})

    other = build_profile("steady", POSTS[:-1])
    assert len({key(plain), key(voiced), key(TweetRequest("code review", voice=other))}) == 3
    assert key(voiced) == key(TweetRequest("code review", voice=profile))
