"""The voice, measured on the sandbox (issue 16's acceptance): a voice built from 20 short posts
with 2 hashtags each moves the generated tweets' length and hashtags toward the posts; a tweet
that copies an example, or repeats this week's tweet on the topic, is rejected and regenerated."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tweetgen.errors import TweetValidationError
from tweetgen.generator import TweetGenerator
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.request import TweetRequest
from tweetgen.sandbox import SandboxServer
from tweetgen.store import Store
from tweetgen.tweets import count_hashtags, count_words
from tweetgen.voice import build_profile, save_profile

#: 20 short posts (7-10 words, hashtags included), two hashtags each
POSTS = [
    "Shipped the onboarding fix before lunch today. #buildinpublic #saas",
    "Small pull requests get merged faster. #devlife #buildinpublic",
    "Talked to three customers, rewrote the pricing page. #saas #buildinpublic",
    "Deleted four hundred lines and nothing broke. #devlife #buildinpublic",
    "Monday plan: one feature, zero meetings. #buildinpublic #productivity",
    "The best bug report came from my mum. #saas #buildinpublic",
    "Coffee, tests, deploy, repeat until Friday. #devlife #buildinpublic",
    "First paying customer from Norway this morning! #saas #buildinpublic",
    "Wrote the docs before the code again. #devlife #buildinpublic",
    "Churn dropped after we fixed the emails. #saas #buildinpublic",
    "Dark mode finally shipped, took six weekends. #buildinpublic #indiedev",
    "Saying no to features is a feature. #productivity #buildinpublic",
    "Our status page had a quiet week. #saas #devlife",
    "Refactored billing, slept badly, worth it anyway. #buildinpublic #saas",
    "Ten signups from one honest blog post. #buildinpublic #indiedev",
    "Support inbox zero for the first time. #saas #buildinpublic",
    "Pair programming with my cat is underrated. #devlife #indiedev",
    "Launch checklist done, launching on Tuesday morning. #buildinpublic #saas",
    "Benchmarks lie less than my intuition does. #devlife #buildinpublic",
    "Twelve months in, still loving this work. #buildinpublic #indiedev",
]
TOPICS = [
    "remote work",
    "database indexes",
    "customer interviews",
    "open source funding",
    "code review",
    "pricing experiments",
    "morning routines",
    "type checking in Python",
]


def _generator(server: SandboxServer, observers: tuple[Any, ...] = (), **options: Any) -> Any:
    provider = GeminiProvider(
        api_key="test-key-123456", model="gemini-test", base_url=server.url, name="sandbox"
    )
    return TweetGenerator(provider=provider, observers=observers, **options)


def _measure(server: SandboxServer, voice: object) -> tuple[float, float, list[str]]:
    texts = []
    with _generator(server) as generator:
        for topic in TOPICS:
            for seed in (1, 2):
                request = TweetRequest(topic, "casual", 25, seed=seed, voice=voice)  # type: ignore[arg-type]
                texts.append(generator.generate_request(request).text)
    words = statistics.fmean(count_words(t) for t in texts)
    tags = statistics.fmean(count_hashtags(t) for t in texts)
    return words, tags, texts


def test_a_voice_from_20_posts_moves_length_and_hashtags_toward_them(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    profile = build_profile("founder", POSTS)
    save_profile(profile, tmp_path)
    assert profile.habits.words_median <= 10
    assert profile.habits.hashtags_per_post == 2
    plain_words, plain_tags, _ = _measure(sandbox_server, None)
    voiced_words, voiced_tags, texts = _measure(sandbox_server, profile)
    post_words = statistics.fmean(count_words(p) for p in POSTS)
    # length: the voice's tweets are nearer the posts' length, by a real margin
    assert abs(voiced_words - post_words) + 5 < abs(plain_words - post_words), (
        plain_words,
        voiced_words,
        post_words,
    )
    # hashtags: the posts' two a tweet, and their common tags, instead of the topic's one
    assert voiced_tags == pytest.approx(2.0)
    assert plain_tags <= 1.0
    assert all("#buildinpublic" in t for t in texts)
    print(
        f"\n16 tweets on the sandbox: words {plain_words:.1f} -> {voiced_words:.1f} "
        f"(posts {post_words:.1f}); hashtags {plain_tags:.2f} -> {voiced_tags:.2f} (posts 2)"
    )


def test_an_echoed_example_is_rejected_and_regenerated(
    sandbox_server: SandboxServer, events: Callable[[], list[dict[str, Any]]]
) -> None:
    profile = build_profile("founder", POSTS)
    first_example = profile.examples[0]
    number = POSTS.index(first_example) + 1
    with _generator(sandbox_server) as generator:
        request = TweetRequest("sandbox:echo-example code review", voice=profile)
        tweet = generator.generate_request(request)
    assert tweet.regenerations == 1
    assert tweet.text != first_example
    rejected = [e for e in events() if e["event"] == "Tweet rejected"]
    assert any(f"copies example {number}" in str(e) for e in rejected), rejected
    with _generator(sandbox_server) as generator:  # without the voice: the echo is not asked
        plain = generator.generate_request(TweetRequest("sandbox:echo-example code review"))
    assert plain.regenerations == 0


def test_a_repeat_of_this_weeks_tweet_on_the_topic_is_rejected(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    profile = build_profile("founder", POSTS)
    with Store(tmp_path / "t.db") as store:
        observer = store.observer()
        with _generator(sandbox_server, (observer,)) as generator:
            first = generator.generate_request(TweetRequest("code review", voice=profile))
            second = generator.generate_request(TweetRequest("code review", voice=profile))
            other = generator.generate_request(TweetRequest("code reviews", voice=profile))
    assert first.regenerations == 0
    assert second.regenerations == 1
    assert second.text != first.text
    assert other.regenerations == 0  # another topic: not compared


def test_with_no_regeneration_left_a_copy_fails_the_call(sandbox_server: SandboxServer) -> None:
    profile = build_profile("founder", POSTS)
    with _generator(sandbox_server, regenerations=0) as generator:
        request = TweetRequest("sandbox:echo-example x", voice=profile)
        with pytest.raises(TweetValidationError, match="copies example"):
            generator.generate_request(request)


def test_variants_in_a_voice_follow_it_and_none_copies(sandbox_server: SandboxServer) -> None:
    profile = build_profile("founder", POSTS)
    with _generator(sandbox_server) as generator:
        request = TweetRequest("remote work", "casual", 25, variants=3, voice=profile)
        tweets = generator._drive(request, generator._variants_plan)
    assert len(tweets) == 3
    assert all(count_hashtags(t.text) == 2 for t in tweets)
    assert all(count_words(t.text) <= 10 for t in tweets)
