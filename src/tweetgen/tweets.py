"""Pure helpers to clean, measure, validate, rank and number generated tweets."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

# twitter-text-parser ships no type information (no py.typed, no stubs), so its
# results are typed Any here and converted to concrete types at the boundary.


def _twitter_text() -> Any:
    """The twitter-text module, imported on first use (~0.2 s to import, mostly its regexes)."""
    import twitter_text  # type: ignore[import-untyped, unused-ignore]

    return twitter_text


__all__ = [
    "TweetCheck",
    "TweetRules",
    "check_tweet",
    "clean_tweet",
    "count_hashtags",
    "count_words",
    "has_emoji",
    "number_thread",
    "rank_candidates",
    "split_thread",
    "strip_controls",
    "thread_counters",
    "weighted_length",
]

# Characters twitter-text allows inside a hashtag besides letters, marks and digits.
_HASHTAG_SPECIAL = frozenset(
    "_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0\u30fb\u3003\u0f0b\u0f0c\u00b7"
)
_HASH_SIGNS = "#\uff03"
_KEYCAP = ("\ufe0f", "\u20e3")  # '#' followed by these is the #️⃣ emoji, not a hashtag

_FENCE = re.compile(r"\A```(?:[\w+.#-]*[ \t]*\n)?(?P<body>.*?)\n?```\Z", re.DOTALL)
_PREAMBLE = re.compile(
    r"""\A\**
    (?:
        (?:(?:sure|certainly|of\ course|okay|ok|absolutely)\b[!.,]*\s+)?
        here(?:'s|\u2019s|\s+is)\s+(?:(?:a|an|the|your|my)\s+)?(?:[\w-]+\s+){0,3}?
    )?
    tweet
    (?:\s+(?:about|on|for)\s+[^\n:]{1,80}?)?
    (?:\s*\([^)\n]{0,40}\))?
    \s*:\**\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_OPENING_CONTEXT = "([{"
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")
_NEWLINES = re.compile(r"\r\n|\r")
# C0 and C1 control characters, ESC (which starts every terminal escape sequence) included; the
# whitespace among them (tab, line breaks, \x1c-\x1f, NEL) would be turned into spaces or line
# breaks by _normalise_whitespace anyway.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Characters X refuses in a tweet (twitter-text's invalid characters: U+FFFE, U+FEFF, U+FFFF)
_INVALID = re.compile("[\ufffe\ufeff\uffff]")
# A URL needs a dot followed by a letter or digit ("example.com"); text without one has no URL.
_URL_HINT = re.compile(r"\.[A-Za-z0-9]")
# In plain text, count_hashtags and count_words in one regex pass each (tests/test_perf_paths.py
# checks them against the general paths): a '#' not after a hashtag character or '&', its run of
# hashtag characters with a letter, not followed by '#' or '://'; a token with a letter or digit
_PLAIN_HASHTAG = re.compile(
    r"(?<![A-Za-z0-9_&])#(?=[A-Za-z0-9_]*[A-Za-z])[A-Za-z0-9_]+(?![A-Za-z0-9_])(?!#|://)"
)
_PLAIN_WORD = re.compile(r"\S*?[A-Za-z0-9]\S*")


def _plain(text: str) -> bool:
    """ASCII with nothing that could be a URL: every character weighs 1 and there is no emoji or
    link.

    Most tweets are like this, and twitter-text takes about 0.3 ms per call on them; the answer is
    then simply ``len(text)`` (a property test checks it against twitter-text).
    """
    return text.isascii() and _URL_HINT.search(text) is None


def weighted_length(text: str) -> int:
    """Return the X/Twitter weighted length (URLs 23, emoji and CJK 2, NFC first)."""
    if _plain(text):
        return len(text)
    return int(_twitter_text().parse_tweet(text).weightedLength)


