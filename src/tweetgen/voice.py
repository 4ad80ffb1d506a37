"""Voice profiles (issue 16, part 1): a user's habits, style notes and examples, kept as a readable
JSON file and carried in the prompt within a token budget.

A profile is built from 3-200 of the user's posts (:mod:`tweetgen.voiceread`): its *habits* are
measured (length in words and X weighted characters, hashtags a post and the common ones, emoji,
mentions, links, questions, exclamations, common first words); its *notes* are 3-6 short style
notes the model wrote, or, when the model's answer was not such a list, notes derived from the
habits (``notes_source`` says which); its *examples* are the 5 posts closest to the median habits;
its *posts* are all of them (the copy check compares a tweet with each, :mod:`tweetgen.copycheck`).

Profiles live in a directory: ``--dir``, else ``TWEETGEN_VOICE_DIR``, else
``$XDG_CONFIG_HOME/tweetgen/voices`` (``~/.config/tweetgen/voices``), one ``NAME.json`` each,
written atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .tweets import count_hashtags, count_words, has_emoji, weighted_length

__all__ = [
    "EXAMPLES_KEPT",
    "PROMPT_BUDGET_TOKENS",
    "Habits",
    "VoiceProfile",
    "build_profile",
    "check_name",
    "delete_profile",
    "habit_notes",
    "list_profiles",
    "load_profile",
    "measure",
    "prompt_block",
    "save_profile",
    "voice_dir",
]

#: representative examples kept in a profile (the prompt carries 2-3 of them)
EXAMPLES_KEPT = 5
#: the most tokens a profile adds to a prompt (about 4 characters a token)
PROMPT_BUDGET_TOKENS = 300
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TAG = re.compile(r"(?<![\w&])#(\w+)")
_MENTION = re.compile(r"(?<!\w)@\w+")
_LINK = re.compile(r"https?://\S+")
_OPENER = re.compile(r"[\w']+")


def check_name(name: object) -> str:
    """A profile name: 1-64 letters, digits, ``-`` and ``_`` (it names a file)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"a voice name is 1-64 letters, digits, - and _ (it names a file), got {name!r}",
            setting="voice",
        )
    return name


@dataclass(frozen=True)
class Habits:
    """What a user's posts measure: medians, percentiles and rates (0-1 of the posts)."""

    posts: int
    words_median: float
    words_p25: float
    words_p75: float
    chars_median: float
    chars_p90: float
    hashtags_mean: float
    hashtags_median: float
    hashtags_max: int
    common_hashtags: list[str]
    emoji_rate: float
    mention_rate: float
    link_rate: float
    question_rate: float
    exclamation_rate: float
    openers: list[str]

    @property
    def hashtags_per_post(self) -> int:
        """The hashtags a tweet in this voice carries: the median, rounded half up."""
        return math.floor(self.hashtags_median + 0.5)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _rate(posts: Sequence[str], test: Any) -> float:
    return round(sum(1 for p in posts if test(p)) / len(posts), 2)


def measure(posts: Sequence[str]) -> Habits:
    """The habits of ``posts`` (at least one)."""
    words = [count_words(p) for p in posts]
    chars = [weighted_length(p) for p in posts]
    tags = [count_hashtags(p) for p in posts]
    # each post's tags once, in order: ties keep the order they first appear in
    common = Counter(t for p in posts for t in dict.fromkeys(m.casefold() for m in _TAG.findall(p)))
    spelled = {t.casefold(): t for p in posts for t in _TAG.findall(p)}
    firsts = Counter(
        m.group().lower() for p in posts if (m := _OPENER.search(_LINK.sub("", p))) is not None
    )
    least = max(2, math.ceil(len(posts) * 0.15))
    return Habits(
        posts=len(posts),
        words_median=float(statistics.median(words)),
        words_p25=round(_percentile(words, 0.25), 1),
        words_p75=round(_percentile(words, 0.75), 1),
        chars_median=float(statistics.median(chars)),
        chars_p90=round(_percentile(chars, 0.9), 1),
        hashtags_mean=round(statistics.fmean(tags), 2),
        hashtags_median=float(statistics.median(tags)),
        hashtags_max=max(tags),
        common_hashtags=["#" + spelled[t] for t, n in common.most_common(5) if n >= 2],
        emoji_rate=_rate(posts, has_emoji),
        mention_rate=_rate(posts, _MENTION.search),
        link_rate=_rate(posts, _LINK.search),
        question_rate=_rate(posts, lambda p: "?" in p),
        exclamation_rate=_rate(posts, lambda p: "!" in p),
        openers=[w for w, n in firsts.most_common(3) if n >= least],
    )


