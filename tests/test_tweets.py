"""Tests for tweetgen.tweets: measuring and cleaning (checking, ranking and numbering are in
test_tweet_checks.py)."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from optional_tools import assume, given, settings, st

from tweetgen.tweets import clean_tweet, count_hashtags, count_words, has_emoji, weighted_length

# One ZWJ emoji sequence (man, woman, girl, boy).
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"


# --- weighted_length -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("hello", 5, id="ascii"),
        pytest.param("", 0, id="empty"),
        pytest.param("https://example.com", 23, id="short-url-is-23"),
        pytest.param("https://example.com/" + "a" * 100, 23, id="long-url-is-23"),
        pytest.param(
            "see https://a.example.com/x and http://b.org",
            4 + 23 + 5 + 23,
            id="two-urls",
        ),
        pytest.param("https://x.example/y", 19, id="reserved-example-tld-is-not-a-url"),
        pytest.param("example.com", 23, id="url-without-scheme"),
        pytest.param("\U0001f600", 2, id="emoji"),
        pytest.param("\U0001f44d\U0001f3fd", 2, id="emoji-with-skin-tone"),
        pytest.param(FAMILY, 2, id="zwj-family-emoji"),
        pytest.param("日本語", 6, id="cjk"),
        pytest.param("한국어", 6, id="hangul"),
        pytest.param("hi 日本", 3 + 4, id="mixed-latin-cjk"),
        pytest.param("e\u0301", 1, id="nfc-normalised"),
        pytest.param("café — ok", 9, id="latin-accents-and-dash-weigh-1"),
        pytest.param("tweets.py", 23, id="file-name-with-cctld-counts-as-url"),
    ],
)
def test_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


# A few WeightedTweetsCounterTest cases transcribed from the official twitter-text
# conformance suite (conformance/validate.yml), which twitter-text-parser does not ship.
OFFICIAL_WEIGHTED_CASES = [
    pytest.param("Hi http://test.co", 26, id="regular-tweet-with-url"),
    pytest.param("http://test.co", 23, id="just-url"),
    pytest.param("285 chars-" + "xxxxxxxxxx-" * 25, 285, id="long-tweet"),
    pytest.param(
        "285 chars- http://www.twitter.com/jack " + "xxxxxxxxxx-" * 24,
        299,
        id="url-in-middle",
    ),
    pytest.param("xxxxxxxxxx-" * 24 + " http://www.twitter.com/jack ", 289, id="url-at-end"),
    pytest.param("https://www.twitter.com/aloha " * 10, 240, id="ten-urls"),
    pytest.param("A\u0301B", 2, id="normalised-into-one-char"),
    pytest.param("\U0001f637\U0001f47e\U0001f621\U0001f525\U0001f4a9", 10, id="five-emoji"),
    pytest.param("randomurl" * 7 + "s.com", 68, id="64-char-domain-is-not-a-url"),
    pytest.param(
        "あいうえおかきくけこ" * 12 + " http://" + "あいうえおかきくけこ" * 5 + "あい.com",
        264,
        id="cjk-domain-within-63-punycode-chars",
    ),
]


@pytest.mark.parametrize(("text", "expected"), OFFICIAL_WEIGHTED_CASES)
def test_weighted_length_matches_official_conformance_cases(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def _shipped_conformance_files() -> list[Path]:
    """Return conformance data files installed with the twitter_text package, if any."""
    spec = importlib.util.find_spec("twitter_text")
    assert spec is not None
    assert spec.origin is not None
    package_dir = Path(spec.origin).parent
    candidates = [*package_dir.rglob("*.yml"), *package_dir.rglob("*.yaml")]
    return [path for path in candidates if "WeightedTweetsCounterTest" in path.read_text("utf-8")]


def test_weighted_length_matches_shipped_conformance_data() -> None:
    files = _shipped_conformance_files()
    if not files:
        pytest.skip(
            "twitter-text-parser does not ship the official conformance data "
            "(no validate.yml with WeightedTweetsCounterTest in its package directory)"
        )
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read validate.yml")
    cases: list[dict[str, Any]] = []
    for path in files:
        tests = yaml.safe_load(path.read_text("utf-8"))["tests"]
        cases.extend(tests["WeightedTweetsCounterTest"])
    assert cases
    for case in cases:
        assert weighted_length(case["text"]) == case["expected"]["weightedLength"], case[
            "description"
        ]


# --- count_words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param("   \n\t ", 0, id="whitespace-only"),
        pytest.param("Hello world", 2, id="plain"),
        pytest.param("  Hello \n\n world\t", 2, id="any-whitespace-separates"),
        pytest.param("Read this: https://example.com/a?b=c now", 4, id="url-is-one-word"),
        pytest.param("Learning #AI with @guido", 4, id="hashtag-and-mention-are-words"),
        pytest.param("Fast — simple | done - yes", 4, id="punctuation-tokens-skipped"),
        pytest.param("Ship it \U0001f680 \U0001f389\U0001f389", 2, id="emoji-tokens-skipped"),
        pytest.param("Count 1\ufe0f\u20e3 and #\ufe0f\u20e3", 2, id="keycap-emoji-skipped"),
        pytest.param(f"family {FAMILY} time", 2, id="zwj-emoji-skipped"),
        pytest.param("it's well-known (really!) that 3.13 > 3.12", 6, id="attached-punctuation"),
        pytest.param("...wow!!!", 1, id="word-with-punctuation"),
        pytest.param("naïve café Ελληνικά русский", 4, id="unicode-letters"),
        pytest.param("日本語のテキスト です", 2, id="cjk-counts-per-token"),
        pytest.param("\U0001f525hot", 1, id="emoji-glued-to-word"),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected


# --- count_hashtags --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("no tags here", 0, id="none"),
        pytest.param("#AI and #Python3 rock", 2, id="two"),
        pytest.param("#1st place, #that1time", 2, id="digits-with-letters"),
        pytest.param("We're #1", 0, id="all-digits-is-not-a-hashtag"),
        pytest.param("#ашок #트위터 ＃日本", 3, id="unicode-and-fullwidth-sign"),
        pytest.param("a#b and &#39; entity", 0, id="inside-word-or-entity"),
        pytest.param("see https://example.com/#anchor", 0, id="url-fragment"),
        pytest.param("#AI#ML", 0, id="glued-tags"),
        pytest.param("(#AI), #ML.", 2, id="surrounded-by-punctuation"),
        pytest.param("#\ufe0f\u20e3 keycap", 0, id="keycap-emoji"),
        pytest.param("#snake_case_tag", 1, id="underscore"),
    ],
)
def test_count_hashtags(text: str, expected: int) -> None:
    assert count_hashtags(text) == expected


# --- clean_tweet -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Python 3.13 is out!", "Python 3.13 is out!", id="already-clean"),
        pytest.param(
            "It's \"fast\" and 'simple'.",
            "It's \"fast\" and 'simple'.",
            id="inner-quotes",
        ),
        pytest.param('"A" beats "B"', '"A" beats "B"', id="quotes-not-wrapping-all"),
        pytest.param("'Tis the season, 'n'", "'Tis the season, 'n'", id="leading-apostrophe"),
        pytest.param("Great tweet: @x nails it", "Great tweet: @x nails it", id="not-a-preamble"),
        pytest.param("Here's a tip: use uv", "Here's a tip: use uv", id="here-is-not-tweet"),
        pytest.param("Tweet:", "Tweet:", id="preamble-without-tweet"),
        pytest.param("Line one\n\nLine two", "Line one\n\nLine two", id="blank-line-kept"),
        pytest.param("Tweet: Ship it.", "Ship it.", id="tweet-colon"),
        pytest.param("tweet:Ship it.", "Ship it.", id="lowercase-no-space"),
        pytest.param("Here's a tweet: Ship it.", "Ship it.", id="heres-a-tweet"),
        pytest.param("Here’s your tweet:\nShip it.", "Ship it.", id="curly-apostrophe-newline"),
        pytest.param("Here is a tweet about Python: Use pathlib.", "Use pathlib.", id="about"),
        pytest.param(
            "Sure! Here's a professional tweet:\n\nShip it.",
            "Ship it.",
            id="sure-professional",
        ),
        pytest.param("HERE IS A TWEET: Ship it.", "Ship it.", id="upper-case"),
        pytest.param("**Tweet (24 words):** Ship it.", "Ship it.", id="markdown-bold-count"),
        pytest.param('"Ship it."', "Ship it.", id="straight-double-quotes"),
        pytest.param("'It's done.'", "It's done.", id="single-quotes-keep-apostrophe"),
        pytest.param("“Ship it.”", "Ship it.", id="curly-double-quotes"),
        pytest.param("‘It’s done.’", "It’s done.", id="curly-single-quotes"),
        pytest.param('"Say "hi" today"', 'Say "hi" today', id="wrapped-with-inner-quotes"),
        pytest.param('Here\'s a tweet: "Ship it."', "Ship it.", id="preamble-then-quotes"),
        pytest.param("```\nShip it.\n```", "Ship it.", id="fence"),
        pytest.param("```text\nShip   it.\n```", "Ship it.", id="fence-with-language"),
        pytest.param("```Ship it.```", "Ship it.", id="inline-fence"),
        pytest.param(
            'Tweet:\n```markdown\n"Ship it."\n```',
            "Ship it.",
            id="preamble-fence-quotes",
        ),
        pytest.param("  Ship \t\t it.  \n  Now.  ", "Ship it.\nNow.", id="spaces-and-tabs"),
        pytest.param("One\r\n\r\n\r\n\r\nTwo", "One\n\nTwo", id="crlf-and-blank-runs"),
        pytest.param("One\n \n\t\n\nTwo", "One\n\nTwo", id="whitespace-only-lines"),
        pytest.param("", "", id="empty"),
        pytest.param('""', '""', id="empty-quotes-kept"),
    ],
)
def test_clean_tweet(raw: str, expected: str) -> None:
    assert clean_tweet(raw) == expected


FRAGMENTS = st.sampled_from(
    [
        "Tweet:",
        "Here's a tweet:",
        "Sure! Here is a tweet about AI:",
        "```",
        "```python\n",
        '"',
        "'",
        "“",
        "”",
        "‘",
        "’",
        "it's",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n\n",
        "\r\n",
        "#AI",
        "@x",
        "https://x.example/y",
        "—",
        "word",
        "**",
        "(",
        ")",
    ]
)
ANY_TEXT = st.lists(FRAGMENTS | st.text(max_size=8), max_size=20).map("".join)
PLAIN_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 \t\n\r.,!?-—#@/:é日\U0001f600")),
    max_size=60,
)


def _alnum_words(text: str) -> Counter[str]:
    """Return the multiset of alphanumeric runs in ``text``."""
    return Counter(re.findall(r"\w+", text))


@settings(deadline=None)
@given(ANY_TEXT)
def test_clean_tweet_is_idempotent(raw: str) -> None:
    once = clean_tweet(raw)
    assert clean_tweet(once) == once


@settings(deadline=None)
@given(ANY_TEXT)
def test_clean_tweet_only_removes_words(raw: str) -> None:
    assert _alnum_words(clean_tweet(raw)) <= _alnum_words(raw)


@settings(deadline=None)
@given(PLAIN_TEXT)
def test_clean_tweet_without_wrappers_only_changes_whitespace(raw: str) -> None:
    assume(not re.match(r"\W*tweet", raw, re.IGNORECASE))
    cleaned = clean_tweet(raw)
    assert cleaned.split() == raw.split()
    assert "  " not in cleaned
    assert "\t" not in cleaned
    assert "\n\n\n" not in cleaned
    assert cleaned == cleaned.strip()


_ASCII_TWEETS = st.lists(
    st.sampled_from(
        [*"abcXYZ019 .,:/#@_-'!?\n", "example.com", "http://", "t.co/x", "#AI", " 1.5", "x.py"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_ASCII_TWEETS)
def test_fast_path_agrees_with_twitter_text(text: str) -> None:
    import twitter_text  # type: ignore[import-untyped, unused-ignore]

    assert weighted_length(text) == twitter_text.parse_tweet(text).weightedLength
    assert has_emoji(text) is bool(twitter_text.extract_emojis_with_indices(text))
