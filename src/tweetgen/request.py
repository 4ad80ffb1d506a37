"""A validated request: topic, tone, limits and options, and what they mean for the prompt and the
rules."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import InputError
from .prompts import TONES, PromptTemplate, TemplateRegistry
from .tweets import TweetRules

if TYPE_CHECKING:
    from .voice import VoiceProfile
    from .voicespec import VoiceSpec

__all__ = [
    "MAX_THREAD_TWEETS",
    "MAX_TOPIC_LENGTH",
    "MAX_VARIANTS",
    "MAX_WORDS_RANGE",
    "NOT_A_THREAD",
    "SEED_RANGE",
    "TEMPERATURE_RANGE",
    "TweetRequest",
    "brief",
    "check_input",
    "check_text",
]

#: Longest topic (after its whitespace is collapsed), and longest audience, call to action, language
#: or banned phrase, in characters.
MAX_TOPIC_LENGTH = 200
#: Words a tweet may ask for (a tweet of 280 characters holds about 60 words).
MAX_WORDS_RANGE = (1, 60)
#: Most variants from one call (Gemini's ``candidateCount`` limit).
MAX_VARIANTS = 8
#: Most tweets in a thread (a thread needs at least 2).
MAX_THREAD_TWEETS = 25
#: Sampling seeds: a 32-bit signed integer, what Gemini's ``generationConfig.seed`` takes (OpenAI
#: takes more).
SEED_RANGE = (-(2**31), 2**31 - 1)
#: Sampling temperature, as Gemini and OpenAI accept it.
TEMPERATURE_RANGE = (0.0, 2.0)
AUTO_HASHTAGS = 2
_HASHTAG = re.compile(r"^#?(\w{1,100})$")
_URL = re.compile(r"^https?://\S+$")
_TAG_IN_TEXT = re.compile(r"(?<![\w&])#\w+")  # whole hashtags: #ai is not inside #AITools
# C0 and C1 control characters: never part of a topic, option or phrase (whitespace is collapsed
# before the check)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: each setting in the words of an error message: the same words for Python and for the command
#: line, whose errors put the option's flag in front (``--max-words: the word limit must be ...``);
#: see ``InputError.setting``
SETTING_WORDS = {
    "topic": "the topic",
    "tone": "the tone",
    "max_words": "the word limit",
    "hashtags": "the hashtags",
    "audience": "the audience",
    "call_to_action": "the call to action",
    "language": "the language",
    "link": "the link",
    "banned_phrases": "a banned phrase",
    "variants": "the number of variants",
    "thread": "the number of tweets in a thread",
    "template": "the template",
    "numbering": "numbering",
    "seed": "the seed",
    "temperature": "the temperature",
    "extra": "the extra template values",
    "voice": "the voice",
}


def _invalid(setting: str, message: str) -> InputError:
    return InputError(message, setting=setting)


class _NotAThread(int):
    """The ``thread`` default: 0, but not the same object as a 0 that was asked for (which is not a
    thread)."""

    def __repr__(self) -> str:
        return "0"


#: ``TweetRequest.thread`` when the request is one tweet, not a thread (an explicit ``thread=0`` is
#: refused).
NOT_A_THREAD: int = _NotAThread(0)


def brief(value: object, limit: int = 40) -> str:
    """A value for an error message: its repr (JSON's spelling for non-text values), cut to
    ``limit`` characters."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text(name: str, value: object, *, limit: int = MAX_TOPIC_LENGTH) -> str:
    """Return ``value`` if it is a non-blank text of at most ``limit`` characters without control
    characters.

    ``name`` is the setting (``"call_to_action"``); the error says it in words
    (:data:`SETTING_WORDS`).
    """
    words = SETTING_WORDS.get(name, name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        got = (
            f"{len(value):,} characters"
            if isinstance(value, str) and len(value) > limit
            else brief(value)
        )
        raise _invalid(
            name, f"{words} must be a non-empty text of at most {limit:,} characters, got {got}"
        )
    control = _CONTROL.search(value)
    if control is not None:
        raise _invalid(
            name, f"{words} contains a control character (U+{ord(control.group()):04X}); remove it"
        )
    return value


def check_input(topic: object, tone: object, max_words: object) -> tuple[str, str, int]:
    """Normalise and validate the core request; raises ``InputError`` (a ``ValueError``) with the
    fix."""
    if not isinstance(topic, str) or not topic.strip():
        raise _invalid(
            "topic",
            f"the topic must be a non-empty text such as 'Python Programming', got {brief(topic)}",
        )
    topic = " ".join(topic.split())
    if len(topic) > MAX_TOPIC_LENGTH:
        raise _invalid(
            "topic", f"the topic is {len(topic):,} characters long; the limit is {MAX_TOPIC_LENGTH}"
        )
    check_text("topic", topic)
    if not isinstance(tone, str) or tone.strip().lower() not in TONES:
        raise _invalid(
            "tone", f"unknown tone {brief(tone)}; choose one of {', '.join(sorted(TONES))}"
        )
    low, high = MAX_WORDS_RANGE
    return topic, tone.strip().lower(), _count("max_words", max_words, high, low=low)


def _hashtags(value: object) -> str | tuple[str, ...]:
    if isinstance(value, str) and value in ("none", "auto"):
        return value
    if not isinstance(value, str | tuple | list) or not all(isinstance(tag, str) for tag in value):
        raise _invalid(
            "hashtags",
            f"hashtags must be none, auto, or tags such as 'python,ai', got {brief(value)}",
        )
    tags = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    cleaned = []
    for tag in tags:
        match = _HASHTAG.match(tag.strip())
        if match is None:
            raise _invalid(
                "hashtags", f"{brief(tag)} is not a hashtag; use words like 'python' or '#python'"
            )
        cleaned.append("#" + match.group(1))
    if not cleaned:
        raise _invalid("hashtags", "hashtags must be 'none', 'auto' or one or more tags")
    return tuple(cleaned)


def _count(name: str, value: object, high: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        words = SETTING_WORDS.get(name, name)
        raise _invalid(
            name, f"{words} must be a whole number from {low} to {high}, got {brief(value)}"
        )
    return value


def _phrases(value: object) -> tuple[str, ...]:
    """Banned phrases: a list or tuple of non-blank texts (a single text would be banned letter by
    letter)."""
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise _invalid(
            "banned_phrases", f"banned phrases must be a list of phrases, got {brief(value)}"
        )
    for phrase in value:
        if not isinstance(phrase, str) or not phrase.strip():
            raise _invalid(
                "banned_phrases", f"a banned phrase must be a non-empty text, got {brief(phrase)}"
            )
        check_text("banned_phrases", phrase, limit=MAX_TOPIC_LENGTH)
    return tuple(value)


def _number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        got = (
            f"{value:g}"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else brief(value)
        )
        words = SETTING_WORDS.get(name, name)
        raise _invalid(name, f"{words} must be a number from {low:g} to {high:g}, got {got}")


#: prompts rendered, by template and values (bounded: cleared when full)
_RENDERED: dict[Hashable, tuple[PromptTemplate, str]] = {}
_RENDERED_SIZE = 256


def _prompt(template: PromptTemplate, values: dict[str, object]) -> str:
    text = template.render(**values)
    return "\n".join(line for line in text.strip().splitlines() if line.strip())


@dataclass(frozen=True)
class TweetRequest:
    """Everything that shapes one generation; construct it to validate the inputs."""

    topic: str
    tone: str = "professional"
    max_words: int = 25
    template: str = "tweet"
    hashtags: str | Sequence[str] = "auto"  # a tuple once validated
    emoji: bool | None = None
    audience: str | None = None
    call_to_action: str | None = None
    language: str | None = None
    link: str | None = None
    banned_phrases: Sequence[str] = ()  # a tuple once validated
    variants: int = 1
    thread: int = NOT_A_THREAD
    numbering: bool = True
    seed: int | None = None
    temperature: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: a voice name or profile; a :class:`~tweetgen.voicespec.VoiceSpec` once validated
    voice: VoiceSpec | VoiceProfile | str | None = None

    def __post_init__(self) -> None:
        topic, tone, _ = check_input(self.topic, self.tone, self.max_words)
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "tone", tone)
        object.__setattr__(self, "hashtags", _hashtags(self.hashtags))
        object.__setattr__(self, "banned_phrases", _phrases(self.banned_phrases))
        _count("variants", self.variants, MAX_VARIANTS)
        if not isinstance(
            self.thread, _NotAThread
        ):  # a thread of 0 tweets is refused too, before any call
            _count("thread", self.thread, MAX_THREAD_TWEETS, low=2)
        if not isinstance(self.template, str) or not self.template:
            raise _invalid(
                "template", f"the template must be a template name, got {brief(self.template)}"
            )
        if not isinstance(self.numbering, bool):
            raise _invalid(
                "numbering", f"numbering must be true or false, got {brief(self.numbering)}"
            )
        if self.link is not None and (not isinstance(self.link, str) or not _URL.match(self.link)):
            raise _invalid(
                "link", f"the link must be an http(s) URL without spaces, got {brief(self.link)}"
            )
        if self.link is not None:
            check_text("link", self.link, limit=2_000)
            if self.max_words < 2:  # the link is one of the words: none would be left for the text
                raise _invalid(
                    "max_words",
                    "a link counts as one of the words of the word limit and the text needs at "
                    "least one more: "
                    f"ask for 2 words or more, got {self.max_words}",
                )
        if self.seed is not None:
            _count("seed", self.seed, SEED_RANGE[1], low=SEED_RANGE[0])
        if self.temperature is not None:
            _number("temperature", self.temperature, *TEMPERATURE_RANGE)
        for name in ("audience", "call_to_action", "language"):
            if getattr(self, name) is not None:
                check_text(name, getattr(self, name))
        if not isinstance(self.extra, dict) or not all(
            isinstance(v, str) for v in self.extra.values()
        ):
            raise _invalid(
                "extra", f"extra template values must be texts by name, got {brief(self.extra)}"
            )
        if self.voice is not None:  # loaded once here; the spec keeps the profile
            from .voicespec import VoiceSpec

            object.__setattr__(self, "voice", VoiceSpec.of(self.voice))

    @property
    def words_for_model(self) -> int:
        """The word limit to ask the model for: ``max_words``, less the one word kept for an
        appended link.

        A thread's counter (``1/5``) keeps no word: it is counted in the 280 characters, as X counts
        it, but not in ``max_words`` (a reader takes it for a page number), so a model that writes
        exactly this many words passes, numbered or not. With a link, ``max_words`` is at least 2
        (checked when the request is built).
        """
        return self.max_words - (1 if self.link else 0)

    @property
    def voice_spec(self) -> VoiceSpec | None:
        """The validated voice (None: no voice)."""
        return self.voice  # type: ignore[return-value]  # a VoiceSpec once validated

    def instructions(self) -> str:
        """The option sentences the default templates add after their core instruction."""
        lines = []
        if self.hashtags == "none":
            lines.append("Do not use hashtags.")
        elif self.hashtags == "auto":
            lines.append(f"Use at most {AUTO_HASHTAGS} relevant hashtags.")
        else:
            lines.append(f"Include these hashtags: {' '.join(self.hashtags)}.")
        if self.emoji is not None:
            lines.append("You may use one or two emoji." if self.emoji else "Do not use emoji.")
        if self.audience:
            lines.append(f"Write for this audience: {self.audience}.")
        if self.call_to_action:
            lines.append(f"End with this call to action: {self.call_to_action}.")
        if self.language:
            lines.append(f"Write in {self.language}.")
        if self.link:
            lines.append("Do not include any URL; a link will be appended.")
        if self.voice_spec is not None:
            from .voicespec import merge_instructions

            auto, free = self.hashtags == "auto", self.emoji is None
            lines = merge_instructions(self.voice_spec, lines, auto_hashtags=auto, emoji_free=free)
        return "\n".join(lines)

    def render(self, templates: TemplateRegistry) -> str:
        """The prompt for this request from its template (or ``thread`` for threads)."""
        chosen = templates.get(
            "thread" if self.thread and self.template == "tweet" else self.template
        )
        variables = chosen.variables  # parsed once per template text (cached)
        known = {
            "topic": self.topic,
            "tone": self.tone,
            "tone_description": TONES[self.tone],
            "max_words": self.words_for_model,
            "count": self.thread,
            "instructions": self.instructions() if "instructions" in variables else "",
            **self.extra,
        }
        values = {k: v for k, v in known.items() if k in variables}
        try:  # the same template and values render the same prompt: cached (a batch repeats them)
            key: Hashable = (id(chosen), chosen.text, *chosen.defaults.items(), *values.items())
            hash(key)
        except TypeError:  # a default or an extra value that cannot be hashed: rendered each time
            return _prompt(chosen, values)
        cached = _RENDERED.get(key)
        if cached is None or cached[0] is not chosen:
            if len(_RENDERED) >= _RENDERED_SIZE:
                _RENDERED.clear()
            cached = _RENDERED[key] = (chosen, _prompt(chosen, values))
        return cached[1]

    def rules(self) -> TweetRules:
        """The rules every returned tweet must pass."""
        if self.hashtags == "none":
            max_hashtags: int | None = 0
        elif self.hashtags == "auto":
            max_hashtags = AUTO_HASHTAGS
        else:
            max_hashtags = len(self.hashtags) + AUTO_HASHTAGS
        rules = TweetRules(
            max_words=self.max_words,
            max_hashtags=max_hashtags,
            banned_phrases=tuple(self.banned_phrases),
            required_text=self.link,
            allow_emoji=self.emoji is not False,
        )
        if self.voice_spec is None:
            return rules
        from .voicespec import voice_rules

        return voice_rules(self.voice_spec, rules, auto_hashtags=self.hashtags == "auto")

    def finish(self, text: str) -> str:
        """Append what the request guarantees and the model left out: its hashtags, its link."""
        if isinstance(self.hashtags, tuple):
            present = {tag.casefold() for tag in _TAG_IN_TEXT.findall(text)}
            missing = [t for t in self.hashtags if t.casefold() not in present]
            if missing:
                text = f"{text} {' '.join(missing)}"
        if self.link and self.link not in text:
            text = f"{text} {self.link}"
        return text