def _share(rate: float) -> str:
    return f"{round(rate * 100)}% of posts"


def habit_notes(habits: Habits) -> list[str]:
    """Style notes in words, derived from the habits alone (when the model gave none)."""
    notes = [
        f"Short posts: about {habits.words_median:g} words"
        if habits.words_median <= 20
        else f"Longer posts: about {habits.words_median:g} words",
    ]
    if habits.hashtags_per_post:
        tags = ", ".join(habits.common_hashtags[:3])
        notes.append(
            f"{habits.hashtags_per_post} hashtags a post" + (f", often {tags}" if tags else "")
        )
    else:
        notes.append("No hashtags")
    notes.append("Uses emoji" if habits.emoji_rate >= 0.5 else "Rarely uses emoji")
    if habits.question_rate >= 0.3:
        notes.append(f"Asks questions in {_share(habits.question_rate)}")
    if habits.exclamation_rate >= 0.3:
        notes.append(f"Exclamation marks in {_share(habits.exclamation_rate)}")
    if habits.openers:
        notes.append("Often opens with " + ", ".join(repr(w) for w in habits.openers))
    return notes[:6]


def _representative(posts: Sequence[str], habits: Habits, count: int) -> list[str]:
    """The ``count`` posts closest to the median length and hashtag count (ties: file order)."""
    spread = max(1.0, habits.words_p75 - habits.words_p25)

    def distance(post: str) -> float:
        return abs(count_words(post) - habits.words_median) / spread + abs(
            count_hashtags(post) - habits.hashtags_median
        )

    order = sorted(range(len(posts)), key=lambda i: (distance(posts[i]), i))
    return [posts[i] for i in order[:count]]


@dataclass(frozen=True)
class VoiceProfile:
    """A voice: its name, habits, style notes, examples, banned phrases and the posts it read."""

    name: str
    habits: Habits
    notes: list[str]
    notes_source: str
    examples: list[str]
    banned: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    created_at: str = ""

    def fingerprint(self) -> str:
        """What the idempotency key and the prompt cache take from the profile: its prompt
        block (a changed profile is a different call)."""
        return prompt_block(self)

    def to_dict(self) -> dict[str, Any]:
        """The file's content (``format`` first, so a reader knows what it is)."""
        return {"format": f"tweetgen-voice/{FORMAT_VERSION}", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "the profile") -> VoiceProfile:
        """A profile from a file's content; a damaged one is an :class:`InputError`."""
        try:
            habits = Habits(**data["habits"])
            return cls(
                name=check_name(data["name"]),
                habits=habits,
                notes=[str(n) for n in data["notes"]],
                notes_source=str(data.get("notes_source", "")),
                examples=[str(e) for e in data["examples"]],
                banned=[str(b) for b in data.get("banned", [])],
                posts=[str(p) for p in data.get("posts", data["examples"])],
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError) as error:
            raise InputError(
                f"{where} is not a tweetgen voice profile ({error}); create it again with "
                "tweetgen voice create",
                setting="voice",
            ) from None


def build_profile(
    name: str,
    posts: Sequence[str],
    *,
    notes: Sequence[str] = (),
    banned: Sequence[str] = (),
    created_at: str = "",
) -> VoiceProfile:
    """A profile from the posts; ``notes`` the model's (empty: derived from the habits)."""
    habits = measure(posts)
    source = "model" if notes else "habits"
    return VoiceProfile(
        name=check_name(name),
        habits=habits,
        notes=list(notes) or habit_notes(habits),
        notes_source=source,
        examples=_representative(posts, habits, EXAMPLES_KEPT),
        banned=[b for b in banned if b.strip()],
        posts=list(posts),
        created_at=created_at,
    )


