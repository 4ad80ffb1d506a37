"""Tests for tweetgen.tweets: the rules, checking a tweet against them, ranking candidates and
numbering a thread."""

from __future__ import annotations

from typing import Any

import pytest

from tweetgen.tweets import TweetCheck, TweetRules, check_tweet, number_thread, rank_candidates

# --- TweetRules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_words": 0}, "max_words must be at least 1", id="max-words"),
        pytest.param(
            {"max_weighted_length": 0},
            "max_weighted_length must be at least 1",
            id="length",
        ),
        pytest.param({"max_hashtags": -1}, "max_hashtags must be 0 or more", id="hashtags"),
        pytest.param({"banned_phrases": ("ok", " ")}, "empty or blank", id="blank-phrase"),
        pytest.param({"required_text": ""}, "required_text must be None", id="blank-required"),
    ],
)
def test_tweet_rules_rejects_nonsense(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TweetRules(**kwargs)


def test_tweet_rules_rejects_a_bare_string_of_banned_phrases() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        TweetRules(banned_phrases="game changer")  # type: ignore[arg-type]


def test_tweet_rules_defaults() -> None:
    rules = TweetRules()
    assert (rules.max_words, rules.max_weighted_length, rules.max_hashtags) == (
        25,
        280,
        None,
    )
    assert TweetRules(max_hashtags=0).max_hashtags == 0


# --- check_tweet -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rules", "reason"),
    [
        pytest.param(
            " ".join(["word"] * 41),
            TweetRules(max_words=25),
            "that was 41 words; the limit is 25",
            id="words",
        ),
        pytest.param(
            "x" * 301,
            TweetRules(),
            "that was 301 weighted characters; the limit is 280",
            id="weighted-length",
        ),
        pytest.param(
            "#a #b #c #d",
            TweetRules(max_hashtags=2),
            "that had 4 hashtags; the limit is 2",
            id="hashtags",
        ),
        pytest.param(
            "Nice #AI",
            TweetRules(max_hashtags=0),
            "that had 1 hashtag; the limit is 0",
            id="one-hashtag",
        ),
        pytest.param(
            "A real Game  Changer!",
            TweetRules(banned_phrases=("game changer",)),
            "it contained the banned phrase 'game changer'",
            id="banned-phrase",
        ),
        pytest.param(
            "Read more at https://x.example/Y",
            TweetRules(required_text="https://x.example/y"),
            "it did not include https://x.example/y",
            id="required-text-is-verbatim",
        ),
        pytest.param("", TweetRules(), "it was empty", id="empty"),
        pytest.param(" \n\t", TweetRules(), "it was empty", id="blank"),
    ],
)
def test_check_tweet_reason_messages(text: str, rules: TweetRules, reason: str) -> None:
    check = check_tweet(text, rules)
    assert check.reasons == (reason,)
    assert not check.valid


def test_check_tweet_valid_tweet_measurements() -> None:
    text = "Python 3.13 ships a new REPL \U0001f389 #Python https://example.com/y"
    check = check_tweet(text, TweetRules(max_hashtags=1, required_text="https://example.com/y"))
    assert check == TweetCheck(text=text, weighted_length=63, words=8, hashtags=1, reasons=())
    assert check.valid


def test_check_tweet_reports_every_broken_rule_in_order() -> None:
    rules = TweetRules(
        max_words=2,
        max_weighted_length=10,
        max_hashtags=1,
        banned_phrases=("delve", "game changer"),
        required_text="https://x.example",
    )
    check = check_tweet("Let us delve into #AI #ML, a GAME CHANGER", rules)
    assert check.reasons == (
        "that was 9 words; the limit is 2",
        "that was 41 weighted characters; the limit is 10",
        "that had 2 hashtags; the limit is 1",
        "it contained the banned phrase 'delve'",
        "it contained the banned phrase 'game changer'",
        "it did not include https://x.example",
    )


def test_check_tweet_limits_are_inclusive() -> None:
    text = " ".join(["word"] * 25)
    assert check_tweet(text, TweetRules(max_words=25)).valid
    assert check_tweet("x" * 280, TweetRules()).valid
    assert check_tweet("#a #b", TweetRules(max_hashtags=2)).valid


def test_check_tweet_counts_urls_as_23_characters() -> None:
    text = "See https://example.com/" + "p" * 300
    check = check_tweet(text, TweetRules())
    assert check.weighted_length == 4 + 23
    assert check.valid


# --- rank_candidates -------------------------------------------------------


def _check(text: str, words: int, *, valid: bool = True) -> TweetCheck:
    reasons = () if valid else ("it was empty",)
    return TweetCheck(
        text=text, weighted_length=len(text), words=words, hashtags=0, reasons=reasons
    )


def test_rank_candidates_valid_first_then_closest_to_target() -> None:
    far = _check("far", 10)
    close_invalid = _check("close but invalid", 20, valid=False)
    closest = _check("closest", 19)
    over = _check("over", 23)
    ranked = rank_candidates([far, close_invalid, closest, over], target_words=20)
    assert ranked == [closest, over, far, close_invalid]


def test_rank_candidates_is_stable_for_ties() -> None:
    first, second, third = _check("a", 18), _check("b", 22), _check("c", 18)
    assert rank_candidates([first, second, third], target_words=20) == [
        first,
        second,
        third,
    ]


def test_rank_candidates_deduplicates_keeping_first() -> None:
    original = _check("Ship  it\nnow", 3, valid=False)
    duplicate = _check("  ship it NOW ", 3)
    other = _check("Ship it later", 3)
    ranked = rank_candidates([original, duplicate, other], target_words=3)
    assert ranked == [other, original]


def test_rank_candidates_accepts_any_iterable_and_empty() -> None:
    assert rank_candidates(iter([]), target_words=5) == []
    checks = (_check(str(n), n) for n in (1, 5, 3))
    assert [c.words for c in rank_candidates(checks, target_words=4)] == [5, 3, 1]


# --- number_thread ---------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "style", "expected"),
    [
        pytest.param(["a", "b", "c"], "{i}/{n}", ["a 1/3", "b 2/3", "c 3/3"], id="default"),
        pytest.param(["a ", "b\n"], "({i}/{n})", ["a (1/2)", "b (2/2)"], id="custom-style"),
        pytest.param(["only"], "{i}/{n}", ["only 1/1"], id="single"),
        pytest.param([], "{i}/{n}", [], id="empty"),
    ],
)
def test_number_thread(texts: list[str], style: str, expected: list[str]) -> None:
    assert number_thread(texts, style=style) == expected


def test_number_thread_default_style_and_tuple_input() -> None:
    assert number_thread(("x", "y")) == ["x 1/2", "y 2/2"]


@pytest.mark.parametrize("style", ["{k}", "{0}", "{i", "{i.bad}"])
def test_number_thread_rejects_bad_style(style: str) -> None:
    with pytest.raises(ValueError, match="placeholders"):
        number_thread(["a"], style=style)


def test_numbering_counts_towards_length_when_checked() -> None:
    rules = TweetRules(max_words=5)
    numbered = number_thread(["one two three four five", "x" * 276, "x" * 277])
    assert check_tweet(numbered[0], rules).reasons == ("that was 6 words; the limit is 5",)
    assert check_tweet(numbered[1], rules).valid
    assert check_tweet(numbered[2], rules).reasons == (
        "that was 281 weighted characters; the limit is 280",
    )
