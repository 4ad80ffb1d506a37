"""The checks the review page shows and enforces: X's rules and the ones the call was made with.

A stored call's text is one tweet, or a thread's tweets joined by a ``---`` line; each tweet is
measured with :func:`tweetgen.tweets.check_tweet` (words, X's weighted length, hashtags, invalid
characters) against the rules of the call: at most ``max_words`` words (from its stored inputs,
25 when they name none) and 280 weighted characters. An edit is checked the same way, live as it
is typed and again when it is approved: a text that breaks a rule cannot be approved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..tweets import TweetCheck, TweetRules, check_tweet, strip_controls

__all__ = ["MAX_TEXT", "THREAD_SEPARATOR", "TextCheck", "check_text", "clean_edit", "rules_of"]

#: how a stored thread's tweets are joined (:meth:`tweetgen.calls` joins them so)
THREAD_SEPARATOR = "\n---\n"
#: the longest edit accepted, in characters (a thread of 25 tweets fits)
MAX_TEXT = 10_000
_DEFAULT_WORDS = 25


def rules_of(inputs_json: str | None) -> TweetRules:
    """The rules a call was made with: its ``max_words`` (25 when missing or unusable) and X's
    280 weighted characters."""
    try:
        inputs: Any = json.loads(inputs_json or "{}")
    except ValueError:
        inputs = {}
    words = inputs.get("max_words") if isinstance(inputs, dict) else None
    if type(words) is not int or words < 1:
        words = _DEFAULT_WORDS
    return TweetRules(max_words=words)


@dataclass(frozen=True)
class TextCheck:
    """A text's tweets measured against the call's rules."""

    tweets: tuple[TweetCheck, ...]
    max_words: int
    max_length: int

    @property
    def valid(self) -> bool:
        """Whether every tweet keeps every rule."""
        return all(t.valid for t in self.tweets)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every broken rule, each tweet's numbered when the text is a thread."""
        many = len(self.tweets) > 1
        return tuple(
            f"tweet {n}: {reason}" if many else reason
            for n, check in enumerate(self.tweets, 1)
            for reason in check.reasons
        )

    @property
    def words(self) -> int:
        """The most words of any tweet."""
        return max(t.words for t in self.tweets)

    @property
    def weighted_length(self) -> int:
        """The longest tweet's weighted length, as X counts it."""
        return max(t.weighted_length for t in self.tweets)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "valid": self.valid,
            "words": self.words,
            "max_words": self.max_words,
            "weighted_length": self.weighted_length,
            "max_weighted_length": self.max_length,
            "tweets": len(self.tweets),
            "reasons": list(self.reasons),
        }


def check_text(text: str, rules: TweetRules) -> TextCheck:
    """Measure ``text`` (one tweet or a thread) against ``rules``."""
    parts = text.split(THREAD_SEPARATOR) if THREAD_SEPARATOR in text else [text]
    checks = tuple(check_tweet(part, rules) for part in parts)
    return TextCheck(checks, rules.max_words, rules.max_weighted_length)


def clean_edit(text: str) -> str:
    """An edit as it is kept: line ends as ``\\n``, control characters removed, no surrounding
    blank space; longer than :data:`MAX_TEXT` is refused with ValueError."""
    if len(text) > MAX_TEXT:
        raise ValueError(
            f"the text is {len(text):,} characters; the most an edit may be is {MAX_TEXT:,}"
        )
    return strip_controls(text.replace("\r\n", "\n").replace("\r", "\n")).strip()
