"""Tests for tweetgen.sandbox: fault scripts and the offline composer (the loopback server is in
test_sandbox_server.py)."""

from __future__ import annotations

import pytest

from tweetgen.prompts import DEFAULT_TEMPLATE, TONES
from tweetgen.sandbox import Fault, FaultScript, compose, parse_faults, read_prompt

TONE_NAMES = ["professional", "casual", "witty", "inspirational", "informative"]


def prompt_for(topic: str, tone: str, max_words: int) -> str:
    return DEFAULT_TEMPLATE.render(
        topic=topic, tone=tone, tone_description=TONES[tone], max_words=max_words
    )


# --- parse_faults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("503*2", [Fault("status", 503), Fault("status", 503)]),
        ("429:26s", [Fault("status", 429, retry_delay="26s")]),
        ("429:1.5s", [Fault("status", 429, retry_delay="1.5s")]),
        ("503:retry-after=2", [Fault("status", 503, retry_after="2")]),
        ("ok:0.5", [Fault("ok", seconds=0.5)]),
        ("ok", [Fault("ok")]),
        ("drop", [Fault("drop")]),
        ("hang:1", [Fault("hang", seconds=1.0)]),
        ("hang", [Fault("hang", seconds=30.0)]),
        ("html", [Fault("html")]),
        ("blocked", [Fault("blocked")]),
        ("max-tokens", [Fault("max-tokens")]),
        ("invalid-key", [Fault("invalid-key")]),
        ("echo-key", [Fault("echo-key")]),
        ("long", [Fault("long")]),
        ("quoted", [Fault("quoted")]),
        ("preamble", [Fault("preamble")]),
        ("emoji", [Fault("emoji")]),
        ("404", [Fault("status", 404)]),
        (" 500 , OK ,drop*2", [Fault("status", 500), Fault("ok"), Fault("drop"), Fault("drop")]),
        ("", []),
        (["503", "ok"], [Fault("status", 503), Fault("ok")]),
    ],
)
def test_parse_faults(spec: str | list[str], expected: list[Fault]) -> None:
    assert parse_faults(spec) == expected


@pytest.mark.parametrize(
    "step",
    [
        "bogus",
        "200",
        "700",
        "399",
        "429:abc",
        "ok:abc",
        "hang:soon",
        "503*x",
        "!!",
        "503:retry-after",
    ],
)
def test_bad_fault_steps(step: str) -> None:
    with pytest.raises(ValueError, match="fault") as info:
        parse_faults(f"ok,{step}")
    assert repr(step) in str(info.value)


def test_fault_script_order_and_default_ok() -> None:
    script = FaultScript(parse_faults("503,429:26s"))
    script.extend(parse_faults("drop"))
    assert len(script) == 3
    assert [script.next().status, script.next().retry_delay, script.next().kind] == [
        503,
        "26s",
        "drop",
    ]
    assert len(script) == 0
    assert script.next() == Fault("ok")
    script.extend([Fault("html")])
    script.clear()
    assert script.next() == Fault("ok")


# --- composer ----------------------------------------------------------------------


@pytest.mark.parametrize("tone", TONE_NAMES)
def test_compose_is_deterministic(tone: str) -> None:
    first = compose("Python testing", tone, 25, seed=7)
    assert first == compose("Python testing", tone, 25, seed=7)
    assert first
    assert "Python testing" in first


def test_compose_varies_with_seed_tone_and_variant() -> None:
    by_seed = {compose("Python", "witty", 40, seed=seed) for seed in range(20)}
    by_tone = {compose("Python", tone, 40, seed=1) for tone in TONE_NAMES}
    by_variant = {compose("Python", "casual", 40, seed=1, variant=v) for v in range(10)}
    assert len(by_seed) > 1
    assert len(by_tone) == len(TONE_NAMES)
    assert len(by_variant) > 1


def test_compose_unknown_tone_falls_back() -> None:
    assert compose("AI", "grumpy", 30, seed=1)


@pytest.mark.parametrize("tone", TONE_NAMES)
@pytest.mark.parametrize(
    "topic", ["AI", "sustainable urban gardening in small apartments", "C++ & Rust"]
)
def test_compose_never_exceeds_max_words(tone: str, topic: str) -> None:
    for max_words in range(1, 61):
        for seed in (None, 0, 1):
            text = compose(topic, tone, max_words, seed=seed)
            assert 1 <= len(text.split()) <= max_words, (max_words, text)
            assert not text.endswith((",", ";", ":")) or len(text.split()) == 1


def test_compose_adds_a_hashtag_when_there_is_room() -> None:
    assert compose("machine learning", "informative", 60, seed=3).endswith("#MachineLearning")


@pytest.mark.parametrize("tone", TONE_NAMES)
@pytest.mark.parametrize(
    ("topic", "max_words"),
    [("Python testing", 25), ("AI", 1), ("the future of remote work", 60), ("A.I.", 9)],
)
def test_read_prompt_reads_the_default_template(tone: str, topic: str, max_words: int) -> None:
    facts = read_prompt(prompt_for(topic, tone, max_words))
    assert (facts.topic, facts.tone, facts.max_words) == (topic, tone, max_words)


@pytest.mark.parametrize(
    ("prompt", "topic", "tone", "max_words"),
    [
        ("", "something", "professional", 25),
        ("   \n  ", "something", "professional", 25),
        ("Tell me about cats please", "Tell me about cats please", "professional", 25),
        (
            "one two three four five six seven eight",
            "one two three four five six",
            "professional",
            25,
        ),
        ("Summary:", "Summary", "professional", 25),
        ("Write at most 12 words on birds.", "Write at most 12 words on", "professional", 12),
        ("Generate an informative tweet about tea\nat most 0 words", "tea", "informative", 1),
        ("GENERATE A WITTY TWEET ABOUT Mondays", "Mondays", "witty", 25),
    ],
)
def test_read_prompt_fallbacks(prompt: str, topic: str, tone: str, max_words: int) -> None:
    facts = read_prompt(prompt)
    assert (facts.topic, facts.tone, facts.max_words) == (topic, tone, max_words)
