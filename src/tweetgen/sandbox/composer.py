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

import dataclasses
import functools
import hashlib
import itertools
import random
import re
import unicodedata
from collections.abc import Iterable, Sequence

from ..tweets import weighted_length
from .phrases import CLOSERS, EMOJI, OPENERS, SHORT, TOPIC_SHORT
from .promptfacts import PromptFacts, read_prompt

__all__ = [
    "ECHO_EXAMPLE",
    "MAX_HASHTAG_LENGTH",
    "NOTES_MARK",
    "VOICE_MARK",
    "PromptFacts",
    "answer_text",
    "compose",
    "compose_facts",
    "read_prompt",
    "sentences",
    "style_notes",
    "voice_examples",
    "voice_facts",
]

#: The longest hashtag the composer writes, ``#`` included: a longer topic gets no hashtag rather
#: than a cut one.
MAX_HASHTAG_LENGTH = 32
#: The weighted characters of a link X shortens (23) and the space before it.
_LINK_COST = 24

_TOPIC_WORD = re.compile(r"[^\W_]+")
#: the first line of a voice's part of a prompt (:func:`tweetgen.voice.prompt_block`)
VOICE_MARK = "Write in the user's voice"
#: how ``tweetgen voice create``'s notes prompt starts (:data:`tweetgen.voicecmd.NOTES_PROMPT`)
NOTES_MARK = "List 3 to 6 short style notes"
#: in a prompt with a voice: the first answer echoes the voice's first example (a copy to reject)
ECHO_EXAMPLE = "sandbox:echo-example"
_AIM = re.compile(r"^Aim for about (\d+) words", re.MULTILINE)
_VOICE_TAGS = re.compile(r"^Use (\d+) hashtags per post(?:, such as (?P<tags>[^\n]+?))?\.$", re.M)
_EXAMPLES = "Examples of the user's posts"


def _hashtag(topic: str) -> str:
    """The topic as one CamelCase hashtag; ``""`` when it has no letter or is too long to read."""
    words = _TOPIC_WORD.findall(unicodedata.normalize("NFC", topic))
    tag = "#" + "".join(w[:1].upper() + w[1:] for w in words)
    if "#" in topic or not any(ch.isalpha() for ch in tag) or len(tag) > MAX_HASHTAG_LENGTH:
        return ""
    return tag


def _render(template: str, topic: str) -> str:
    """One sentence, the topic put in: capitalised at its start, no doubled end punctuation."""
    if topic.endswith((".", "!", "?")):  # "A.I." ends a sentence itself: no "A.I.." or "A.I.!"
        template = re.sub(r"\{topic\}[.!?]", "{topic}", template)
    text = template.format(topic=topic)
    if template.startswith("{topic}") and topic[:1].islower() and topic.split()[0].islower():
        text = text[:1].upper() + text[1:]
    return text


def sentences(topic: str, tone: str) -> tuple[str, ...]:
    """Every sentence the composer may write for ``topic`` in ``tone`` (unknown: professional)."""
    own = tone if tone in OPENERS else "professional"
    about = [_render(t, topic) for t in (*OPENERS[own], *TOPIC_SHORT[own])]
    return (*about, *CLOSERS[own], *(s for name in SHORT for s in SHORT[name]))


def _interleave(first: Sequence[str], second: Sequence[str]) -> Iterable[tuple[str, ...]]:
    """Every pair; each run of ``len(first)`` pairs starts with each first element once."""
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
    own = tone if tone in OPENERS else "professional"
    openers = _shuffled(rng, (_render(t, topic) for t in OPENERS[own]))
    short_about = _shuffled(rng, (_render(t, topic) for t in TOPIC_SHORT[own]))
    closers = _shuffled(rng, CLOSERS[own])
    others = [s for name in SHORT if name != own for s in SHORT[name]]
    about: list[tuple[str, ...]] = [  # about the topic
        *_interleave(openers, closers),
        *((one,) for one in openers),
        *_interleave(short_about, closers),
        *((one,) for one in short_about),
    ]
    general = [(one,) for one in (*closers, *_shuffled(rng, SHORT[own]), *_shuffled(rng, others))]
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
        if emoji and _weight([*pieces, EMOJI[index % len(EMOJI)]]) <= chars:
            pieces.append(EMOJI[index % len(EMOJI)])
        (named if index < len(about) or topic_tag in pieces else unnamed).append(" ".join(pieces))
    return (*named, *unnamed) or (SHORT[own][0],)


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


def voice_facts(prompt: str, facts: PromptFacts) -> PromptFacts:
    """The facts with a voice's habits, as :mod:`tweetgen.voice` says them: about that many
    words (within the limit), its hashtags (unless the prompt names its own), one emoji."""
    if VOICE_MARK not in prompt:
        return facts
    aim, tags = _AIM.search(prompt), _VOICE_TAGS.search(prompt)
    changes: dict[str, object] = {"emoji": facts.emoji or "\nUse one emoji." in prompt}
    if aim is not None:
        changes["max_words"] = max(1, min(facts.max_words, int(aim.group(1))))
    if tags is not None and not facts.tags:
        named = [t for t in (tags.group("tags") or "").split() if t.startswith("#")]
        changes["tags"] = tuple(named[: int(tags.group(1))])
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def style_notes(prompt: str) -> str:
    """The answer to ``tweetgen voice create``'s notes prompt: notes measured from the posts it
    shows (:func:`tweetgen.voice.habit_notes`), one ``- `` line each."""
    from ..voice import habit_notes, measure

    _, _, rest = prompt.partition("\nPosts:\n")
    posts = [line[2:] for line in rest.splitlines() if line.startswith("- ") and line[2:].strip()]
    if not posts:
        return "- Plain and direct\n- Short sentences\n- No hashtags"
    return "\n".join(f"- {note}" for note in habit_notes(measure(posts)))


def voice_examples(prompt: str) -> list[str]:
    """The example posts a voice's part of the prompt shows (``- `` lines after its heading)."""
    _, found, rest = prompt.partition(_EXAMPLES)
    lines = rest.splitlines()[1:] if found else []
    return [line[2:] for line in itertools.takewhile(lambda x: x.startswith("- "), lines)]


def compose_facts(facts: PromptFacts, *, seed: int | None = None, variant: int = 0) -> str:
    """A prompt's answer: one tweet, or a thread's tweets (all different) split by ``---`` lines."""
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
    """The sandbox's answer for a fault ``kind`` (ok, long, quoted, preamble or emoji)."""
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