def voice_dir(directory: str | Path | None = None) -> Path:
    """The profiles' directory: ``directory``, else ``TWEETGEN_VOICE_DIR``, else
    ``$XDG_CONFIG_HOME/tweetgen/voices`` (``~/.config`` when unset)."""
    if directory:
        return Path(directory).expanduser()
    if env := os.environ.get("TWEETGEN_VOICE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "tweetgen" / "voices"


def _path(name: str, directory: str | Path | None) -> Path:
    return voice_dir(directory) / f"{check_name(name)}.json"


def save_profile(profile: VoiceProfile, directory: str | Path | None = None) -> Path:
    """Write the profile as ``NAME.json`` atomically; returns its path."""
    target = _path(profile.name, directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(profile.to_dict(), ensure_ascii=False, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{profile.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _unknown(name: str, directory: str | Path | None) -> InputError:
    known = ", ".join(list_profiles(directory)) or "none yet"
    return InputError(
        f"no voice named {name!r} in {voice_dir(directory)} (voices: {known}); create it with "
        "tweetgen voice create NAME --from FILE",
        setting="voice",
    )


def load_profile(name: str, directory: str | Path | None = None) -> VoiceProfile:
    """The profile called ``name``; an unknown or damaged one is an :class:`InputError`."""
    path = _path(name, directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _unknown(name, directory) from None
    except OSError as error:
        from .oserrors import explain_path_error

        why = explain_path_error(error, path)
        raise InputError(f"cannot read the voice {path}: {why}", setting="voice") from None
    except ValueError as error:
        raise InputError(f"cannot read the voice {path}: {error}", setting="voice") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a tweetgen voice profile", setting="voice")
    return VoiceProfile.from_dict(data, str(path))


def list_profiles(directory: str | Path | None = None) -> list[str]:
    """The names of the stored profiles, sorted."""
    folder = voice_dir(directory)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.match(p.stem))


def delete_profile(name: str, directory: str | Path | None = None) -> Path:
    """Remove the profile called ``name``; returns the path it had."""
    path = _path(name, directory)
    try:
        path.unlink()
    except FileNotFoundError:
        raise _unknown(name, directory) from None
    return path


def habit_sentences(habits: Habits) -> list[str]:
    """The habits as prompt sentences (the sandbox reads the first two)."""
    words = max(1, round(habits.words_median))
    lines = [
        f"Aim for about {words} words, as the user's posts run {habits.words_p25:g}-"
        f"{habits.words_p75:g} words."
    ]
    count = habits.hashtags_per_post
    if count:
        tags = " ".join(habits.common_hashtags[:count])
        lines.append(f"Use {count} hashtags per post" + (f", such as {tags}." if tags else "."))
    else:
        lines.append("Do not use hashtags.")
    lines.append("Use one emoji." if habits.emoji_rate >= 0.5 else "Do not use emoji.")
    return lines


def prompt_block(profile: VoiceProfile, budget_tokens: int = PROMPT_BUDGET_TOKENS) -> str:
    """The profile as prompt lines within ``budget_tokens`` (about 4 characters a token).

    Priority: the habits in words, then the notes, then 2-3 examples; over the budget the
    examples go first (the longest part), then notes beyond the third, then the rest of the notes.
    """
    limit = budget_tokens * 4
    habits = habit_sentences(profile.habits)
    notes = list(profile.notes)
    examples = list(profile.examples[:3])

    def render() -> str:
        lines = [f"Write in the user's voice ({profile.name}).", *habits]
        if notes:
            lines.append("Style notes: " + "; ".join(notes) + ".")
        if profile.banned:
            lines.append("Never write: " + "; ".join(profile.banned) + ".")
        if examples:
            lines.append("Examples of the user's posts (match the style, never copy them):")
            lines.extend("- " + " ".join(e.split()) for e in examples)
        return "\n".join(lines)

    text = render()
    while len(text) > limit and (examples or notes):
        if len(examples) > 0:
            examples.pop()
        else:
            notes.pop()
        text = render()
    return text[:limit]
