"""What the sandbox reads from a prompt: topic, tone, limits, thread length, hashtags, emoji and
link, from the wording of tweetgen's default templates (with fallbacks for any other prompt)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PromptFacts", "read_prompt"]

_FIRST_LINE = re.compile(
    r"(?:Generate|Write) an? (?P<tone>[\w-]+) (?:tweet|thread of (?P<count>\d+) tweets)"
    r" about (?P<topic>.+?)\.?\s*$",
    re.IGNORECASE,
)
_MAX_WORDS = re.compile(r"at most (\d+) words", re.IGNORECASE)
_MAX_CHARS = re.compile(r"within (\d+) characters", re.IGNORECASE)
_GIVEN_TAGS = re.compile(
    r"^Include these hashtags: (?P<tags>.+?)\.?\s*$", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True)
class PromptFacts:
    """What the composer could read from a prompt."""

    topic: str
    tone: str
    max_words: int
    thread: int = 0
    hashtags: bool = True
    emoji: bool = False
    max_chars: int = 280
    link: bool = False
    tags: tuple[str, ...] = ()


def read_prompt(prompt: str) -> PromptFacts:
    """Read topic, tone, word and character limits, hashtags, emoji and link from the default
    templates' wording, with fallbacks (25 words; 280 characters, 270 for a thread, whose counter is
    appended afterwards)."""
    first = prompt.strip().splitlines()[0] if prompt.strip() else "something"
    match = _FIRST_LINE.match(first)
    limit = _MAX_WORDS.search(prompt)
    chars = _MAX_CHARS.search(prompt)
    given = _GIVEN_TAGS.search(prompt)
    topic = (
        match.group("topic") if match else " ".join(first.split()[:6]).rstrip(".:") or "something"
    )
    thread = min(25, int(match.group("count"))) if match and match.group("count") else 0
    return PromptFacts(
        topic=topic,
        tone=match.group("tone").lower() if match else "professional",
        max_words=max(1, int(limit.group(1))) if limit else 25,
        thread=thread,
        hashtags="do not use hashtags" not in prompt.lower(),
        emoji="you may use one or two emoji" in prompt.lower(),
        max_chars=max(1, int(chars.group(1))) if chars else (270 if thread else 280),
        link="a link will be appended" in prompt.lower(),
        tags=tuple(t for t in given.group("tags").split() if t.startswith("#")) if given else (),
    )
