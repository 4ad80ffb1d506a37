"""The offline composer: a deterministic, tone-aware tweet for a topic, within a word limit.

What it writes is always whole: one or two whole sentences, each ending in ``.``, ``!`` or ``?``,
then at most one whole hashtag and one emoji. It never cuts a sentence or a hashtag to fit. For a
limit too small for a sentence about the topic it writes a short complete one from a list of short
forms: at 1 to 3 words, "Noted.", "Well said." or "Start small today." (a whole sentence of that
many words, with its punctuation). The hashtag is the whole topic in CamelCase
(``#LinuxOnTheDesktopIn2027``), or none when that would be longer than :data:`MAX_HASHTAG_LENGTH`
characters or does not fit. Every tweet stays within the word limit (words as ``str.split`` counts
them, emoji aside, so also as a reader counts them) and within the weighted characters the prompt
allows (less the link's 23 and a space when a link will be appended).

The same topic, tone, limits, seed and variant give the same tweet; variants ``0..n-1`` of one
request are all different, as long as that many whole tweets fit (at every limit there are more than
25, the longest thread).
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..tweets import weighted_length

__all__ = [
    "MAX_HASHTAG_LENGTH",
    "PromptFacts",
    "answer_text",
    "compose",
    "compose_facts",
    "read_prompt",
    "sentences",
]

#: The longest hashtag the composer writes, ``#`` included: a longer topic gets no hashtag rather
#: than a cut one.
MAX_HASHTAG_LENGTH = 32
#: The weighted characters of a link X shortens (23) and the space before it.
_LINK_COST = 24

# Sentences about the topic, per tone: the first sentence of a tweet.
_OPENERS: dict[str, tuple[str, ...]] = {
    "professional": (
        "{topic} is reshaping how teams deliver value.",
        "Leaders who invest in {topic} today will set the standard tomorrow.",
        "Three things every team should know about {topic}: start small, measure, iterate.",
        "{topic} rewards teams that plan before they build.",
        "The best teams treat {topic} as a long-term investment.",
        "Getting {topic} right is a real competitive advantage.",
    ),
    "casual": (
        "Been diving into {topic} lately and honestly it's so much fun.",
        "Okay, {topic} is kind of my new favourite thing.",
        "Weekend plan: coffee, snacks and way too much {topic}.",
        "Can we talk about {topic} for a second?",
        "Spent the whole evening on {topic} again, no regrets.",
        "Anyone else totally hooked on {topic} right now?",
    ),
    "witty": (
        "{topic}: because doing things the hard way was getting boring.",
        "My relationship status? Complicated. With {topic}.",
        "I asked {topic} for a favour and now it runs my calendar.",
        "{topic} walked in and my to-do list walked out.",
        "Some people have hobbies. I have {topic}.",
        "Therapist: and how does {topic} make you feel?",
    ),
    "inspirational": (
        "Every expert in {topic} was once a beginner who kept going.",
        "Small steps in {topic} add up to giant leaps.",
        "Your journey with {topic} starts with one brave first try.",
        "Believe in the progress you make with {topic} every day.",
        "The best time to start with {topic} is today.",
        "Dream big about {topic}, then take the first step.",
    ),
    "informative": (
        "Quick fact: {topic} works best when you understand the basics first.",
        "New to {topic}? Begin with the fundamentals, then practise daily.",
        "{topic} in one line: learn the core ideas, apply them, repeat.",
        "The key to {topic} is steady practice and honest feedback.",
        "Most mistakes with {topic} come from skipping the basics.",
        "A good first step with {topic}: read the official guide.",
    ),
}
# Short sentences about the topic: the first sentence when no opener fits.
_TOPIC_SHORT: dict[str, tuple[str, ...]] = {
    "professional": ("{topic}.", "{topic} matters.", "Invest in {topic}.", "Focus on {topic}."),
    "casual": ("{topic}!", "Loving {topic}!", "{topic}, anyone?", "So much {topic}!"),
    "witty": ("{topic}?", "{topic}. Obviously.", "Send help: {topic}.", "{topic} strikes again!"),
    "inspirational": (
        "{topic}!",
        "Start {topic} today!",
        "Believe in {topic}.",
        "Keep going with {topic}!",
    ),
    "informative": (
        "{topic}.",
        "{topic}, explained.",
        "Learn {topic} well.",
        "{topic}: start here.",
    ),
}
# Sentences without the topic, 3 to 7 words: a second sentence, or the tweet when no topic sentence
# fits.
_CLOSERS: dict[str, tuple[str, ...]] = {
    "professional": (
        "What is your take?",
        "Keep learning, keep building.",
        "Worth your time this week.",
        "Share it with someone who needs it.",
        "Measure what matters most.",
        "Progress beats perfection every time.",
    ),
    "casual": (
        "What do you think?",
        "Seriously, try it this weekend.",
        "Totally worth it, trust me.",
        "Tell me I'm not alone here.",
        "Best decision I made all week.",
        "Send snacks, I'm busy.",
    ),
    "witty": (
        "No regrets, mostly.",
        "My plants are jealous.",
        "Productivity has left the chat.",
        "Send coffee and patience.",
        "Ask me how I know.",
        "It seemed like a good idea.",
    ),
    "inspirational": (
        "Keep going, you are closer than you think.",
        "Your future self will thank you.",
        "Start where you are today.",
        "Every small win counts.",
        "Progress, not perfection.",
        "You have got this.",
    ),
    "informative": (
        "Save this for later.",
        "Bookmark it for your next project.",
        "Practice beats theory here.",
        "Start with the official documentation.",
        "Small experiments teach the most.",
        "Measure before you optimise.",
    ),
}
# Whole sentences of 1 to 3 words without the topic: the tweet when the limit leaves no room for
# more.
_SHORT: dict[str, tuple[str, ...]] = {
    "professional": (
        "Noted.",
        "Agreed.",
        "Onward.",
        "Exactly.",
        "Precisely.",
        "Understood.",
        "Indeed.",
        "Well said.",
        "Stay focused.",
        "Quality matters.",
        "Start small today.",
        "Measure, then improve.",
    ),
    "casual": (
        "Yes!",
        "Wow!",
        "Nice!",
        "Yep!",
        "Love it!",
        "So good!",
        "Honestly, same.",
        "Totally!",
        "Big fan!",
        "Cannot stop.",
        "Try it!",
        "This is fun!",
    ),
    "witty": (
        "Naturally.",
        "Obviously.",
        "Classic.",
        "Shocking.",
        "Yikes!",
        "Plot twist!",
        "Send help.",
        "Totally fine.",
        "Nailed it, mostly.",
        "Oops!",
        "Worth it.",
    ),
    "inspirational": (
        "Believe!",
        "Begin!",
        "Persevere!",
        "Rise!",
        "Dream!",
        "Keep going!",
        "Dream big.",
        "Rise up!",
        "Never stop.",
        "You can.",
        "Start today!",
        "One step further.",
    ),
    "informative": (
        "Fact.",
        "Essential.",
        "Useful.",
        "Noteworthy.",
        "Interesting.",
        "Learn more.",
        "Read the docs.",
        "Practise daily.",
        "Basics first.",
        "Measure twice.",
        "Try it yourself.",
        "Know the basics.",
    ),
}
_EMOJI = ("\U0001f680", "\u2728", "\U0001f4a1")

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
_TOPIC_WORD = re.compile(r"[^\W_]+")


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


def _hashtag(topic: str) -> str:
    """The whole topic as one CamelCase hashtag, or ``""`` when it has no letter or is too long to
    read."""
    words = _TOPIC_WORD.findall(unicodedata.normalize("NFC", topic))
    tag = "#" + "".join(w[:1].upper() + w[1:] for w in words)
    if "#" in topic or not any(ch.isalpha() for ch in tag) or len(tag) > MAX_HASHTAG_LENGTH:
        return ""
    return tag


def _render(template: str, topic: str) -> str:
    """One sentence: the topic put in, capitalised when it starts the sentence, no doubled end
    punctuation."""
    if topic.endswith((".", "!", "?")):  # "A.I." ends a sentence itself: no "A.I.." or "A.I.!"
        template = re.sub(r"\{topic\}[.!?]", "{topic}", template)
    text = template.format(topic=topic)
    if template.startswith("{topic}") and topic[:1].islower() and topic.split()[0].islower():
        text = text[:1].upper() + text[1:]
    return text


def sentences(topic: str, tone: str) -> tuple[str, ...]:
    """Every sentence the composer may write for ``topic`` in ``tone`` (an unknown tone writes
    professional)."""
    own = tone if tone in _OPENERS else "professional"
    about = [_render(t, topic) for t in (*_OPENERS[own], *_TOPIC_SHORT[own])]
    return (*about, *_CLOSERS[own], *(s for name in _SHORT for s in _SHORT[name]))


def _interleave(first: Sequence[str], second: Sequence[str]) -> Iterable[tuple[str, ...]]:
    """Every pair, in an order where each run of ``len(first)`` pairs starts each first element
    once."""
    for index in range(len(first) * len(second)):
        lead = index % len(first)
        yield first[lead], second[(lead + index // len(first)) % len(second)]


def _shuffled(rng: random.Random, items: Iterable[str]) -> list[str]:
    listed = list(items)
    rng.shuffle(listed)
    return listed


@functools.lru_cache(maxsize=256)
def _tweets(
    topic: str,
    tone: str,
    max_words: int,
    seed: int | None,
    hashtags: bool,
    emoji: bool,
    max_chars: int,
    link: bool,
    tags: tuple[str, ...],
) -> tuple[str, ...]:
    """Every whole tweet that fits, each one different, best first: two sentences about the topic,
    one, then shorter forms and, last, the other tones' short forms (so that a one-word thread of 25
    tweets has 25)."""
    key = f"{topic}\x00{tone}\x00{max_words}\x00{seed}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    own = tone if tone in _OPENERS else "professional"
    openers = _shuffled(rng, (_render(t, topic) for t in _OPENERS[own]))
    short_about = _shuffled(rng, (_render(t, topic) for t in _TOPIC_SHORT[own]))
    closers = _shuffled(rng, _CLOSERS[own])
    others = [s for name in _SHORT if name != own for s in _SHORT[name]]
    about: list[tuple[str, ...]] = [  # about the topic
        *_interleave(openers, closers),
        *((one,) for one in openers),
        *_interleave(short_about, closers),
        *((one,) for one in short_about),
    ]
    general = [(one,) for one in (*closers, *_shuffled(rng, _SHORT[own]), *_shuffled(rng, others))]
    topic_tag = _hashtag(topic) if hashtags and not tags else ""
    tail = [*tags] if tags else ([topic_tag] if topic_tag else [])
    words = (
        max_words - len(tags) if len(tags) < max_words else max_words
    )  # given tags that fit are whole words
    chars = max_chars - (_LINK_COST if link else 0)
    named: list[str] = []  # tweets that name the topic, in a sentence or in its hashtag, come first
    unnamed: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for index, body in enumerate([*about, *general]):
        size = sum(len(one.split()) for one in body)
        if size > words or body in seen:
            continue
        seen.add(body)
        pieces = [*body, *tail] if tail and size + len(tail) <= max_words else [*body]
        if (
            _weight(pieces) > chars and not tags
        ):  # the topic's hashtag is left out; asked-for ones are not
            pieces = [*body]
        if _weight(pieces) > chars:
            continue
        if emoji and _weight([*pieces, _EMOJI[index % len(_EMOJI)]]) <= chars:
            pieces.append(_EMOJI[index % len(_EMOJI)])
        (named if index < len(about) or topic_tag in pieces else unnamed).append(" ".join(pieces))
    return (*named, *unnamed) or (_SHORT[own][0],)


def _weight(pieces: Sequence[str]) -> int:
    """The weighted length of the pieces joined by spaces: the sum of theirs (no URL, emoji or
    character spans a space), each measured once."""
    return sum(_piece_weight(piece) for piece in pieces) + len(pieces) - 1


@functools.lru_cache(maxsize=4096)
def _piece_weight(piece: str) -> int:
    return weighted_length(piece)


def compose(
    topic: str,
    tone: str,
    max_words: int,
    *,
    seed: int | None = None,
    variant: int = 0,
    hashtags: bool = True,
    emoji: bool = False,
    max_chars: int = 280,
    link: bool = False,
    tags: Sequence[str] = (),
) -> str:
    """The same tweet for the same topic, tone, limits, seed and variant; whole sentences and a
    whole hashtag, never over ``max_words`` words or ``max_chars`` weighted characters (less a
    link's when ``link``).

    ``tags`` are hashtags the prompt asked for: written at the end (instead of the topic's) when
    they fit.
    """
    options = _tweets(
        topic, tone, max(1, max_words), seed, hashtags, emoji, max_chars, link, tuple(tags)
    )
    return options[variant % len(options)]


def compose_facts(facts: PromptFacts, *, seed: int | None = None, variant: int = 0) -> str:
    """The answer to a prompt: one tweet, or a thread's tweets separated by ``---`` lines (all
    different)."""
    count = max(1, facts.thread)
    parts = [
        compose(
            facts.topic,
            facts.tone,
            facts.max_words,
            seed=seed,
            variant=variant * count + i,
            hashtags=facts.hashtags,
            emoji=facts.emoji,
            max_chars=facts.max_chars,
            link=facts.link,
            tags=facts.tags,
        )
        for i in range(count)
    ]
    return "\n---\n".join(parts)


def answer_text(kind: str, facts: PromptFacts, seed: int | None, variant: int) -> str:
    """The sandbox's answer of one fault ``kind`` (``ok``, ``long``, ``quoted``, ``preamble``,
    ``emoji``)."""
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
