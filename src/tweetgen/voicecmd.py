"""``tweetgen voice create NAME --from FILE | list | show NAME | delete NAME`` (issue 16, part 1).

``create`` reads the posts (:mod:`tweetgen.voiceread`), asks the configured provider once, through
the normal engine (retries, circuit breaker, fallback chain), for 3-6 short style notes, measures
the habits and writes the profile (:mod:`tweetgen.voice`). When the model's answer is not a list of
3-6 notes (the offline sandbox writes tweets, not notes) or the call fails, the notes are derived
from the habits and the profile says so (``notes_source: habits``) and so does a line on stderr.

Exit codes: 0 done, 2 a bad name, file or unknown voice (a sentence on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .errors import ConfigurationError, TweetGenError
from .exitcodes import EXIT_OK, EXIT_USAGE
from .voice import (
    VoiceProfile,
    build_profile,
    check_name,
    delete_profile,
    list_profiles,
    load_profile,
    save_profile,
    voice_dir,
)
from .voiceread import read_posts

__all__ = ["NOTES_PROMPT", "ask_notes", "parse_notes", "run"]

#: the posts the notes prompt shows the model (each cut to 280 characters)
NOTES_POSTS = 40
NOTES_PROMPT = (
    "List 3 to 6 short style notes describing how this person writes posts: length, tone, "
    "punctuation, hashtags, emoji, how posts open and end.\n"
    "Reply with the notes only, one a line, each starting with '- ', each under 15 words. "
    "Do not quote the posts.\n"
    "Posts:\n{posts}"
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(?P<note>\S.*?)\s*$")


def parse_notes(answer: str) -> list[str]:
    """The notes of a model's answer: 3-6 bullet lines of at most 120 characters, else none."""
    notes = [m.group("note") for line in answer.splitlines() if (m := _BULLET.match(line))]
    notes = [n.rstrip(".") for n in notes if len(n) <= 120]
    return notes[:6] if len(notes) >= 3 else []


def ask_notes(generator: Any, posts: Sequence[str]) -> tuple[list[str], str]:
    """The model's style notes through ``generator``'s engine, and where they came from
    (``model (PROVIDER/MODEL)``) or why there are none."""
    from .providers.base import GenerationRequest

    shown = "\n".join("- " + " ".join(p.split())[:280] for p in posts[:NOTES_POSTS])
    request = GenerationRequest(
        prompt=NOTES_PROMPT.format(posts=shown),
        thinking=getattr(generator, "thinking", None),
        service_tier=getattr(generator, "service_tier", None),
        max_output_tokens=400,
    )
    try:
        result = generator._attempt(request)
    except TweetGenError as error:
        return [], f"the provider failed ({type(error).__name__}: {error})"
    notes = parse_notes(result.text)
    if not notes:
        return [], f"{result.provider}'s answer was not a list of 3-6 style notes"
    return notes, f"model ({result.provider}/{result.model})"


def _generator(args: argparse.Namespace) -> Any:
    from .config import load_settings
    from .generator import TweetGenerator
    from .providers.factory import resolve_providers

    settings = load_settings(model=getattr(args, "model", None))
    spec = getattr(args, "provider", None) or settings.provider or "auto"
    provider = ",".join(resolve_providers(settings, spec, offline=True))
    return TweetGenerator(provider=provider, settings=settings)


