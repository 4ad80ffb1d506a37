"""The offline composer: a deterministic, tone-aware tweet for a topic, within a word limit."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

__all__ = ["PromptFacts", "answer_text", "compose", "compose_facts", "read_prompt"]

_OPENERS: dict[str, tuple[str, ...]] = {
    "professional": (
        "{topic} is reshaping how teams deliver value.",
        "Leaders who invest in {topic} today will set the standard tomorrow.",
        "Three things every team should know about {topic}: start small, measure, iterate.",
    ),
    "casual": (
        "Been diving into {topic} lately and honestly it's so much fun.",
        "Okay, {topic} is kind of my new favourite thing.",
        "Weekend plan: coffee, snacks and way too much {topic}.",
    ),
    "witty": (
        "{topic}: because doing things the hard way was getting boring.",
        "My relationship status? Complicated. With {topic}.",
        "I asked {topic} for a favour and now it runs my calendar.",
    ),
    "inspirational": (
        "Every expert in {topic} was once a beginner who kept going.",
        "Small steps in {topic} add up to giant leaps.",
        "Your journey with {topic} starts with one brave first try.",
    ),
    "informative": (
        "Quick fact: {topic} works best when you understand the basics first.",
        "New to {topic}? Begin with the fundamentals, then practise daily.",
        "{topic} in one line: learn the core ideas, apply them, repeat.",
    ),
}
_CLOSERS = (
    "What is your take?",
    "Keep learning, keep building.",
    "Worth your time this week.",
    "Share it with someone who needs it.",
)

_FIRST_LINE = re.compile(
    r"(?:Generate|Write) an? (?P<tone>[\w-]+) (?:tweet|thread of (?P<count>\d+) tweets) about (?P<topic>.+?)\.?\s*$",
    re.IGNORECASE,
)
_MAX_WORDS = re.compile(r"at most (\d+) words", re.IGNORECASE)


@dataclass(frozen=True)
class PromptFacts:
    """What the composer could read from a prompt."""

    topic: str
    tone: str
    max_words: int
    thread: int = 0
    hashtags: bool = True
    emoji: bool = False


def read_prompt(prompt: str) -> PromptFacts:
    """Read topic, tone and word limit from the default template's wording, with fallbacks."""
    first = prompt.strip().splitlines()[0] if prompt.strip() else "something"
    match = _FIRST_LINE.match(first)
    limit = _MAX_WORDS.search(prompt)
    topic = match.group("topic") if match else " ".join(first.split()[:6]).rstrip(".:") or "something"
    return PromptFacts(
        topic=topic,
        tone=match.group("tone").lower() if match else "professional",
        max_words=max(1, int(limit.group(1))) if limit else 25,
        thread=min(25, int(match.group("count"))) if match and match.group("count") else 0,
        hashtags="do not use hashtags" not in prompt.lower(),
        emoji="you may use one or two emoji" in prompt.lower(),
    )


def _hashtag(topic: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", topic)
    return "#" + "".join(w[:1].upper() + w[1:] for w in words[:3]) if words else ""


def compose(
    topic: str,
    tone: str,
    max_words: int,
    *,
    seed: int | None = None,
    variant: int = 0,
    hashtags: bool = True,
    emoji: bool = False,
) -> str:
    """The same tweet for the same topic, tone, limit, seed and variant; never over ``max_words``."""
    key = f"{topic}\x00{tone}\x00{max_words}\x00{seed}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    openers = _OPENERS.get(tone, _OPENERS["professional"])
    combos = len(openers) * len(_CLOSERS)  # variants 0..combos-1 of one request are all different
    combo = (rng.randrange(combos) + variant) % combos
    words = openers[combo % len(openers)].format(topic=topic).split()
    closer = _CLOSERS[combo // len(openers)].split()
    if len(words) + len(closer) <= max_words:  # a whole sentence or none: never a cut-off closer
        words += closer
    tag = _hashtag(topic) if hashtags else ""
    if tag and len(words) < max_words:
        words.append(tag)
    if emoji and len(words) < max_words:
        words.append(rng.choice(("\U0001f680", "\u2728", "\U0001f4a1")))
    if len(words) > max_words:
        words = words[:max_words]
        words[-1] = words[-1].rstrip(",;:") or words[-1]
    return " ".join(words)


def compose_facts(facts: PromptFacts, *, seed: int | None = None, variant: int = 0) -> str:
    """The answer to a prompt: one tweet, or a thread's tweets separated by ``---`` lines."""
    parts = [
        compose(
            facts.topic,
            facts.tone,
            facts.max_words,
            seed=seed,
            variant=variant * 32 + i,
            hashtags=facts.hashtags,
            emoji=facts.emoji,
        )
        for i in range(max(1, facts.thread))
    ]
    return "\n---\n".join(parts)


def answer_text(kind: str, facts: PromptFacts, seed: int | None, variant: int) -> str:
    """The sandbox's answer of one fault ``kind`` (``ok``, ``long``, ``quoted``, ``preamble``, ``emoji``)."""
    text = compose_facts(facts, seed=seed, variant=variant)
    if kind == "long":
        filler = compose(facts.topic, "informative", 60, seed=seed, variant=variant + 1).split()
        return " ".join((text.split() + filler * 6)[:60])
    if kind == "quoted":
        return f'"{text}"'
    if kind == "preamble":
        return f"Here's a tweet about {facts.topic}:\n\n{text}"
    if kind == "emoji":
        return "\U0001f680" * 150
    return text
