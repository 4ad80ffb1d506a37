"""A voice as part of a request (issue 16, part 1): what the prompt, the rules, the copy check and
the idempotency key take from a :class:`~tweetgen.voice.VoiceProfile`.

:class:`VoiceSpec` is a tuple ``(name, digest)``, so a request holding one stays hashable (the
prompt cache) and plain (the idempotency key and the stored inputs show it as ``["name",
"digest"]``); the profile itself rides along as an attribute. The digest covers everything the
profile puts in a prompt or a check, so an edited profile is a different call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from .copycheck import copy_reason
from .errors import InputError
from .tweets import TweetCheck, TweetRules
from .voice import VoiceProfile, habit_sentences, load_profile, prompt_block

__all__ = ["VoiceSpec", "merge_instructions", "recent_for", "voice_checks", "voice_rules"]

_LOADED: dict[tuple[str, str | None, int], VoiceProfile] = {}  # by name, directory, file mtime


class VoiceSpec(tuple[str, str]):
    """A voice in a request: ``(name, digest)``, with the profile as ``.profile``."""

    profile: VoiceProfile

    def __new__(cls, profile: VoiceProfile) -> VoiceSpec:
        content = json.dumps(
            [prompt_block(profile), profile.posts, profile.banned], ensure_ascii=False
        )
        digest = hashlib.sha256(content.encode()).hexdigest()[:16]
        spec = super().__new__(cls, (profile.name, digest))
        spec.profile = profile
        return spec

    @property
    def name(self) -> str:
        """The profile's name."""
        return self[0]

    @classmethod
    def of(cls, value: object, directory: str | None = None) -> VoiceSpec | None:
        """A spec from a profile, a profile name, a spec or a stored ``[name, digest]``; None for
        None. An unknown name is an :class:`InputError` (setting ``voice``)."""
        if value is None or isinstance(value, VoiceSpec):
            return value
        if isinstance(value, VoiceProfile):
            return cls(value)
        if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str):
            value = value[0]  # a stored request's voice: the profile as it is now
        if isinstance(value, str):
            return cls(_load(value, directory))
        raise InputError(
            f"the voice must be a voice name or a loaded profile, got {type(value).__name__}",
            setting="voice",
        )

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (a batch's workers get requests)
        return (VoiceSpec, (self.profile,))


def _load(name: str, directory: str | None) -> VoiceProfile:
    """A profile by name, read once while its file is unchanged (a batch names it per row)."""
    from .voice import _path

    try:
        stamp = _path(name, directory).stat().st_mtime_ns
    except OSError:
        return load_profile(name, directory)  # its own error: unknown, unreadable
    key = (name, directory, stamp)
    if key not in _LOADED:
        if len(_LOADED) >= 32:
            _LOADED.clear()
        _LOADED[key] = load_profile(name, directory)
    return _LOADED[key]


def merge_instructions(
    spec: VoiceSpec, lines: list[str], *, auto_hashtags: bool, emoji_free: bool
) -> list[str]:
    """The request's option sentences with the voice's: with ``auto`` hashtags the voice's habit
    replaces the request's first line (its hashtag line); an emoji choice the request made stands
    over the voice's."""
    habit = habit_sentences(spec.profile.habits)
    block = prompt_block(spec.profile).splitlines()
    drop = set() if emoji_free else {habit[2]}
    if auto_hashtags:
        lines = lines[1:]
    else:
        drop.add(habit[1])
    return [*lines, *(line for line in block if line not in drop)]


def recent_for(observers: Iterable[object], topic: str) -> list[str]:
    """This week's tweets on ``topic`` from the store a :class:`~tweetgen.store.StoreObserver`
    among ``observers`` writes to (none without one)."""
    from .copycheck import recent_texts

    for observer in observers:
        store = getattr(observer, "store", None)
        if store is not None and hasattr(store, "query"):
            return recent_texts(store, topic)
    return []


def voice_rules(spec: VoiceSpec, rules: TweetRules, *, auto_hashtags: bool) -> TweetRules:
    """The request's rules with the voice's habits: its banned phrases, and with ``auto``
    hashtags at most as many as the user ever used (at least the median asked for)."""
    habits = spec.profile.habits
    banned = tuple(dict.fromkeys((*rules.banned_phrases, *spec.profile.banned)))
    changes: dict[str, Any] = {"banned_phrases": banned}
    if auto_hashtags:
        changes["max_hashtags"] = max(habits.hashtags_max, habits.hashtags_per_post)
    return replace(rules, **changes)


def voice_checks(
    spec: VoiceSpec, checks: Sequence[TweetCheck], recent: Iterable[str] = ()
) -> list[TweetCheck]:
    """``checks`` with the copy check's reason added to each tweet that copies an example post
    (any the profile read) or repeats a recent tweet on the topic."""
    earlier = list(recent)
    out = []
    for check in checks:
        reason = copy_reason(check.text, spec.profile.posts or spec.profile.examples, earlier)
        out.append(replace(check, reasons=(*check.reasons, reason)) if reason else check)
    return out