def _create(args: argparse.Namespace) -> int:
    name = check_name(args.name)
    if not args.from_file:
        raise ConfigurationError("voice create needs --from FILE with 3-200 of your posts")
    posts = read_posts(args.from_file)
    notes: list[str] = []
    why = "--no-notes"
    if not getattr(args, "no_notes", False):
        with _generator(args) as generator:
            notes, why = ask_notes(generator, posts)
    profile = build_profile(
        name,
        posts,
        notes=notes,
        banned=getattr(args, "ban", None) or (),
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    if notes:
        profile = _with_source(profile, why)
    else:
        profile = _with_source(profile, f"habits ({why})")
        print(f"tweetgen: style notes derived from the habits: {why}", file=sys.stderr)
    path = save_profile(profile, args.dir)
    if args.json:
        print(json.dumps({"name": name, "path": str(path), **_summary(profile)}))
    else:
        print(f"voice {name}: {len(posts)} posts read, saved to {path}")
    return EXIT_OK


def _with_source(profile: VoiceProfile, source: str) -> VoiceProfile:
    from dataclasses import replace

    return replace(profile, notes_source=source)


def _summary(profile: VoiceProfile) -> dict[str, Any]:
    h = profile.habits
    return {
        "posts": h.posts,
        "words_median": h.words_median,
        "hashtags_per_post": h.hashtags_per_post,
        "common_hashtags": h.common_hashtags,
        "notes_source": profile.notes_source,
        "created_at": profile.created_at,
    }


def _show(args: argparse.Namespace) -> int:
    profile = load_profile(args.name, args.dir)
    if args.json:
        print(json.dumps(profile.to_dict(), ensure_ascii=False, indent=2))
        return EXIT_OK
    h = profile.habits
    lines = [
        f"voice {profile.name} ({h.posts} posts, created {profile.created_at or 'unknown'})",
        f"  length: {h.words_median:g} words median ({h.words_p25:g}-{h.words_p75:g}), "
        f"{h.chars_median:g} characters median",
        f"  hashtags: {h.hashtags_mean:g} a post"
        + (f" ({', '.join(h.common_hashtags)})" if h.common_hashtags else ""),
        f"  emoji {h.emoji_rate:.0%}, mentions {h.mention_rate:.0%}, links {h.link_rate:.0%}, "
        f"questions {h.question_rate:.0%}, exclamations {h.exclamation_rate:.0%}",
        f"  notes ({profile.notes_source}):",
        *(f"    - {note}" for note in profile.notes),
        "  examples:",
        *(f"    {i}. {' '.join(e.split())}" for i, e in enumerate(profile.examples, start=1)),
    ]
    if profile.banned:
        lines.append("  banned: " + "; ".join(profile.banned))
    print("\n".join(lines))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    names = list_profiles(args.dir)
    if args.json:
        print(json.dumps({"dir": str(voice_dir(args.dir)), "voices": names}))
    elif names:
        print("\n".join(names))
    else:
        print(
            f"no voices in {voice_dir(args.dir)}; create one with tweetgen voice create NAME "
            "--from FILE",
            file=sys.stderr,
        )
    return EXIT_OK


def _delete(args: argparse.Namespace) -> int:
    path = delete_profile(args.name, args.dir)
    if args.json:
        print(json.dumps({"deleted": args.name, "path": str(path)}))
    else:
        print(f"voice {args.name} deleted ({path})")
    return EXIT_OK


_ACTIONS = {"create": _create, "show": _show, "list": _list, "delete": _delete}


def run(args: argparse.Namespace) -> int:
    """Run ``tweetgen voice ACTION``; a bad input is a sentence on stderr and exit 2."""
    action = _ACTIONS.get(getattr(args, "voice_command", None) or "")
    if action is None:
        print("tweetgen voice: error: choose create, list, show or delete", file=sys.stderr)
        return EXIT_USAGE
    for name in ("dir", "json", "name", "from_file"):
        if not hasattr(args, name):
            setattr(args, name, None if name != "json" else False)
    try:
        return action(args)
    except ConfigurationError as error:
        print(f"tweetgen voice: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        from .oserrors import explain_path_error

        where = voice_dir(args.dir)
        print(
            f"tweetgen voice: error: cannot write under {where}: "
            f"{explain_path_error(error, where)}; "
            "pass --dir or set TWEETGEN_VOICE_DIR",
            file=sys.stderr,
        )
        return EXIT_USAGE
