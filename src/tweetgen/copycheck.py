"""The copy check (issue 16, part 1): a tweet that copies one of the voice's example posts, or
repeats a tweet already generated on the same topic this week, is rejected and regenerated.

Measure: word 4-grams of each text (lower-cased words; hashtags, mentions and links left out, since
they are habits the voice asks for, not content), compared by the *overlap coefficient*
``|A & B| / min(|A|, |B|)``: the share of the shorter text's 4-grams found in the other. It
catches a copy with a few words changed, a copy with words added around it, and a tweet that is a
piece of a longer post, all of which Jaccard would dilute. A text of fewer than 4 words is compared
as a whole (its word sequence inside the other's).

Threshold :data:`COPY_THRESHOLD` = 0.5: one word changed in a 15-word post breaks at most 4 of
its 12 4-grams (0.67, rejected); a tweet that shares one 5-word phrase with an example shares 2
of its ~15 4-grams (0.13, kept). tests/test_voice_copy.py measures both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "COPY_THRESHOLD",
    "NGRAM",
    "RECENT_DAYS",
    "RECENT_LIMIT",
    "copy_reason",
    "ngrams",
    "overlap",
    "recent_texts",
]

#: words in each compared n-gram
NGRAM = 4
#: overlap coefficient at or above which a tweet is a copy
COPY_THRESHOLD = 0.5
#: how far back the store is read for same-topic tweets
RECENT_DAYS = 7
#: the most same-topic tweets read from the store (the newest)
RECENT_LIMIT = 200
_SKIP = re.compile(r"https?://\S+|(?<![\w&])[#@]\w+")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")

RECENT_SQL = (
    "SELECT text FROM calls WHERE topic = ? AND status = 'ok' AND created_at >= ? "
    "AND text IS NOT NULL ORDER BY id DESC LIMIT ?"
)


def words(text: str) -> list[str]:
    """The compared words of ``text``: lower-cased, hashtags, mentions and links left out."""
    return [w.casefold() for w in _WORD.findall(_SKIP.sub(" ", text))]


def ngrams(text: str, n: int = NGRAM) -> frozenset[tuple[str, ...]]:
    """The word ``n``-grams of ``text`` (a shorter text: its whole word sequence, once)."""
    seq = words(text)
    if len(seq) < n:
        return frozenset({tuple(seq)}) if seq else frozenset()
    return frozenset(tuple(seq[i : i + n]) for i in range(len(seq) - n + 1))


def _short_inside(short: Sequence[str], other: Sequence[str]) -> bool:
    size = len(short)
    return any(tuple(other[i : i + size]) == tuple(short) for i in range(len(other) - size + 1))


def overlap(text: str, other: str, n: int = NGRAM) -> float:
    """The overlap coefficient of the two texts' word ``n``-grams (0 to 1)."""
    a, b = words(text), words(other)
    if not a or not b:
        return 0.0
    if min(len(a), len(b)) < n:  # a very short text: copied if its words appear in order
        short, long_ = (a, b) if len(a) <= len(b) else (b, a)
        return 1.0 if _short_inside(short, long_) else 0.0
    grams_a, grams_b = ngrams(text, n), ngrams(other, n)
    return len(grams_a & grams_b) / min(len(grams_a), len(grams_b))


def copy_reason(
    text: str,
    examples: Sequence[str],
    recent: Iterable[str] = (),
    *,
    threshold: float = COPY_THRESHOLD,
) -> str | None:
    """Why ``text`` is a copy (``"copies example 3"``, ``"repeats a tweet generated on this topic
    in the last 7 days"``), or None. Examples are numbered from 1, as the profile file lists
    them."""
    for number, example in enumerate(examples, start=1):
        if overlap(text, example) >= threshold:
            return f"copies example {number}"
    for earlier in recent:
        if earlier and overlap(text, earlier) >= threshold:
            return f"repeats a tweet generated on this topic in the last {RECENT_DAYS} days"
    return None


def recent_texts(
    store: Any,
    topic: str,
    *,
    now: datetime | None = None,
    days: int = RECENT_DAYS,
    limit: int = RECENT_LIMIT,
) -> list[str]:
    """The newest ``limit`` tweets generated on ``topic`` in the last ``days`` days, from a
    :class:`tweetgen.store.Store` (one bounded query)."""
    from .storeschema import utc_iso

    since = utc_iso((now or datetime.now(timezone.utc)) - timedelta(days=days))
    rows = store.query(RECENT_SQL, (topic, since, limit))
    return [str(row["text"]) for row in rows if row["text"]]