def _remove_emoji(text: str) -> str:
    """Return ``text`` with every emoji sequence (keycaps like 1️⃣ included) removed."""
    if text.isascii():  # every emoji has a non-ASCII code point
        return text
    spans: list[tuple[int, int]] = [
        (int(e["indices"][0]), int(e["indices"][1]))
        for e in _twitter_text().extract_emojis_with_indices(text)
    ]
    kept: list[str] = []
    position = 0
    for start, end in spans:
        kept.append(text[position:start])
        position = end
    kept.append(text[position:])
    return "".join(kept)


def has_emoji(text: str) -> bool:
    """Return whether ``text`` contains any emoji sequence."""
    return not text.isascii() and bool(_twitter_text().extract_emojis_with_indices(text))


def count_words(text: str) -> int:
    """Count words as a reader would: space-separated tokens with a letter or digit.

    Rule: split on any Unicode whitespace; a token is a word if, once emoji are
    removed, it still contains a Unicode letter or digit (``str.isalnum``). So a URL,
    a hashtag (#AI), a mention (@x), a contraction (it's), a hyphenated word
    (well-known) or a number (3.13) each count as one word, while pure punctuation
    ("—", "-", "|") and emoji-only tokens (keycaps such as 1️⃣ included) count as
    none. Unspaced scripts (a run of CJK characters) count one word per token.
    """
    if text.isascii():
        return len(_PLAIN_WORD.findall(text))
    return _count_words(text)


def _count_words(text: str) -> int:  # token by token: any text
    return sum(1 for token in _remove_emoji(text).split() if any(ch.isalnum() for ch in token))


def _is_hashtag_char(ch: str) -> bool:
    """Return whether ``ch`` may appear in a hashtag (letter, mark, digit, special)."""
    category = unicodedata.category(ch)
    return category[0] in "LM" or category == "Nd" or ch in _HASHTAG_SPECIAL


def _mask_urls(text: str) -> str:
    """Blank out every URL in ``text`` so fragments like '/#anchor' are ignored."""
    if _plain(text):
        return text
    chars = list(text)
    for url in _twitter_text().extract_urls_with_indices(text):
        start, end = int(url["indices"][0]), int(url["indices"][1])
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def count_hashtags(text: str) -> int:
    """Count hashtags by twitter-text's rules (needs a letter; not in URLs/words)."""
    if _plain(text):
        return len(_PLAIN_HASHTAG.findall(text))
    return _count_hashtags(text)


def _count_hashtags(text: str) -> int:  # character by character: any text
    masked = _mask_urls(unicodedata.normalize("NFC", text))
    count = 0
    for position, ch in enumerate(masked):
        if ch not in _HASH_SIGNS:
            continue
        before = masked[position - 1] if position else " "
        if _is_hashtag_char(before) or before == "&" or masked.startswith(_KEYCAP, position + 1):
            continue
        body = "".join(takewhile(_is_hashtag_char, masked[position + 1 :]))
        after = masked[position + 1 + len(body) :]
        has_letter = any(unicodedata.category(c)[0] in "LM" for c in body)
        if has_letter and not after.startswith((*_HASH_SIGNS, "://")):
            count += 1
    return count


def _normalise_whitespace(text: str) -> str:
    """Trim every line, collapse horizontal whitespace runs and 3+ newlines."""
    text = _NEWLINES.sub("\n", text)
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip(" ") for line in text.split("\n"))
    return _EXTRA_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _strip_fence(text: str) -> str:
    """Return the body of a code fence (language optional) wrapping all of ``text``."""
    match = _FENCE.match(text)
    return match.group("body") if match and match.group("body").strip() else text


def _strip_preamble(text: str) -> str:
    """Remove a leading 'Here's a tweet:'-style preamble when a tweet follows it."""
    match = _PREAMBLE.match(text)
    return text[match.end() :] if match and text[match.end() :].strip() else text


def _quote_role(text: str, index: int, opening: str, closing: str) -> int:
    """Return +1 for an opening quote, -1 for a closing one and 0 for anything else."""
    ch = text[index]
    if ch not in (opening, closing):
        return 0
    before = text[index - 1] if index else " "
    after = text[index + 1] if index + 1 < len(text) else " "
    if before.isalnum() and after.isalnum():
        return 0  # an apostrophe, as in it's or don’t
    if opening != closing:
        return 1 if ch == opening else -1
    return 1 if before.isspace() or before in _OPENING_CONTEXT else -1


