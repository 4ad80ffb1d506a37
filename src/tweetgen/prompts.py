"""Prompt templates (the seed's "Q2 template system"): named templates with declared variables."""

from __future__ import annotations

import functools
import json
import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_FORMAT_WIDTH",
    "MAX_PROMPT_CHARS",
    "THREAD_TEMPLATE",
    "TONES",
    "PromptTemplate",
    "TemplateError",
    "TemplateRegistry",
    "default_registry",
    "register_tone",
]


class TemplateError(InputError):
    """A template is malformed, unknown, or rendered with missing or unknown variables."""


#: Largest width or precision in a placeholder's format spec (``{topic:>40}``): enough to pad or
#: cut any variable, while ``{topic:x>100000000}`` would render a 100 MB prompt.
MAX_FORMAT_WIDTH = 1_000
#: Longest rendered prompt, in characters: far beyond a tweet prompt with a few examples (Gemini
#: bills every token of it); a longer one is refused before any call.
MAX_PROMPT_CHARS = 100_000
_NUMBER = re.compile(r"\d+")


def _check_spec(spec: str) -> None:
    """Refuse a format spec whose width or precision is over ``MAX_FORMAT_WIDTH`` (a digit fill
    character is small, so any number in the spec over the limit is a width or a precision)."""
    for number in _NUMBER.findall(spec):
        if len(number) > 6 or int(number) > MAX_FORMAT_WIDTH:
            raise TemplateError(
                f"format spec {spec[:40]!r} asks for a width or precision of {number[:12]}; "
                f"the limit is {MAX_FORMAT_WIDTH}"
            )


class _Formatter(string.Formatter):
    """``str.format`` that checks every format spec once its nested fields are filled in."""

    def format_field(self, value: object, format_spec: str) -> str:
        _check_spec(format_spec)
        return str(super().format_field(value, format_spec))


#: Tone presets: name -> how the model should sound.
TONES: dict[str, str] = {
    "professional": "polished and credible, like an industry expert; no slang",
    "casual": "relaxed and conversational, like talking to a friend",
    "witty": "clever and playful, with a light joke or wordplay",
    "inspirational": "uplifting and motivating, ending on an encouraging note",
    "informative": "clear and factual, teaching one useful thing",
}


def register_tone(name: str, description: str) -> None:
    """Add or replace a tone preset usable as ``tone=name``."""
    key = name.strip().lower()
    if not key or not description.strip():
        raise TemplateError("a tone needs a non-empty name and description")
    TONES[key] = description.strip()


