"""Reading example posts for a voice: text, CSV, JSON Lines, an X archive's tweets.js, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tweetgen.errors import InputError
from tweetgen.voiceread import MAX_POSTS, parse_posts, read_posts

POSTS = ["Shipping beats planning. #buildinpublic", "Tiny PRs, happy reviewers.", "Tests first?"]


def test_plain_text_one_post_a_line() -> None:
    assert parse_posts("\n".join(POSTS) + "\n\n") == POSTS


def test_plain_text_blank_line_separated_keeps_multiline_posts() -> None:
    text = "First line\nsecond line\n\nAnother post\n\n\nThird one here"
    assert parse_posts(text) == ["First line second line", "Another post", "Third one here"]


def test_csv_with_a_text_column_and_quoted_commas() -> None:
    text = 'id,Text\n1,"Hello, world"\n2,Second post\n3,"Multi\nline"\n'
    assert parse_posts(text, name="posts.csv") == ["Hello, world", "Second post", "Multi\nline"]


def test_csv_without_a_text_column_names_the_columns() -> None:
    with pytest.raises(InputError, match=r"no text column .*id, body"):
        parse_posts("id,body\n1,a\n", name="posts.csv")


def test_json_lines_objects_and_strings() -> None:
    lines = [
        json.dumps({"text": POSTS[0]}),
        json.dumps(POSTS[1]),
        json.dumps({"full_text": POSTS[2]}),
    ]
    assert parse_posts("\n".join(lines), name="p.jsonl") == POSTS


def test_json_lines_bad_line_is_named() -> None:
    with pytest.raises(InputError, match="line 2 is not JSON"):
        parse_posts('"a"\n{oops\n', name="p.jsonl")


def test_x_archive_tweets_js_skips_retweets(tmp_path: Path) -> None:
    items = [{"tweet": {"full_text": p, "id_str": str(i)}} for i, p in enumerate(POSTS)]
    items.append({"tweet": {"full_text": "RT @someone: not my voice"}})
    path = tmp_path / "tweets.js"
    path.write_text("window.YTD.tweets.part0 = " + json.dumps(items, indent=1), encoding="utf-8")
    assert read_posts(path) == POSTS


def test_duplicates_kept_once_and_bom_ignored(tmp_path: Path) -> None:
    path = tmp_path / "posts.txt"
    path.write_bytes("\ufeff".encode() + "\n".join([*POSTS, POSTS[0]]).encode())
    assert read_posts(path) == POSTS


def test_too_few_posts_says_how_many_and_the_retweets() -> None:
    with pytest.raises(InputError, match=r"holds 2 posts \(1 retweets skipped\); .* at least 3"):
        parse_posts("one\ntwo\nRT @x: three")


def test_too_many_posts() -> None:
    text = "\n".join(f"post number {i}" for i in range(MAX_POSTS + 1))
    with pytest.raises(InputError, match=f"holds {MAX_POSTS + 1} posts; .* at most {MAX_POSTS}"):
        parse_posts(text)


def test_missing_and_binary_files_are_sentences(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--from: cannot read .*does not exist"):
        read_posts(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        read_posts(bad)
