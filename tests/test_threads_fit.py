"""Threads fit their word limit: the thread prompt and the tweet check agree (issue 12, item 2).

The decision: a thread's counter (``1/5``) is counted in the 280 characters, as X counts it, but not
in ``max_words``, as a reader reads it (a page number, not a word of the message); an appended link
is one of the ``max_words`` words, so the prompt asks for one word fewer. A model that writes
exactly the words the prompt asks for therefore passes at once, numbered or not, with a link or
without, for every ``max_words`` from 1 to 60.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hostile import Exchange, HostileServer, gemini_body

from tweetgen import TweetGenerator
from tweetgen.errors import InputError, TweetValidationError
from tweetgen.logs import register_secret
from tweetgen.providers.base import GenerationRequest, GenerationResult
from tweetgen.request import MAX_WORDS_RANGE
from tweetgen.tweets import TweetRules, check_tweet, count_words, number_thread, thread_counters

LINK = "https://example.com/launch"
_ASKED_WORDS = re.compile(r"at most (\d+) words")
_ASKED_TWEETS = re.compile(r"thread of (\d+) tweets")
# short words, so that 60 of them stay far within the characters the prompt allows
_VOCABULARY = (
    "go",
    "we",
    "do",
    "it",
    "up",
    "so",
    "no",
    "on",
    "by",
    "my",
    "be",
    "to",
    "in",
    "at",
    "us",
    "me",
)


def obeying_answer(prompt: str) -> str:
    """What a model that obeys exactly writes: the asked number of tweets, each of exactly the asked
    number of words (all different), separated by ``---`` lines, not numbered, no URL."""
    words = int(_ASKED_WORDS.findall(prompt)[-1])
    tweets = int(_ASKED_TWEETS.search(prompt).group(1))  # type: ignore[union-attr]
    pool = itertools.cycle(_VOCABULARY)
    parts = [
        " ".join(f"{next(pool)}{i}" if j == 0 else next(pool) for j in range(words))
        for i in range(tweets)
    ]
    return "\n---\n".join(parts)


class ObeyingModel:
    """A provider whose model writes exactly what the prompt asks for; it records every prompt."""

    name = "obeying"
    model = "exact-1"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, request: GenerationRequest) -> GenerationResult:
        self.prompts.append(request.prompt)
        return GenerationResult(
            texts=(obeying_answer(request.prompt),), provider=self.name, model=self.model
        )

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        return self.generate(request)

    def close(self) -> None:
        """Nothing to close."""


@pytest.mark.parametrize("link", [None, LINK], ids=["no-link", "link"])
@pytest.mark.parametrize("numbering", [True, False], ids=["numbered", "unnumbered"])
def test_a_model_that_obeys_exactly_passes_at_every_word_limit(
    numbering: bool, link: str | None
) -> None:
    model = ObeyingModel()
    low, high = MAX_WORDS_RANGE
    with TweetGenerator(provider=model, regenerations=2) as generator:
        for max_words in range(max(low, 2 if link else 1), high + 1):
            model.prompts.clear()
            thread = generator.generate_thread(
                "Linux on the desktop in 2027",
                "casual",
                max_words,
                tweets=3,
                numbering=numbering,
                link=link,
            )
            context = (max_words, [t.text for t in thread.tweets])
            assert len(model.prompts) == 1, context  # passed at once: no regeneration
            asked = int(_ASKED_WORDS.findall(model.prompts[0])[-1])
            assert asked == max_words - (1 if link else 0), context
            assert [t.words for t in thread.tweets] == [max_words] * 3, (
                context
            )  # every word the limit allows
            for index, tweet in enumerate(thread.tweets, 1):
                assert tweet.text.endswith(f" {index}/3") == numbering, context
                assert (LINK in tweet.text) == bool(link), context
                assert tweet.weighted_length <= 280, context
                assert tweet.regenerations == 0, context


def test_the_counter_is_counted_in_the_characters() -> None:
    body = "x" * 276
    (numbered,) = number_thread([body])
    check = check_tweet(numbered, TweetRules(max_words=1), counter=thread_counters(1)[0])
    assert numbered == body + " 1/1"
    assert (check.words, check.weighted_length) == (1, 280)
    assert check.valid
    over = check_tweet("y" + numbered, TweetRules(max_words=1), counter="1/1")
    assert over.reasons == ("that was 281 weighted characters; the limit is 280",)


def test_a_counter_left_out_of_the_words_is_only_the_one_at_the_end() -> None:
    rules = TweetRules(max_words=2)
    assert check_tweet("one two 2/3", rules, counter="2/3").words == 2
    assert (
        check_tweet("one two 2/3", rules, counter="1/3").words == 3
    )  # not this tweet's counter: counted
    assert (
        count_words("one two 2/3") == 3
    )  # the counter is a word to count_words; only the check sets it aside


def test_too_many_words_are_still_rejected_with_the_numbers_a_reader_counts() -> None:
    class Chatty(ObeyingModel):
        def generate(self, request: GenerationRequest) -> GenerationResult:
            self.prompts.append(request.prompt)
            text = obeying_answer(request.prompt).replace("\n---\n", " extra\n---\n", 1)
            return GenerationResult(texts=(text,), provider=self.name, model=self.model)

    model = Chatty()
    with (
        TweetGenerator(provider=model, regenerations=1) as generator,
        pytest.raises(TweetValidationError) as caught,
    ):
        generator.generate_thread("Go", max_words=10, tweets=2)
    assert "tweet 1: that was 11 words; the limit is 10" in str(caught.value)
    assert len(model.prompts) == 2
    assert "tweet 1: that was 11 words; the limit is 10" in model.prompts[1]


@pytest.mark.parametrize("numbering", [True, False], ids=["numbered", "unnumbered"])
def test_one_word_with_a_link_is_refused_before_any_call(numbering: bool) -> None:
    model = ObeyingModel()
    with TweetGenerator(provider=model) as generator:
        with pytest.raises(
            InputError, match=r"link.* counts as one of the .*2 words or more, got 1"
        ):
            generator.generate_thread("AI", max_words=1, tweets=3, numbering=numbering, link=LINK)
        with pytest.raises(InputError, match=r"link.* counts as one of the"):
            generator.generate(
                "AI", max_words=1, link=LINK
            )  # a single tweet has the same arithmetic
        thread = generator.generate_thread(
            "AI", max_words=2, tweets=3, numbering=numbering, link=LINK
        )
    assert len(model.prompts) == 1
    assert [t.words for t in thread.tweets] == [2, 2, 2]  # one word of text and the link


def test_one_word_numbered_without_a_link_passes() -> None:
    model = ObeyingModel()
    with TweetGenerator(provider=model) as generator:
        thread = generator.generate_thread("AI", max_words=1, tweets=25)
    assert len(model.prompts) == 1
    assert [t.text for t in thread.tweets][:2] == ["go0 1/25", "we1 2/25"]
    assert all(t.words == 1 for t in thread.tweets)


# --- the command line, against a model on a real loopback server ----------------------------------


def _obeying_gemini(exchange: Exchange) -> None:
    prompt = exchange.request.json()["contents"][-1]["parts"][0]["text"]
    exchange.respond(200, json=gemini_body(obeying_answer(prompt)))


def _tweetgen(
    tmp_path: Path, server: HostileServer, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_", "OPENAI_"))
    }
    env.update(GEMINI_BASE_URL=server.url, GEMINI_API_KEY="test-key-123456")
    command = [sys.executable, "-m", "tweetgen", "thread", "--provider", "gemini", "--quiet", *args]
    log = ["--log-file", str(tmp_path / "log.jsonl")]
    return subprocess.run(
        [*command, *log], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_cli_thread_of_ten_words_passes_at_once(tmp_path: Path) -> None:
    with HostileServer(_obeying_gemini) as server:
        result = _tweetgen(
            tmp_path, server, "--topic", "Rust", "--tweets", "3", "--max-words", "10", "--json"
        )
        requests = server.count
    assert result.returncode == 0, result.stderr
    assert requests == 1
    tweets = json.loads(result.stdout)["tweets"]
    assert [t["text"].rsplit(" ", 1)[1] for t in tweets] == ["1/3", "2/3", "3/3"]
    assert [t["words"] for t in tweets] == [10, 10, 10]
    assert all(t["valid"] for t in tweets)


def test_cli_one_word_numbered_with_a_link_is_exit_2_before_any_call(tmp_path: Path) -> None:
    with HostileServer(_obeying_gemini) as server:
        result = _tweetgen(
            tmp_path, server, "--topic", "AI", "--tweets", "3", "--max-words", "1", "--link", LINK
        )
        requests = server.count
    assert result.returncode == 2
    assert requests == 0
    assert "Traceback" not in result.stderr
    assert "--max-words" in result.stderr
    assert re.search(r"link.* counts as one of the", result.stderr), result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_a_thread_tweet_that_repeats_a_key_is_never_valid() -> None:
    key = "thread-key-" + uuid.uuid4().hex  # registered as a secret, as a configured API key is
    register_secret(key)

    class Leaky(ObeyingModel):
        def generate(self, request: GenerationRequest) -> GenerationResult:
            self.prompts.append(request.prompt)
            text = f"go we\n---\nmy key is {key}\n---\ndo it"
            return GenerationResult(texts=(text,), provider=self.name, model=self.model)

    model = Leaky()
    with (
        TweetGenerator(provider=model, regenerations=1) as generator,
        pytest.raises(TweetValidationError) as caught,
    ):
        generator.generate_thread("Go", max_words=10, tweets=3)
    assert "tweet 2: it contains an API key" in str(caught.value)
    assert key not in str(caught.value)
    assert key not in (caught.value.best or "")
    assert len(model.prompts) == 2
    assert key not in model.prompts[1]  # the feedback does not say it back either
