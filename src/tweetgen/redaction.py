"""Redaction of secrets in log output, and lazy previews (split out of :mod:`tweetgen.logs`).

Registered secrets are found in every form (plain, percent- or base64-encoded, split in two) by
plain substring search; secret-shaped text (Google keys, ``key=`` values, auth headers, bearer
tokens, URL user-info) by a few regular expressions. Both sit behind cheap pre-checks (one compiled
search each), so that a value which cannot hold a secret costs two regex searches, and a short value
already seen costs one dictionary look-up.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
import urllib.parse
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = [
    "DEFAULT_PREVIEW_LENGTH",
    "MIN_SECRET_PIECE",
    "REDACTED",
    "Preview",
    "Redactor",
    "contains_secret",
    "preview",
    "redact_text",
    "register_secret",
]

REDACTED = "[REDACTED]"
DEFAULT_PREVIEW_LENGTH = 100
#: pieces of a registered secret at least this long are redacted too (a key split in two leaks less
#: than 8 characters)
MIN_SECRET_PIECE = 8

_state: dict[str, Any] = {"preview_length": DEFAULT_PREVIEW_LENGTH}
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: bumped by every new secret, so the compiled form is rebuilt (see :func:`_current`)
_version = [0]
_PATTERNS = (
    # Google API keys: "AIza" + 35 characters
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}"), lambda m: REDACTED),
    # key=... in query strings and form bodies (values only: at least 8 key characters, so a
    # sentence such as "pass api_key=... or" stays as written)
    (
        re.compile(r"(?i)\b((?:api_?)?key=)[A-Za-z0-9_\-.~+/%=]{8,}"),
        lambda m: m.group(1) + REDACTED,
    ),
    # header values, also in reprs such as {'x-goog-api-key': '...'}
    (
        re.compile(
            r"(?i)((?:x-goog-api-key|authorization|api-key|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?:bearer|basic|token)\s+)?[^\s\"',}]+"
        ),
        lambda m: m.group(1) + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"), lambda m: m.group(1) + REDACTED),
    # user-info in URLs: https://user:password@host/...
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"'<>]+@"),
        lambda m: m.group(1) + REDACTED + "@",
    ),
)
#: text that none of these finds cannot match any pattern above (each pattern needs one of them)
_TRIGGER = re.compile(r"(?i)aiza|key|authorization|bearer|://")
#: up to this many anchors of registered secrets are looked for by substring search, not a regex
_FEW_ANCHORS = 16
#: redacted forms of short texts are remembered (event names, models, ids repeat on every call)
_CACHED_LENGTH, _CACHE_SIZE = 160, 4096


def register_secret(value: str | None) -> None:
    """Add a value that must never appear in any output (ignored when shorter than 4 chars)."""
    if value and len(value) >= 4:
        with _secrets_lock:
            if value not in _secrets:
                _secrets.add(value)
                _version[0] += 1


def _encodings(secret: str) -> set[str]:
    """The forms a secret takes when something encodes it: percent-encoded, and base64 at every
    alignment."""
    raw = secret.encode("utf-8")
    forms = {
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret),
    }
    # inside a longer base64 text, the secret's characters depend on its offset
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
            start = -(-offset * 4 // 3)  # skip the characters that mix in the padding bytes
            stop = (offset + len(raw)) * 4 // 3  # and the last ones, which mix in what follows
            if stop - start >= MIN_SECRET_PIECE:
                forms.add(encoded[start:stop])
    forms.discard(secret)
    return {f for f in forms if len(f) >= MIN_SECRET_PIECE}


@dataclasses.dataclass(frozen=True)
class _Secret:
    """A registered secret and what finds it cheaply: its encoded forms, and the 8-character ends
    from which a piece of it (a key split in two) is grown to its full length."""

    value: str
    forms: tuple[str, ...]
    prefix: str | None
    suffix: str | None

    @classmethod
    def of(cls, value: str) -> _Secret:
        def usable(piece: str) -> str | None:
            # a piece that is nearly one repeated character ("xxxxxxxx" of a test key) would
            # redact ordinary text
            split = len(value) >= 2 * MIN_SECRET_PIECE and len(set(piece)) >= 4
            return piece if split else None

        forms = tuple(sorted(_encodings(value), key=len, reverse=True))
        ends = usable(value[:MIN_SECRET_PIECE]), usable(value[-MIN_SECRET_PIECE:])
        return cls(value, forms, *ends)

    @property
    def anchors(self) -> tuple[str, ...]:
        """The substrings one of which a text holding this secret in any form contains."""
        found = (self.value, *self.forms, self.prefix, self.suffix)
        return tuple(anchor for anchor in found if anchor is not None)

    def redact(self, text: str) -> str:
        for whole in (self.value, *self.forms):
            if whole in text:
                text = text.replace(whole, REDACTED)
        if self.prefix is not None and self.prefix in text:
            text = self._grow(text, self.prefix, forward=True)
        if self.suffix is not None and self.suffix in text:
            text = self._grow(text, self.suffix, forward=False)
        return text

    def _grow(self, text: str, anchor: str, *, forward: bool) -> str:
        """Redact every occurrence of ``anchor`` grown to the longest prefix (or suffix) of the
        secret."""
        value, pieces, position = self.value, [], 0
        while (found := text.find(anchor, position)) >= 0:
            start, stop = found, found + len(anchor)
            if forward:
                while (
                    stop < len(text)
                    and stop - start < len(value)
                    and text[stop] == value[stop - start]
                ):
                    stop += 1
            else:
                left = len(value) - len(anchor)
                while start > position and left > 0 and text[start - 1] == value[left - 1]:
                    start, left = start - 1, left - 1
            pieces += [text[position:start], REDACTED]
            position = stop
        return "".join(pieces) + text[position:]


@dataclasses.dataclass(frozen=True)
class _Registered:
    """What the registered secrets compile to: the secrets (longest first), one regex that finds
    any of their anchors, and the redacted forms of short texts seen since (a bounded cache)."""

    names: frozenset[str]
    version: int
    secrets: tuple[_Secret, ...]
    anchors: re.Pattern[str] | None
    cache: dict[str, str]
    #: the anchors themselves when they are few (a substring search each beats the regex)
    few: tuple[str, ...] | None = None

    @classmethod
    def of(cls, names: frozenset[str], version: int) -> _Registered:
        secrets = tuple(_Secret.of(v) for v in sorted(names, key=len, reverse=True))
        anchors = sorted({a for s in secrets for a in s.anchors}, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, anchors))) if anchors else None
        few = tuple(anchors) if len(anchors) <= _FEW_ANCHORS else None
        return cls(names, version, secrets, pattern, {}, few)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds one of the anchors (so possibly a registered secret)."""
        if self.few is not None:
            for anchor in self.few:  # noqa: SIM110 - a loop: any() over a generator costs 3x
                if anchor in text:
                    return True
            return False
        return self.anchors is not None and self.anchors.search(text) is not None