def _quotes_balanced(text: str, opening: str, closing: str) -> bool:
    """Return whether the quotes of the given kind in ``text`` pair up properly."""
    depth = 0
    for index in range(len(text)):
        depth += _quote_role(text, index, opening, closing)
        if depth < 0:
            return False
    return depth == 0


def _strip_quotes(text: str) -> str:
    """Remove one pair of matching quotes that surrounds the whole of ``text``."""
    if len(text) < 3 or _QUOTE_PAIRS.get(text[0]) != text[-1]:
        return text
    inner = text[1:-1]
    if not inner.strip() or not _quotes_balanced(inner, text[0], text[-1]):
        return text
    return inner


def strip_controls(text: str) -> str:
    """Turn every control character other than a line break or tab into a space.

    A model's answer is printed on terminals and written to files: an escape sequence in it could
    recolour, retitle or rewrite the reader's terminal, and no control character belongs in a tweet.
    They are removed, not refused (the rest of the answer is usually a good tweet), and each becomes
    a space so that no two words are glued into a new one: ``"\\x1b[31mred"`` loses its ESC and
    reads ``[31mred``, harmless plain text.
    """
    return text if text.isprintable() else _CONTROLS.sub(" ", text)


def clean_tweet(raw: str) -> str:
    """Strip terminal escapes and control characters, code fences, preambles, wrapping quotes and
    stray spaces; idempotent."""
    text = strip_controls(raw)
    while True:
        previous = text
        text = _normalise_whitespace(text)
        text = _strip_fence(text)
        text = _strip_preamble(text)
        text = _strip_quotes(text)
        if text == previous:
            return text


@dataclass(frozen=True, slots=True)
class TweetRules:
    """Limits a generated tweet must respect."""

    max_words: int = 25
    max_weighted_length: int = 280
    max_hashtags: int | None = None
    banned_phrases: tuple[str, ...] = ()
    required_text: str | None = None
    allow_emoji: bool = True

    def __post_init__(self) -> None:
        """Reject nonsense limits (ValueError) and a bare-string phrase list."""
        if self.max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {self.max_words}")
        if self.max_weighted_length < 1:
            got = self.max_weighted_length
            raise ValueError(f"max_weighted_length must be at least 1, got {got}")
        if self.max_hashtags is not None and self.max_hashtags < 0:
            raise ValueError(f"max_hashtags must be 0 or more (or None), got {self.max_hashtags}")
        if isinstance(self.banned_phrases, str):
            raise TypeError("banned_phrases must be a tuple of phrases, not a single string")
        if any(not phrase.strip() for phrase in self.banned_phrases):
            raise ValueError("banned_phrases must not contain empty or blank phrases")
        if self.required_text is not None and not self.required_text.strip():
            raise ValueError("required_text must be None or a non-blank string")


@dataclass(frozen=True, slots=True)
class TweetCheck:
    """Measurements of one tweet and the reasons it breaks the rules, if any."""

    text: str
    weighted_length: int
    words: int
    hashtags: int
    reasons: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Return whether the tweet broke no rule."""
        return not self.reasons


def _plural(count: int, noun: str) -> str:
    """Return '1 hashtag' or '3 hashtags' style text."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _collapse(text: str) -> str:
    """Return ``text`` casefolded with all whitespace runs collapsed to one space."""
    return " ".join(text.split()).casefold()