@functools.lru_cache(maxsize=256)
def _fields(text: str) -> frozenset[str]:
    """The placeholder names of a template, nested ones in format specs included (parsed once per
    text: a malformed one raises, and raising is not cached)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template: {exc}") from None
    names: set[str] = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise TemplateError(f"template variables must be plain names, got {{{name}}}")
        if conversion not in (None, "r", "s", "a"):
            raise TemplateError(
                f"malformed template: unknown conversion !{conversion} in {{{name}}}"
            )
        names.add(name)
        if spec and "{" in spec:
            names |= _fields(spec)
        elif spec:
            _check_spec(spec)
    return frozenset(names)


@functools.lru_cache(maxsize=256)
def _nested_specs(text: str) -> bool:
    """Whether a placeholder's format spec holds a field (``{topic:>{width}}``): its width is known,
    and checked, only once filled in."""
    return any(
        spec and "{" in spec for _literal, _name, spec, _conv in string.Formatter().parse(text)
    )


@dataclass(frozen=True)
class PromptTemplate:
    """A named ``str.format`` template whose variables are declared by its placeholders."""

    name: str
    text: str
    description: str = ""
    defaults: Mapping[str, object] = field(default_factory=dict)

    @property
    def variables(self) -> frozenset[str]:
        """The placeholder names the template uses."""
        return _fields(self.text)

    def render(self, **values: object) -> str:
        """Fill the template; a missing or unknown variable is a ``TemplateError``."""
        merged = {**self.defaults, **values}
        variables = self.variables
        unknown = sorted(set(values) - variables)
        missing = sorted(variables - set(merged))
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown {', '.join(unknown)}")
            raise TemplateError(
                f"template {self.name!r}: {'; '.join(parts)} "
                f"(it takes: {', '.join(sorted(variables))})"
            )
        try:
            if _nested_specs(self.text):
                text = _Formatter().vformat(self.text, (), merged)
            else:  # every spec was checked when parsed: the C implementation fills it
                text = self.text.format_map(merged)
        except (KeyError, IndexError, ValueError) as exc:
            raise TemplateError(f"template {self.name!r} cannot be rendered: {exc}") from None
        if len(text) > MAX_PROMPT_CHARS:
            raise TemplateError(
                f"template {self.name!r} renders a prompt of {len(text):,} characters; "
                f"the limit is {MAX_PROMPT_CHARS:,}"
            )
        return text


DEFAULT_TEMPLATE = PromptTemplate(
    name="tweet",
    description="One tweet about a topic in a tone, within a word limit.",
    text=(
        "Generate a {tone} tweet about {topic}.\n"
        "Tone: {tone_description}.\n"
        "Write at most {max_words} words and stay within 280 characters.\n"
        "{instructions}\n"
        "Reply with the tweet text only: no quotes, no preamble, no explanation."
    ),
    defaults={"instructions": ""},
)

THREAD_TEMPLATE = PromptTemplate(
    name="thread",
    description="A thread of several tweets about a topic.",
    text=(
        "Write a {tone} thread of {count} tweets about {topic}.\n"
        "Tone: {tone_description}.\n"
        "Each tweet has at most {max_words} words and stays within 270 characters.\n"
        "{instructions}\n"
        "Separate the tweets with a line containing only ---. Do not number them.\n"
        "Reply with the tweets only: no quotes, no preamble, no explanation."
    ),
    defaults={"instructions": ""},
)


class TemplateRegistry:
    """Named templates; users register their own or load them from a JSON or TOML file."""

    def __init__(self, templates: Mapping[str, PromptTemplate] | None = None) -> None:
        self._templates: dict[str, PromptTemplate] = dict(templates or {})

    def register(self, template: PromptTemplate) -> PromptTemplate:
        """Add or replace a template (its variables and format specs are checked now, not at
        render time)."""
        try:
            _ = template.variables
        except TemplateError as error:
            raise TemplateError(f"template {template.name!r}: {error}") from None
        self._templates[template.name] = template
        return template

    def get(self, name: str) -> PromptTemplate:
        """Return the template called ``name``."""
        try:
            return self._templates[name]
        except KeyError:
            known = ", ".join(sorted(self._templates)) or "none"
            raise TemplateError(
                f"unknown template {name!r}; known templates: {known}", setting="template"
            ) from None

    def names(self) -> list[str]:
        """The registered template names, sorted."""
        return sorted(self._templates)

    def load_file(self, path: str | Path) -> list[PromptTemplate]:
        """Register every template of a file ``{"name": {"text": ..., "description": ...}}``."""
        data = _read_template_file(Path(path))
        loaded = []
        for name, spec in data.items():
            if isinstance(spec, str):
                spec = {"text": spec}
            if not isinstance(spec, dict) or not isinstance(spec.get("text"), str):
                raise TemplateError(
                    f"{path}: template {name!r} needs a 'text' string", setting="templates_file"
                )
            loaded.append(
                self.register(
                    PromptTemplate(
                        name=name, text=spec["text"], description=str(spec.get("description", ""))
                    )
                )
            )
        return loaded


def _read_template_file(path: Path) -> dict[str, object]:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateError(
            f"cannot read template file {path}: it is not UTF-8", setting="templates_file"
        ) from None
    except OSError as exc:
        from .oserrors import explain_path_error

        reason = (
            "it does not exist"
            if isinstance(exc, FileNotFoundError)
            else explain_path_error(exc, path)
        )
        raise TemplateError(
            f"cannot read template file {path}: {reason}", setting="templates_file"
        ) from None
    try:
        if path.suffix == ".toml":
            data: object = _load_toml(raw, path)
        else:
            data = json.loads(raw)
    except ValueError as exc:
        kind = path.suffix.lstrip(".").upper() if path.suffix == ".toml" else "JSON"
        raise TemplateError(
            f"{path} is not valid {kind}: {exc}", setting="templates_file"
        ) from None
    if not isinstance(data, dict):
        raise TemplateError(
            f"{path} must hold an object of templates by name", setting="templates_file"
        )
    return data


def _load_toml(raw: str, path: Path) -> object:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(raw)
    raise TemplateError(
        f"{path}: TOML templates need Python 3.11+; use JSON", setting="templates_file"
    )


default_registry = TemplateRegistry({t.name: t for t in (DEFAULT_TEMPLATE, THREAD_TEMPLATE)})
