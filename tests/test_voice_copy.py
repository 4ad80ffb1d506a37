"""The copy check: word 4-gram overlap with the examples and this week's tweets on a topic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tweetgen.copycheck import COPY_THRESHOLD, copy_reason, overlap, recent_texts
from tweetgen.store import Store

EXAMPLE = "Small pull requests get reviewed faster and merged sooner than giant ones ever do"
EXAMPLES = ["Ship it on Friday, said nobody sensible.", EXAMPLE, "Coffee first. Code second."]


def test_threshold_separates_copies_from_shared_phrases() -> None:
    one_word_changed = EXAMPLE.replace("faster", "quicker")
    padded = "Hot take: " + EXAMPLE + " and that is the whole secret"
    piece = "pull requests get reviewed faster and merged sooner"
    phrase_only = (
        "Our team learned that small pull requests get attention, so we split every change"
    )
    unrelated = "Rust's borrow checker taught me more about ownership than any book"
    scores = {t: overlap(t, EXAMPLE) for t in (one_word_changed, padded, piece, phrase_only)}
    assert min(scores[one_word_changed], scores[padded], scores[piece]) >= COPY_THRESHOLD
    assert scores[phrase_only] < COPY_THRESHOLD / 2
    assert overlap(unrelated, EXAMPLE) == 0.0


def test_hashtags_mentions_links_and_case_do_not_count() -> None:
    a = "Tests are documentation that never lies #python #testing"
    b = "TESTS ARE DOCUMENTATION that never lies @bob https://x.example/t #dev"
    assert overlap(a, b) == 1.0
    assert overlap("Great idea #python #ai", "Terrible plan #python #ai") == 0.0


def test_short_texts_compare_as_word_sequences() -> None:
    assert overlap("Coffee first.", "Coffee first. Code second.") == 1.0
    assert overlap("Code first.", "Coffee first. Code second.") == 0.0


def test_reason_names_the_example_then_the_recent_tweet() -> None:
    assert copy_reason(EXAMPLE.upper(), EXAMPLES) == "copies example 2"
    recent = ["Giant pull requests rot in review queues for weeks and weeks"]
    again = "Giant pull requests rot in review queues for weeks, sadly"
    assert copy_reason(again, EXAMPLES, recent) == (
        "repeats a tweet generated on this topic in the last 7 days"
    )
    assert (
        copy_reason("A fresh thought about reviews and the people doing them", EXAMPLES, recent)
        is None
    )


def _insert(store: Store, topic: str, text: str, when: datetime, status: str = "ok") -> None:
    from tweetgen.storeschema import utc_iso

    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO calls (request_id, created_at, provider, model, topic, status, text) "
            "VALUES (?, ?, 'sandbox', 'm', ?, ?, ?)",
            (f"r-{topic}-{text[:8]}-{status}", utc_iso(when), topic, status, text),
        )


def test_recent_texts_reads_only_this_topic_this_week_ok_newest_first(tmp_path: Path) -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    with Store(tmp_path / "t.db") as store:
        _insert(store, "reviews", "old one", now - timedelta(days=8))
        _insert(store, "reviews", "this week", now - timedelta(days=6))
        _insert(store, "reviews", "failed", now - timedelta(days=1), status="failed")
        _insert(store, "coffee", "other topic", now - timedelta(days=1))
        _insert(store, "reviews", "today", now - timedelta(hours=1))
        assert recent_texts(store, "reviews", now=now) == ["today", "this week"]
        assert recent_texts(store, "reviews", now=now, limit=1) == ["today"]
