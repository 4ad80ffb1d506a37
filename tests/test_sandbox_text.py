"""The sandbox writes whole tweets (issue 12, item 3): whole sentences within the limits and whole
hashtags.

What "whole" means here: the tweet is one or two of the composer's sentences (each ends in ``.``,
``!`` or ``?``), then at most one hashtag, which is the whole topic in CamelCase (or a hashtag the
prompt asked for), then at most one emoji. At 1 to 3 words the sentence is a short complete one
("Noted.", "Well said.", "Start small today."). Checked for every word limit from 1 to 60 and every
tone, with long multi-word topics.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from optional_tools import given, settings, st

from tweetgen import TweetGenerator
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer, compose, read_prompt
from tweetgen.sandbox.composer import MAX_HASHTAG_LENGTH, compose_facts, sentences
from tweetgen.tweets import TweetRules, check_tweet, count_words, weighted_length

TONE_NAMES = ["professional", "casual", "witty", "inspirational", "informative"]
LONG_TOPIC = "Linux on the desktop in 2027"
TOPICS = [
    "AI",
    "Python",
    LONG_TOPIC,
    "sustainable urban gardening in small apartments",
    "machine learning for small businesses",
    "C++ & Rust",
    "A.I.",
    "What is AI?",
    "café culture in Lisbon",
    "日本語の勉強",
    " ".join(["distributed"] * 18)[:200],  # as long as a topic may be
]
_END = (".", "!", "?")


def full_hashtag(topic: str) -> str:
    """The whole topic in CamelCase, computed here independently of the composer."""
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFC", topic))
    return "#" + "".join(w[:1].upper() + w[1:] for w in words)


def _is_emoji(token: str) -> bool:
    return not any(ch.isalnum() or ch in ".,!?;:'\"#-&" for ch in token)


def _made_of(body: str, known: frozenset[str]) -> bool:
    """Whether ``body`` is one or more of the ``known`` sentences, separated by spaces."""
    if body in known:
        return True
    return any(
        body.startswith(one + " ") and _made_of(body[len(one) + 1 :], known) for one in known
    )


def whole_problems(text: str, topic: str, tone: str, *, tags: tuple[str, ...] = ()) -> list[str]:
    """Every way ``text`` is not whole: a sentence that is not one of the composer's, or one cut
    off; a hashtag that is not the whole topic nor one asked for."""
    problems = []
    tokens = text.split()
    while tokens and _is_emoji(tokens[-1]):
        tokens.pop()
    hashtags = []
    while tokens and tokens[-1].startswith("#"):
        hashtags.insert(0, tokens.pop())
    body = " ".join(tokens)
    if not body.endswith(_END):
        problems.append(f"the last sentence is cut off: {body!r}")
    if not _made_of(body, frozenset(sentences(topic, tone))):
        problems.append(f"not whole sentences of the composer: {body!r}")
    whole = full_hashtag(topic)
    for tag in hashtags:
        if tag not in tags and (tag != whole or len(tag) > MAX_HASHTAG_LENGTH):
            problems.append(f"hashtag {tag!r} is not the whole topic ({whole!r})")
    return problems


def assert_fits(text: str, *, max_words: int, max_chars: int = 280, link: bool = False) -> None:
    assert count_words(text) <= max_words, text
    assert len([t for t in text.split() if not _is_emoji(t)]) <= max_words, text
    assert weighted_length(text) + (24 if link else 0) <= max_chars, text


# --- every limit, every tone, every variant a thread could ask for --------------------------------


@pytest.mark.parametrize("tone", [*TONE_NAMES, "grumpy"])
@pytest.mark.parametrize("topic", TOPICS)
def test_every_limit_gives_25_different_whole_tweets(topic: str, tone: str) -> None:
    longest: dict[
        str, int
    ] = {}  # each tweet and the smallest limit it was written for (most tweets recur)
    for max_words in range(1, 61):
        tweets = [compose(topic, tone, max_words, seed=1, variant=v) for v in range(25)]
        assert len(set(tweets)) == 25, (max_words, tweets)
        for text in tweets:
            longest.setdefault(text, max_words)
    for text, max_words in longest.items():
        assert whole_problems(text, topic, tone) == [], (max_words, text)
        assert_fits(text, max_words=max_words)
        assert check_tweet(text, TweetRules(max_words=max_words, max_hashtags=2)).valid, (
            max_words,
            text,
        )


@pytest.mark.parametrize("max_words", [1, 2, 3])
@pytest.mark.parametrize("tone", TONE_NAMES)
def test_one_to_three_words_is_a_short_complete_sentence(tone: str, max_words: int) -> None:
    text = compose(LONG_TOPIC, tone, max_words, seed=4, hashtags=False)
    assert 1 <= len(text.split()) <= max_words
    assert text.endswith(_END)
    assert text[0].isupper()


def test_the_hashtag_is_the_whole_topic_or_none() -> None:
    assert compose(LONG_TOPIC, "casual", 40, seed=1).endswith(" #LinuxOnTheDesktopIn2027")
    assert "#" not in compose(
        "sustainable urban gardening in small apartments", "casual", 60, seed=1
    )  # too long
    assert "#LinuxOnThe " not in compose(LONG_TOPIC, "witty", 12, seed=1) + " "


def test_a_topic_that_ends_a_sentence_is_not_punctuated_twice() -> None:
    texts = {
        compose("A.I.", tone, w, seed=s)
        for tone in TONE_NAMES
        for w in range(1, 61)
        for s in range(3)
    }
    assert not [t for t in texts if re.search(r"A\.I\.[.!?]", t)]


def test_deterministic_per_topic_tone_and_seed() -> None:
    first = [compose(LONG_TOPIC, tone, w, seed=9) for tone in TONE_NAMES for w in range(1, 61)]
    assert first == [
        compose(LONG_TOPIC, tone, w, seed=9) for tone in TONE_NAMES for w in range(1, 61)
    ]
    assert len({compose(LONG_TOPIC, "witty", 30, seed=s) for s in range(10)}) > 1


# --- property test over every limit and tone, topics of any shape ---------------------------------

_ODD_WORDS = [
    "A.I.",
    "C++",
    "&",
    "2027",
    "café",
    "naïve",
    "日本語",
    "what?",
    "e.g.",
    "don't",
    "x.com",
    "v3.13",
]
_WORD = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=14),
    st.sampled_from(_ODD_WORDS),
)
_TOPIC = st.one_of(
    st.sampled_from(TOPICS),
    st.lists(_WORD, min_size=1, max_size=30).map(" ".join).filter(lambda t: len(t) <= 200),
)


@settings(max_examples=400)
@given(
    topic=_TOPIC,
    tone=st.sampled_from([*TONE_NAMES, "grumpy"]),
    max_words=st.integers(1, 60),
    seed=st.none() | st.integers(-(2**31), 2**31 - 1),
    variant=st.integers(0, 40),
    hashtags=st.booleans(),
    emoji=st.booleans(),
    link=st.booleans(),
    max_chars=st.sampled_from([280, 270]),
    tags=st.sampled_from([(), ("#python",), ("#python", "#ai")]),
)
def test_property_whole_sentences_within_the_limits(
    topic: str,
    tone: str,
    max_words: int,
    seed: int | None,
    variant: int,
    hashtags: bool,
    emoji: bool,
    link: bool,
    max_chars: int,
    tags: tuple[str, ...],
) -> None:
    options = {
        "hashtags": hashtags,
        "emoji": emoji,
        "link": link,
        "max_chars": max_chars,
        "tags": tags,
    }
    text = compose(topic, tone, max_words, seed=seed, variant=variant, **options)  # type: ignore[arg-type]
    assert text == compose(topic, tone, max_words, seed=seed, variant=variant, **options)  # type: ignore[arg-type]
    assert whole_problems(text, topic, tone, tags=tags) == []
    assert_fits(text, max_words=max_words, max_chars=max_chars, link=link)
    if (
        tags and len(tags) < max_words
    ):  # asked-for hashtags are written whenever they leave room for a sentence
        assert " ".join(tags) in text
    if not hashtags and not tags:
        assert "#" not in text.replace(topic, "")
    if not emoji:
        assert not any(_is_emoji(t) for t in text.split())


@pytest.mark.parametrize("max_words", [3, 5, 12, 40])
def test_hashtags_the_prompt_asks_for_are_written_whole_within_the_limit(max_words: int) -> None:
    tags = ("#python", "#ai")
    text = compose(LONG_TOPIC, "casual", max_words, seed=2, tags=tags)
    assert whole_problems(text, LONG_TOPIC, "casual", tags=tags) == []
    assert text.endswith(" #python #ai")
    assert_fits(text, max_words=max_words)


# --- through the sandbox: the prompt's facts, threads, the command line ---------------------------


def test_the_prompt_gives_the_limits_the_link_and_the_hashtags() -> None:
    with TweetGenerator(provider="sandbox") as generator:
        prompt = generator.prompt(
            LONG_TOPIC, "witty", 12, link="https://example.com/a", hashtags="python,ai"
        )
        thread_prompt = generator.prompt(LONG_TOPIC, "witty", 12, thread=3)
    facts = read_prompt(prompt)
    assert (facts.max_words, facts.max_chars, facts.link, facts.tags) == (
        11,
        280,
        True,
        ("#python", "#ai"),
    )
    thread = read_prompt(thread_prompt)
    assert (thread.thread, thread.max_chars, thread.link) == (3, 270, False)
    parts = compose_facts(thread, seed=1).split("\n---\n")
    assert len(set(parts)) == 3


def _generator(server: SandboxServer) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="test-key-123456", model="gemini-test", base_url=server.url, name="sandbox"
    )
    return TweetGenerator(provider=provider, regenerations=0)


@pytest.mark.parametrize("tone", TONE_NAMES)
def test_sandbox_threads_pass_at_once_at_every_limit(tone: str) -> None:
    with SandboxServer() as server, _generator(server) as generator:
        for max_words in range(1, 61):
            link = (
                None if max_words % 2 else "https://example.com/post"
            )  # a link needs 2 words or more
            thread = generator.generate_thread(
                LONG_TOPIC, tone, max_words, tweets=25, link=link, seed=max_words
            )
            texts = [t.text for t in thread.tweets]
            assert len(set(texts)) == 25, (max_words, texts)
            for index, tweet in enumerate(thread.tweets, 1):
                assert tweet.text.endswith(f" {index}/25")
                body = tweet.text.removesuffix(f" {index}/25").removesuffix(f" {link}")
                assert whole_problems(body, LONG_TOPIC, tone) == [], (max_words, tweet.text)
                assert tweet.words <= max_words
                assert tweet.weighted_length <= 280
    assert all(r.path.endswith(":generateContent") for r in server.requests)
    assert len(server.requests) == 60  # one call a thread: nothing was regenerated


def _offline_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    return {**env, "TWEETGEN_PROVIDER": "sandbox"}


def test_cli_generate_json_is_whole_at_ten_words(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tweetgen",
        "generate",
        "--topic",
        LONG_TOPIC,
        "--tone",
        "witty",
    ]
    options = ["--max-words", "10", "--json", "--quiet", "--log-file", str(tmp_path / "log.jsonl")]
    result = subprocess.run(
        [*command, *options],
        env=_offline_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["valid"] is True
    assert whole_problems(record["text"], LONG_TOPIC, "witty") == []


def test_cli_batch_of_varied_topics_and_limits_has_no_cut_tweet(tmp_path: Path) -> None:
    rows = ["id,topic,tone,max_words"]
    for index in range(60):
        topic, tone = TOPICS[index % 7], TONE_NAMES[index % 5]
        rows.append(f'r{index},"{topic}",{tone},{5 + (index * 7) % 36}')
    (tmp_path / "topics.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "tweetgen",
        "batch",
        "topics.csv",
        "-o",
        "out.jsonl",
        "--db",
        "t.db",
        "-q",
    ]
    log = ["--log-file", str(tmp_path / "log.jsonl")]
    result = subprocess.run(
        [*command, *log],
        env=_offline_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [
        json.loads(line)
        for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(records) == 60
    problems = [
        (r["max_words"], p)
        for r in records
        for p in whole_problems(r["text"], r["topic"], r["tone"])
    ]
    assert problems == []
    assert all(count_words(r["text"]) <= r["max_words"] for r in records)