_registered = [_Registered.of(frozenset(), 0)]


def _current() -> _Registered:
    """The compiled registered secrets, rebuilt only when the set changes: a secret was registered,
    or the set shrank (a test puts back an earlier set)."""
    registered = _registered[0]
    if _version[0] != registered.version or len(_secrets) != len(registered.names):
        with _secrets_lock:
            names, version = frozenset(_secrets), _version[0]
        registered = _Registered.of(names, version)
        _registered[0] = registered
    return registered


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds a registered secret in any form (a tweet must never publish one)."""
    return _current().found_in(text)


def _may_look_secret(text: str) -> bool:
    """Whether ``text`` holds one of the words every secret-shaped pattern needs: in ASCII text
    (nearly all), five substring searches of its lowercase form find what ``_TRIGGER`` finds, about
    15 times faster than the case-blind regex."""
    if text.isascii():
        lower = text.lower()
        return (
            "key" in lower
            or "://" in lower
            or "aiza" in lower
            or "bearer" in lower
            or "authorization" in lower
        )
    return _TRIGGER.search(text) is not None  # Unicode case folding: the regex decides


def _redact(text: str, registered: _Registered) -> str:
    if registered.found_in(text):
        for secret in registered.secrets:
            text = secret.redact(text)
    if _may_look_secret(text):
        for regex, repl in _PATTERNS:
            text = regex.sub(repl, text)
    return text


def redact_text(text: str) -> str:
    """Replace registered secrets (also percent-encoded, base64-encoded or split) and secret-shaped
    substrings (Google keys, ``key=`` values, auth headers, bearer tokens, URL user-info) with
    ``[REDACTED]``."""
    return _redacted(text, _current())


def _redacted(text: str, registered: _Registered) -> str:
    if len(text) > _CACHED_LENGTH:
        return _redact(text, registered)
    cache = registered.cache
    done = cache.get(text)
    if done is None:
        done = _redact(text, registered)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[text] = done
    return done


class Preview:
    """A preview of a text for a log event: cut to the configured length and redacted, computed only
    when an event is rendered (never when its level is off) and only once.

    ``str(preview)`` (and formatting, comparison with a string) gives the text.
    """

    __slots__ = ("_length", "_text", "_value")

    def __init__(self, text: str, length: int | None = None) -> None:
        self._text, self._length = text, length
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            limit = _state["preview_length"] if self._length is None else self._length
            text = redact_text(self._text)
            self._value = text if len(text) <= limit else text[:limit] + "..."
        return self._value

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Preview):
            other = str(other)
        return str(self) == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __len__(self) -> int:
        return len(str(self))


def preview(text: str, length: int | None = None) -> Preview:
    """``text`` cut to the configured preview length (the cut marked with ``...``) and redacted,
    when a log event shows it: a :class:`Preview`, whose ``str()`` is that text."""
    return Preview(text, length)


_SECRET_KEYS = frozenset(
    {"x-goog-api-key", "authorization", "api-key", "x-api-key", "api_key", "apikey"}
)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Preview):
        return str(value)
    if isinstance(value, dict):
        return {
            _redact_value(k): REDACTED if str(k).lower() in _SECRET_KEYS and v else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v) for v in value]
    return redact_text(str(value))


def field_redactor() -> Callable[[Any], Any]:
    """What :class:`Redactor` makes of one field's value, with the secrets registered now."""
    registered = _current()

    def redact(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return _redacted(value, registered)
        return str(value) if kind is Preview else _redact_value(value)

    return redact


_DONE = "_tweetgen_redacted"
#: values that hold no text, and fields only tweetgen's own processors write (level, timestamp)
_PLAIN = frozenset({int, float, bool, type(None)})
_OWN = frozenset({"level", "timestamp"})


class Redactor:
    """Processor: redact every value of the event (nested, exceptions as text; previews rendered).

    tweetgen's own events are redacted once, in their logger's chain (so even a foreign handler
    never sees a secret), and marked; the handlers' formatters then redact only the records that are
    not marked (other libraries', or other structlog chains').
    """

    def __init__(self, *, mark: bool = False) -> None:
        self.mark = mark

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event_dict.pop(_DONE, False):
            return event_dict
        redact = field_redactor()
        for key, value in event_dict.items():
            if type(value) in _PLAIN or key in _OWN or key.startswith("_"):
                continue
            event_dict[key] = redact(value)
        if self.mark:
            event_dict[_DONE] = True
        return event_dict
