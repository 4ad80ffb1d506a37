"""Reading a user's example posts for a voice profile (issue 16, part 1).

Four formats, told apart by the file's name and first characters:

- an X archive's ``tweets.js`` (``window.YTD.tweets.part0 = [...]``, each item
  ``{"tweet": {"full_text": ...}}``), or the same array as plain JSON;
- JSON Lines (``.jsonl``, ``.ndjson``): each line an object with ``text`` (or ``full_text``) or a
  bare JSON string;
- CSV (``.csv``) with a ``text`` column (``full_text``, ``tweet``, ``post`` or ``content`` also
  accepted);
- plain text: posts separated by blank lines when the file has any, else one post a line.

Retweets (``RT @...``) are skipped: they are someone else's voice. Whitespace inside a post is
kept as written but trimmed at its ends; duplicates are kept once. A file must hold
:data:`MIN_POSTS` to :data:`MAX_POSTS` posts; anything else is an :class:`InputError` that says
what was found and what to do.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .errors import InputError

__all__ = ["MAX_FILE_BYTES", "MAX_POSTS", "MIN_POSTS", "parse_posts", "read_posts"]

#: fewest posts a voice is built from (fewer say too little about a habit)
MIN_POSTS = 3
#: most posts a voice is built from (more add little and cost prompt tokens to summarise)
MAX_POSTS = 200
#: largest file read (an X archive's tweets.js of a few thousand posts is a few MB)
MAX_FILE_BYTES = 50 * 1024 * 1024
#: longest post kept, in characters (X's long posts go to 25,000)
MAX_POST_CHARS = 4_000
_TEXT_COLUMNS = ("text", "full_text", "tweet", "post", "content")
_ARCHIVE = re.compile(r"\A\s*window\.YTD\.[\w.]+\s*=\s*", re.ASCII)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _error(message: str) -> InputError:
    return InputError(message, setting="voice_from")


def read_posts(path: str | Path) -> list[str]:
    """The posts of a file (see the module's formats), retweets skipped, 3-200 of them."""
    target = Path(path)
    try:
        size = target.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _error(
                f"--from: {target} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} "
                "(give a file of at most 200 posts)"
            )
        raw = target.read_bytes()
    except OSError as error:
        from .oserrors import explain_path_error

        reason = (
            "it does not exist"
            if isinstance(error, FileNotFoundError)
            else explain_path_error(error, target)
        )
        raise _error(f"--from: cannot read {target}: {reason}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _error(f"--from: {target} is not UTF-8 text") from None
    return parse_posts(text, name=target.name)


def parse_posts(text: str, *, name: str = "posts.txt") -> list[str]:
    """The posts of a file's text; ``name`` (its file name) tells CSV and JSON Lines apart."""
    suffix = Path(name).suffix.lower()
    stripped = text.lstrip()
    if _ARCHIVE.match(text) or (suffix in (".js", ".json") and stripped.startswith("[")):
        found = _archive(text, name)
    elif suffix in (".jsonl", ".ndjson"):
        found = _json_lines(text, name)
    elif suffix == ".csv":
        found = _csv(text, name)
    else:
        found = _plain(text)
    return _kept(found, name)


def _kept(found: list[str], name: str) -> list[str]:
    posts: list[str] = []
    seen: set[str] = set()
    retweets = 0
    for post in found:
        post = post.replace("\r\n", "\n").strip()
        if not post:
            continue
        if post.startswith("RT @"):
            retweets += 1
            continue
        if post not in seen:
            seen.add(post)
            posts.append(post[:MAX_POST_CHARS])
    skipped = f" ({retweets} retweets skipped)" if retweets else ""
    if len(posts) < MIN_POSTS:
        raise _error(
            f"--from: {name} holds {len(posts)} posts{skipped}; a voice needs at least "
            f"{MIN_POSTS} of your own posts"
        )
    if len(posts) > MAX_POSTS:
        raise _error(
            f"--from: {name} holds {len(posts)} posts{skipped}; a voice is built from at most "
            f"{MAX_POSTS}: keep the {MAX_POSTS} that sound most like you"
        )
    return posts


def _plain(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _BLANK_LINE.search(text.strip()):
        return [" ".join(part.split("\n")) for part in _BLANK_LINE.split(text)]
    return text.split("\n")


def _archive(text: str, name: str) -> list[str]:
    body = _ARCHIVE.sub("", text, count=1).strip().rstrip(";")
    try:
        items = json.loads(body)
    except ValueError as error:
        raise _error(f"--from: {name} is not an X archive's tweets.js: {error}") from None
    if not isinstance(items, list):
        raise _error(f"--from: {name} must hold a list of tweets")
    posts = []
    for item in items:
        tweet = item.get("tweet", item) if isinstance(item, dict) else None
        value = tweet.get("full_text", tweet.get("text")) if isinstance(tweet, dict) else item
        if isinstance(value, str):
            posts.append(value)
    return posts


def _json_lines(text: str, name: str) -> list[str]:
    posts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise _error(f"--from: {name} line {number} is not JSON") from None
        value = item.get("text", item.get("full_text")) if isinstance(item, dict) else item
        if not isinstance(value, str):
            raise _error(
                f'--from: {name} line {number} needs a "text" string (or is a JSON string)'
            )
        posts.append(value)
    return posts


def _csv(text: str, name: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or ()}
    column = next((columns[c] for c in _TEXT_COLUMNS if c in columns), None)
    if column is None:
        raise _error(
            f"--from: {name} has no text column (columns: {', '.join(columns) or 'none'}); "
            "name the posts' column 'text'"
        )
    try:
        return [row.get(column) or "" for row in reader]
    except csv.Error as error:
        raise _error(f"--from: {name} is not valid CSV: {error}") from None