def _reasons(check: TweetCheck, rules: TweetRules) -> tuple[str, ...]:
    """Return human sentences, usable in a follow-up prompt, for every broken rule."""
    reasons: list[str] = []
    if check.words > rules.max_words:
        reasons.append(f"that was {check.words} words; the limit is {rules.max_words}")
    if check.weighted_length > rules.max_weighted_length:
        reasons.append(
            f"that was {check.weighted_length} weighted characters; "
            f"the limit is {rules.max_weighted_length}"
        )
    if rules.max_hashtags is not None and check.hashtags > rules.max_hashtags:
        had = _plural(check.hashtags, "hashtag")
        reasons.append(f"that had {had}; the limit is {rules.max_hashtags}")
    folded = _collapse(check.text)
    for phrase in rules.banned_phrases:
        if _collapse(phrase) in folded:
            reasons.append(f"it contained the banned phrase '{phrase}'")
    if rules.required_text is not None and rules.required_text not in check.text:
        reasons.append(f"it did not include {rules.required_text}")
    if not rules.allow_emoji and has_emoji(check.text):
        reasons.append("it contained emoji; emoji are off")
    return tuple(reasons)


def check_tweet(text: str, rules: TweetRules, *, counter: str = "") -> TweetCheck:
    """Measure ``text`` and list every way it breaks ``rules``.

    ``counter`` is a thread counter (``"2/5"``) that ``number_thread`` put at the end of ``text``. X
    counts its characters, so the weighted length includes it; a reader takes it for the thread's
    page number, not for a word of the message, so it is not one of the ``max_words`` words
    (``words`` leaves it out).
    """
    counted = text
    if counter and text.endswith(counter):
        counted = text[: len(text) - len(counter)]
    length, words, hashtags = weighted_length(text), count_words(counted), count_hashtags(text)
    check = TweetCheck(text=text, weighted_length=length, words=words, hashtags=hashtags)
    reasons = ("it was empty",) if not text.strip() else _reasons(check, rules)
    invalid = None if text.isascii() else _INVALID.search(text)
    if invalid is not None:  # after the other reasons: the text is not empty, so they were computed
        reasons = (
            *reasons,
            f"it contained a character X does not allow (U+{ord(invalid.group()):04X})",
        )
    return TweetCheck(text, length, words, hashtags, reasons) if reasons else check


def rank_candidates(checks: Iterable[TweetCheck], *, target_words: int) -> list[TweetCheck]:
    """De-duplicate, then order valid first and closest to ``target_words`` next."""
    unique: dict[str, TweetCheck] = {}
    for check in checks:
        unique.setdefault(_collapse(check.text), check)
    return sorted(unique.values(), key=lambda c: (not c.valid, abs(c.words - target_words)))


_SEPARATOR = re.compile(r"^\s*-{3,}\s*$", re.MULTILINE)
_LEADING_NUMBER = re.compile(
    r"^\s*(?:\(?\d+\s*/\s*\d+\)?|\d+[.)]|tweet\s+\d+\s*:)\s*", re.IGNORECASE
)
_TRAILING_NUMBER = re.compile(r"\s*\(?\d+\s*/\s*\d+\)?\s*$")


def split_thread(raw: str) -> list[str]:
    """Split a model's thread on ``---`` lines; clean each part, drop the model's own numbering."""
    parts = [clean_tweet(part) for part in _SEPARATOR.split(clean_tweet(raw))]
    parts = [_TRAILING_NUMBER.sub("", _LEADING_NUMBER.sub("", part)) for part in parts]
    return [part for part in parts if part.strip()]


def thread_counters(total: int, *, style: str = "{i}/{n}") -> list[str]:
    """A thread's counters for ``total`` tweets: ``["1/3", "2/3", "3/3"]`` (style with {i}, {n})."""
    try:
        return [style.format(i=index, n=total) for index in range(1, total + 1)]
    except (AttributeError, IndexError, KeyError, ValueError) as error:
        msg = f"style {style!r} may only use the placeholders {{i}} and {{n}}"
        raise ValueError(msg) from error


def number_thread(texts: Sequence[str], *, style: str = "{i}/{n}") -> list[str]:
    """Append a ' 1/5'-style counter (placeholders {i} and {n}) to each tweet.

    The counter is counted in the tweet's characters, as X counts it, but not in its words: check a
    numbered tweet with ``check_tweet(text, rules, counter=...)`` (the counters are
    ``thread_counters(len(texts))``).
    """
    labels = thread_counters(len(texts), style=style)
    return [f"{text.rstrip()} {label}" for text, label in zip(texts, labels, strict=True)]
